-- The organization's accounts as enrollment found and left them: one row per account, written
-- by discovery (name, email, OU path, tags) and by enrollment (state, reason, memberships).
-- Collection and scoring read ou_path and tags (e.g. `orgsec:criticality`). Portable SQL, as in
-- 0001: TEXT, BIGINT, VARCHAR, BOOLEAN; timestamps as Unix milliseconds; JSON as TEXT.
CREATE TABLE accounts (
    account_id          VARCHAR(12)  NOT NULL PRIMARY KEY,
    name                VARCHAR(256) NOT NULL,
    email               VARCHAR(320) NOT NULL,
    -- `Root/Prod/Web`; NULL for an account outside the organization.
    ou_path             TEXT,
    -- The organization's status (ACTIVE, SUSPENDED, PENDING_CLOSURE); NULL outside it.
    org_status          VARCHAR(32),
    -- JSON object of the account's tags.
    tags                TEXT         NOT NULL,
    -- discovered | enrolled | invited | failed | admin | management | suspended
    state               VARCHAR(16)  NOT NULL,
    -- Why the account is not enrolled, and what to do about it.
    reason              TEXT,
    -- Whether the member role could be assumed at the last check; NULL when never checked.
    role_ok             BOOLEAN,
    -- Membership of the admin's Security Hub and GuardDuty, summed up over the regions.
    securityhub_status  VARCHAR(64)  NOT NULL,
    guardduty_status    VARCHAR(64)  NOT NULL,
    -- JSON object: region -> {securityhub, guardduty} member statuses.
    regions             TEXT         NOT NULL,
    first_seen_at       BIGINT       NOT NULL,
    updated_at          BIGINT       NOT NULL,
    -- The last enrollment attempt, and the first time the account was enrolled.
    checked_at          BIGINT,
    enrolled_at         BIGINT
);

CREATE INDEX accounts_state ON accounts (state);
CREATE INDEX accounts_ou_path ON accounts (ou_path);
