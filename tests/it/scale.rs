//! Running at scale (issue 19): behind PgBouncer in transaction mode (prepared statements off,
//! migrations on a direct URL), with the boot refusing a pooled URL without those settings.
//! PgBouncer is the tests' own ([`PgBouncer`], Debian's 1.18: no prepared statements in
//! transaction mode).

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;

use crate::support::{
    ADMIN_EMAIL, Backend, PASSWORD, PgBouncer, PoolMode, Proc, TEST_SECRET, TestApp, TestDb, code,
    data, signed_in_token,
};

/// The app's config through `bouncer`: pooled DATABASE_URL, prepared statements off, the
/// migrations on the direct URL.
fn behind(bouncer: &PgBouncer, db: &TestDb) -> impl FnOnce(&mut apexkit::Config) + Send + 'static {
    let pooled = bouncer.url(&db.url);
    let direct = db.url.clone();
    move |c| {
        c.database.url = pooled;
        c.database.migration_url = Some(direct);
        c.database.prepared_statements = false;
    }
}

/// A representative subset of the PostgreSQL scenarios, through transaction pooling with a
/// server pool smaller than the app's (so its connections share server connections): sign-up,
/// sign-in, the session check (many at once), revocation, admin operations, password change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_flows_through_pgbouncer_in_transaction_mode() {
    let bouncer = PgBouncer::start(PoolMode::Transaction);
    let db = TestDb::new(Backend::Postgres).await;
    let (app, admin) = TestApp::on(&db)
        .config(behind(&bouncer, &db))
        .spawn_admin()
        .await;

    let token = app.sign_up("ada@example.com").await;
    let signed_in = app.sign_in("ada@example.com", PASSWORD).await;
    let second = signed_in_token(&signed_in);
    let user_id = data(&signed_in, "signInEmail")["user"]["id"]
        .as_str()
        .expect("user id")
        .to_owned();

    // Many session checks at once: each query its own transaction on whichever server.
    let checks = (0..40).map(|i| {
        let t = if i % 2 == 0 { &token } else { &second };
        app.session(t)
    });
    for body in futures_util::future::join_all(checks).await {
        assert_eq!(
            data(&body, "session")["user"]["email"],
            "ada@example.com",
            "{body}"
        );
    }

    // Revoke one session (by id) from the other.
    let listed = app
        .gql_with(Some(&token), "{ sessions { id current } }", json!({}))
        .await;
    let other = data(&listed, "sessions")
        .as_array()
        .expect("sessions")
        .iter()
        .find(|s| s["current"] == false)
        .expect("the other session")["id"]
        .clone();
    let revoked = app
        .gql_with(
            Some(&token),
            "mutation($id: ID!) { revokeSession(id: $id) }",
            json!({ "id": other }),
        )
        .await;
    assert_eq!(data(&revoked, "revokeSession"), true, "{revoked}");
    assert!(!app.alive(&second).await);
    assert!(app.alive(&token).await);

    // Admin operations: list, ban (revokes sessions), unban.
    let users = app
        .gql_with(Some(&admin), "{ adminUsers { totalCount } }", json!({}))
        .await;
    assert_eq!(data(&users, "adminUsers")["totalCount"], 2, "{users}");
    let banned = app
        .gql_with(
            Some(&admin),
            "mutation($u: ID!) { adminBanUser(input: { userId: $u, reason: \"test\" }) { banned } }",
            json!({ "u": user_id }),
        )
        .await;
    assert_eq!(data(&banned, "adminBanUser")["banned"], true, "{banned}");
    assert!(!app.alive(&token).await);
    let refused = app.sign_in("ada@example.com", PASSWORD).await;
    assert_eq!(code(&refused), "USER_BANNED", "{refused}");
    let unbanned = app
        .gql_with(
            Some(&admin),
            "mutation($u: ID!) { adminUnbanUser(userId: $u) { banned } }",
            json!({ "u": user_id }),
        )
        .await;
    assert_eq!(
        data(&unbanned, "adminUnbanUser")["banned"],
        false,
        "{unbanned}"
    );

    // Password change (a transaction of several statements) and sign-in with the new one.
    let token = signed_in_token(&app.sign_in("ada@example.com", PASSWORD).await);
    let changed = app
        .gql_with(
            Some(&token),
            "mutation($i: ChangePasswordInput!) { changePassword(input: $i) { token } }",
            json!({ "i": { "currentPassword": PASSWORD, "newPassword": "another horse battery staple", "revokeOtherSessions": true } }),
        )
        .await;
    assert!(changed["errors"].is_null(), "{changed}");
    let again = app
        .sign_in("ada@example.com", "another horse battery staple")
        .await;
    assert!(again["errors"].is_null(), "{again}");
    let _ = ADMIN_EMAIL;
    drop(app);
}

