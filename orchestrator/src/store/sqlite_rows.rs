//! Many rows into SQLite through one prepared statement, on the connection's own handle.
//!
//! sqlx runs each query on its connection's worker thread, with arguments it owns: every bound
//! string and blob is copied into a new allocation, and a multi-row `INSERT`'s thousands of
//! parameters are matched to their values by name. For the findings upsert, which is the
//! collection's one writer and what bounds it, that was 6 µs of CPU per finding before SQLite did
//! any work (docs/benchmarks.md). Here a single-row statement is prepared once per batch; for
//! each row its values are bound in place (SQLite reads them while it steps, without copying),
//! the statement is stepped, then reset.
//!
//! This is the one module of the orchestrator with `unsafe` code: calls into SQLite's C API.
//! sqlx hands the connection's `sqlite3*` out through [`LockedSqliteHandle`], which guarantees
//! that its worker thread makes no call on the connection while the lock is held; a
//! [`Statement`] borrows that lock, so it cannot outlive it. The `libsqlite3-sys` version is
//! pinned to the one sqlx links (the workspace's `Cargo.toml` says so beside both).
#![allow(unsafe_code)]

use std::ffi::{CStr, c_int};
use std::marker::PhantomData;
use std::ptr::{self, NonNull};

use libsqlite3_sys as ffi;
use sqlx::sqlite::LockedSqliteHandle;

/// A value bound to a statement's parameter. Text and blobs are borrowed, not copied.
#[derive(Debug, Clone, Copy)]
pub(super) enum Value<'a> {
    Null,
    Integer(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

impl<'a> From<Option<&'a str>> for Value<'a> {
    fn from(s: Option<&'a str>) -> Self {
        s.map_or(Value::Null, Value::Text)
    }
}

impl From<i64> for Value<'_> {
    fn from(n: i64) -> Self {
        Value::Integer(n)
    }
}

impl From<Option<i64>> for Value<'_> {
    fn from(n: Option<i64>) -> Self {
        n.map_or(Value::Null, Value::Integer)
    }
}

impl From<bool> for Value<'_> {
    fn from(b: bool) -> Self {
        Value::Integer(i64::from(b))
    }
}

impl From<Option<f64>> for Value<'_> {
    fn from(x: Option<f64>) -> Self {
        x.map_or(Value::Null, Value::Real)
    }
}

impl<'a> From<&'a [u8]> for Value<'a> {
    fn from(b: &'a [u8]) -> Self {
        Value::Blob(b)
    }
}

/// An error SQLite reported, with its (extended) result code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (SQLite result code {code})")]
pub struct SqliteError {
    pub code: i32,
    pub message: String,
}

impl SqliteError {
    fn usage(message: impl Into<String>) -> Self {
        SqliteError { code: ffi::SQLITE_MISUSE, message: message.into() }
    }
}

/// A prepared statement on a locked connection, finalized when dropped.
pub(super) struct Statement<'h> {
    db: NonNull<ffi::sqlite3>,
    stmt: NonNull<ffi::sqlite3_stmt>,
    /// How many parameters the statement has.
    parameters: usize,
    /// The statement lives no longer than the lock on its connection.
    _lock: PhantomData<&'h mut ()>,
}

impl<'h> Statement<'h> {
    /// Prepares `sql`, one SQL statement, on the connection `handle` locks.
    pub(super) fn prepare(handle: &'h mut LockedSqliteHandle<'_>, sql: &str) -> Result<Self, SqliteError> {
        let db = handle.as_raw_handle();
        let len = c_int::try_from(sql.len()).map_err(|_| SqliteError::usage("the statement is too long"))?;
        let mut stmt = ptr::null_mut();
        let mut tail = ptr::null();
        // SAFETY: `db` is an open connection that no other thread uses while the lock (borrowed
        // for 'h) is held; `sql` is valid for `len` bytes; SQLite writes the two out-pointers.
        let rc = unsafe { ffi::sqlite3_prepare_v2(db.as_ptr(), sql.as_ptr().cast(), len, &mut stmt, &mut tail) };
        if rc != ffi::SQLITE_OK {
            return Err(last_error(db, rc));
        }
        let stmt = NonNull::new(stmt).ok_or_else(|| SqliteError::usage("the statement is empty"))?;
        // SAFETY: `stmt` is a live statement of `db`.
        let parameters = unsafe { ffi::sqlite3_bind_parameter_count(stmt.as_ptr()) };
        // From here on, dropping `statement` finalizes `stmt`.
        let statement =
            Statement { db, stmt, parameters: usize::try_from(parameters).unwrap_or(0), _lock: PhantomData };
        // SAFETY: `tail` points into `sql` (at its end when it held one statement).
        let rest = usize::try_from(unsafe { tail.cast::<u8>().offset_from(sql.as_ptr()) }).unwrap_or(0);
        if !sql.get(rest..).unwrap_or("").trim().is_empty() {
            return Err(SqliteError::usage("more than one statement was given"));
        }
        Ok(statement)
    }

