//! Rate-limit counters in Redis (issue 19): shared by replicas, with a TTL and the configured
//! prefix on every key, falling back to per-replica memory while Redis is gone (metric, one log
//! line per transition, no 5xx) and shared again when it returns; an unreachable Redis at boot
//! does not stop the service. Each test runs its own `redis-server` ([`RedisServer`]) and the
//! real binary ([`Proc`]), so that every replica has its own `/metrics` and log.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::support::{
    Api, Backend, Proc, RedisServer, TEST_SECRET, TestDb, apexkit_cmd, metric_value,
};

const FALLBACK: &str = "apexkit_rate_limit_redis_fallback";
const WINDOW_SECS: u64 = 10;

/// A replica of the binary counting in `redis_url` under `prefix`, 3 credential checks per 10 s
/// per client, trusting loopback's `X-Forwarded-For` so each phase of a test is a client of its
/// own.
fn replica(database_url: &str, redis_url: &str, prefix: &str) -> Proc {
    Proc::start(&[
        ("DATABASE_URL", database_url),
        ("APEXKIT_SECRET", TEST_SECRET),
        ("APEXKIT_LISTEN", "127.0.0.1:0"),
        ("APEXKIT_RATE_LIMIT", "on"),
        ("APEXKIT_RATE_LIMIT_STORAGE", "redis"),
        ("APEXKIT_REDIS_URL", redis_url),
        ("APEXKIT_REDIS_KEY_PREFIX", prefix),
        ("APEXKIT_RATE_LIMIT_CREDENTIAL", "3/10"),
        ("APEXKIT_TRUSTED_PROXIES", "127.0.0.1/32"),
        ("RUST_LOG", "info"),
    ])
}

/// Starts the replicas and returns them with their clients.
fn replicas(database_url: &str, redis_url: &str, prefix: &str, n: usize) -> Vec<(Proc, Api)> {
    let mut procs: Vec<Proc> = (0..n)
        .map(|_| replica(database_url, redis_url, prefix))
        .collect();
    procs
        .drain(..)
        .map(|mut p| {
            let addr = p.listening(Duration::from_secs(60));
            (p, Api::at(format!("http://{addr}")))
        })
        .collect()
}

/// A `signInEmail` from client `ip`, each for an address of its own (so that the per-account
/// failed sign-in delay never answers instead of the per-client budget): HTTP status and body.
async fn sign_in_from(api: &Api, ip: &str, _n: usize) -> (u16, Value) {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let (status, _, body) = api
        .post_raw(
            &json!({
                "query": "mutation($i: SignInEmailInput!) { signInEmail(input: $i) { token } }",
                "variables": { "i": { "email": format!("nobody{n}@example.com"), "password": "wrong horse battery" } },
            }),
            &[("x-forwarded-for", ip)],
        )
        .await;
    (status.as_u16(), body)
}

fn error_code(body: &Value) -> Option<String> {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .map(str::to_owned)
}

/// Waits until at least 4 s are left in the current 10-s window, so a phase of a few requests
/// does not straddle two windows.
async fn fresh_window() {
    loop {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_millis();
        let into = u64::try_from(now % u128::from(WINDOW_SECS * 1000)).expect("ms");
        if into <= (WINDOW_SECS - 4) * 1000 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(WINDOW_SECS * 1000 - into + 50)).await;
    }
}

/// Three sign-ins from `ip`, one on each of `apis` in turn, all answered (wrong password), and a
/// fourth on each replica refused: the budget of 3 holds across them.
async fn assert_shared_budget(apis: &[&Api], ip: &str) {
    fresh_window().await;
    for (i, api) in apis.iter().cycle().take(3).enumerate() {
        let (status, body) = sign_in_from(api, ip, i).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            error_code(&body).as_deref(),
            Some("INVALID_EMAIL_OR_PASSWORD"),
            "attempt {i} from {ip}: {body}"
        );
    }
    for api in apis {
        let (status, body) = sign_in_from(api, ip, 9).await;
        assert_eq!(status, 429, "{body}");
        assert_eq!(
            error_code(&body).as_deref(),
            Some("RATE_LIMITED"),
            "a fourth sign-in from {ip} on {}: {body}",
            api.addr()
        );
    }
}

async fn fallback_gauge(api: &Api) -> f64 {
    metric_value(&api.metrics_text().await, FALLBACK, &[])
}

