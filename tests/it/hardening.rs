//! Issue 13, items 1–3: documents that used to abort the process (nesting deep enough to
//! overflow the parser's stack) or occupy a core for minutes (fragments spreading each other in
//! a doubling chain) are refused at once, whatever the path they come by; the service keeps
//! answering `/healthz` and the session check while ten clients send them; and SIGTERM ends the
//! process within its deadline even while work is stuck.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Api, Backend, PASSWORD, Proc, TestApp, TestDb, code, on_both};

on_both!(
    deep_nesting_is_refused_on_every_path,
    fragment_chains_and_cycles_are_refused_at_once,
    ten_attackers_leave_health_and_sessions_answering,
    sigterm_ends_the_process_within_the_deadline_while_a_statement_is_stuck,
);

/// `fragment F0 on Query { ...F1 ...F1 } …`: 2^levels fields when expanded.
pub fn doubling_chain(levels: usize) -> String {
    let mut doc = String::from("query Chain { ...F0 }\n");
    for i in 0..levels {
        doc.push_str(&format!(
            "fragment F{i} on Query {{ ...F{n} ...F{n} }}\n",
            n = i + 1
        ));
    }
    doc.push_str(&format!(
        "fragment F{levels} on Query {{ session {{ user {{ id }} }} }}\n"
    ));
    doc
}

/// A list argument nested `levels` deep: `{ me(x: [[[…]]]) { id } }`.
fn nested_list(levels: usize) -> String {
    format!(
        "{{ me(x: {}1{}) {{ id }} }}",
        "[".repeat(levels),
        "]".repeat(levels)
    )
}

/// JSON nested `levels` deep: `[[[…]]]`.
fn nested_json(levels: usize) -> String {
    format!("{}{}", "[".repeat(levels), "]".repeat(levels))
}

/// Asserts `/healthz` and the session check of `token` still answer.
async fn assert_serving(app: &TestApp, token: &str) {
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let session = app.session(token).await;
    assert!(
        session["data"]["session"]["user"]["id"].is_string(),
        "{session}"
    );
}

