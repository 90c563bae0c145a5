-- Dead jobs (failed for good, cancelled) by queue, for /metrics and the console's queue page:
-- a scrape counts them without reading the finished rows. Small: only failed rows are in it.
CREATE INDEX IF NOT EXISTS idx_jobs_failed ON apalis.jobs (job_type) WHERE status IN ('Killed', 'Failed');
