//! The schema workflow: `pushSchema` into the running development server (and its absence in
//! production), migration status, checksum drift, a database ahead of the binary, and
//! `apexkit migrate new`.

use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::support::{
    ADMIN_EMAIL, Backend, Proc, TEST_SECRET, TestApp, TestDb, apexkit_cmd, code, data, on_both,
};

const NEW_MIGRATION: &str = "2099-01-01-000000_add_user_phone";

on_both!(
    push_schema_applies_a_new_migration_to_the_running_server,
    push_schema_is_absent_from_the_production_schema,
    tampered_checksum_stops_production_and_warns_in_development,
    a_database_ahead_of_the_binary_is_reported_not_crashed_on,
    an_out_of_order_migration_is_refused_in_production,
);

async fn push(app: &TestApp, admin: &str, dry_run: bool) -> serde_json::Value {
    let body = app
        .gql_with(
            Some(admin),
            "mutation($d: Boolean) { pushSchema(dryRun: $d) { dryRun source migrations sql } }",
            json!({ "d": dry_run }),
        )
        .await;
    data(&body, "pushSchema").clone()
}

async fn push_schema_applies_a_new_migration_to_the_running_server(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (app, admin) = TestApp::builder(backend)
        .config(|c| {
            c.database.migrations_dir = dir.path().to_path_buf();
        })
        .spawn_admin()
        .await;

    // No directory for this backend yet: the embedded set, all applied already.
    let report = push(&app, &admin, true).await;
    assert_eq!(report["source"], "embedded");
    assert_eq!(report["migrations"], json!([]));

    // A developer writes a new migration file; the server was built without it.
    let folder = dir
        .path()
        .join(if backend == Backend::Sqlite {
            "sqlite"
        } else {
            "postgres"
        })
        .join(NEW_MIGRATION);
    std::fs::create_dir_all(&folder).expect("mkdir");
    std::fs::write(
        folder.join("up.sql"),
        "ALTER TABLE \"user\" ADD COLUMN phone text;\n",
    )
    .expect("up");
    std::fs::write(
        folder.join("down.sql"),
        "ALTER TABLE \"user\" DROP COLUMN phone;\n",
    )
    .expect("down");
    let phone = "SELECT COUNT(phone) AS n FROM \"user\"";
    assert!(app.db.try_execute(phone).await.is_err(), "no column yet");

    let dry = push(&app, &admin, true).await;
    assert_eq!(dry["dryRun"], true);
    assert_eq!(dry["migrations"], json!([NEW_MIGRATION]));
    let sql = dry["sql"].as_str().expect("sql");
    assert!(
        sql.contains(NEW_MIGRATION) && sql.contains("ADD COLUMN phone"),
        "{sql}"
    );
    assert!(
        app.db.try_execute(phone).await.is_err(),
        "a dry run changes nothing"
    );

    let before = status(&app, &admin).await;
    let pending = before
        .iter()
        .find(|m| m["name"] == NEW_MIGRATION)
        .expect("listed");
    assert_eq!(pending["applied"], false);
    assert_eq!(pending["version"], "20990101000000");

    let done = push(&app, &admin, false).await;
    assert_eq!(done["dryRun"], false);
    assert_eq!(done["migrations"], json!([NEW_MIGRATION]));
    assert!(
        done["sql"]
            .as_str()
            .expect("sql")
            .contains("ADD COLUMN phone")
    );

    // The running server now has the column, and it is usable.
    app.db
        .execute("UPDATE \"user\" SET phone = '+1 555 0100'")
        .await;
    assert_eq!(
        app.db
            .count("SELECT COUNT(*) AS n FROM \"user\" WHERE phone = '+1 555 0100'")
            .await,
        1
    );
    let me = app
        .gql_with(Some(&admin), "{ me { email } }", json!({}))
        .await;
    assert_eq!(data(&me, "me")["email"], ADMIN_EMAIL, "still serving");
    let ready = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 200);

    let after = status(&app, &admin).await;
    let applied = after
        .iter()
        .find(|m| m["name"] == NEW_MIGRATION)
        .expect("listed");
    assert_eq!(applied["applied"], true);
    assert!(applied["appliedAt"].is_string());
    assert_eq!(applied["checksumMismatch"], false);
    assert!(
        after
            .iter()
            .all(|m| m["applied"] == true && m["known"] == true),
        "{after:?}"
    );
    let recorded = "SELECT COUNT(*) AS n FROM apexkit_migration WHERE version = '20990101000000'";
    assert_eq!(app.db.count(recorded).await, 1, "checksum recorded");

    assert_eq!(
        push(&app, &admin, false).await["migrations"],
        json!([]),
        "nothing left"
    );

    // A broken migration applies nothing (each runs in a transaction) and is audited as failed.
    let broken = folder.with_file_name("2099-01-02-000000_broken");
    std::fs::create_dir_all(&broken).expect("mkdir");
    std::fs::write(
        broken.join("up.sql"),
        "ALTER TABLE \"user\" ADD COLUMN nickname text;\nINSERT INTO no_such_table VALUES (1);\n",
    )
    .expect("up");
    let body = app
        .gql_with(
            Some(&admin),
            "mutation { pushSchema { migrations } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&body), "INTERNAL_SERVER_ERROR", "{body}");
    assert!(
        app.db
            .try_execute("SELECT COUNT(nickname) AS n FROM \"user\"")
            .await
            .is_err(),
        "rolled back"
    );
    let failed =
        "SELECT COUNT(*) AS n FROM audit_event WHERE type = 'schema_push' AND outcome = 'failure'";
    assert_eq!(app.db.count(failed).await, 1);
    let pending = status(&app, &admin).await;
    let broken = pending
        .iter()
        .find(|m| m["name"] == "2099-01-02-000000_broken")
        .expect("listed");
    assert_eq!(broken["applied"], false);
}

