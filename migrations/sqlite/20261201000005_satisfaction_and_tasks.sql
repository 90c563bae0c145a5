-- The satisfaction question: one check-in after a treatment asks for a score of 1 to 5, given
-- by a reply or by staff through the API; a low one becomes a task for staff.
ALTER TABLE revisits ADD COLUMN asks_score INTEGER NOT NULL DEFAULT 0;
ALTER TABLE revisits ADD COLUMN score INTEGER CHECK (score BETWEEN 1 AND 5);
ALTER TABLE revisits ADD COLUMN scored_at TEXT;

CREATE INDEX revisits_asking_score ON revisits (person_id, sent_at) WHERE asks_score AND score IS NULL;

CREATE TABLE staff_tasks (
    id              INTEGER PRIMARY KEY,
    institution_id  INTEGER NOT NULL REFERENCES institutions (id),
    customer_id     INTEGER NOT NULL REFERENCES customers (id),
    revisit_id      INTEGER,
    kind            TEXT NOT NULL CHECK (kind IN ('low_score')),
    note            TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'done')),
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    done_at         TEXT,
    done_by         TEXT,
    done_note       TEXT,
    UNIQUE (revisit_id, kind)
);

CREATE INDEX staff_tasks_open ON staff_tasks (institution_id, created_at) WHERE status = 'open';
