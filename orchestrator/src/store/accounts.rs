//! The `accounts` table: one row per account of the organization (and per account enrolled
//! from outside it), as discovery and enrollment left it.

use std::collections::BTreeMap;

use serde::Serialize;
use time::OffsetDateTime;

use super::{Store, StoreError, from_millis, to_millis, with_pool};
use crate::enroll::{AccountState, RegionMembership};

/// An account as orgsec knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountRecord {
    pub account_id: String,
    pub name: String,
    pub email: String,
    /// OU names from `Root` down, joined by `/` (`Root/Prod/Web`), as the provider's
    /// `orgsec_organization` spells them; `None` for an account outside the organization.
    pub ou_path: Option<String>,
    /// The organization's status of the account (`ACTIVE`, `SUSPENDED`, `PENDING_CLOSURE`);
    /// `None` outside the organization.
    pub org_status: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub state: AccountState,
    /// Why the account is not (fully) enrolled, and what to do about it.
    pub reason: Option<String>,
    /// Whether the member role could be assumed at the last check; `None` when never checked.
    pub role_ok: Option<bool>,
    /// Security Hub membership of the admin's hub, summed up over the regions (`Enabled`,
    /// `Invited`, ...; `-` when unknown). Per region in `regions`.
    pub securityhub_status: String,
    /// GuardDuty membership of the admin's detector, summed up the same way.
    pub guardduty_status: String,
    pub regions: BTreeMap<String, RegionMembership>,
    #[serde(with = "time::serde::rfc3339")]
    pub first_seen_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// The last enrollment attempt.
    #[serde(with = "time::serde::rfc3339::option")]
    pub checked_at: Option<OffsetDateTime>,
    /// The first time the account was found enrolled.
    #[serde(with = "time::serde::rfc3339::option")]
    pub enrolled_at: Option<OffsetDateTime>,
}

impl AccountRecord {
    /// A record for an account seen for the first time at `now`, with nothing checked yet.
    pub fn new(account_id: &str, state: AccountState, now: OffsetDateTime) -> AccountRecord {
        AccountRecord {
            account_id: account_id.to_string(),
            name: String::new(),
            email: String::new(),
            ou_path: None,
            org_status: None,
            tags: BTreeMap::new(),
            state,
            reason: None,
            role_ok: None,
            securityhub_status: "-".into(),
            guardduty_status: "-".into(),
            regions: BTreeMap::new(),
            first_seen_at: now,
            updated_at: now,
            checked_at: None,
            enrolled_at: None,
        }
    }
}

/// The columns every query returns, in this order.
type Row = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    Option<String>,
    Option<bool>,
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
);

/// The column list of [`Row`], as a literal so that queries stay `&'static str`.
macro_rules! columns {
    () => {
        "account_id, name, email, ou_path, org_status, tags, state, reason, role_ok, securityhub_status, \
         guardduty_status, regions, first_seen_at, updated_at, checked_at, enrolled_at"
    };
}

fn from_row(row: Row) -> Result<AccountRecord, StoreError> {
    let (
        account_id,
        name,
        email,
        ou_path,
        org_status,
        tags,
        state,
        reason,
        role_ok,
        securityhub_status,
        guardduty_status,
        regions,
        first_seen_at,
        updated_at,
        checked_at,
        enrolled_at,
    ) = row;
    let corrupt =
        |what: &str, e: &dyn std::fmt::Display| StoreError::Corrupt(format!("{what} of account {account_id}: {e}"));
    let tags = serde_json::from_str(&tags).map_err(|e| corrupt("tags", &e))?;
    let regions = serde_json::from_str(&regions).map_err(|e| corrupt("regions", &e))?;
    let state = AccountState::parse(&state).ok_or_else(|| corrupt("state", &state))?;
    Ok(AccountRecord {
        name,
        email,
        ou_path,
        org_status,
        tags,
        state,
        reason,
        role_ok,
        securityhub_status,
        guardduty_status,
        regions,
        first_seen_at: from_millis(first_seen_at)?,
        updated_at: from_millis(updated_at)?,
        checked_at: checked_at.map(from_millis).transpose()?,
        enrolled_at: enrolled_at.map(from_millis).transpose()?,
        account_id,
    })
}

