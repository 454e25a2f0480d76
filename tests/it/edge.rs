//! Issue 13, the edge: connection limits and timeouts (item 5), string inputs with NUL (item 8),
//! the password blocklist (item 9), security headers (item 12), the metrics listener (item 13).

use std::time::{Duration, Instant};

use apexkit::Config;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Backend, Proc, SmtpSink, TestApp, TestDb, code, get_status, on_both};

/// Reads until the server closes the connection (EOF or reset), for at most `within`; returns
/// what was read, or `None` if the connection was still open at the end.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .ok()
    .map(|()| seen)
}

// --- item 5: header-read timeout, keep-alive timeout, connection cap ---

fn quick_timeouts(c: &mut Config) {
    c.server.header_read_timeout = 1;
    c.server.keep_alive_timeout = 1;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trickling_its_headers_is_cut_off() {
    let app = TestApp::builder(Backend::Sqlite)
        .config(quick_timeouts)
        .spawn()
        .await;
    // Before the connect: the server's deadline runs from its accept, which comes later.
    let started = Instant::now();
    let mut stream = TcpStream::connect(app.addr()).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .unwrap();
    let (mut read, mut write) = stream.into_split();
    // A header line, one byte every 100 ms: always "active", never done.
    let trickle = tokio::spawn(async move {
        for b in b"X-Slow: ".iter().chain([b'a'; 200].iter()).cycle() {
            if write.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut seen = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(15), read.read_to_end(&mut seen)).await;
    trickle.abort();
    assert!(
        closed.is_ok(),
        "the connection was still open after 15 s of trickled headers"
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(1),
        "cut before the timeout: {elapsed:?}"
    );
    assert!(
        !String::from_utf8_lossy(&seen).contains("200 OK"),
        "no answer to a request whose headers never ended"
    );
    // Well-behaved clients are still served.
    let resp = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed() {
    let app = TestApp::builder(Backend::Sqlite)
        .config(quick_timeouts)
        .spawn()
        .await;
    // A connection that never sends a byte is closed after the header timeout.
    let mut silent = TcpStream::connect(app.addr()).await.unwrap();
    // A keep-alive connection, idle after its first answer, is closed after the idle timeout.
    let mut stream = TcpStream::connect(app.addr()).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains("\r\n\r\n") {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before answering");
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200"));
    // The connection stays usable within the idle timeout...
    tokio::time::sleep(Duration::from_millis(300)).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let n = stream.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // ...and is closed once idle for longer.
    assert!(
        read_until_closed(&mut stream, Duration::from_secs(15))
            .await
            .is_some(),
        "an idle keep-alive connection was still open after 15 s"
    );
    assert_eq!(
        read_until_closed(&mut silent, Duration::from_secs(15)).await,
        Some(Vec::new()),
        "a silent connection was still open after 15 s (or got an answer)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait_for_a_slot() {
    let app = TestApp::builder(Backend::Sqlite)
        .config(|c| {
            c.server.header_read_timeout = 3;
            c.server.keep_alive_timeout = 1;
            c.server.max_connections = 4;
        })
        .spawn()
        .await;
    let mut idle = Vec::new();
    for _ in 0..6 {
        idle.push(TcpStream::connect(app.addr()).await.unwrap());
    }
    // Four of them hold every slot; this request waits in the backlog...
    let (client, url) = (app.client.clone(), app.url("/healthz"));
    let fresh = tokio::spawn(async move { client.get(url).send().await.map(|r| r.status()) });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !fresh.is_finished(),
        "answered while idle connections held every slot: the cap is not enforced"
    );
    // ...and is served once the idle ones time out.
    let status = tokio::time::timeout(Duration::from_secs(20), fresh)
        .await
        .expect("a fresh request is served once the idle connections time out")
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
    for stream in &mut idle {
        assert!(
            read_until_closed(stream, Duration::from_secs(15))
                .await
                .is_some(),
            "an idle connection was never closed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_soft_open_file_limit_is_raised_at_start() {
    let db = TestDb::new(Backend::Sqlite).await;
    let mut sh = std::process::Command::new("sh");
    sh.arg("-c")
        .arg("ulimit -S -n 256 && exec \"$0\"")
        .arg(env!("CARGO_BIN_EXE_apexkit"))
        .env_clear()
        .env("DATABASE_URL", &db.url)
        .env("APEXKIT_LISTEN", "127.0.0.1:0")
        .stdin(std::process::Stdio::null());
    let mut proc = Proc::spawn(sh);
    // Once it listens, start-up (where the limit is raised) is over.
    let listening =
        tokio::task::block_in_place(|| proc.wait_listening(Duration::from_secs(60))).is_some();
    let field = |text: &str, n: usize| {
        text.lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l.split_whitespace().nth(n).map(str::to_owned))
    };
    let limits =
        std::fs::read_to_string(format!("/proc/{}/limits", proc.child.id())).unwrap_or_default();
    drop(proc);
    assert!(listening, "apexkit did not start");
    let hard = field(&std::fs::read_to_string("/proc/self/limits").unwrap(), 4).unwrap();
    assert_ne!(hard, "256", "the test needs a hard limit above 256");
    assert_eq!(
        field(&limits, 3),
        Some(hard),
        "soft open-file limit raised to the hard one"
    );
}

// --- item 12: security headers ---

on_both!(security_headers_everywhere);

async fn security_headers_everywhere(backend: Backend) {
    let https = TestApp::builder(backend)
        .config(|c| {
            c.server.base_url = Some("https://auth.example.com".to_owned());
        })
        .spawn()
        .await;
    for path in [
        "/healthz",
        "/graphql",
        "/nowhere",
        "/reset-password?token=x",
    ] {
        let resp = https.client.get(https.url(path)).send().await.unwrap();
        let h = resp.headers();
        assert_eq!(
            h.get("strict-transport-security")
                .map(|v| v.to_str().unwrap()),
            Some("max-age=31536000"),
            "{path}"
        );
        assert_eq!(
            h.get("x-content-type-options").unwrap(),
            "nosniff",
            "{path}"
        );
    }
    let resp = https
        .client
        .post(https.url("/graphql"))
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert!(resp.headers().contains_key("strict-transport-security"));
    drop(https);

    let custom = TestApp::builder(backend)
        .config(|c| {
            c.server.base_url = Some("https://auth.example.com".to_owned());
            c.server.hsts_max_age = 600;
        })
        .spawn()
        .await;
    let resp = custom
        .client
        .get(custom.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["strict-transport-security"], "max-age=600");
    drop(custom);

    let off = TestApp::builder(backend)
        .config(|c| {
            c.server.base_url = Some("https://auth.example.com".to_owned());
            c.server.hsts_max_age = 0;
        })
        .spawn()
        .await;
    let resp = off.client.get(off.url("/healthz")).send().await.unwrap();
    assert!(!resp.headers().contains_key("strict-transport-security"));
    drop(off);

    // Plain http: never HSTS. HTML pages (GraphiQL included) refuse to be framed.
    let http = TestApp::spawn(backend).await;
    let resp = http.client.get(http.url("/healthz")).send().await.unwrap();
    assert!(!resp.headers().contains_key("strict-transport-security"));
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    let graphiql = http
        .client
        .get(http.url("/graphql"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert!(
        graphiql.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    for page in [graphiql, {
        http.client
            .get(http.url("/reset-password?token=x"))
            .send()
            .await
            .unwrap()
    }] {
        let h = page.headers();
        assert_eq!(h["x-frame-options"], "DENY");
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
        assert_eq!(h["x-content-type-options"], "nosniff");
    }
}

// --- item 13: metrics on a separate listener ---

on_both!(metrics_listener_in_production_and_development);

async fn metrics_listener_in_production_and_development(backend: Backend) {
    let db = TestDb::new(backend).await;

    // Production without APEXKIT_METRICS_LISTEN: no /metrics anywhere public.
    let app = TestApp::on(&db).production().spawn().await;
    assert_eq!(app.metrics, None);
    assert_eq!(get_status(&app.url("/metrics")).await, Some(404));
    assert_eq!(get_status(&app.url("/healthz")).await, Some(200));
    drop(app);

    // Production with it: only the metrics listener has /metrics, and nothing else.
    let app = TestApp::on(&db)
        .production()
        .config(|c| c.observability.metrics_listen = Some("127.0.0.1:0".parse().unwrap()))
        .spawn()
        .await;
    let metrics = app.metrics.clone().expect("metrics listener bound");
    assert_eq!(get_status(&app.url("/metrics")).await, Some(404));
    let resp = app
        .client
        .get(format!("{metrics}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("apexkit_"));
    assert_eq!(get_status(&format!("{metrics}/healthz")).await, Some(404));
    assert_eq!(get_status(&format!("{metrics}/graphql")).await, Some(404));
    // It shuts down with the service.
    drop(app);
    let mut closed = false;
    for _ in 0..100 {
        if get_status(&format!("{metrics}/metrics")).await.is_none() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(closed, "the metrics listener outlived the service");

    // Development: on the main listener, and on the metrics listener when set.
    let app = TestApp::on(&db)
        .config(|c| c.observability.metrics_listen = Some("127.0.0.1:0".parse().unwrap()))
        .spawn()
        .await;
    assert_eq!(get_status(&app.url("/metrics")).await, Some(200));
    assert_eq!(
        get_status(&format!("{}/metrics", app.metrics.as_deref().unwrap())).await,
        Some(200)
    );
}

// --- item 8: NUL in string inputs ---

on_both!(nul_in_any_string_input_is_bad_user_input);

async fn nul_in_any_string_input_is_bad_user_input(backend: Backend) {
    let (app, admin) = TestApp::builder(backend).spawn_admin().await;
    let user = app.sign_up("nul@example.com").await;
    let refused = |body: &Value, field: &str, what: &str| {
        assert_eq!(code(body), "BAD_USER_INPUT", "{what}: {body}");
        assert_eq!(
            body["errors"][0]["extensions"]["field"], field,
            "{what}: {body}"
        );
        assert!(body["data"].is_null(), "{what}: nothing ran: {body}");
    };
    // As literals in the document...
    let literals = [
        (&user, r#"mutation { revokeSession(id: "\u0000") }"#, "id"),
        (&admin, r#"{ adminUser(id: "\u0000") { id } }"#, "id"),
        (
            &admin,
            r#"{ adminUserSessions(userId: "\u0000") { id } }"#,
            "userId",
        ),
        (
            &admin,
            r#"mutation { adminSetRole(input: {userId: "\u0000", role: "admin"}) { id } }"#,
            "userId",
        ),
        (
            &admin,
            r#"{ auditEvents(userId: "\u0000") { totalCount } }"#,
            "userId",
        ),
        (
            &admin,
            r#"{ auditEvents(after: "x\u0000") { totalCount } }"#,
            "after",
        ),
        (
            &admin,
            r#"{ adminUsers(search: "\u0000") { totalCount } }"#,
            "search",
        ),
        (
            &admin,
            r#"{ adminUsers(after: "\u0000") { totalCount } }"#,
            "after",
        ),
    ];
    for (token, query, field) in literals {
        let body = app.gql_with(Some(token), query, json!({})).await;
        refused(&body, field, query);
    }
    // ...and as variables.
    let variables = [
        (
            &user,
            "mutation($v: ID!) { revokeSession(id: $v) }",
            json!("\u{0}"),
            "v",
        ),
        (
            &admin,
            "query($v: ID!) { adminUser(id: $v) { id } }",
            json!("\u{0}"),
            "v",
        ),
        (
            &admin,
            "query($v: ID!) { adminUserSessions(userId: $v) { id } }",
            json!("a\u{0}b"),
            "v",
        ),
        (
            &admin,
            "mutation($v: AdminSetRoleInput!) { adminSetRole(input: $v) { id } }",
            json!({ "userId": "\u{0}", "role": "admin" }),
            "userId",
        ),
        (
            &admin,
            "query($v: ID) { auditEvents(userId: $v) { totalCount } }",
            json!("\u{0}"),
            "v",
        ),
        (
            &admin,
            "query($v: String) { adminUsers(search: $v) { totalCount } }",
            json!("\u{0}"),
            "v",
        ),
        (
            &admin,
            "query($v: String) { adminUsers(after: $v) { totalCount } }",
            json!("\u{0}"),
            "v",
        ),
    ];
    for (token, query, value, field) in variables {
        let body = app
            .gql_with(Some(token), query, json!({ "v": value }))
            .await;
        refused(&body, field, query);
    }
    // A sign-up with a NUL in its name creates nobody.
    let body = app
        .sign_up_as("A\u{0}da", "nul2@example.com", "a fine long password")
        .await;
    refused(&body, "name", "signUpEmail");
    assert_eq!(
        app.db
            .count("SELECT COUNT(*) AS n FROM \"user\" WHERE email = 'nul2@example.com'")
            .await,
        0
    );
    // The same inputs without the NUL are answered as usual.
    let body = app
        .gql_with(
            Some(&admin),
            r#"{ adminUser(id: "none") { id } }"#,
            json!({}),
        )
        .await;
    assert!(
        body["errors"].is_null() || code(&body) == "NOT_FOUND",
        "{body}"
    );
}

// --- item 9: guessable passwords, with context ---

on_both!(guessable_passwords_are_refused_on_every_path);

async fn guessable_passwords_are_refused_on_every_path(backend: Backend) {
    let smtp = SmtpSink::start();
    let (app, admin) = TestApp::builder(backend).smtp(&smtp).spawn_admin().await;
    let hashes_before = app.hash_count();
    let compromised = |body: &Value, what: &str| {
        assert_eq!(code(body), "PASSWORD_COMPROMISED", "{what}: {body}");
    };
    // Sign-up: the issue's four, and the user's own email and name.
    for password in ["apexkit123", "aaaaaaaa", " password123", "password1!"] {
        let body = app.sign_up_as("Grace", "grace@example.com", password).await;
        compromised(&body, password);
    }
    let body = app
        .sign_up_as("Grace Hopper", "grace@example.com", "gracehopper1906")
        .await;
    compromised(&body, "name");
    let body = app
        .sign_up_as("G", "hopper.cobol@example.com", "Hopper.Cobol!")
        .await;
    compromised(&body, "email");
    assert_eq!(
        app.db
            .count("SELECT COUNT(*) AS n FROM \"user\" WHERE email <> 'admin@example.com'")
            .await,
        0,
        "nobody was created"
    );
    assert_eq!(
        app.hash_count(),
        hashes_before,
        "refused before any hashing"
    );

    // changePassword, with the name and email of the signed-in user.
    let token = app
        .sign_up_as(
            "Grace Hopper",
            "grace@example.com",
            crate::support::PASSWORD,
        )
        .await["data"]["signUpEmail"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    for password in ["Hopper2024!", "grace-grace", "apexkit123"] {
        let body = app
            .gql_with(
                Some(&token),
                "mutation($i: ChangePasswordInput!) { changePassword(input: $i) { token } }",
                json!({ "i": { "currentPassword": crate::support::PASSWORD, "newPassword": password } }),
            )
            .await;
        compromised(&body, password);
    }

    // resetPassword: the token's user gives the context.
    let asked = app
        .gql(
            "mutation($i: RequestPasswordResetInput!) { requestPasswordReset(input: $i) }",
            json!({ "i": { "email": "grace@example.com" } }),
        )
        .await;
    assert_eq!(asked["data"]["requestPasswordReset"], true, "{asked}");
    let reset_token = smtp
        .latest("grace@example.com", "Reset your password")
        .await
        .token();
    for password in ["hopper hopper", "Grace1906", "password1!"] {
        let body = app
            .gql(
                "mutation($i: ResetPasswordInput!) { resetPassword(input: $i) }",
                json!({ "i": { "token": reset_token, "newPassword": password } }),
            )
            .await;
        compromised(&body, password);
    }

    // Admin create and set, with the target user's context.
    let body = app
        .gql_with(
            Some(&admin),
            "mutation($i: AdminCreateUserInput!) { adminCreateUser(input: $i) { id } }",
            json!({ "i": { "name": "Alan Turing", "email": "alan@example.com", "password": "turing1912" } }),
        )
        .await;
    compromised(&body, "adminCreateUser");
    let created = app
        .gql_with(
            Some(&admin),
            "mutation($i: AdminCreateUserInput!) { adminCreateUser(input: $i) { id } }",
            json!({ "i": { "name": "Alan Turing", "email": "alan@example.com", "password": crate::support::PASSWORD } }),
        )
        .await;
    let alan = created["data"]["adminCreateUser"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_owned();
    for password in ["Alan.Turing!", "aaaaaaaa", "12345678"] {
        let body = app
            .gql_with(
                Some(&admin),
                "mutation($i: AdminSetUserPasswordInput!) { adminSetUserPassword(input: $i) }",
                json!({ "i": { "userId": alan, "newPassword": password } }),
            )
            .await;
        compromised(&body, password);
    }
    // The password itself is used as given: leading spaces and case are kept.
    let body = app
        .gql_with(
            Some(&admin),
            "mutation($i: AdminSetUserPasswordInput!) { adminSetUserPassword(input: $i) }",
            json!({ "i": { "userId": alan, "newPassword": "  Glacier Tandem Orbit" } }),
        )
        .await;
    assert_eq!(body["data"]["adminSetUserPassword"], true, "{body}");
    let signed = app
        .sign_in("alan@example.com", "glacier tandem orbit")
        .await;
    assert_eq!(code(&signed), "INVALID_EMAIL_OR_PASSWORD");
    let signed = app
        .sign_in("alan@example.com", "  Glacier Tandem Orbit")
        .await;
    assert!(
        signed["data"]["signInEmail"]["token"].is_string(),
        "{signed}"
    );
}
