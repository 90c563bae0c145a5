-- PostgreSQL's migration of this number adds a partial index for dead jobs; apalis-sqlite's
-- (job_type, status, run_at) index already serves the count here.
SELECT 1;
