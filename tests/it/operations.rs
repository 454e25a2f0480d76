//! Operations in-process: `/metrics` present and moving, request ids, three replicas on one
//! database, pool exhaustion and a locked table, a full SQLite database.

use std::time::{Duration, Instant};

use diesel_async::SimpleAsyncConnection;
use serde_json::{Value, json};

use crate::support::{Backend, PASSWORD, TestApp, code, metric_value, on_both, signed_in_token};

on_both!(
    metrics_are_exposed_and_move,
    three_replicas_share_sessions_and_revocation,
    pool_exhaustion_and_locked_writes_are_bounded_and_recover
);

async fn metrics_are_exposed_and_move(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let before = app.metrics_text().await;
    let token = app.sign_up("metrics@example.com").await;
    assert!(
        app.sign_in("metrics@example.com", PASSWORD).await["data"]["signInEmail"]["token"]
            .is_string()
    );
    assert_eq!(
        code(&app.sign_in("metrics@example.com", "wrong password!").await),
        "INVALID_EMAIL_OR_PASSWORD"
    );
    assert!(app.session(&token).await["data"]["session"]["user"]["id"].is_string());
    apexkit::observability::record_rate_limited("signInEmail");
    let after = app.metrics_text().await;

    // The recorder is process-wide and other tests run alongside: compare deltas.
    let moved = |name: &str, labels: &[(&str, &str)]| {
        metric_value(&after, name, labels) - metric_value(&before, name, labels)
    };
    assert!(
        moved("apexkit_sign_in_total", &[("outcome", "success")]) >= 1.0,
        "{after}"
    );
    assert!(
        moved(
            "apexkit_sign_in_total",
            &[("outcome", "INVALID_EMAIL_OR_PASSWORD")]
        ) >= 1.0
    );
    assert!(
        moved(
            "apexkit_graphql_requests_total",
            &[("field", "signUpEmail"), ("outcome", "ok")]
        ) >= 1.0
    );
    assert!(
        moved(
            "apexkit_graphql_request_duration_seconds_count",
            &[("field", "session")]
        ) >= 1.0
    );
    assert!(moved("apexkit_hash_wait_seconds_count", &[]) >= 3.0);
    assert!(moved("apexkit_hash_duration_seconds_count", &[]) >= 3.0);
    assert!(moved("apexkit_rate_limited_total", &[("field", "signInEmail")]) >= 1.0);
    for name in [
        "apexkit_hash_queue_depth",
        "apexkit_db_pool_connections",
        "apexkit_db_pool_idle_connections",
        "apexkit_db_pool_max_connections",
        "apexkit_db_pool_waits_total",
        "apexkit_db_pool_timeouts_total",
    ] {
        assert!(
            after.lines().any(|l| l.starts_with(name)),
            "{name} missing:\n{after}"
        );
    }
    assert!(metric_value(&after, "apexkit_db_pool_connections", &[]) >= 1.0);
    // TYPE lines make it valid Prometheus text.
    assert!(after.contains("# TYPE apexkit_graphql_request_duration_seconds histogram"));
    assert!(after.contains("# TYPE apexkit_sign_in_total counter"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_a_request_id() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let id_of = |resp: &reqwest::Response| {
        resp.headers()
            .get("x-request-id")
            .expect("x-request-id header")
            .to_str()
            .unwrap()
            .to_owned()
    };
    let a = app.client.get(app.url("/healthz")).send().await.unwrap();
    let b = app.client.get(app.url("/healthz")).send().await.unwrap();
    let (a, b) = (id_of(&a), id_of(&b));
    assert_eq!(a.len(), 24);
    assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a, b, "generated ids are unique");

    let echoed = app
        .client
        .post(app.url("/graphql"))
        .header("x-request-id", "client-Chosen_id-42")
        .json(&json!({ "query": "{ session { user { id } } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(id_of(&echoed), "client-Chosen_id-42");

    for bad in ["has space", &"x".repeat(65), "semi;colon"] {
        let resp = app
            .client
            .get(app.url("/healthz"))
            .header("x-request-id", bad)
            .send()
            .await
            .unwrap();
        let id = id_of(&resp);
        assert_ne!(id, bad);
        assert_eq!(id.len(), 24);
    }
    // Refusals at the HTTP level carry it too.
    let refused = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 415);
    assert_eq!(id_of(&refused).len(), 24);
}

const SESSION: &str = "{ session { session { id } user { email } } }";

async fn three_replicas_share_sessions_and_revocation(backend: Backend) {
    // Replicas share the deployment secret, as they must to read each other's signing keys.
    let a = TestApp::builder(backend).secret().spawn().await;
    let b = a.replica().secret().spawn().await;
    let c = a.replica().secret().spawn().await;
    a.sign_up("replica@example.com").await;

    let signed_in = a.sign_in("replica@example.com", PASSWORD).await;
    let token = signed_in_token(&signed_in);
    // Sign in on A, use the session on B.
    let on_a = a.gql_with(Some(&token), SESSION, json!({})).await;
    let on_b = b.gql_with(Some(&token), SESSION, json!({})).await;
    assert_eq!(
        on_b["data"]["session"]["user"]["email"],
        "replica@example.com"
    );
    assert_eq!(
        on_a["data"]["session"]["session"],
        on_b["data"]["session"]["session"]
    );
    // Revoke it on C: A refuses it on the very next request (no per-replica cache).
    let out = c
        .gql_with(Some(&token), "mutation { signOut }", json!({}))
        .await;
    assert_eq!(out["data"]["signOut"], true, "{out}");
    for replica in [&a, &b, &c] {
        let after = replica.gql_with(Some(&token), SESSION, json!({})).await;
        assert_eq!(
            after["data"]["session"],
            Value::Null,
            "{}: {after}",
            replica.base
        );
    }
    // Every replica publishes the same signing keys.
    let mut sets = Vec::new();
    for replica in [&a, &b, &c] {
        let jwks = replica.jwks().await;
        assert!(!jwks["keys"].as_array().expect("keys").is_empty(), "{jwks}");
        sets.push(jwks);
    }
    assert_eq!(sets[0], sets[1]);
    assert_eq!(sets[1], sets[2]);
}

async fn pool_exhaustion_and_locked_writes_are_bounded_and_recover(backend: Backend) {
    // One connection, a short checkout wait, a statement timeout longer than that wait.
    let app = TestApp::builder(backend)
        .config(|c| {
            c.database.pool_size = 1;
            c.database.pool_timeout_ms = 300;
            c.database.statement_timeout_ms = 1500;
        })
        .spawn()
        .await;
    let token = app.sign_up("first@example.com").await;
    let blocker = app.db.lock_writes().await;

    // A sign-up takes the only connection and waits on the lock.
    let stuck = {
        let client = app.client.clone();
        let url = app.url("/graphql");
        tokio::spawn(async move {
            let started = Instant::now();
            let body: Value = client
                .post(url)
                .json(&json!({
                    "query": "mutation($i: SignUpEmailInput!) { signUpEmail(input: $i) { token } }",
                    "variables": { "i": { "name": "B", "email": "second@example.com", "password": PASSWORD } }
                }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (body, started.elapsed())
        })
    };
    // Give it time to hash and check the connection out (ordering only, not an assertion).
    tokio::time::sleep(Duration::from_millis(400)).await;

    // The pool is exhausted: the next request waits the checkout timeout, then gives up.
    let started = Instant::now();
    let waited = app.session(&token).await;
    let elapsed = started.elapsed();
    assert_eq!(code(&waited), "SERVICE_UNAVAILABLE", "{waited}");
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(3),
        "bounded wait, got {elapsed:?}"
    );

    // The locked write gives up after the statement timeout (busy timeout on SQLite).
    let (body, elapsed) = stuck.await.unwrap();
    assert_eq!(code(&body), "SERVICE_UNAVAILABLE", "{body}");
    assert!(elapsed < Duration::from_secs(6), "bounded, got {elapsed:?}");

    // Lock released: the same requests succeed, no restart needed.
    blocker.release().await;
    assert_eq!(
        app.db
            .count("SELECT COUNT(*) AS n FROM \"user\" WHERE email = 'second@example.com'")
            .await,
        0,
        "nothing half-written"
    );
    assert!(app.session(&token).await["data"]["session"]["user"]["email"].is_string());
    app.sign_up("second@example.com").await;
    assert_eq!(
        app.db
            .count("SELECT COUNT(*) AS n FROM account a JOIN \"user\" u ON u.id = a.user_id WHERE u.email = 'second@example.com'")
            .await,
        1
    );
}

/// SQLite full: `APEXKIT_SQLITE_MAX_SIZE_MB` caps the file (PRAGMA max_page_count on every
/// connection). Tests run as root, for whom a read-only file is still writable, so the cap is
/// the real mechanism used to make SQLite refuse writes ("database or disk is full").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_sqlite_database_refuses_writes_and_keeps_serving_reads() {
    let app = TestApp::builder(Backend::Sqlite)
        .config(|c| c.database.sqlite_max_size_mb = Some(1))
        .spawn()
        .await;
    let token = app.sign_up("early@example.com").await;
    // Grow the file past the cap from another connection (which has no cap).
    {
        let path = app.db.url.strip_prefix("sqlite://").unwrap().to_owned();
        let mut c = apexkit::db::connect_sqlite(&path, 5000).await.unwrap();
        c.batch_execute(
            "CREATE TABLE filler (b BLOB); INSERT INTO filler VALUES (zeroblob(1200000));",
        )
        .await
        .unwrap();
    }
    // Free space left in existing pages takes a few more rows; then every write is refused.
    let mut refused = None;
    for i in 0..300 {
        let body = app
            .sign_up_as("Filler", &format!("fill{i}@example.com"), PASSWORD)
            .await;
        if body["errors"].is_array() {
            refused = Some(body);
            break;
        }
    }
    let refused = refused.expect("the database filled up");
    assert_eq!(code(&refused), "SERVICE_UNAVAILABLE", "{refused}");
    // Sign-ins write a session row: once its pages are full too they are refused the same way
    // (never another error).
    let mut sign_in_refused = false;
    for _ in 0..200 {
        let body = app.sign_in("early@example.com", PASSWORD).await;
        if body["errors"].is_array() {
            assert_eq!(code(&body), "SERVICE_UNAVAILABLE", "{body}");
            sign_in_refused = true;
            break;
        }
    }
    assert!(sign_in_refused, "sign-in writes are refused once full");
    // Reads keep working.
    let session = app.session(&token).await;
    assert_eq!(
        session["data"]["session"]["user"]["email"], "early@example.com",
        "{session}"
    );
}
