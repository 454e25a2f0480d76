//! Migrations: up → down → up on both databases.

use apexkit::db::migrations;

use crate::support::{Backend, TestDb, on_both};

on_both!(every_migration_goes_up_down_up);

async fn every_migration_goes_up_down_up(backend: Backend) {
    let db = TestDb::new(backend).await;
    let url = db.database_url();
    let expected = migrations::embedded_versions(&url);
    assert!(!expected.is_empty());

    let applied = migrations::run_pending(&url).await.expect("up");
    assert_eq!(applied, expected);
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM \"user\"").await, 0);
    assert!(
        migrations::run_pending(&url)
            .await
            .expect("again")
            .is_empty(),
        "second run is a no-op"
    );

    let mut reverted = migrations::revert_all(&url).await.expect("down");
    reverted.reverse();
    assert_eq!(reverted, expected, "every migration has a working down");
    let tables = match backend {
        Backend::Sqlite => {
            "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name IN ('user', 'session', 'account', 'verification', 'mail_outbox')"
        }
        Backend::Postgres => {
            "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = 'public' AND table_name IN ('user', 'session', 'account', 'verification', 'mail_outbox')"
        }
    };
    assert_eq!(db.count(tables).await, 0, "down removes every table");

    assert_eq!(
        migrations::run_pending(&url).await.expect("up again"),
        expected
    );
    assert_eq!(db.count(tables).await, 5);
}
