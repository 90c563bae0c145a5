-- The satisfaction question: one check-in after a treatment asks for a score of 1 to 5, given
-- by a reply or by staff through the API; a low one becomes a task for staff.
ALTER TABLE revisits
    ADD COLUMN asks_score  BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN score       SMALLINT CHECK (score BETWEEN 1 AND 5),
    ADD COLUMN scored_at   TIMESTAMPTZ;

CREATE INDEX revisits_asking_score ON revisits (person_id, sent_at) WHERE asks_score AND score IS NULL;

CREATE TABLE staff_tasks (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    institution_id  BIGINT NOT NULL REFERENCES institutions (id),
    customer_id     BIGINT NOT NULL REFERENCES customers (id),
    revisit_id      BIGINT,
    kind            TEXT NOT NULL CHECK (kind IN ('low_score')),
    note            TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'done')),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    done_at         TIMESTAMPTZ,
    done_by         TEXT,
    done_note       TEXT,
    UNIQUE (revisit_id, kind)
);

CREATE INDEX staff_tasks_open ON staff_tasks (institution_id, created_at) WHERE status = 'open';