/// Waits (at most `within`) until `api`'s fallback gauge reads `want`.
async fn wait_gauge(api: &Api, want: f64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let got = fallback_gauge(api).await;
        if (got - want).abs() < f64::EPSILON {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{FALLBACK} on {} is {got}, not {want}",
            api.addr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn count_lines(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

const LOST: &str = "Redis unreachable: rate-limit counters fall back";
const BACK: &str = "Redis is back";

/// Three replicas on one PostgreSQL sharing Redis counters: the budget holds across them, the
/// keys carry the prefix and a TTL. Redis killed (by its pid) while traffic runs: every request
/// is answered without a 5xx, each replica reports the fallback (gauge and one log line) and
/// enforces the budget on its own. Redis restarted: the replicas use it again and the budget is
/// shared again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_limits_through_redis_and_survive_its_loss() {
    let db = TestDb::new(Backend::Postgres).await;
    let mut redis = RedisServer::start();
    let prefix = "apexkit-test:";
    let mut nodes = replicas(&db.url, &redis.url(), prefix, 3);
    let apis: Vec<Api> = nodes.iter().map(|(_, a)| a.clone()).collect();
    let all: Vec<&Api> = apis.iter().collect();
    for api in &apis {
        assert_eq!(fallback_gauge(api).await, 0.0);
    }

    // Shared: 3 sign-ins across the three replicas, then refused on each.
    assert_shared_budget(&all, "203.0.113.1").await;

    // Every key carries the prefix and a TTL of at most one window.
    let keys = redis.command(&["KEYS", "*"]).strings();
    assert!(!keys.is_empty());
    for key in &keys {
        assert!(key.starts_with(prefix), "{key}");
        let ttl = redis.command(&["PTTL", key]).int();
        assert!(
            ttl > 0 && ttl <= i64::try_from(WINDOW_SECS * 1000).expect("ms"),
            "{key}: PTTL {ttl}"
        );
    }
    let counted: i64 = keys
        .iter()
        .filter(|k| k.starts_with(&format!("{prefix}rl:credential:")))
        .map(|k| match redis.command(&["GET", k]) {
            crate::support::RedisReply::Bulk(Some(n)) => n.parse::<i64>().expect("count"),
            other => panic!("{other:?}"),
        })
        .sum();
    assert_eq!(
        counted, 6,
        "3 answered + 3 refused sign-ins, counted once each"
    );

    // Traffic on all replicas (session checks and sign-ins), Redis killed in the middle.
    let session = apis[0].sign_up_payload("ada@example.com").await;
    let token = session["data"]["signUpEmail"]["token"]
        .as_str()
        .map(str::to_owned);
    let traffic = {
        let apis = apis.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let start = Instant::now();
            let mut i = 0usize;
            while start.elapsed() < Duration::from_millis(2500) {
                let api = &apis[i % apis.len()];
                let t0 = Instant::now();
                let (status, body) = sign_in_from(api, "203.0.113.2", i).await;
                seen.push((status, error_code(&body), t0.elapsed()));
                if let Some(t) = &token {
                    let (status, _, body) = api
                        .post_raw(
                            &json!({ "query": "{ session { user { email } } }" }),
                            &[("authorization", &format!("Bearer {t}"))],
                        )
                        .await;
                    seen.push((status.as_u16(), error_code(&body), Duration::ZERO));
                }
                i += 1;
            }
            seen
        })
    };
    tokio::time::sleep(Duration::from_millis(800)).await;
    let pid = redis.pid().expect("redis pid");
    redis.kill();
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    let seen = traffic.await.expect("traffic");
    assert!(seen.len() > 10, "{} requests", seen.len());
    for (status, code, took) in &seen {
        // 200, or 429 with RATE_LIMITED: never a 5xx, never an internal error.
        match code.as_deref() {
            None | Some("INVALID_EMAIL_OR_PASSWORD") => assert_eq!(*status, 200, "{seen:?}"),
            Some("RATE_LIMITED") => assert_eq!(*status, 429, "{seen:?}"),
            other => panic!("{other:?} in {seen:?}"),
        }
        assert!(*took < Duration::from_secs(2), "a request took {took:?}");
    }

    // Each replica now counts on its own: the budget of 3 applies per replica.
    for api in &apis {
        fresh_window().await;
        let ip = format!(
            "203.0.113.{}",
            10 + apis
                .iter()
                .position(|a| a.addr() == api.addr())
                .expect("index")
        );
        for i in 0..3 {
            let (status, body) = sign_in_from(api, &ip, i).await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(
                error_code(&body).as_deref(),
                Some("INVALID_EMAIL_OR_PASSWORD"),
                "{body}"
            );
        }
        let (_, body) = sign_in_from(api, &ip, 3).await;
        assert_eq!(error_code(&body).as_deref(), Some("RATE_LIMITED"), "{body}");
        assert_eq!(fallback_gauge(api).await, 1.0, "{}", api.addr());
    }
    // …and a client gets a budget per replica while Redis is gone (not a shared one).
    fresh_window().await;
    for api in &apis {
        let (_, body) = sign_in_from(api, "203.0.113.20", 0).await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("INVALID_EMAIL_OR_PASSWORD"),
            "{body}"
        );
    }
    for (proc, _) in &mut nodes {
        let log = proc.log_text();
        assert_eq!(
            count_lines(&log, LOST),
            1,
            "one line per transition:\n{log}"
        );
        assert_eq!(count_lines(&log, BACK), 0, "{log}");
    }

    // Redis back (empty, same port): the replicas reconnect and share the budget again.
    redis.restart();
    for api in &apis {
        // A credential request lets the limiter try Redis (at most once a second).
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let _ = sign_in_from(api, "203.0.113.30", 0).await;
            if fallback_gauge(api).await == 0.0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} never used Redis again",
                api.addr()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    assert_shared_budget(&all, "203.0.113.31").await;
    for (proc, _) in &mut nodes {
        let log = proc.log_text();
        assert_eq!(count_lines(&log, LOST), 1, "{log}");
        assert_eq!(count_lines(&log, BACK), 1, "{log}");
    }
    assert!(
        redis
            .command(&["KEYS", "*"])
            .strings()
            .iter()
            .all(|k| k.starts_with(prefix))
    );
}

