-- The findings table again, with the source's document compressed (a zstd frame of its JSON) in
-- `document` instead of the `raw` text column: the document is three quarters of a row's bytes,
-- and scoring and listings never read it. Rows of about 1 KB instead of 2.6 KB make the sync's
-- writer, which is what bounds collection, about twice as fast (docs/benchmarks.md).
--
-- Findings are a copy of what the sources hold, so this migration empties them together with the
-- watermarks that say how far they were read: the next sync collects every finding again, in the
-- new shape. Rejected documents and score snapshots are kept.
DROP INDEX findings_scope;
DROP INDEX findings_check;
DROP INDEX findings_control;
DROP TABLE findings;
DELETE FROM watermarks;

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
    -- The source's JSON document, verbatim, as one zstd frame (evidence; see store/findings.rs).
    document           BYTEA   NOT NULL
);

CREATE INDEX findings_scope ON findings (account_id, region, source);
CREATE INDEX findings_check ON findings (check_key);
CREATE INDEX findings_control ON findings (control_id);
