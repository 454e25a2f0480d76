//! Adopting a Better Auth database (`APEXKIT_ADOPT=better-auth`), made by Better Auth itself:
//! `tests/better-auth/seed.mjs` (better-auth 1.7.25 from npm) creates each database through its
//! own API — PostgreSQL with the Apexkit app's Drizzle schema (snake_case, pushed with
//! drizzle-kit), PostgreSQL and SQLite with Better Auth's own schema (camelCase) — and the real
//! binary and the app then adopt and serve it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use apexkit::config::{AdoptFrom, Secret};
use serde_json::{Value, json};

use crate::support::{Backend, Proc, TestApp, TestDb, apexkit_cmd, code, on_both};

const TABLES: [&str; 4] = ["user", "session", "account", "verification"];

#[derive(Clone, Copy)]
enum Kind {
    PgSnake,
    PgCamel,
    SqliteCamel,
}

impl Kind {
    fn arg(self) -> &'static str {
        match self {
            Self::PgSnake => "pg-snake",
            Self::PgCamel => "pg-camel",
            Self::SqliteCamel => "sqlite-camel",
        }
    }

    /// The two-factor plugin's table, in this naming.
    fn plugin_table(self) -> &'static str {
        match self {
            Self::PgSnake => "two_factor",
            _ => "twoFactor",
        }
    }

    /// The same table after adoption: a snake_case `two_factor` is set aside as
    /// `better_auth_two_factor`, since Apexkit's own two-factor table has that name.
    fn plugin_table_adopted(self) -> &'static str {
        match self {
            Self::PgSnake => "better_auth_two_factor",
            _ => "twoFactor",
        }
    }

    fn backend(self) -> Backend {
        match self {
            Self::SqliteCamel => Backend::Sqlite,
            _ => Backend::Postgres,
        }
    }
}

/// A fresh database that Better Auth made, and what the fixture printed about it.
async fn seeded(kind: Kind) -> (TestDb, Value) {
    crate::support::npm_ci("tests/better-auth", "better-auth");
    let db = TestDb::new(kind.backend()).await;
    let target = db
        .url
        .strip_prefix("sqlite://")
        .unwrap_or(&db.url)
        .to_owned();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/better-auth/seed.mjs"
            ))
            .args([kind.arg(), target.as_str()])
            .stdin(Stdio::null())
            .output()
            .expect("node runs tests/better-auth/seed.mjs")
    })
    .await
    .expect("seed task");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "seed.mjs {} failed: {}{}",
        kind.arg(),
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    // drizzle-kit prints progress first: the JSON is the last line.
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .expect("the fixture's JSON line");
    (db, serde_json::from_str(line).expect("fixture JSON"))
}

async fn counts(db: &TestDb) -> Vec<i64> {
    let mut n = Vec::new();
    for table in TABLES {
        n.push(
            db.count(&format!("SELECT COUNT(*) AS n FROM \"{table}\""))
                .await,
        );
    }
    n
}

