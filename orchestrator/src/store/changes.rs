//! The `change_log` table (the monitor's log, see `crate::monitor`), and the per-account view of
//! findings the monitor compares between reads.

use std::sync::atomic::{AtomicU64, Ordering};

use time::OffsetDateTime;

use super::{Store, StoreError, from_millis, to_millis, with_pool};
use crate::monitor::{Change, ChangeKind};

/// Rows written per statement.
const CHUNK: usize = 200;

/// One finding as the monitor sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckState {
    pub region: String,
    pub resource_id: String,
    pub check_key: String,
    pub failing: bool,
    pub active: bool,
}

type Row = (String, i64, String, Option<String>, Option<String>, String, String);

/// A random id: 128 bits from the standard library's randomly keyed hasher, a counter and
/// the clock.
fn change_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
    let half = |salt: u64| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(n);
        h.write_i128(nanos);
        h.write_u64(salt);
        h.finish()
    };
    format!("{:016x}{:016x}", half(1), half(2))
}

impl Store {
    /// Appends `changes` to the change log, in one transaction.
    pub async fn record_changes(&self, changes: &[Change]) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        with_pool!(self, p => {
            let mut tx = p.begin().await?;
            for chunk in changes.chunks(CHUNK) {
                let mut sql = String::from(
                    "INSERT INTO change_log (id, at, kind, account_id, region, subject, detail) VALUES ",
                );
                for i in 0..chunk.len() {
                    let b = i * 7;
                    if i > 0 {
                        sql.push_str(", ");
                    }
                    sql.push_str(&format!(
                        "(${}, ${}, ${}, ${}, ${}, ${}, ${})",
                        b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7
                    ));
                }
                // Only placeholders are generated; every value is bound.
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for c in chunk {
                    q = q
                        .bind(change_id())
                        .bind(to_millis(c.at))
                        .bind(c.kind.as_str())
                        .bind(c.account_id.clone())
                        .bind(c.region.clone())
                        .bind(c.subject.clone())
                        .bind(c.detail.clone());
                }
                q.execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok::<(), sqlx::Error>(())
        })?;
        Ok(())
    }

    /// When the last full assessment was (none yet: `None`) and how many changes the log holds
    /// after it.
    pub async fn changes_since_assessment(&self) -> Result<(Option<OffsetDateTime>, u64), StoreError> {
        let last: Option<(Option<i64>,)> = with_pool!(self, p => sqlx::query_as(
            "SELECT MAX(at) FROM change_log WHERE kind = $1",
        )
        .bind(ChangeKind::Assessment.as_str())
        .fetch_optional(p)
        .await)?;
        let last = last.and_then(|r| r.0);
        let (count,): (i64,) = with_pool!(self, p => sqlx::query_as(
            "SELECT COUNT(*) FROM change_log WHERE kind <> $1 AND at > $2",
        )
        .bind(ChangeKind::Assessment.as_str())
        .bind(last.unwrap_or(i64::MIN))
        .fetch_one(p)
        .await)?;
        Ok((last.map(from_millis).transpose()?, u64::try_from(count).unwrap_or(0)))
    }

    /// The log, newest first: at most `limit` changes, those at or after `since` when given, of
    /// the `kinds` given (all when empty).
    pub async fn list_changes(
        &self,
        since: Option<OffsetDateTime>,
        kinds: &[ChangeKind],
        limit: u32,
    ) -> Result<Vec<Change>, StoreError> {
        let kinds: Vec<&str> = if kinds.is_empty() {
            ChangeKind::ALL.iter().map(|k| k.as_str()).collect()
        } else {
            kinds.iter().map(|k| k.as_str()).collect()
        };
        let placeholders: Vec<String> = (0..kinds.len()).map(|i| format!("${}", i + 3)).collect();
        let sql = format!(
            "SELECT id, at, kind, account_id, region, subject, detail FROM change_log \
             WHERE at >= $1 AND kind IN ({}) ORDER BY at DESC, id DESC LIMIT $2",
            placeholders.join(", ")
        );
        let since = since.map(to_millis).unwrap_or(i64::MIN);
        let rows: Vec<Row> = with_pool!(self, p => {
            // Only placeholders are generated; every value is bound.
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(since).bind(i64::from(limit));
            for k in &kinds {
                q = q.bind(*k);
            }
            q.fetch_all(p).await
        })?;
        rows.into_iter()
            .map(|(id, at, kind, account_id, region, subject, detail)| {
                Ok(Change {
                    at: from_millis(at)?,
                    kind: ChangeKind::parse(&kind)
                        .ok_or_else(|| StoreError::Corrupt(format!("kind of change {id}: {kind:?}")))?,
                    account_id,
                    region,
                    subject,
                    detail,
                })
            })
            .collect()
    }

    /// Every stored finding of `account`, as the monitor compares them.
    pub async fn check_states(&self, account: &str) -> Result<Vec<CheckState>, StoreError> {
        let rows: Vec<(String, String, String, bool, bool)> = with_pool!(self, p => sqlx::query_as(
            "SELECT region, resource_id, check_key, failing, active FROM findings WHERE account_id = $1",
        )
        .bind(account)
        .fetch_all(p)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(region, resource_id, check_key, failing, active)| CheckState {
                region,
                resource_id,
                check_key,
                failing,
                active,
            })
            .collect())
    }
}
