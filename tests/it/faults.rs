//! Database faults, on the real binary and in-process: unreachable at boot (retry, then give
//! up), non-retryable errors (exit at once), PostgreSQL down at boot then coming up, and
//! PostgreSQL restarted mid-traffic. Restarts use a private PostgreSQL started for the test
//! (initdb + pg_ctl in a temp dir, on a free port): the shared server is never touched.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Api, PASSWORD, Proc, TestApp, TestDb, get_status, pg_admin_url};

/// Where initdb and pg_ctl live (`APEXKIT_TEST_PG_BIN` overrides).
fn pg_bin() -> String {
    std::env::var("APEXKIT_TEST_PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A PostgreSQL cluster of the test's own; stopped and deleted on drop.
pub struct PrivatePg {
    dir: tempfile::TempDir,
    pub port: u16,
}

/// Runs a PostgreSQL tool as the `postgres` OS user when we are root (initdb refuses root).
fn pg_tool(tool: &str) -> Command {
    let path = format!("{}/{tool}", pg_bin());
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if is_root {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--", &path]);
        cmd
    } else {
        Command::new(path)
    }
}

fn run_ok(cmd: &mut Command) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .expect("run PostgreSQL tool");
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl PrivatePg {
    /// A fresh cluster, initialised but not started.
    pub fn init() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let _ = Command::new("chown")
            .args(["postgres:postgres", &dir.path().display().to_string()])
            .status();
        let pg = Self {
            dir,
            port: free_port(),
        };
        run_ok(pg_tool("initdb").args([
            "-D",
            &pg.data().display().to_string(),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]));
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn start(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50",
            self.port,
            self.dir.path().display()
        );
        run_ok(pg_tool("pg_ctl").args([
            "-D",
            &self.data().display().to_string(),
            "-o",
            &opts,
            "-l",
            &self.dir.path().join("log").display().to_string(),
            "-w",
            "start",
        ]));
    }

    /// `pg_ctl stop -m fast`: clients are disconnected, in-flight transactions roll back.
    pub fn stop(&self) {
        run_ok(pg_tool("pg_ctl").args([
            "-D",
            &self.data().display().to_string(),
            "-m",
            "fast",
            "-w",
            "stop",
        ]));
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let _ = pg_tool("pg_ctl")
            .args([
                "-D",
                &self.data().display().to_string(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn an_unknown_database_exits_at_once_naming_it() {
    let admin = pg_admin_url();
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    let url = format!("{base}/apexkit_no_such_database_7");
    let started = Instant::now();
    let mut proc = Proc::start(&[
        ("DATABASE_URL", &url),
        ("APEXKIT_LISTEN", "127.0.0.1:0"),
        ("APEXKIT_DB_CONNECT_TIMEOUT", "60"),
    ]);
    let (status, log) = proc.wait_exit(Duration::from_secs(20));
    let status = status.expect("exits");
    assert!(!status.success(), "{log}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "no retrying: took {:?}",
        started.elapsed()
    );
    assert!(
        log.contains("apexkit_no_such_database_7") && log.contains("not retrying"),
        "{log}"
    );
    assert!(
        !log.contains("retrying\n") && !log.contains("unreachable, retrying"),
        "{log}"
    );
}

#[test]
fn a_bad_url_exits_at_once() {
    let mut proc = Proc::start(&[
        ("DATABASE_URL", "postgres://postgres@127.0.0.1:notaport/db"),
        ("APEXKIT_DB_CONNECT_TIMEOUT", "60"),
    ]);
    let (status, log) = proc.wait_exit(Duration::from_secs(20));
    assert!(!status.expect("exits").success());
    assert!(log.contains("not retrying"), "{log}");
}

#[test]
fn an_unreachable_database_is_retried_then_given_up_on() {
    let port = free_port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let started = Instant::now();
    let mut proc = Proc::start(&[("DATABASE_URL", &url), ("APEXKIT_DB_CONNECT_TIMEOUT", "3")]);
    let (status, log) = proc.wait_exit(Duration::from_secs(30));
    let elapsed = started.elapsed();
    assert!(!status.expect("gives up").success(), "{log}");
    let attempts = log.matches("database unreachable, retrying").count();
    assert!(attempts >= 3, "each attempt is logged: {log}");
    assert!(log.contains("still unreachable after 3 s"), "{log}");
    assert!(
        elapsed >= Duration::from_millis(2500) && elapsed < Duration::from_secs(15),
        "bounded by APEXKIT_DB_CONNECT_TIMEOUT: {elapsed:?}"
    );
}

#[test]
fn boots_when_postgres_comes_up_after_the_service() {
    let pg = PrivatePg::init();
    let mut proc = Proc::start(&[
        ("DATABASE_URL", &pg.url()),
        ("APEXKIT_LISTEN", "127.0.0.1:0"),
        ("APEXKIT_DB_CONNECT_TIMEOUT", "60"),
    ]);
    for _ in 0..2 {
        assert!(
            proc.wait_for_line("database unreachable, retrying", Duration::from_secs(20))
                .is_some(),
            "retries are logged: {}",
            proc.log.join("\n")
        );
    }
    pg.start();
    let addr = proc
        .wait_listening(Duration::from_secs(60))
        .unwrap_or_else(|| panic!("never came up:\n{}", proc.log.join("\n")));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let status = rt.block_on(get_status(&format!("http://{addr}/readyz")));
    assert_eq!(status, Some(200));
}

async fn sign_up_at(api: &Api, email: &str) -> Value {
    api.client
        .post(api.url("/graphql"))
        .json(&json!({
            "query": "mutation($i: SignUpEmailInput!) { signUpEmail(input: $i) { token } }",
            "variables": { "i": { "name": "Load", "email": email, "password": PASSWORD } }
        }))
        .send()
        .await
        .expect("HTTP works even when the database does not")
        .json()
        .await
        .expect("JSON body")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_mid_traffic_loses_nothing_and_recovers() {
    let pg = PrivatePg::init();
    pg.start();
    let db = TestDb::at(pg.url());
    let app = TestApp::on(&db)
        .config(|c| {
            c.database.pool_size = 4;
            c.database.pool_timeout_ms = 1000;
        })
        .spawn()
        .await;

    // Four clients sign up continuously; PostgreSQL is restarted under them.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..4 {
        let (api, stop) = (Api::clone(&app), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            let mut refused = Vec::new();
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let email = format!("w{w}-{i}@example.com");
                i += 1;
                let body = sign_up_at(&api, &email).await;
                if body["data"]["signUpEmail"]["token"].is_string() {
                    acknowledged.push(email);
                } else {
                    refused.push(body);
                }
            }
            (acknowledged, refused)
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    tokio::task::block_in_place(|| {
        pg.stop();
        std::thread::sleep(Duration::from_millis(500));
        pg.start();
    });
    let restarted = Instant::now();

    // The service recovers by itself: a sign-up succeeds again within seconds.
    let mut recovered = None;
    while restarted.elapsed() < Duration::from_secs(15) {
        let body = sign_up_at(
            &app,
            &format!("probe-{}@example.com", restarted.elapsed().as_micros()),
        )
        .await;
        if body["data"]["signUpEmail"]["token"].is_string() {
            recovered = Some(restarted.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let recovered = recovered.expect("recovers without a restart");
    assert!(recovered < Duration::from_secs(10), "{recovered:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);

    let mut acknowledged = Vec::new();
    let mut refused = Vec::new();
    for w in workers {
        let (a, r) = w.await.unwrap();
        acknowledged.extend(a);
        refused.extend(r);
    }
    eprintln!(
        "restart mid-traffic: {} acknowledged, {} refused, recovered after {recovered:?}",
        acknowledged.len(),
        refused.len()
    );
    assert!(
        !refused.is_empty(),
        "the restart was felt by in-flight requests"
    );
    for body in &refused {
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "SERVICE_UNAVAILABLE",
            "only SERVICE_UNAVAILABLE during the fault: {body}"
        );
    }

    // Every acknowledged sign-up is there exactly once, and no user lacks its credential.
    let emails = db.strings("SELECT email AS s FROM \"user\"").await;
    let unique: HashSet<&String> = emails.iter().collect();
    assert_eq!(unique.len(), emails.len(), "no duplicates");
    for email in &acknowledged {
        assert!(
            unique.contains(email),
            "acknowledged sign-up {email} is stored"
        );
    }
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM \"user\" u WHERE NOT EXISTS (SELECT 1 FROM account a WHERE a.user_id = u.id)").await,
        0,
        "no half-written user"
    );
    assert!(
        acknowledged.len() > 4,
        "traffic flowed: {}",
        acknowledged.len()
    );
}
