-- A revisit whose job failed permanently (a message the compliance check refused, a number the
-- channel rejected, a customer gone): retrying it as it is cannot help, so the console offers no
-- retry for it and says why. One that ran out of attempts (a gateway down) can be retried.
ALTER TABLE revisits ADD COLUMN failure_permanent BOOLEAN NOT NULL DEFAULT false;
