-- The monitor's change log (see orchestrator/src/monitor.rs): what changed in the organization
-- between full assessments. Remediations, resources that appeared or went away, checks that
-- started failing, and the full assessments themselves (kind 'assessment'), which reset the count
-- of changes that triggers the next one. Portable SQL for SQLite and PostgreSQL.
CREATE TABLE change_log (
    -- Random, unique; the order is `at`, then `id`.
    id          VARCHAR(32)  NOT NULL PRIMARY KEY,
    -- Unix milliseconds.
    at          BIGINT       NOT NULL,
    -- remediation | resource_new | resource_deleted | check_failing | assessment
    kind        VARCHAR(32)  NOT NULL,
    account_id  VARCHAR(12),
    region      VARCHAR(32),
    -- What changed: a resource id, a check, a job id.
    subject     TEXT         NOT NULL,
    -- Free text for people.
    detail      TEXT         NOT NULL
);

CREATE INDEX change_log_at ON change_log (at);
CREATE INDEX change_log_kind_at ON change_log (kind, at);
