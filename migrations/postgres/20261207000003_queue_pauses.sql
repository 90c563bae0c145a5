-- Paused queues (`revisit jobs pause <queue>`): every worker's fetch leaves a paused queue's
-- jobs where they are until it is resumed; jobs already running finish. Kept in the database so
-- that every worker process obeys at its next fetch (within the polling interval).
CREATE TABLE queue_pauses (
    queue      TEXT PRIMARY KEY,
    paused_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    reason     TEXT
);
