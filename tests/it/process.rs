//! The binary as operators run it: concurrent boots, `--migrate-only`, config errors, and the
//! way the Dockerfile starts it.

use std::time::Duration;

use crate::support::{Api, Backend, Proc, TestDb, apexkit_cmd, get_status, on_both};

/// A browser's CORS preflight for a POST to `/graphql` from `origin`.
async fn preflight(api: &Api, origin: &str) -> reqwest::Response {
    api.client
        .request(reqwest::Method::OPTIONS, api.url("/graphql"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap()
}

/// Waits (90 s at most) until a started server listens; returns its base URL.
fn base_of(server: &mut Proc) -> String {
    format!("http://{}", server.listening(Duration::from_secs(90)))
}

on_both!(
    five_processes_boot_at_once_on_an_empty_database,
    migrate_only_applies_then_is_a_no_op
);

async fn five_processes_boot_at_once_on_an_empty_database(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut servers: Vec<Proc> = (0..5)
        .map(|_| {
            Proc::spawn(apexkit_cmd(&[
                ("DATABASE_URL", &db.url),
                ("APEXKIT_LISTEN", "127.0.0.1:0"),
            ]))
        })
        .collect();
    for server in &mut servers {
        let base = tokio::task::block_in_place(|| base_of(server));
        assert_eq!(get_status(&format!("{base}/readyz")).await, Some(200));
    }
    let expected = apexkit::db::migrations::embedded_versions(&db.database_url()).len() as i64;
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM __diesel_schema_migrations")
            .await,
        expected,
        "each migration recorded exactly once"
    );
}

async fn migrate_only_applies_then_is_a_no_op(backend: Backend) {
    let db = TestDb::new(backend).await;
    for _ in 0..2 {
        let out = apexkit_cmd(&[("DATABASE_URL", &db.url)])
            .arg("--migrate-only")
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let expected = apexkit::db::migrations::embedded_versions(&db.database_url()).len() as i64;
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM __diesel_schema_migrations")
            .await,
        expected
    );
}

#[test]
fn bad_configuration_is_a_clear_startup_error() {
    let out = apexkit_cmd(&[("DATABASE_URL", "mysql://localhost/db")])
        .arg("--migrate-only")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unsupported scheme") && err.contains("mysql"),
        "{err}"
    );

    let out = apexkit_cmd(&[("APEXKIT_ENV", "production")])
        .arg("--migrate-only")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("APEXKIT_SECRET") && err.contains("APEXKIT_BASE_URL"),
        "{err}"
    );

    let out = apexkit_cmd(&[
        ("APEXKIT_ENV", "production"),
        ("APEXKIT_SECRET", "too-short"),
        ("APEXKIT_BASE_URL", "https://auth.example.com"),
    ])
    .arg("--migrate-only")
    .output()
    .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 32 bytes"));

    let help = apexkit_cmd(&[]).arg("--help").output().expect("run");
    let help = String::from_utf8_lossy(&help.stdout);
    for var in [
        "DATABASE_URL",
        "APEXKIT_ENV",
        "APEXKIT_LISTEN",
        "APEXKIT_BASE_URL",
        "APEXKIT_SECRET",
    ] {
        assert!(help.contains(var), "--help documents {var}");
    }
}