/// Redis unreachable at boot: the service starts (SQLite, one replica), says so in its log and
/// metric, limits in memory, and takes Redis up when it appears.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_redis_at_boot_still_serves_and_is_used_once_it_appears() {
    let dir = tempfile::tempdir().expect("tempdir");
    let database_url = format!("sqlite://{}", dir.path().join("a.db").display());
    let port = RedisServer::free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let mut node = replica(&database_url, &url, "boot:");
    let addr = node.listening(Duration::from_secs(30));
    let api = Api::at(format!("http://{addr}"));
    assert!(
        node.wait_for_logged("Redis unreachable at boot", Duration::from_secs(5))
            .is_some(),
        "{}",
        node.log_text()
    );
    assert_eq!(fallback_gauge(&api).await, 1.0);
    let token = api.sign_up("ada@example.com").await;
    assert!(api.alive(&token).await);
    // Limits still hold, in memory.
    fresh_window().await;
    for i in 0..3 {
        let (_, body) = sign_in_from(&api, "198.51.100.1", i).await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("INVALID_EMAIL_OR_PASSWORD"),
            "{body}"
        );
    }
    let (_, body) = sign_in_from(&api, "198.51.100.1", 3).await;
    assert_eq!(error_code(&body).as_deref(), Some("RATE_LIMITED"), "{body}");

    // Redis appears on that port: counted there from then on.
    let redis = RedisServer::start_on(port);
    let deadline = Instant::now() + Duration::from_secs(15);
    while fallback_gauge(&api).await != 0.0 {
        assert!(
            Instant::now() < deadline,
            "Redis never used:\n{}",
            node.log_text()
        );
        let _ = sign_in_from(&api, "198.51.100.2", 0).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let keys = redis.command(&["KEYS", "*"]).strings();
    assert!(
        !keys.is_empty() && keys.iter().all(|k| k.starts_with("boot:rl:credential:")),
        "{keys:?}"
    );
    wait_gauge(&api, 0.0, Duration::from_secs(1)).await;
}

/// `APEXKIT_RATE_LIMIT_STORAGE=redis` without `APEXKIT_REDIS_URL`, or with a URL that is not
/// Redis's, stops the boot with a message naming the setting.
#[test]
fn redis_storage_without_a_url_is_a_startup_error() {
    for (extra, needle) in [
        (None, "APEXKIT_REDIS_URL"),
        (
            Some("http://127.0.0.1:6379"),
            "APEXKIT_REDIS_URL must start with redis://",
        ),
    ] {
        let mut envs = vec![
            ("DATABASE_URL", "sqlite://:memory:"),
            ("APEXKIT_SECRET", TEST_SECRET),
            ("APEXKIT_LISTEN", "127.0.0.1:0"),
            ("APEXKIT_RATE_LIMIT_STORAGE", "redis"),
        ];
        if let Some(url) = extra {
            envs.push(("APEXKIT_REDIS_URL", url));
        }
        let out = apexkit_cmd(&envs).output().expect("run apexkit");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(stderr.contains(needle), "{stderr}");
    }
}
