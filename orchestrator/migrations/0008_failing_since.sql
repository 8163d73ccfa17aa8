-- When each finding last started failing: its source's UpdatedAt on the write that turned it
-- failing; NULL while it passes. Remediation jobs are keyed by it (the finding's generation), so
-- a finding that comes back after a fix gets a new job, while one that is merely reported again
-- maps to the job it already has.
ALTER TABLE findings ADD COLUMN failing_since BIGINT;
UPDATE findings SET failing_since = updated_at WHERE failing;
