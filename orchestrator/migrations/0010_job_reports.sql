-- Whether a job's after-effects are done for the state it is in: for SUCCEEDED and FAILED, the
-- change-log entry, the NOTIFIED mark of a fix that did not hold and the outcome notifications;
-- for PENDING_APPROVAL, the notification asking for an approval. NULL while they are due (every
-- change of state makes them due again); Unix milliseconds once done. A worker that dies between
-- a job's state and its after-effects leaves it NULL, and a sweep does them later. Portable SQL
-- for SQLite and PostgreSQL.
ALTER TABLE jobs ADD COLUMN reported_at BIGINT;

-- Jobs from before this column: their after-effects ran (or were lost) already.
UPDATE jobs SET reported_at = updated_at;

CREATE INDEX jobs_unreported ON jobs (updated_at) WHERE reported_at IS NULL;