impl Store {
    /// Creates or replaces the account's row. `first_seen_at` is kept from the existing row.
    pub async fn upsert_account(&self, a: &AccountRecord) -> Result<(), StoreError> {
        let json = |what: &str, v: Result<String, serde_json::Error>| {
            v.map_err(|e| StoreError::Corrupt(format!("{what} of account {}: {e}", a.account_id)))
        };
        let tags = json("tags", serde_json::to_string(&a.tags))?;
        let regions = json("regions", serde_json::to_string(&a.regions))?;
        with_pool!(self, p => sqlx::query(
            concat!("INSERT INTO accounts (", columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
             ON CONFLICT (account_id) DO UPDATE SET name = excluded.name, email = excluded.email, \
             ou_path = excluded.ou_path, org_status = excluded.org_status, tags = excluded.tags, \
             state = excluded.state, reason = excluded.reason, role_ok = excluded.role_ok, \
             securityhub_status = excluded.securityhub_status, guardduty_status = excluded.guardduty_status, \
             regions = excluded.regions, updated_at = excluded.updated_at, checked_at = excluded.checked_at, \
             enrolled_at = excluded.enrolled_at"),
        )
        .bind(&a.account_id)
        .bind(&a.name)
        .bind(&a.email)
        .bind(&a.ou_path)
        .bind(&a.org_status)
        .bind(&tags)
        .bind(a.state.as_str())
        .bind(&a.reason)
        .bind(a.role_ok)
        .bind(&a.securityhub_status)
        .bind(&a.guardduty_status)
        .bind(&regions)
        .bind(to_millis(a.first_seen_at))
        .bind(to_millis(a.updated_at))
        .bind(a.checked_at.map(to_millis))
        .bind(a.enrolled_at.map(to_millis))
        .execute(p)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Every account, in account id order.
    pub async fn accounts(&self) -> Result<Vec<AccountRecord>, StoreError> {
        let rows: Vec<Row> = with_pool!(self, p => sqlx::query_as(
            concat!("SELECT ", columns!(), " FROM accounts ORDER BY account_id"),
        )
        .fetch_all(p)
        .await)?;
        rows.into_iter().map(from_row).collect()
    }

    /// When each account's tags were last read (Unix milliseconds), by account id.
    pub async fn tags_read_at(&self) -> Result<std::collections::HashMap<String, i64>, StoreError> {
        let rows: Vec<(String, i64)> = with_pool!(self, p => sqlx::query_as("SELECT account_id, read_at FROM account_tags_read").fetch_all(p).await)?;
        Ok(rows.into_iter().collect())
    }

    /// Records that the tags of `ids` were read at `at`.
    pub async fn record_tags_read(&self, ids: &[String], at: OffsetDateTime) -> Result<(), StoreError> {
        with_pool!(self, p => async {
            let mut tx = p.begin().await?;
            for id in ids {
                sqlx::query(
                    "INSERT INTO account_tags_read (account_id, read_at) VALUES ($1, $2) \
                     ON CONFLICT (account_id) DO UPDATE SET read_at = excluded.read_at",
                )
                .bind(id)
                .bind(to_millis(at))
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await
        }.await)?;
        Ok(())
    }

    /// The account `id`, if orgsec knows it.
    pub async fn account(&self, id: &str) -> Result<Option<AccountRecord>, StoreError> {
        let row: Option<Row> = with_pool!(self, p => sqlx::query_as(
            concat!("SELECT ", columns!(), " FROM accounts WHERE account_id = $1"),
        )
        .bind(id)
        .fetch_optional(p)
        .await)?;
        row.map(from_row).transpose()
    }
}