/// The binary on `db` with `envs`, run to its end: (success, stdout, stderr).
fn run_bin(db: &TestDb, args: &[&str], envs: &[(&str, &str)]) -> (bool, String, String) {
    let mut all = vec![("DATABASE_URL", db.url.as_str())];
    all.extend_from_slice(envs);
    let out = apexkit_cmd(&all).args(args).output().expect("run apexkit");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const ADOPT: (&str, &str) = ("APEXKIT_ADOPT", "better-auth");

async fn account_hash(db: &TestDb, user_id: &str) -> String {
    db.strings(&format!(
        "SELECT password AS s FROM account WHERE user_id = '{user_id}' AND provider_id = 'credential'"
    ))
    .await
    .pop()
    .expect("credential account")
}

async fn adopts(kind: Kind) {
    let (db, seed) = seeded(kind).await;
    let users = seed["users"].as_array().expect("users").clone();
    let before = counts(&db).await;
    assert_eq!(before[0], 4, "{before:?}");
    assert!(before[1] >= 4 && before[3] >= 1, "{before:?}");
    let plugin = format!("SELECT COUNT(*) AS n FROM \"{}\"", kind.plugin_table());
    assert_eq!(db.count(&plugin).await, 1, "the two-factor plugin's row");

    // Without the setting: refused, naming it, and nothing changes.
    let (ok, _, err) = run_bin(&db, &["--migrate-only"], &[]);
    assert!(!ok && err.contains("APEXKIT_ADOPT=better-auth"), "{err}");
    let refused = TestApp::on(&db).boot().await.err().expect("boot refuses");
    assert!(format!("{refused:#}").contains("APEXKIT_ADOPT=better-auth"));
    assert_eq!(counts(&db).await, before);
    assert_eq!(
        db.count("SELECT COUNT(token) AS n FROM session").await,
        before[1],
        "the plaintext tokens are still there"
    );

    // A dry run prints the SQL and runs none of it.
    let (ok, sql, err) = run_bin(&db, &["migrate", "adopt", "--dry-run"], &[]);
    assert!(ok, "{err}");
    for expected in [
        "-- step record_baseline (would run)",
        "ALTER TABLE session ADD COLUMN token_hash text;",
        "base64url(sha256(token))",
        "-- step record_migrations (would run)",
        "INSERT INTO __diesel_schema_migrations (version) VALUES ('20261125000002')",
    ] {
        assert!(sql.contains(expected), "{expected} in\n{sql}");
    }
    if matches!(kind, Kind::PgCamel | Kind::SqliteCamel) {
        assert!(
            sql.contains("RENAME COLUMN \"emailVerified\" TO email_verified"),
            "{sql}"
        );
    }
    assert_eq!(counts(&db).await, before);
    assert_eq!(
        db.count("SELECT COUNT(token) AS n FROM session").await,
        before[1]
    );

    // Killed between two steps (after the hashes are filled, before the plaintext goes)...
    let mut proc = Proc::start(&[
        ("DATABASE_URL", db.url.as_str()),
        ADOPT,
        ("APEXKIT_TEST_ADOPT_PAUSE_AFTER", "fill_token_hash"),
    ]);
    proc.wait_for_line("adoption paused", Duration::from_secs(60))
        .unwrap_or_else(|| panic!("no pause: {}", proc.log_text()));
    proc.child.kill().expect("kill");
    let _ = proc.child.wait();
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM apexkit_adoption").await,
        6,
        "six steps committed before the kill"
    );
    assert_eq!(
        db.count(
            "SELECT COUNT(*) AS n FROM session WHERE token_hash IS NOT NULL AND token IS NOT NULL"
        )
        .await,
        before[1]
    );
    // ... and run again: it finishes from there.
    let (ok, _, err) = run_bin(&db, &["--migrate-only"], &[ADOPT]);
    assert!(ok, "{err}");
    assert!(err.contains("Better Auth database adopted"), "{err}");
    assert_eq!(counts(&db).await, before, "every row kept");
    // A plugin's table and columns stay as they were (set aside under another name when
    // Apexkit's own tables need its name).
    let plugin = format!(
        "SELECT COUNT(*) AS n FROM \"{}\"",
        kind.plugin_table_adopted()
    );
    assert_eq!(db.count(&plugin).await, 1);
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM apexkit_adoption").await,
        8
    );
    assert!(
        db.try_execute("SELECT token FROM session").await.is_err(),
        "the plaintext token column is gone"
    );
    let (ok, status, _) = run_bin(&db, &["migrate", "status"], &[]);
    assert!(ok, "migrate status is clean:\n{status}");
    assert!(!status.contains("pending"), "{status}");

    // A second run changes nothing.
    let (ok, _, err) = run_bin(&db, &["--migrate-only"], &[ADOPT]);
    assert!(ok, "{err}");
    assert!(
        !err.contains("adopted") && !err.contains("migration applied"),
        "{err}"
    );
    assert_eq!(counts(&db).await, before);

    let secret = seed["secret"].as_str().expect("secret").to_owned();
    let app = TestApp::on(&db)
        .config(move |c| {
            c.adopt.from = Some(AdoptFrom::BetterAuth);
            c.adopt.better_auth_secret = Some(Secret::new(secret));
        })
        .spawn()
        .await;
    let user = |email: &str| -> Value {
        users
            .iter()
            .find(|u| u["email"] == email)
            .cloned()
            .expect("seeded user")
    };
    let (ada, bob, uma, vic) = (
        user("ada@example.com"),
        user("bob@example.com"),
        user("uma@example.com"),
        user("vic@example.com"),
    );

    // Sessions Better Auth issued: its bearer tokens (plain and signed) authenticate.
    for u in [&ada, &uma, &vic] {
        let s = app.session(u["bearer"].as_str().unwrap()).await;
        assert_eq!(s["data"]["session"]["user"]["email"], u["email"], "{s}");
        let s = app.session(u["signedBearer"].as_str().unwrap()).await;
        assert_eq!(s["data"]["session"]["user"]["email"], u["email"], "{s}");
    }
    // The banned user's sessions (Better Auth revoked them at the ban) do not.
    assert!(!app.alive(bob["bearer"].as_str().unwrap()).await);

    // A browser's signed Better Auth cookie: accepted once, replaced by Apexkit's cookie.
    let cookie = format!(
        "better-auth.session_token={}",
        vic["cookie"].as_str().unwrap()
    );
    let query = json!({ "query": "{ session { user { email } } }" });
    let (_, headers, body) = app.post_raw(&query, &[("cookie", &cookie)]).await;
    assert_eq!(
        body["data"]["session"]["user"]["email"], "vic@example.com",
        "{body}"
    );
    let set: Vec<&str> = headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let ours = set
        .iter()
        .find_map(|c| c.strip_prefix("apexkit.session_token="))
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("Apexkit's cookie set: {set:?}"))
        .to_owned();
    assert!(
        set.iter()
            .any(|c| c.starts_with("better-auth.session_token=;") && c.contains("Max-Age=0")),
        "{set:?}"
    );
    assert_eq!(
        app.session(&ours).await["data"]["session"]["user"]["email"],
        "vic@example.com"
    );
    let (_, _, again) = app.post_raw(&query, &[("cookie", &cookie)]).await;
    assert!(again["data"]["session"].is_null(), "used once: {again}");
    // A forged signature gets nothing.
    let forged = format!(
        "better-auth.session_token={}",
        ada["cookie"].as_str().unwrap().replacen('.', "x.", 1)
    );
    let (_, _, none) = app.post_raw(&query, &[("cookie", &forged)]).await;
    assert!(none["data"]["session"].is_null(), "{none}");

    // Wrong passwords: the same answer for a known (legacy hash) and an unknown email, one
    // hashing job each; interleaved, three times, the quickest of each compared. The unknown
    // email pays for a scrypt too (the legacy padding): not much quicker. Other tests share the
    // two cores and can stall a round (a full local run once saw 652 ms against 192), so a
    // round may be repeated, up to five: a real difference (an unpadded path skips a 32 MiB
    // scrypt) shows in every round.
    let mut rounds = Vec::new();
    for _ in 0..5 {
        let mut answers = Vec::new();
        let mut took = [Duration::MAX; 2];
        for _ in 0..3 {
            for (i, email) in ["uma@example.com", "nobody@example.com"].iter().enumerate() {
                let jobs = app.hash_count();
                let started = Instant::now();
                let body = app.sign_in(email, "not the password at all").await;
                took[i] = took[i].min(started.elapsed());
                assert_eq!(app.hash_count() - jobs, 1);
                answers.push((code(&body).to_owned(), body["errors"][0]["message"].clone()));
            }
        }
        assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
        assert_eq!(answers[0].0, "INVALID_EMAIL_OR_PASSWORD");
        rounds.push(took);
        if took[1] * 2 > took[0] {
            break;
        }
    }
    let took = rounds[rounds.len() - 1];
    assert!(took[1] * 2 > took[0], "every round: {rounds:?}");

    // Everyone signs in with their Better Auth password; the hash becomes argon2id.
    let ada_token = {
        let body = app
            .sign_in("ada@example.com", ada["password"].as_str().unwrap())
            .await;
        body["data"]["signInEmail"]["token"]
            .as_str()
            .unwrap_or_else(|| panic!("{body}"))
            .to_owned()
    };
    let legacy = |token: String| {
        let app = &app;
        async move {
            app.gql_with(Some(&token), "{ legacyPasswordHashes }", json!({}))
                .await["data"]["legacyPasswordHashes"]
                .as_i64()
        }
    };
    assert_eq!(
        legacy(ada_token.clone()).await,
        Some(3),
        "ada is still an admin"
    );
    for u in [&uma, &vic] {
        let body = app
            .sign_in(
                u["email"].as_str().unwrap(),
                u["password"].as_str().unwrap(),
            )
            .await;
        assert!(body["data"]["signInEmail"]["token"].is_string(), "{body}");
    }
    let body = app
        .sign_in("bob@example.com", bob["password"].as_str().unwrap())
        .await;
    assert_eq!(
        code(&body),
        "USER_BANNED",
        "the right password, then the ban: {body}"
    );
    for u in [&ada, &bob, &uma, &vic] {
        let hash = account_hash(&db, u["id"].as_str().unwrap()).await;
        assert!(hash.starts_with("$argon2id$"), "{hash}");
    }
    assert_eq!(legacy(ada_token).await, Some(0));
    // And again, now against argon2id.
    let body = app
        .sign_in("vic@example.com", vic["password"].as_str().unwrap())
        .await;
    assert!(body["data"]["signInEmail"]["token"].is_string(), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopts_postgres_snake_case_drizzle_schema() {
    adopts(Kind::PgSnake).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopts_postgres_camel_case_better_auth_schema() {
    adopts(Kind::PgCamel).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopts_sqlite_camel_case_better_auth_schema() {
    adopts(Kind::SqliteCamel).await;
}

/// A database holding other tables is refused, with or without the setting, and left as it was.
async fn unrelated_database_is_refused(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.execute("CREATE TABLE orders (id integer PRIMARY KEY, total integer)")
        .await;
    db.execute("INSERT INTO orders (id, total) VALUES (1, 42)")
        .await;
    for envs in [vec![], vec![ADOPT]] {
        let (ok, _, err) = run_bin(&db, &["--migrate-only"], &envs);
        assert!(!ok, "refused");
        assert!(err.contains("neither Apexkit's nor Better Auth's"), "{err}");
        assert!(err.contains("orders"), "{err}");
    }
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM orders").await, 1);
    let tables = match backend {
        Backend::Sqlite => {
            "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%'"
        }
        Backend::Postgres => {
            "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = current_schema()"
        }
    };
    assert_eq!(db.count(tables).await, 1, "nothing created");
}

on_both!(unrelated_database_is_refused);