    /// Runs the statement once with `values` for its parameters `?1`, `?2`, ... and returns how
    /// many rows it changed (`sqlite3_changes`: an upsert whose update was skipped changed none).
    pub(super) fn run(&mut self, values: &[Value<'_>]) -> Result<u64, SqliteError> {
        let result = self.bind_and_step(values);
        // SAFETY: `stmt` is live. After the reset and the clearing of its bindings the statement
        // keeps no pointer into `values`, so they may go once this returns.
        unsafe {
            ffi::sqlite3_reset(self.stmt.as_ptr());
            ffi::sqlite3_clear_bindings(self.stmt.as_ptr());
        }
        result
    }

    fn bind_and_step(&mut self, values: &[Value<'_>]) -> Result<u64, SqliteError> {
        if values.len() != self.parameters {
            return Err(SqliteError::usage(format!(
                "the statement takes {} values, {} were given",
                self.parameters,
                values.len()
            )));
        }
        let stmt = self.stmt.as_ptr();
        for (i, value) in values.iter().enumerate() {
            let at = c_int::try_from(i + 1).map_err(|_| SqliteError::usage("too many values"))?;
            let too_long = || SqliteError::usage(format!("value {} is longer than SQLite takes", i + 1));
            // SAFETY: `stmt` is live and `at` is one of its parameters. Text and blobs are bound
            // with SQLITE_STATIC: SQLite reads them in place until the statement is reset and its
            // bindings cleared, which `run` does before `values` can go.
            let rc = unsafe {
                match *value {
                    Value::Null => ffi::sqlite3_bind_null(stmt, at),
                    Value::Integer(n) => ffi::sqlite3_bind_int64(stmt, at, n),
                    Value::Real(x) => ffi::sqlite3_bind_double(stmt, at, x),
                    Value::Text(s) => {
                        let len = c_int::try_from(s.len()).map_err(|_| too_long())?;
                        ffi::sqlite3_bind_text(stmt, at, s.as_ptr().cast(), len, ffi::SQLITE_STATIC())
                    }
                    Value::Blob(b) => {
                        let len = c_int::try_from(b.len()).map_err(|_| too_long())?;
                        ffi::sqlite3_bind_blob(stmt, at, b.as_ptr().cast(), len, ffi::SQLITE_STATIC())
                    }
                }
            };
            if rc != ffi::SQLITE_OK {
                return Err(last_error(self.db, rc));
            }
        }
        loop {
            // SAFETY: `stmt` is live with every parameter bound.
            match unsafe { ffi::sqlite3_step(stmt) } {
                ffi::SQLITE_DONE => break,
                ffi::SQLITE_ROW => continue,
                rc => return Err(last_error(self.db, rc)),
            }
        }
        // SAFETY: `db` is live; the count is of the step that just finished.
        let changed = unsafe { ffi::sqlite3_changes64(self.db.as_ptr()) };
        Ok(u64::try_from(changed).unwrap_or(0))
    }
}

impl Drop for Statement<'_> {
    fn drop(&mut self) {
        // SAFETY: `stmt` is live and is not used after this.
        unsafe {
            ffi::sqlite3_finalize(self.stmt.as_ptr());
        }
    }
}

/// The connection's last error, for the result code `rc` a call returned.
fn last_error(db: NonNull<ffi::sqlite3>, rc: c_int) -> SqliteError {
    // SAFETY: `db` is live; `sqlite3_errmsg` returns a NUL-terminated string that SQLite owns,
    // copied here before any other call on the connection.
    let message = unsafe {
        let m = ffi::sqlite3_errmsg(db.as_ptr());
        if m.is_null() { String::from("unknown error") } else { CStr::from_ptr(m).to_string_lossy().into_owned() }
    };
    // SAFETY: `db` is live.
    let code = unsafe { ffi::sqlite3_extended_errcode(db.as_ptr()) };
    SqliteError { code: if code == 0 { rc } else { code }, message }
}

#[cfg(test)]
mod tests {
    use sqlx::Connection as _;
    use sqlx::sqlite::SqliteConnection;

