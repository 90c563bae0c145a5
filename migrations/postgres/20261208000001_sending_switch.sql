-- Real sending (`revisit sending on|off|status`): until an operator switches it on, scans run in
-- test mode (messages are generated and shown, nothing reaches a customer) and a real send that
-- is still queued is skipped. One row. A database that has already delivered a real message was
-- sending before this switch existed, so it stays on.
CREATE TABLE sending_switch (
    id          SMALLINT PRIMARY KEY CHECK (id = 1),
    live        BOOLEAN NOT NULL,
    changed_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    changed_by  TEXT NOT NULL
);
INSERT INTO sending_switch (id, live, changed_by)
SELECT 1, EXISTS (SELECT 1 FROM revisits WHERE NOT test_mode AND status = 'sent'), 'migration';
