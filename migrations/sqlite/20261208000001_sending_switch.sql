-- Real sending (`revisit sending on|off|status`): until an operator switches it on, scans run in
-- test mode and a real send still queued is skipped. One row; a database that has already
-- delivered a real message stays on.
CREATE TABLE sending_switch (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    live        BOOLEAN NOT NULL,
    changed_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    changed_by  TEXT NOT NULL
);
INSERT INTO sending_switch (id, live, changed_by)
SELECT 1, EXISTS (SELECT 1 FROM revisits WHERE NOT test_mode AND status = 'sent'), 'migration';
