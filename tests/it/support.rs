//! Test harness: fresh databases, a running app, and a GraphQL client that reads like the domain.

use std::time::Duration;

use apexkit::config::Cli;
use apexkit::db::{Conn, DatabaseUrl, Pool, PoolOptions};
use apexkit::{App, Config};
use clap::Parser;
use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// Generates a `sqlite` and a `postgres` test for each named `async fn(Backend)`.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::support::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::support::Backend::Postgres).await
                }
            }
        )*
    };
}
pub(crate) use on_both;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// PostgreSQL server URL the tests create their databases through.
pub fn pg_admin_url() -> String {
    std::env::var("APEXKIT_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn random_suffix() -> String {
    let mut b = [0u8; 6];
    getrandom::fill(&mut b).expect("rng");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A fresh, empty database; removed when dropped.
pub struct TestDb {
    pub url: String,
    pg_name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                let path = dir.path().join("apexkit.db");
                Self {
                    url: format!("sqlite://{}", path.display()),
                    pg_name: None,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => {
                let name = format!("apexkit_t_{}", random_suffix());
                let admin = pg_admin_url();
                let mut conn = apexkit::db::connect_postgres(&admin, 0)
                    .await
                    .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is required: {e}"));
                diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
                    .execute(&mut conn)
                    .await
                    .expect("create database");
                let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
                Self {
                    url: format!("{base}/{name}"),
                    pg_name: Some(name),
                    _dir: None,
                }
            }
        }
    }

    pub fn database_url(&self) -> DatabaseUrl {
        DatabaseUrl::parse(&self.url).expect("test url")
    }

    /// A pool of our own onto the test database, for assertions on rows.
    pub fn pool(&self) -> Pool {
        Pool::new(
            &self.database_url(),
            PoolOptions {
                max_size: 2,
                checkout_timeout: Duration::from_secs(10),
                statement_timeout: Duration::from_secs(10),
                sqlite_max_size_mb: None,
            },
        )
    }

    /// Runs a `SELECT COUNT(*) AS n …` and returns `n`.
    pub async fn count(&self, sql: &str) -> i64 {
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let pool = self.pool();
        let mut conn = pool.get().await.expect("test connection");
        let rows: Vec<N> = match &mut conn {
            Conn::Postgres(c) => diesel::sql_query(sql).load(&mut **c).await,
            Conn::Sqlite(c) => diesel::sql_query(sql).load(&mut **c).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows.iter().map(|r| r.n).next().unwrap_or(0)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        // Drop runs outside async code: use a short-lived runtime on its own thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok(mut conn) = apexkit::db::connect_postgres(&pg_admin_url(), 0).await {
                    let _ = diesel::sql_query(format!(
                        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                    ))
                    .execute(&mut conn)
                    .await;
                }
            });
        })
        .join();
    }
}

/// Configuration for a test app on `url`, listening on a free port.
pub fn test_config(url: &str) -> Config {
    Cli::try_parse_from(["apexkit", "--database-url", url, "--listen", "127.0.0.1:0"])
        .expect("test config")
        .config
}