async fn push_schema_is_absent_from_the_production_schema(backend: Backend) {
    const PUSH: &str = "mutation { pushSchema(dryRun: true) { dryRun } }";
    let dev = TestApp::spawn(backend).await;
    assert_eq!(
        code(&dev.gql(PUSH, json!({})).await),
        "UNAUTHENTICATED",
        "exists in development"
    );

    let prod = TestApp::builder(backend).production().spawn().await;
    let body = prod.gql(PUSH, json!({})).await;
    assert_eq!(code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");
    let message = body["errors"][0]["message"].as_str().expect("message");
    assert!(
        message.contains("Unknown field \"pushSchema\""),
        "{message}"
    );
    // The rest of the admin surface is there (and guarded).
    let body = prod.gql("{ migrations { version } }", json!({})).await;
    assert_eq!(code(&body), "UNAUTHENTICATED");
}

async fn status(app: &TestApp, admin: &str) -> Vec<serde_json::Value> {
    let body = app
        .gql_with(
            Some(admin),
            "{ migrations { version name applied appliedAt known checksumMismatch } }",
            json!({}),
        )
        .await;
    data(&body, "migrations").as_array().expect("list").clone()
}

fn apexkit(db: &TestDb, env: &str) -> Command {
    apexkit_cmd(&[
        ("DATABASE_URL", &db.url),
        ("APEXKIT_ENV", env),
        ("APEXKIT_LISTEN", "127.0.0.1:0"),
        ("APEXKIT_SECRET", TEST_SECRET),
        ("APEXKIT_BASE_URL", "http://127.0.0.1:9"),
        ("RUST_LOG", "info"),
    ])
}

/// Runs the binary until it exits (bounded); returns (success, stderr).
fn run_to_exit(cmd: Command) -> (bool, String) {
    let (status, log) = Proc::spawn(cmd).wait_exit(Duration::from_secs(60));
    let status = status.expect("apexkit kept running; expected it to refuse to start");
    (status.success(), log)
}

/// Starts the binary, waits until it listens, returns its log up to then, and stops it.
fn log_until_listening(cmd: Command) -> String {
    let mut proc = Proc::spawn(cmd);
    proc.listening(Duration::from_secs(60));
    proc.log.join("\n")
}

async fn tampered_checksum_stops_production_and_warns_in_development(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut init = apexkit(&db, "production");
    init.arg("--migrate-only");
    let (ok, log) = tokio::task::spawn_blocking(move || run_to_exit(init))
        .await
        .expect("join");
    assert!(ok, "first migration run: {log}");
    let recorded = "SELECT COUNT(*) AS n FROM apexkit_migration";
    assert!(
        db.count(recorded).await >= 3,
        "every applied migration has a checksum"
    );

    // Someone edits an applied migration (here: its recorded checksum no longer matches).
    db.execute(
        "UPDATE apexkit_migration SET checksum = 'tampered' WHERE version = '20261125000001'",
    )
    .await;

    let prod = apexkit(&db, "production");
    let (ok, log) = tokio::task::spawn_blocking(move || run_to_exit(prod))
        .await
        .expect("join");
    assert!(!ok, "production must refuse to start");
    assert!(
        log.contains("2026-11-25-000001_create_auth_tables"),
        "names the migration: {log}"
    );
    assert!(log.contains("refusing to start"), "{log}");

    let dev = apexkit(&db, "development");
    let log = tokio::task::spawn_blocking(move || log_until_listening(dev))
        .await
        .expect("join");
    assert!(
        log.contains("changed since they ran")
            && log.contains("2026-11-25-000001_create_auth_tables"),
        "development warns, naming the migration: {log}"
    );

    // `migrate status` flags it too (exit 1).
    let mut status = apexkit(&db, "development");
    status.args(["migrate", "status"]);
    let out = tokio::task::spawn_blocking(move || status.output())
        .await
        .expect("join")
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with("CHANGED") && l.contains("2026-11-25-000001_create_auth_tables")),
        "{stdout}"
    );
}

