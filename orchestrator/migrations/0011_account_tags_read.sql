-- When orgsec last read each account's tags from Organizations (Unix milliseconds).
-- ListTagsForResource takes one call an account at Organizations' rate (about 200 s for 1,000
-- accounts), so the service's enrollment watch reads the tags of new accounts and refreshes only
-- a few of the oldest each round; `orgsec enroll` reads them all. Portable SQL for SQLite and
-- PostgreSQL.
CREATE TABLE account_tags_read (
    account_id  VARCHAR(12)  NOT NULL PRIMARY KEY,
    read_at     BIGINT       NOT NULL
);
