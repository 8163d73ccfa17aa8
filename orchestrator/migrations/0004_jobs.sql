-- Remediation jobs: durable, leased, retried (see orchestrator/src/jobs.rs). Portable SQL for
-- SQLite and PostgreSQL: timestamps are Unix milliseconds, JSON is TEXT.
CREATE TABLE jobs (
    -- The first 16 bytes of SHA-256(idempotency_key), spelled like a UUID: the same key always
    -- names the same job.
    id                  VARCHAR(36)  NOT NULL PRIMARY KEY,
    -- binding|playbook|finding uid|finding generation: a redelivered finding finds its job here.
    idempotency_key     TEXT         NOT NULL UNIQUE,
    binding             VARCHAR(128) NOT NULL,
    playbook            VARCHAR(128) NOT NULL,
    -- auto | approve | notify | dry_run
    mode                VARCHAR(16)  NOT NULL,
    finding_uid         TEXT         NOT NULL,
    finding_generation  BIGINT       NOT NULL,
    account_id          VARCHAR(12)  NOT NULL,
    region              VARCHAR(32)  NOT NULL,
    -- JSON object: the binding's parameters for the playbook.
    parameters          TEXT         NOT NULL,
    -- QUEUED | PENDING_APPROVAL | RUNNING | VERIFYING | SUCCEEDED | FAILED | REJECTED | EXPIRED
    -- | PLANNED | NOTIFIED
    state               VARCHAR(24)  NOT NULL,
    -- The last step known to have completed: none | planned | executed | verified. A job
    -- resumed after a crash starts after it, so a step that succeeded is not run again.
    step                VARCHAR(16)  NOT NULL,
    -- Leases taken so far in the current phase (approval starts a new one).
    attempts            BIGINT       NOT NULL,
    max_attempts        BIGINT       NOT NULL,
    next_attempt_at     BIGINT       NOT NULL,
    lease_owner         VARCHAR(256),
    lease_until         BIGINT,
    -- The playbook's plan (JSON), once made.
    plan                TEXT,
    -- What execute reported (JSON), once it ran.
    result              TEXT,
    -- The last error, kept while retrying and on failure.
    error               TEXT,
    approved_by         VARCHAR(256),
    approved_at         BIGINT,
    rejected_by         VARCHAR(256),
    -- Why it was rejected.
    reason              TEXT,
    -- When a job waiting for approval expires.
    expires_at          BIGINT,
    created_at          BIGINT       NOT NULL,
    updated_at          BIGINT       NOT NULL
);

-- What lease() scans: due queued jobs and expired leases.
CREATE INDEX jobs_due ON jobs (state, next_attempt_at);
-- Per-account concurrency and listings by account.
CREATE INDEX jobs_account ON jobs (account_id, state);
CREATE INDEX jobs_finding ON jobs (finding_uid);