async fn a_database_ahead_of_the_binary_is_reported_not_crashed_on(backend: Backend) {
    // One secret for every instance: production refuses keys sealed with another.
    let (app, admin) = TestApp::builder(backend).secret().spawn_admin().await;

    let mut status = apexkit(&app.db, "production");
    status.args(["migrate", "status"]);
    let out = tokio::task::spawn_blocking(move || status.output())
        .await
        .expect("join")
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(0), "all applied: {stdout}");
    assert!(
        stdout.contains("applied") && stdout.contains("2026-11-25-000005_audit_and_checksums"),
        "{stdout}"
    );

    // A newer release ran a migration, then was rolled back to this binary.
    app.db
        .execute("INSERT INTO __diesel_schema_migrations (version, run_on) VALUES ('20991231000000', CURRENT_TIMESTAMP)")
        .await;

    // Production boots anyway (this binary's migrations are all applied) and says so.
    app.replica()
        .production()
        .boot()
        .await
        .expect("a rollback deploy still boots");
    let prod = apexkit(&app.db, "production");
    let log = tokio::task::spawn_blocking(move || log_until_listening(prod))
        .await
        .expect("join");
    assert!(
        log.contains("does not know") && log.contains("20991231000000"),
        "{log}"
    );

    let body = app
        .gql_with(
            Some(&admin),
            "{ migrations { version name applied known } }",
            json!({}),
        )
        .await;
    let list = data(&body, "migrations").as_array().expect("list");
    let ahead = list
        .iter()
        .find(|m| m["version"] == "20991231000000")
        .expect("listed");
    assert_eq!(ahead["applied"], true);
    assert_eq!(ahead["known"], false);
    let ready = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(
        ready.status(),
        200,
        "readiness: this binary's migrations are all applied"
    );

    let mut status = apexkit(&app.db, "production");
    status.args(["migrate", "status"]);
    let out = tokio::task::spawn_blocking(move || status.output())
        .await
        .expect("join")
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("UNKNOWN") && l.contains("20991231000000")),
        "{stdout}"
    );
    assert!(stdout.contains("the database is ahead"), "{stdout}");
}

async fn an_out_of_order_migration_is_refused_in_production(backend: Backend) {
    let db = TestDb::new(backend).await;
    apexkit::db::migrations::run_pending(&db.database_url())
        .await
        .expect("migrate");
    // As if 000002 came from a branch merged after 000005 had been deployed.
    let row = "__diesel_schema_migrations WHERE version = '20261125000002'";
    db.execute(&format!("DELETE FROM {row}")).await;

    let prod = apexkit(&db, "production");
    let (ok, log) = tokio::task::spawn_blocking(move || run_to_exit(prod))
        .await
        .expect("join");
    assert!(!ok, "production refuses: {log}");
    assert!(
        log.contains("out of order") && log.contains("2026-11-25-000002_user_roles_and_bans"),
        "{log}"
    );
    assert_eq!(
        db.count(&format!("SELECT COUNT(*) AS n FROM {row}")).await,
        0,
        "nothing ran"
    );
}

#[test]
fn migrate_new_creates_a_paired_migration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir_env = dir.path().display().to_string();
    let out = apexkit_cmd(&[("APEXKIT_MIGRATIONS_DIR", &dir_env)])
        .args(["migrate", "new", "add_user_phone"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names = |backend: &str| -> Vec<String> {
        std::fs::read_dir(dir.path().join(backend))
            .expect("backend dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect()
    };
    let (pg, lite) = (names("postgres"), names("sqlite"));
    assert_eq!(pg.len(), 1);
    assert_eq!(pg, lite, "same version name on both databases");
    let name = &pg[0];
    assert!(name.ends_with("_add_user_phone"), "{name}");
    let version = name.split('_').next().expect("version");
    assert_eq!(
        version.len(),
        "2026-11-25-000005".len(),
        "diesel's version format: {version}"
    );
    for backend in ["postgres", "sqlite"] {
        for file in ["up.sql", "down.sql"] {
            assert!(dir.path().join(backend).join(name).join(file).is_file());
        }
    }

    let bad = apexkit_cmd(&[("APEXKIT_MIGRATIONS_DIR", &dir_env)])
        .args(["migrate", "new", "Bad Name"])
        .output()
        .expect("run");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("snake_case"));
}