async fn deep_nesting_is_refused_on_every_path(backend: Backend) {
    // Caps raised far enough that only the nesting check stands between 100,000 levels and
    // the parser.
    let app = TestApp::builder(backend)
        .config(|c| {
            c.graphql.max_body_bytes = 4 << 20;
            c.graphql.max_query_bytes = 1 << 20;
        })
        .spawn()
        .await;
    let token = app.sign_up("deep@example.com").await;

    // About 4 KB (2,000 levels, under the default query cap) used to overflow the stack and
    // abort the release build (1,600 did; a debug build's parser gives up at about 735 with
    // "stack limit reached"); 100,000 levels are refused just the same, and so are 100, which
    // the parser used to take and hand on to validation.
    for levels in [100, 2_000, 100_000] {
        let list = nested_list(levels);
        let object = format!(
            "{{ me(x: {}1{}) {{ id }} }}",
            "{a: ".repeat(levels),
            "}".repeat(levels)
        );
        let default = format!(
            "query($v: [Int] = {}1{}) {{ me {{ id }} }}",
            "[".repeat(levels),
            "]".repeat(levels)
        );
        let directive = format!(
            "{{ me @skip(if: {}true{}) {{ id }} }}",
            "[".repeat(levels),
            "]".repeat(levels)
        );
        let selections = format!("{}{}", "{ a ".repeat(levels), "}".repeat(levels));
        for doc in [&list, &object, &default, &directive, &selections] {
            let (status, _, body) = app.post_raw(&json!({ "query": doc }), &[]).await;
            assert_eq!(status, 200, "{levels}: {}: {body}", &doc[..40]);
            assert_eq!(code(&body), "GRAPHQL_PARSE_FAILED", "{levels}: {body}");
            // Over GET too (within what a URL can carry).
            if levels > 2_000 {
                continue;
            }
            let resp = app
                .client
                .get(app.url("/graphql"))
                .query(&[("query", doc.as_str())])
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            let body: Value = resp.json().await.unwrap();
            assert_eq!(code(&body), "GRAPHQL_PARSE_FAILED", "GET {levels}: {body}");
        }
        // In a batch: the deep entry is refused, its neighbour runs.
        let (status, _, body) = app
            .post_raw(
                &json!([{ "query": list }, { "query": "{ __typename }" }]),
                &[],
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(code(&body[0]), "GRAPHQL_PARSE_FAILED", "{body}");
        assert_eq!(body[1]["data"]["__typename"], "Query", "{body}");

        // Variables (JSON) nested as deep: refused by the JSON reader's own bound (128
        // levels), on POST and GET, before anything walks them.
        if levels <= 128 {
            continue;
        }
        let raw = format!(
            r#"{{"query":"query($v: [Int]) {{ me {{ id }} }}","variables":{{"v":{}}}}}"#,
            nested_json(levels)
        );
        let resp = app
            .client
            .post(app.url("/graphql"))
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(code(&body), "GRAPHQL_PARSE_FAILED", "{body}");
        if levels <= 2_000 {
            let resp = app
                .client
                .get(app.url("/graphql"))
                .query(&[
                    ("query", "query($v: [Int]) { me { id } }"),
                    ("variables", &format!(r#"{{"v":{}}}"#, nested_json(levels))),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 400);
        }
        // A batch array nested as deep.
        let resp = app
            .client
            .post(app.url("/graphql"))
            .header("content-type", "application/json")
            .body(nested_json(levels))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
    }

    // Ordinary nesting still works: a list argument a few levels deep reaches validation.
    let body = app.gql(&nested_list(3), json!({})).await;
    assert_ne!(code(&body), "GRAPHQL_PARSE_FAILED", "{body}");
    assert_serving(&app, &token).await;
}

async fn fragment_chains_and_cycles_are_refused_at_once(backend: Backend) {
    // Production's settings: introspection off, so the service's own "does this document
    // introspect" walk runs too.
    let app = TestApp::builder(backend)
        .config(|c| {
            c.graphql.introspection = Some(apexkit::config::Toggle::Off);
            c.graphql.max_query_bytes = 64 * 1024;
        })
        .spawn()
        .await;
    let token = app.sign_up("chain@example.com").await;
    // 30 levels took about 160 s of a core; 64 would never end. Each is refused before
    // async-graphql expands anything.
    for levels in [20, 30, 64] {
        let body = app.gql(&doubling_chain(levels), json!({})).await;
        assert_eq!(code(&body), "GRAPHQL_VALIDATION_FAILED", "{levels}: {body}");
        assert_eq!(body["errors"][0]["message"], "Query is too complex.");
    }
    // Within the limits, the same shape runs: 2^3 identical selections merge into one.
    let body = app
        .gql_with(Some(&token), &doubling_chain(3), json!({}))
        .await;
    assert!(body["errors"].is_null(), "{body}");
    assert!(body["data"]["session"]["user"]["id"].is_string(), "{body}");

    // Cycles (invalid GraphQL) are refused, not recursed into.
    for cycle in [
        "query { ...A } fragment A on Query { ...A }",
        "query { ...A } fragment A on Query { ...B } fragment B on Query { ... on Query { ...A } }",
        "query { me { id } } fragment A on Query { ...B } fragment B on Query { ...A }",
    ] {
        let body = app.gql(cycle, json!({})).await;
        assert_eq!(code(&body), "GRAPHQL_VALIDATION_FAILED", "{cycle}: {body}");
    }
    // Introspection hidden behind fragments is still found, and refused.
    let hidden = "query { ...A } fragment A on Query { ...B } \
                  fragment B on Query { ... on Query { __schema { queryType { name } } } }";
    let body = app.gql(hidden, json!({})).await;
    assert_eq!(code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");
    assert_eq!(body["errors"][0]["message"], "Introspection is disabled");

    // Bounded counts: operations, fragments, literal values.
    let ops: String = (0..40)
        .map(|i| format!("query Q{i} {{ me {{ id }} }} "))
        .collect();
    let body = app.gql(&ops, json!({})).await;
    assert_eq!(code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");
    let fragments: String = (0..300)
        .map(|i| format!("fragment F{i} on Query {{ me {{ id }} }} "))
        .collect();
    let body = app
        .gql(&format!("{{ me {{ id }} }} {fragments}"), json!({}))
        .await;
    assert_eq!(code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");
    let literals = format!("{{ me(x: [{}]) {{ id }} }}", "1,".repeat(3000));
    let body = app.gql(&literals, json!({})).await;
    assert_eq!(code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");
    assert_serving(&app, &token).await;
}

/// What a client sees of a request: answered (and how fast), or not.
async fn timed(fut: impl std::future::Future<Output = bool>) -> Option<Duration> {
    let started = Instant::now();
    match tokio::time::timeout(Duration::from_secs(10), fut).await {
        Ok(true) => Some(started.elapsed()),
        _ => None,
    }
}

fn summary(label: &str, mut times: Vec<Duration>) -> String {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "{label}: {} answered, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        times.len(),
        ms(times[times.len() / 2]),
        ms(times[times.len() * 99 / 100]),
        ms(times[times.len() - 1])
    )
}

/// The worst documents issue 13 names, sent by ten clients at once for a few seconds: every
/// `/healthz` and session check in that time is answered (a liveness check with a 10 s client
/// timeout; the latencies are printed for the docs, not asserted).
async fn ten_attackers_leave_health_and_sessions_answering(backend: Backend) {
    let app = TestApp::builder(backend)
        .config(|c| {
            c.graphql.introspection = Some(apexkit::config::Toggle::Off);
        })
        .spawn()
        .await;
    let token = app.sign_up("victim@example.com").await;
    let worst = [
        doubling_chain(64),
        nested_list(2_000),
        format!("{}{}", "{ session ".repeat(700), "}".repeat(700)),
        "query { ...A } fragment A on Query { ...A }".to_owned(),
    ];
    let stop = Instant::now() + Duration::from_secs(3);
    let mut attackers = Vec::new();
    for i in 0..10 {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let url = app.url("/graphql");
        let doc = worst[i % worst.len()].clone();
        attackers.push(tokio::spawn(async move {
            let mut sent = 0u32;
            while Instant::now() < stop {
                let resp = client
                    .post(&url)
                    .json(&json!({ "query": doc }))
                    .send()
                    .await
                    .expect("an attack request is answered");
                assert_eq!(resp.status(), 200);
                sent += 1;
            }
            sent
        }));
    }
    let mut health = Vec::new();
    let mut sessions = Vec::new();
    while Instant::now() < stop {
        let h = timed(async {
            app.client
                .get(app.url("/healthz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
        health.push(h.expect("/healthz answers while attacked"));
        let s =
            timed(async { app.session(&token).await["data"]["session"]["user"]["id"].is_string() })
                .await;
        sessions.push(s.expect("the session check answers while attacked"));
    }
    let mut sent = 0;
    for attacker in attackers {
        sent += attacker.await.unwrap();
    }
    println!(
        "[{backend:?}] 10 attackers sent {sent} worst documents in 3 s; {}; {}",
        summary("/healthz", health),
        summary("session", sessions)
    );
    assert!(sent > 10, "the attackers' requests were answered too");
}

/// A statement waits on a lock the test holds (SQLite: a write behind the writer lock, on a
/// blocking thread; PostgreSQL: an insert behind `LOCK TABLE`) with a statement timeout of two
/// minutes. SIGTERM with `APEXKIT_SHUTDOWN_TIMEOUT=1`: the process is gone within the deadline
/// and says why. (Before, the runtime waited for the blocking thread: two minutes on SQLite.)
async fn sigterm_ends_the_process_within_the_deadline_while_a_statement_is_stuck(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut proc = Proc::start(&[
        ("DATABASE_URL", &db.url),
        ("APEXKIT_LISTEN", "127.0.0.1:0"),
        ("APEXKIT_SHUTDOWN_TIMEOUT", "1"),
        ("APEXKIT_DB_STATEMENT_TIMEOUT_MS", "120000"),
        ("APEXKIT_DB_POOL_TIMEOUT_MS", "120000"),
    ]);
    let addr = tokio::task::block_in_place(|| proc.listening(Duration::from_secs(60)));

    // Hold the lock on a connection of our own.
    let lock = db.lock_writes().await;

    // A sign-up now waits on the lock.
    let api = Api::at(format!("http://{addr}"));
    let stuck = tokio::spawn(async move {
        let _ = api
            .client
            .post(api.url("/graphql"))
            .json(&json!({
                "query": "mutation($i: SignUpEmailInput!) { signUpEmail(input: $i) { token } }",
                "variables": { "i": { "name": "S", "email": "stuck@example.com", "password": PASSWORD } }
            }))
            .send()
            .await;
    });
    tokio::time::sleep(Duration::from_millis(500)).await;

    let sent = Instant::now();
    proc.terminate();
    let (status, log) = tokio::task::block_in_place(|| proc.wait_exit(Duration::from_secs(30)));
    let took = sent.elapsed();
    drop(lock);
    stuck.abort();
    let status = status.unwrap_or_else(|| panic!("still running 30 s after SIGTERM:\n{log}"));
    println!(
        "[{backend:?}] exited {took:?} after SIGTERM ({status}); forced: {}",
        log.contains("shutdown deadline passed")
    );
    // Deadline: APEXKIT_SHUTDOWN_TIMEOUT (1 s) + the exit grace (7 s).
    assert!(
        took < Duration::from_secs(15),
        "exited only after {took:?}:\n{log}"
    );
    if !status.success() {
        assert!(
            log.contains("shutdown deadline passed"),
            "a forced exit says why:\n{log}"
        );
    }
}