    use super::*;

    async fn connection() -> SqliteConnection {
        let mut conn = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        sqlx::query("CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER, x REAL, b BLOB, at INTEGER NOT NULL)")
            .execute(&mut conn)
            .await
            .unwrap();
        conn
    }

    const UPSERT: &str = "INSERT INTO t (k, n, x, b, at) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (k) DO UPDATE \
                          SET n = excluded.n, x = excluded.x, b = excluded.b, at = excluded.at \
                          WHERE t.at <= excluded.at";

    #[tokio::test]
    async fn rows_go_in_as_bound_and_changes_are_counted() {
        let mut conn = connection().await;
        {
            let mut handle = conn.lock_handle().await.unwrap();
            let mut st = Statement::prepare(&mut handle, UPSERT).unwrap();
            for (k, at) in [("a", 1), ("b", 1)] {
                // Values that live only for this iteration: nothing may point at them after `run`.
                let key = k.repeat(3);
                let blob = vec![0u8, 1, 2, 0xff];
                let values = [Value::Text(&key), Value::Integer(7), Value::Real(0.5), Value::Blob(&blob), at.into()];
                assert_eq!(st.run(&values).unwrap(), 1);
            }
            // An older version changes nothing; a newer one replaces.
            let old = [Value::Text("aaa"), Value::Null, Value::Null, Value::Null, 0.into()];
            assert_eq!(st.run(&old).unwrap(), 0);
            let new = [Value::Text("aaa"), Value::Integer(9), Value::Null, Value::Blob(&[]), 2.into()];
            assert_eq!(st.run(&new).unwrap(), 1);
        }
        type Row = (String, Option<i64>, Option<f64>, Option<Vec<u8>>, i64);
        let rows: Vec<Row> =
            sqlx::query_as("SELECT k, n, x, b, at FROM t ORDER BY k").fetch_all(&mut conn).await.unwrap();
        assert_eq!(
            rows,
            vec![
                ("aaa".into(), Some(9), None, Some(vec![]), 2),
                ("bbb".into(), Some(7), Some(0.5), Some(vec![0, 1, 2, 0xff]), 1),
            ]
        );
    }

    #[tokio::test]
    async fn errors_say_what_sqlite_said_and_the_statement_goes_on() {
        let mut conn = connection().await;
        let mut handle = conn.lock_handle().await.unwrap();
        let err = Statement::prepare(&mut handle, "INSERT INTO missing VALUES (?1)").err().unwrap();
        assert!(err.message.contains("no such table: missing"), "{err}");
        assert!(Statement::prepare(&mut handle, "SELECT 1; SELECT 2").err().unwrap().message.contains("more than one"));
        let mut st = Statement::prepare(&mut handle, UPSERT).unwrap();
        let err = st.run(&[Value::Text("k")]).unwrap_err();
        assert!(err.to_string().contains("takes 5 values, 1 were given"), "{err}");
        // A NOT NULL violation fails that row only.
        let err = st.run(&[Value::Text("k"), Value::Null, Value::Null, Value::Null, Value::Null]).unwrap_err();
        assert!(err.message.contains("NOT NULL"), "{err}");
        let ok = [Value::Text("k"), Value::Null, Value::Null, Value::Null, 1.into()];
        assert_eq!(st.run(&ok).unwrap(), 1);
    }
}