/// A running app and a client for it.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub db: TestDb,
    /// Password hashes and verifications this app has computed.
    pub hashes: std::sync::Arc<std::sync::atomic::AtomicU64>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Self {
        let db = TestDb::new(backend).await;
        Self::spawn_on(db, tweak).await
    }

    /// A second instance on this app's database (a replica, or the same service restarted).
    /// Drop it before `self`: the database belongs to `self`.
    pub async fn spawn_sibling(&self, tweak: impl FnOnce(&mut Config)) -> Self {
        let db = TestDb {
            url: self.db.url.clone(),
            pg_name: None,
            _dir: None,
        };
        Self::spawn_on(db, tweak).await
    }

    pub async fn spawn_on(db: TestDb, tweak: impl FnOnce(&mut Config)) -> Self {
        let mut config = test_config(&db.url);
        tweak(&mut config);
        let app = App::build(config).await.expect("app builds");
        let addr = app.local_addr();
        let hashes = app.hash_counter();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(app.run_until(async move {
            let _ = rx.await;
        }));
        Self {
            base: format!("http://{addr}"),
            client: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("client"),
            db,
            hashes,
            shutdown: Some(tx),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POSTs a GraphQL operation, optionally as a bearer, and returns the JSON body.
    pub async fn gql_with(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut req = self
            .client
            .post(self.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.expect("request");
        assert_eq!(resp.status(), 200, "GraphQL responses are HTTP 200");
        resp.json().await.expect("json body")
    }

    pub async fn gql(&self, query: &str, variables: Value) -> Value {
        self.gql_with(None, query, variables).await
    }

    pub async fn sign_up_as(&self, name: &str, email: &str, password: &str) -> Value {
        self.gql(
            "mutation($input: SignUpEmailInput!) { signUpEmail(input: $input) {
                token user { id name email emailVerified image createdAt updatedAt }
                session { id userId expiresAt createdAt updatedAt ipAddress userAgent current } } }",
            json!({ "input": { "name": name, "email": email, "password": password } }),
        )
        .await
    }

    /// Signs up and returns the session token.
    pub async fn sign_up(&self, email: &str) -> String {
        let body = self.sign_up_as("Ada", email, PASSWORD).await;
        body["data"]["signUpEmail"]["token"]
            .as_str()
            .unwrap_or_else(|| panic!("sign-up failed: {body}"))
            .to_owned()
    }

    pub async fn sign_in(&self, email: &str, password: &str) -> Value {
        self.gql(
            "mutation($input: SignInEmailInput!) { signInEmail(input: $input) { token user { id email } session { id } } }",
            json!({ "input": { "email": email, "password": password } }),
        )
        .await
    }

    /// The `session` query as the holder of `token`.
    pub async fn session(&self, token: &str) -> Value {
        self.gql_with(
            Some(token),
            "{ session { session { id userId expiresAt updatedAt current } user { id email } } }",
            json!({}),
        )
        .await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub const PASSWORD: &str = "correct horse battery staple";

/// The `extensions.code` of the first error.
pub fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"))
}

/// A deployment secret for tests that need one stable across app instances.
pub const TEST_SECRET: &str = "test-secret-test-secret-test-secret-0123";

// --- issue 5: administration helpers ---

impl TestDb {
    /// Runs a statement; `Err` with the database's message when it fails.
    pub async fn try_execute(&self, sql: &str) -> Result<usize, String> {
        let pool = self.pool();
        let mut conn = pool.get().await.expect("test connection");
        match &mut conn {
            Conn::Postgres(c) => diesel::sql_query(sql).execute(&mut **c).await,
            Conn::Sqlite(c) => diesel::sql_query(sql).execute(&mut **c).await,
        }
        .map_err(|e| e.to_string())
    }

    pub async fn execute(&self, sql: &str) -> usize {
        self.try_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

pub const ADMIN_EMAIL: &str = "admin@example.com";

impl TestApp {
    /// An app whose `APEXKIT_ADMIN_EMAILS` names [`ADMIN_EMAIL`], and that admin's token.
    pub async fn spawn_with_admin(backend: Backend) -> (Self, String) {
        Self::spawn_admin_with(backend, |_| {}).await
    }

    pub async fn spawn_admin_with(
        backend: Backend,
        tweak: impl FnOnce(&mut Config),
    ) -> (Self, String) {
        let app = Self::spawn_with(backend, |c| {
            c.admin.emails = vec![ADMIN_EMAIL.to_owned()];
            tweak(c);
        })
        .await;
        let token = app.sign_up(ADMIN_EMAIL).await;
        // A listed address earns the role only once verified (issue 13).
        app.verify_address(ADMIN_EMAIL).await;
        (app, token)
    }

    /// A one-time token of `purpose` (`verify-email`, `reset-password`) for the user holding
    /// `email`, expiring at `expires_at` (SQL timestamp text), planted as the mail flows store it
    /// (only its hash); returns the token a mailed link would carry.
    pub async fn plant_token(&self, email: &str, purpose: &str, expires_at: &str) -> String {
        let token = apexkit::auth::SessionToken::generate().expect("token");
        let id = random_suffix();
        // (Not `self.db.execute`: diesel's `RunQueryDsl::execute` would take the call here.)
        TestDb::execute(
            &self.db,
            &format!(
                "INSERT INTO verification (id, identifier, value, expires_at, created_at, updated_at, user_id, purpose) \
                 SELECT 'v{id}', '{}', email, '{expires_at}', '2020-01-01 00:00:00', '2020-01-01 00:00:00', id, '{purpose}' \
                 FROM \"user\" WHERE email = '{email}'",
                token.hash()
            ),
        )
        .await;
        token.expose().to_owned()
    }

    /// Verifies `email` through the real `verifyEmail` operation; returns the user it answers.
    pub async fn verify_address(&self, email: &str) -> Value {
        let token = self
            .plant_token(email, "verify-email", "2999-01-01 00:00:00")
            .await;
        let body = self
            .gql(
                "mutation($t: String!) { verifyEmail(token: $t) { email emailVerified role } }",
                json!({ "t": token }),
            )
            .await;
        let user = data(&body, "verifyEmail").clone();
        assert_eq!(user["emailVerified"], true, "{body}");
        user
    }
}

/// `data.<field>` of a successful response (panics with the body otherwise).
pub fn data<'a>(body: &'a Value, field: &str) -> &'a Value {
    assert!(body.get("errors").is_none(), "unexpected errors: {body}");
    &body["data"][field]
}

impl TestApp {
    /// `GET /.well-known/jwks.json` as a verifier would fetch it.
    pub async fn jwks(&self) -> Value {
        let resp = self
            .client
            .get(self.url("/.well-known/jwks.json"))
            .send()
            .await
            .expect("jwks request");
        assert_eq!(resp.status(), 200);
        resp.json().await.expect("jwks json")
    }

    /// Signs up `email` and returns the whole `signUpEmail` payload, access token included.
    pub async fn sign_up_payload(&self, email: &str) -> Value {
        let body = self
            .gql(
                "mutation($input: SignUpEmailInput!) { signUpEmail(input: $input) {
                    token accessToken accessTokenExpiresAt user { id email role } session { id } } }",
                json!({ "input": { "name": "Ada", "email": email, "password": PASSWORD } }),
            )
            .await;
        assert!(body["errors"].is_null(), "sign-up failed: {body}");
        body["data"]["signUpEmail"].clone()
    }
}

