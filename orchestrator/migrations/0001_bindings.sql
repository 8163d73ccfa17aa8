-- Remediation bindings: which findings (controls, finding types, in a scope) a playbook
-- remediates, and how. The same SQL runs on SQLite and PostgreSQL: keep it portable (TEXT,
-- BIGINT, VARCHAR; timestamps as Unix milliseconds; JSON as TEXT).
CREATE TABLE bindings (
    name        VARCHAR(128) NOT NULL PRIMARY KEY,
    playbook    VARCHAR(128) NOT NULL,
    -- auto | approve | notify | dry_run
    mode        VARCHAR(16)  NOT NULL,
    -- JSON object: controls, finding_types, scope {accounts, organizational_units, tags},
    -- notify, parameters.
    settings    TEXT         NOT NULL,
    -- Counts changes, from 1.
    revision    BIGINT       NOT NULL,
    created_by  VARCHAR(256) NOT NULL,
    updated_by  VARCHAR(256) NOT NULL,
    created_at  BIGINT       NOT NULL,
    updated_at  BIGINT       NOT NULL
);

CREATE INDEX bindings_playbook ON bindings (playbook);
