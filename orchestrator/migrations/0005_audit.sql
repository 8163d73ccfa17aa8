-- The audit log: append-only and hash-chained (see orchestrator/src/audit.rs). Rows are only
-- ever inserted; each one's hash covers the previous one's, so an edited, removed or reordered
-- row breaks the chain at that row. Portable SQL for SQLite and PostgreSQL.
CREATE TABLE audit_log (
    -- 1, 2, 3, ... without gaps. The primary key makes two writers racing for the same place
    -- fail one of them, which then rereads the head and retries.
    seq          BIGINT       NOT NULL PRIMARY KEY,
    -- Unix milliseconds.
    at           BIGINT       NOT NULL,
    -- Who acted: a token's name, `cli`, or `orgsec` for the engine itself.
    actor        VARCHAR(256) NOT NULL,
    action       VARCHAR(64)  NOT NULL,
    job_id       VARCHAR(36),
    finding_uid  TEXT,
    account_id   VARCHAR(12),
    -- Canonical JSON (keys sorted, no whitespace).
    details      TEXT         NOT NULL,
    -- Hex SHA-256; 64 zeros for the first record.
    prev_hash    CHAR(64)     NOT NULL,
    -- Hex SHA-256(prev_hash || canonical record).
    hash         CHAR(64)     NOT NULL
);

CREATE INDEX audit_log_job ON audit_log (job_id);
