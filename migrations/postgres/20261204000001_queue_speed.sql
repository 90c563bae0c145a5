-- Inserts announce themselves once per statement and queue, not once per row: apalis's row
-- trigger sent one notification per job (each with its id, so none were merged), which made a
-- batch of 1,000 jobs cost 1,000 notifications and woke every listener 1,000 times. Revisit's
-- backend listens on 'revisit::jobs' for the queue's name.
DROP TRIGGER IF EXISTS notify_workers ON apalis.jobs;

CREATE OR REPLACE FUNCTION apalis.revisit_notify_jobs() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('revisit::jobs', q.job_type)
    FROM (SELECT DISTINCT job_type FROM inserted WHERE run_at <= now()) AS q;
    RETURN NULL;
END;
$$;

CREATE TRIGGER revisit_notify_jobs
AFTER INSERT ON apalis.jobs
REFERENCING NEW TABLE AS inserted
FOR EACH STATEMENT EXECUTE FUNCTION apalis.revisit_notify_jobs();

-- Every insert and every fetch maintains each index of the job table. apalis's migrations leave
-- two pairs of duplicates (unique_job_id beside the primary key, lidx beside
-- idx_apalis_jobs_lock_by) and index the idempotency key of every row although only keyed jobs
-- have one: that halved the speed of a batched insert.
DROP INDEX IF EXISTS apalis.unique_job_id;
DROP INDEX IF EXISTS apalis.lidx;
DROP INDEX IF EXISTS apalis.idx_jobs_idempotency_key;
CREATE UNIQUE INDEX idx_jobs_idempotency_key ON apalis.jobs (job_type, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- Only held jobs are looked up by their worker (the heartbeat rescue, the release at shutdown):
-- finished rows leave the index, so storing a result adds an entry to the primary key alone.
DROP INDEX IF EXISTS apalis.idx_apalis_jobs_lock_by;
CREATE INDEX idx_apalis_jobs_lock_by ON apalis.jobs (lock_by) WHERE status IN ('Queued', 'Running');

-- A fetch sets lock_by on every row it takes, and this key made each of them look its worker up
-- (`FOR KEY SHARE` on the worker's row, one trigger call per job): more than half of a fetch's
-- time. Workers register before they fetch, and the heartbeat rescue treats a job whose worker
-- row is missing as orphaned, so nothing relies on it.
ALTER TABLE apalis.jobs DROP CONSTRAINT IF EXISTS fk_worker_lock_by;
