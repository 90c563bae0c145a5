-- Paused queues (`revisit jobs pause <queue>`): every worker's fetch leaves a paused queue's
-- jobs where they are until it is resumed; jobs already running finish.
CREATE TABLE queue_pauses (
    queue      TEXT PRIMARY KEY,
    paused_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    reason     TEXT
);