/// A pooled URL without the settings is refused at boot, naming what to set; with only one of
/// them, the message names the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_url_without_the_settings_fails_at_boot() {
    let bouncer = PgBouncer::start(PoolMode::Transaction);
    let db = TestDb::new(Backend::Postgres).await;
    let pooled = bouncer.url(&db.url);

    let url = pooled.clone();
    let err = TestApp::on(&db)
        .config(move |c| c.database.url = url)
        .boot()
        .await
        .err()
        .expect("a pooled URL with defaults must not boot");
    let message = format!("{err:#}");
    assert!(message.contains("transaction-pooling"), "{message}");
    assert!(
        message.contains("APEXKIT_DB_PREPARED_STATEMENTS=false"),
        "{message}"
    );
    assert!(
        message.contains("APEXKIT_MIGRATION_DATABASE_URL"),
        "{message}"
    );
    // Refused before migrating: nothing ran through the pooler.
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_name = '__diesel_schema_migrations'")
            .await,
        0
    );

    let url = pooled.clone();
    let err = TestApp::on(&db)
        .config(move |c| {
            c.database.url = url;
            c.database.prepared_statements = false;
        })
        .boot()
        .await
        .err()
        .expect("no migration URL must not boot");
    let message = format!("{err:#}");
    assert!(
        !message.contains("APEXKIT_DB_PREPARED_STATEMENTS"),
        "{message}"
    );
    assert!(
        message.contains("APEXKIT_MIGRATION_DATABASE_URL"),
        "{message}"
    );

    // The direct URL with the defaults is not mistaken for a pooled one.
    let app = TestApp::on(&db).spawn().await;
    app.sign_up("ada@example.com").await;
}

/// Session pooling keeps a client on one server connection: the defaults work through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_mode_works_with_defaults() {
    let bouncer = PgBouncer::start(PoolMode::Session);
    let db = TestDb::new(Backend::Postgres).await;
    let pooled = bouncer.url(&db.url);
    let app = TestApp::on(&db)
        .config(move |c| c.database.url = pooled)
        .spawn()
        .await;
    let token = app.sign_up("ada@example.com").await;
    assert!(app.alive(&token).await);
    let body = app.sign_in("ada@example.com", PASSWORD).await;
    assert!(body["errors"].is_null(), "{body}");
}

/// Five replicas (the real binary) booting together on an empty database through PgBouncer,
/// migrations on the direct URL: all come up, and each migration is applied exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_replicas_boot_together_through_pgbouncer() {
    let bouncer = PgBouncer::start(PoolMode::Transaction);
    let db = TestDb::new(Backend::Postgres).await;
    let pooled = bouncer.url(&db.url);
    let envs = [
        ("DATABASE_URL", pooled.as_str()),
        ("APEXKIT_MIGRATION_DATABASE_URL", db.url.as_str()),
        ("APEXKIT_DB_PREPARED_STATEMENTS", "false"),
        ("APEXKIT_LISTEN", "127.0.0.1:0"),
        ("APEXKIT_SECRET", TEST_SECRET),
        ("RUST_LOG", "info"),
    ];
    let mut replicas: Vec<Proc> = (0..5).map(|_| Proc::start(&envs)).collect();
    let mut applied: HashMap<String, usize> = HashMap::new();
    let mut addrs = Vec::new();
    for replica in &mut replicas {
        let addr = replica.listening(Duration::from_secs(60));
        addrs.push(addr);
        for line in replica
            .log
            .iter()
            .filter(|l| l.contains("migration applied"))
        {
            let line = without_ansi(line);
            let version = line
                .split("version=")
                .nth(1)
                .and_then(|v| v.split_whitespace().next())
                .expect("version in the log line")
                .to_owned();
            *applied.entry(version).or_default() += 1;
        }
    }
    let embedded = apexkit::db::migrations::embedded_versions(&db.database_url());
    assert_eq!(applied.len(), embedded.len(), "{applied:?}");
    assert!(applied.values().all(|n| *n == 1), "{applied:?}");
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM __diesel_schema_migrations")
            .await,
        i64::try_from(embedded.len()).expect("count")
    );
    // Each replica serves through the pooler; a session made on one is seen by the others.
    let first = crate::support::Api::at(format!("http://{}", addrs[0]));
    let token = first.sign_up("ada@example.com").await;
    for addr in &addrs {
        let api = crate::support::Api::at(format!("http://{addr}"));
        assert!(api.alive(&token).await, "replica at {addr}");
    }
}

/// `line` without terminal colour sequences (`ESC [ … m`).
fn without_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
