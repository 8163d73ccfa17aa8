use orgsec::binding::Mode;
use orgsec::store::{Backend, Store, StoreError};
use time::OffsetDateTime;

use crate::support::{TestStore, spec, stores};

fn t(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_795_305_600 + secs).expect("time")
}

#[tokio::test]
async fn bindings_are_created_read_updated_listed_and_deleted() {
    for ts in stores().await {
        let TestStore { store, label, .. } = &ts;
        let label = *label;
        let created = store.insert_binding(&spec("a"), "platform", t(0)).await.expect(label);
        assert_eq!((created.revision, created.created_by.as_str()), (1, "platform"), "{label}");
        assert_eq!(created.create_time, t(0));
        assert!(matches!(store.insert_binding(&spec("a"), "x", t(1)).await, Err(StoreError::AlreadyExists { .. })));
        assert_eq!(store.get_binding("a").await.expect(label), Some(created.clone()), "{label}");
        assert_eq!(store.get_binding("zz").await.expect(label), None);

        let mut changed = spec("a");
        changed.mode = Mode::Auto;
        changed.parameters.insert("ports".into(), "22".into());
        changed.scope.tags.insert("team".into(), "web".into());
        let updated = store.update_binding(&changed, "web", t(5), Some(1)).await.expect(label);
        assert_eq!((updated.revision, updated.spec.clone()), (2, changed.clone()), "{label}");
        assert_eq!((updated.created_by.as_str(), updated.updated_by.as_str()), ("platform", "web"));
        assert_eq!((updated.create_time, updated.update_time), (t(0), t(5)));
        assert!(matches!(store.update_binding(&changed, "x", t(6), Some(1)).await, Err(StoreError::Conflict { .. })));
        assert!(matches!(store.update_binding(&spec("nope"), "x", t(6), None).await, Err(StoreError::NotFound { .. })));

        let put = store.put_binding(&spec("a"), "cli", t(7)).await.expect(label);
        assert_eq!((put.revision, put.spec.mode), (3, Mode::Approve));
        let fresh = store.put_binding(&spec("b"), "cli", t(7)).await.expect(label);
        assert_eq!(fresh.revision, 1);

        for name in ["e", "c", "d"] {
            store.insert_binding(&spec(name), "x", t(8)).await.expect(label);
        }
        let names = |v: Vec<orgsec::binding::Binding>| v.into_iter().map(|b| b.spec.name).collect::<Vec<_>>();
        assert_eq!(names(store.list_bindings(None, 10).await.expect(label)), ["a", "b", "c", "d", "e"]);
        assert_eq!(names(store.list_bindings(Some("b"), 2).await.expect(label)), ["c", "d"]);

        assert!(matches!(store.delete_binding("a", Some(1)).await, Err(StoreError::Conflict { .. })));
        assert!(store.delete_binding("a", Some(3)).await.expect(label));
        assert!(!store.delete_binding("a", None).await.expect(label));
        assert!(store.delete_binding("b", None).await.expect(label));
        assert_eq!(names(store.list_bindings(None, 10).await.expect(label)), ["c", "d", "e"]);
        store.ping().await.expect(label);
    }
}

#[tokio::test]
async fn reopening_keeps_the_data_and_migrations_run_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("o.db").display());
    let store = Store::open(&url).await.expect("open");
    assert_eq!(store.backend(), Backend::Sqlite);
    store.insert_binding(&spec("kept"), "x", t(0)).await.expect("insert");
    store.close().await;
    let again = Store::open(&url).await.expect("reopen");
    assert!(again.get_binding("kept").await.expect("get").is_some());
    // WAL: the journal sits beside the database.
    assert!(dir.path().join("o.db-wal").exists());
}

#[tokio::test]
async fn an_unreachable_database_says_which() {
    let e = Store::open("sqlite:///nonexistent-dir/x/orgsec.db").await.expect_err("no such folder");
    assert!(e.to_string().starts_with("cannot open the database sqlite:///nonexistent-dir/x/orgsec.db"), "{e}");
    let e = Store::open("postgres://orgsec:pw@127.0.0.1:9/orgsec").await.expect_err("nothing on port 9");
    let text = e.to_string();
    assert!(text.contains("postgres://orgsec:***@127.0.0.1:9/orgsec") && !text.contains(":pw@"), "{text}");
}

#[tokio::test]
async fn concurrent_writers_on_sqlite_do_not_fail() {
    let ts = crate::support::sqlite().await;
    let store = &ts.store;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move { s.put_binding(&spec(&format!("b{i:02}")), "x", t(0)).await }));
    }
    for task in tasks {
        task.await.expect("join").expect("put");
    }
    assert_eq!(store.list_bindings(None, 100).await.expect("list").len(), 16);
}
