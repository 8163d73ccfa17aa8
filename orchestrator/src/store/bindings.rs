//! The `bindings` table: one row per remediation binding, its settings as a JSON document.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Store, StoreError, from_millis, to_millis, with_pool};
use crate::binding::{Binding, BindingSpec, Mode, Scope};

const WHAT: &str = "binding";

/// The columns every query returns, in this order.
type Row = (String, String, String, String, i64, String, String, i64, i64);

/// The settings column.
#[derive(Serialize, Deserialize)]
struct Settings {
    #[serde(default)]
    controls: Vec<String>,
    #[serde(default)]
    finding_types: Vec<String>,
    #[serde(default)]
    scope: Scope,
    #[serde(default)]
    notify: Vec<String>,
    #[serde(default)]
    parameters: BTreeMap<String, String>,
}

fn settings_json(spec: &BindingSpec) -> Result<String, StoreError> {
    serde_json::to_string(&Settings {
        controls: spec.controls.clone(),
        finding_types: spec.finding_types.clone(),
        scope: spec.scope.clone(),
        notify: spec.notify.clone(),
        parameters: spec.parameters.clone(),
    })
    .map_err(|e| StoreError::Corrupt(format!("binding {}: {e}", spec.name)))
}

fn from_row(row: Row) -> Result<Binding, StoreError> {
    let (name, playbook, mode, settings, revision, created_by, updated_by, created_at, updated_at) = row;
    let s: Settings =
        serde_json::from_str(&settings).map_err(|e| StoreError::Corrupt(format!("settings of binding {name}: {e}")))?;
    let mode = Mode::parse(&mode).ok_or_else(|| StoreError::Corrupt(format!("mode of binding {name}: {mode:?}")))?;
    Ok(Binding {
        spec: BindingSpec {
            name,
            controls: s.controls,
            finding_types: s.finding_types,
            playbook,
            mode,
            scope: s.scope,
            notify: s.notify,
            parameters: s.parameters,
        },
        revision,
        created_by,
        updated_by,
        create_time: from_millis(created_at)?,
        update_time: from_millis(updated_at)?,
    })
}

impl Store {
    /// Stores a new binding at revision 1. [`StoreError::AlreadyExists`] when the name is taken.
    pub async fn insert_binding(
        &self,
        spec: &BindingSpec,
        by: &str,
        now: OffsetDateTime,
    ) -> Result<Binding, StoreError> {
        let settings = settings_json(spec)?;
        let row: Option<Row> = with_pool!(self, p => sqlx::query_as(
            "INSERT INTO bindings (name, playbook, mode, settings, revision, created_by, updated_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 1, $5, $5, $6, $6) \
             ON CONFLICT (name) DO NOTHING \
             RETURNING name, playbook, mode, settings, revision, created_by, updated_by, created_at, updated_at",
        )
        .bind(&spec.name)
        .bind(&spec.playbook)
        .bind(spec.mode.as_str())
        .bind(&settings)
        .bind(by)
        .bind(to_millis(now))
        .fetch_optional(p)
        .await)?;
        match row {
            Some(row) => from_row(row),
            None => Err(StoreError::AlreadyExists { what: WHAT, key: spec.name.clone() }),
        }
    }

    /// The binding named `name`, if there is one.
    pub async fn get_binding(&self, name: &str) -> Result<Option<Binding>, StoreError> {
        let row: Option<Row> = with_pool!(self, p => sqlx::query_as(
            "SELECT name, playbook, mode, settings, revision, created_by, updated_by, created_at, updated_at \
             FROM bindings WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(p)
        .await)?;
        row.map(from_row).transpose()
    }

    /// Replaces a binding's settings and counts the change. With `expected_revision`, only if
    /// the binding is still at that revision ([`StoreError::Conflict`] otherwise).
    /// [`StoreError::NotFound`] when there is none by that name.
    pub async fn update_binding(
        &self,
        spec: &BindingSpec,
        by: &str,
        now: OffsetDateTime,
        expected_revision: Option<i64>,
    ) -> Result<Binding, StoreError> {
        let settings = settings_json(spec)?;
        let row: Option<Row> = with_pool!(self, p => sqlx::query_as(
            "UPDATE bindings SET playbook = $2, mode = $3, settings = $4, revision = revision + 1, \
             updated_by = $5, updated_at = $6 \
             WHERE name = $1 AND ($7 IS NULL OR revision = $7) \
             RETURNING name, playbook, mode, settings, revision, created_by, updated_by, created_at, updated_at",
        )
        .bind(&spec.name)
        .bind(&spec.playbook)
        .bind(spec.mode.as_str())
        .bind(&settings)
        .bind(by)
        .bind(to_millis(now))
        .bind(expected_revision)
        .fetch_optional(p)
        .await)?;
        match row {
            Some(row) => from_row(row),
            None => Err(self.missing_or_changed(&spec.name).await?),
        }
    }

    /// Creates the binding or replaces its settings: what `orgsec bindings put` does.
    pub async fn put_binding(&self, spec: &BindingSpec, by: &str, now: OffsetDateTime) -> Result<Binding, StoreError> {
        let settings = settings_json(spec)?;
        let row: Row = with_pool!(self, p => sqlx::query_as(
            "INSERT INTO bindings (name, playbook, mode, settings, revision, created_by, updated_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 1, $5, $5, $6, $6) \
             ON CONFLICT (name) DO UPDATE SET playbook = excluded.playbook, mode = excluded.mode, \
             settings = excluded.settings, revision = bindings.revision + 1, \
             updated_by = excluded.updated_by, updated_at = excluded.updated_at \
             RETURNING name, playbook, mode, settings, revision, created_by, updated_by, created_at, updated_at",
        )
        .bind(&spec.name)
        .bind(&spec.playbook)
        .bind(spec.mode.as_str())
        .bind(&settings)
        .bind(by)
        .bind(to_millis(now))
        .fetch_one(p)
        .await)?;
        from_row(row)
    }

    /// Deletes the binding; whether there was one. With `expected_revision`, only if it is
    /// still at that revision ([`StoreError::Conflict`] otherwise).
    pub async fn delete_binding(&self, name: &str, expected_revision: Option<i64>) -> Result<bool, StoreError> {
        let deleted = with_pool!(self, p => sqlx::query(
            "DELETE FROM bindings WHERE name = $1 AND ($2 IS NULL OR revision = $2)",
        )
        .bind(name)
        .bind(expected_revision)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        if deleted > 0 {
            return Ok(true);
        }
        match (expected_revision, self.get_binding(name).await?) {
            (Some(_), Some(_)) => Err(StoreError::Conflict { what: WHAT, key: name.to_string() }),
            _ => Ok(false),
        }
    }

    /// At most `limit` bindings in name order, starting after `after`.
    pub async fn list_bindings(&self, after: Option<&str>, limit: u32) -> Result<Vec<Binding>, StoreError> {
        let rows: Vec<Row> = with_pool!(self, p => sqlx::query_as(
            "SELECT name, playbook, mode, settings, revision, created_by, updated_by, created_at, updated_at \
             FROM bindings WHERE ($1 IS NULL OR name > $1) ORDER BY name LIMIT $2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(p)
        .await)?;
        rows.into_iter().map(from_row).collect()
    }

    async fn missing_or_changed(&self, name: &str) -> Result<StoreError, StoreError> {
        Ok(match self.get_binding(name).await? {
            Some(_) => StoreError::Conflict { what: WHAT, key: name.to_string() },
            None => StoreError::NotFound { what: WHAT, key: name.to_string() },
        })
    }
}