/// A raw POST to `/graphql` with extra headers: status, headers and JSON body, whatever the status.
pub async fn post_raw(
    app: &TestApp,
    body: &Value,
    headers: &[(&str, &str)],
) -> (reqwest::StatusCode, reqwest::header::HeaderMap, Value) {
    let mut req = app.client.post(app.url("/graphql")).json(body);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

// --- issue 7: operations ---

/// Another running app on an existing database (a replica), stopped when dropped.
pub struct Replica {
    pub base: String,
    _shutdown: oneshot::Sender<()>,
}

impl Replica {
    pub async fn spawn(url: &str, tweak: impl FnOnce(&mut Config)) -> Self {
        let mut config = test_config(url);
        tweak(&mut config);
        let app = App::build(config).await.expect("replica builds");
        let addr = app.local_addr();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(app.run_until(async move {
            let _ = rx.await;
        }));
        Self {
            base: format!("http://{addr}"),
            _shutdown: tx,
        }
    }
}

/// Sum of the samples of a Prometheus metric whose labels include every `labels` pair
/// (0 when absent), read from a `/metrics` text body.
pub fn metric_value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, label_text) = match series.split_once('{') {
                Some((m, rest)) => (m, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if metric != name {
                return None;
            }
            let all = labels
                .iter()
                .all(|(k, v)| label_text.contains(&format!("{k}=\"{v}\"")));
            all.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// Mail settings for tests: this SMTP URL, a fast outbox, quick retries.
pub fn fast_mail(config: &mut Config, smtp_url: &str) {
    config.mail.smtp_url = Some(apexkit::config::Secret::new(smtp_url));
    config.mail.from = Some("Apexkit Test <auth@example.com>".to_owned());
    config.mail.poll_interval_ms = 50;
    config.mail.retry_base_ms = 100;
    config.mail.retry_max_ms = 400;
    config.mail.limit = 50;
}

impl TestApp {
    /// Starts a second app on this app's database.
    pub async fn replica(&self, tweak: impl FnOnce(&mut Config)) -> Replica {
        Replica::spawn(&self.db.url, tweak).await
    }
}
