-- What each worker process did, minute by minute, for the console's queue page: jobs completed
-- and failed since its last row, and the queue's depth when it wrote it. Written every
-- worker.stats_secs by each process for the queues it serves (nothing for an idle queue), read
-- for the last hour, pruned by jobs.prune after a day.
CREATE TABLE queue_activity (
    at         TIMESTAMPTZ NOT NULL,
    queue      TEXT NOT NULL,
    process    TEXT NOT NULL,
    completed  BIGINT NOT NULL,
    failed     BIGINT NOT NULL,
    waiting    BIGINT NOT NULL,
    running    BIGINT NOT NULL
);
CREATE INDEX queue_activity_at ON queue_activity (at);
