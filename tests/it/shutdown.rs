//! Graceful shutdown of the real binary: SIGTERM with requests in flight (real argon2 work
//! queued behind a hash semaphore of one), new connections refused at once, every in-flight
//! request completed, the pool closed, exit 0. Also: the request id on the request's log lines.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Api, Backend, PASSWORD, Proc, TestDb, metric_value, on_both};

const BATCHES: usize = 6;
const PER_BATCH: usize = 5;

on_both!(sigterm_finishes_in_flight_requests_refuses_new_ones_and_exits_zero);

async fn sigterm_finishes_in_flight_requests_refuses_new_ones_and_exits_zero(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut proc = Proc::start(&[
        ("DATABASE_URL", &db.url),
        ("APEXKIT_LISTEN", "127.0.0.1:0"),
        ("APEXKIT_HASH_CONCURRENCY", "1"),
        ("APEXKIT_SHUTDOWN_TIMEOUT", "60"),
        ("RUST_LOG", "info,apexkit=debug"),
    ]);
    let addr = tokio::task::block_in_place(|| proc.listening(Duration::from_secs(60)));
    let base = format!("http://{addr}");

    // Six requests, each a batch of five sign-ups: thirty argon2 hashes through one slot.
    let mut inflight = Vec::new();
    for b in 0..BATCHES {
        let url = format!("{base}/graphql");
        inflight.push(tokio::spawn(async move {
            let batch: Vec<Value> = (0..PER_BATCH)
                .map(|i| {
                    json!({
                        "query": "mutation($i: SignUpEmailInput!) { signUpEmail(input: $i) { token } }",
                        "variables": { "i": { "name": "D", "email": format!("drain{b}-{i}@example.com"), "password": PASSWORD } }
                    })
                })
                .collect();
            let body: Value = reqwest::Client::builder()
                .no_proxy()
                .build()
                .unwrap()
                .post(url)
                .header("x-request-id", format!("drain-{b}"))
                .json(&batch)
                .send()
                .await
                .expect("an in-flight request is answered")
                .json()
                .await
                .unwrap();
            (body, Instant::now())
        }));
    }
    // Wait until all six are being handled (the /metrics request itself is the seventh).
    let probe = Api::at(&base);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = probe.metrics_text().await;
        let in_flight = metric_value(&text, "apexkit_http_requests_in_flight", &[]);
        if in_flight >= (BATCHES + 1) as f64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "requests never all in flight:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(probe);

    proc.terminate();

    // New connections are refused at once (the listener is closed) ...
    let deadline = Instant::now() + Duration::from_secs(2);
    let refused_at = loop {
        if tokio::net::TcpStream::connect(&addr).await.is_err() {
            break Instant::now();
        }
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };

    // ... while every in-flight request completes.
    let mut last_done = refused_at;
    for task in inflight {
        let (body, done) = task.await.unwrap();
        let items = body.as_array().unwrap_or_else(|| panic!("{body}"));
        assert_eq!(items.len(), PER_BATCH);
        for item in items {
            assert!(item["data"]["signUpEmail"]["token"].is_string(), "{item}");
        }
        last_done = last_done.max(done);
    }
    assert!(
        last_done > refused_at,
        "work was still running after the listener closed"
    );

    let (status, log) = tokio::task::block_in_place(|| proc.wait_exit(Duration::from_secs(30)));
    let status = status.unwrap_or_else(|| panic!("did not exit:\n{log}"));
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("draining in-flight requests"), "{log}");
    assert!(log.contains("database pool closed"), "{log}");
    // The request id is on the request's log lines.
    assert!(
        log.lines()
            .any(|l| l.contains("drain-3") && l.contains("request finished")),
        "{log}"
    );
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM \"user\"").await,
        (BATCHES * PER_BATCH) as i64
    );
}