/// `ENV KEY=value` lines of the Dockerfile.
fn dockerfile_env() -> Vec<(String, String)> {
    include_str!("../../Dockerfile")
        .lines()
        .filter_map(|l| l.trim().strip_prefix("ENV "))
        .filter_map(|kv| kv.trim().split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boots_the_way_the_dockerfile_starts_it() {
    let env = dockerfile_env();
    let get = |k: &str| env.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    assert_eq!(get("APEXKIT_ENV").as_deref(), Some("production"));
    assert_eq!(get("APEXKIT_LISTEN").as_deref(), Some("0.0.0.0:4000"));
    let dockerfile = include_str!("../../Dockerfile");
    assert!(dockerfile.contains("ENTRYPOINT [\"/usr/local/bin/apexkit\"]"));
    assert!(dockerfile.contains("HEALTHCHECK") && dockerfile.contains("/healthz"));

    let dir = tempfile::tempdir().unwrap();
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        // Same host binding as the image, a free port instead of 4000.
        .map(|(k, v)| {
            if k == "APEXKIT_LISTEN" {
                (k, "0.0.0.0:0".to_owned())
            } else {
                (k, v)
            }
        })
        .collect();
    vars.push((
        "APEXKIT_SECRET".into(),
        "0123456789abcdef0123456789abcdef".into(),
    ));
    vars.push(("APEXKIT_BASE_URL".into(), "https://auth.example.com".into()));
    let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();

    // Init step, then the entrypoint with no arguments, in the image's working directory.
    let init = apexkit_cmd(&refs)
        .current_dir(dir.path())
        .arg("--migrate-only")
        .output()
        .expect("run");
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    assert!(
        dir.path().join("apexkit.db").exists(),
        "default SQLite file in the working directory"
    );

    let mut cmd = apexkit_cmd(&refs);
    cmd.current_dir(dir.path());
    let mut server = Proc::spawn(cmd);
    let api = Api::at(tokio::task::block_in_place(|| base_of(&mut server)));
    assert_eq!(get_status(&api.url("/healthz")).await, Some(200));
    assert_eq!(get_status(&api.url("/readyz")).await, Some(200));

    let client = &api.client;
    let page = client
        .get(api.url("/graphql"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    let text = page.text().await.unwrap();
    assert!(
        !text.to_lowercase().contains("graphiql"),
        "no GraphiQL in production"
    );
    let introspection: serde_json::Value = client
        .post(api.url("/graphql"))
        .json(&serde_json::json!({ "query": "{ __schema { types { name } } }" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        introspection["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED",
        "introspection off in production: {introspection}"
    );
    // Cookies are Secure over an https base URL.
    let signup = client
        .post(api.url("/graphql"))
        .json(&serde_json::json!({ "query": "mutation { signUpEmail(input: {name: \"A\", email: \"a@example.com\", password: \"correct horse battery staple\"}) { token } }" }))
        .send()
        .await
        .unwrap();
    let cookie = signup.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.starts_with("__Secure-apexkit.session_token=") && cookie.contains("Secure"),
        "{cookie}"
    );

    // No development defaults in production: the example app's origin is not trusted.
    assert_eq!(preflight(&api, "http://127.0.0.1:5173").await.status(), 403);

    // SIGTERM as PID 1 would get it: a clean exit 0.
    server.terminate();
    let (exited, _) = tokio::task::block_in_place(|| server.wait_exit(Duration::from_secs(10)));
    let status = exited.expect("exits after SIGTERM");
    assert!(status.success(), "{status:?}");
}

/// `cargo run` plus `npm --prefix examples/web run dev` work with nothing configured: the
/// service on `http://127.0.0.1:4000` (its base URL, as the contract says) and the app on
/// `http://127.0.0.1:5173`, an origin development trusts while `APEXKIT_TRUSTED_ORIGINS` is
/// unset. Same host, so one site: the session cookie goes along with the app's requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn development_defaults_serve_the_example_app() {
    const APP: &str = "http://127.0.0.1:5173";
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("dev.db").display());
    let mut server = Proc::start(&[("DATABASE_URL", &db), ("APEXKIT_LISTEN", "127.0.0.1:0")]);
    let api = Api::at(tokio::task::block_in_place(|| base_of(&mut server)));
    let ready = tokio::task::block_in_place(|| {
        server.wait_for_logged("apexkit ready", Duration::from_secs(10))
    })
    .expect("ready line");
    assert!(ready.contains(&api.base) && ready.contains(APP), "{ready}");

    let answer = preflight(&api, APP).await;
    assert_eq!(answer.status(), 204);
    assert_eq!(answer.headers()["access-control-allow-origin"], APP);
    assert_eq!(answer.headers()["access-control-allow-credentials"], "true");
    // A cookie-setting mutation from the app's origin goes through, and a reset link may point
    // back to the app.
    let (status, headers, body) = api
        .post_raw(
            &serde_json::json!({ "query": "mutation { signUpEmail(input: {name: \"A\", email: \"a@example.com\", password: \"correct horse battery staple\"}) { user { id } } }" }),
            &[("origin", APP)],
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        body["data"]["signUpEmail"]["user"]["id"].is_string(),
        "{body}"
    );
    assert_eq!(headers["access-control-allow-origin"], APP);
    assert!(headers.get("set-cookie").is_some());
    let reset = api
        .gql(
            "mutation($input: RequestPasswordResetInput!) { requestPasswordReset(input: $input) }",
            serde_json::json!({ "input": { "email": "a@example.com", "redirectTo": format!("{APP}/reset-password") } }),
        )
        .await;
    assert_eq!(reset["data"]["requestPasswordReset"], true, "{reset}");
    // Development prints the mail: the link goes to the app.
    let mailed = tokio::task::block_in_place(|| {
        server.wait_for_logged(
            &format!("{APP}/reset-password?token="),
            Duration::from_secs(10),
        )
    });
    assert!(mailed.is_some(), "{}", server.log_text());

    // Listing any origin replaces the default.
    let other = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", other.path().join("dev.db").display());
    let mut listed = Proc::start(&[
        ("DATABASE_URL", &db),
        ("APEXKIT_LISTEN", "127.0.0.1:0"),
        ("APEXKIT_TRUSTED_ORIGINS", "http://localhost:3000"),
    ]);
    let api = Api::at(tokio::task::block_in_place(|| base_of(&mut listed)));
    assert_eq!(preflight(&api, APP).await.status(), 403);
    assert_eq!(preflight(&api, "http://localhost:3000").await.status(), 204);
}
