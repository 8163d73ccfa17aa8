-- Findings from every source, normalized (see orchestrator/src/finding.rs), with the source's
-- document kept verbatim for evidence. Portable SQL for SQLite and PostgreSQL: timestamps are
-- Unix milliseconds, JSON is TEXT.
CREATE TABLE findings (
    -- source|product_arn|id: unique across sources.
    uid                TEXT    NOT NULL PRIMARY KEY,
    source             VARCHAR(32) NOT NULL,
    product_arn        TEXT    NOT NULL,
    finding_id         TEXT    NOT NULL,
    account_id         VARCHAR(12) NOT NULL,
    region             VARCHAR(32) NOT NULL,
    resource_type      VARCHAR(256) NOT NULL,
    resource_id        TEXT    NOT NULL,
    -- JSON object of the resource's tags.
    resource_tags      TEXT    NOT NULL,
    -- The resource's orgsec:criticality tag, when it has one.
    criticality        DOUBLE PRECISION,
    control_id         VARCHAR(64),
    finding_type       TEXT,
    title              TEXT    NOT NULL,
    severity           VARCHAR(16) NOT NULL,
    workflow_status    VARCHAR(16) NOT NULL,
    compliance_status  VARCHAR(16),
    active             BOOLEAN NOT NULL,
    -- Whether it reports a live problem (Finding::is_failing), kept for queries and scoring.
    failing            BOOLEAN NOT NULL,
    created_at         BIGINT  NOT NULL,
    updated_at         BIGINT  NOT NULL,
    first_seen         BIGINT  NOT NULL,
    last_seen          BIGINT  NOT NULL,
    -- What the finding checks; two sources reporting one check share it.
    check_key          TEXT    NOT NULL,
    raw                TEXT    NOT NULL
);

CREATE INDEX findings_scope ON findings (account_id, region, source);
CREATE INDEX findings_check ON findings (check_key);
CREATE INDEX findings_control ON findings (control_id);

-- Where incremental collection resumes: per account, region and source, the greatest source
-- timestamp (UpdatedAt) stored so far. Written in the same transaction as the findings it covers.
CREATE TABLE watermarks (
    account_id  VARCHAR(12) NOT NULL,
    region      VARCHAR(32) NOT NULL,
    source      VARCHAR(32) NOT NULL,
    watermark   BIGINT      NOT NULL,
    updated_at  BIGINT      NOT NULL,
    PRIMARY KEY (account_id, region, source)
);

-- Documents that could not be read as findings: counted, kept for review, never blocking.
CREATE TABLE rejected_findings (
    -- source|account|region|SHA-256 of the document.
    rejection_key  TEXT        NOT NULL PRIMARY KEY,
    source         VARCHAR(32) NOT NULL,
    account_id     VARCHAR(12) NOT NULL,
    region         VARCHAR(32) NOT NULL,
    finding_id     TEXT,
    reason         TEXT        NOT NULL,
    bytes          BIGINT      NOT NULL,
    -- The document's first 4 KiB.
    sample         TEXT        NOT NULL,
    first_seen     BIGINT      NOT NULL,
    last_seen      BIGINT      NOT NULL,
    times          BIGINT      NOT NULL
);

-- Scores over time, for trends: one row per scope per snapshot.
CREATE TABLE score_snapshots (
    taken_at        BIGINT      NOT NULL,
    scope           VARCHAR(16) NOT NULL,
    scope_id        TEXT        NOT NULL,
    score           DOUBLE PRECISION NOT NULL,
    total_weight    BIGINT      NOT NULL,
    failing_weight  BIGINT      NOT NULL,
    PRIMARY KEY (taken_at, scope, scope_id)
);
