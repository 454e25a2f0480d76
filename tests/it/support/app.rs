//! The app, running in-process on 127.0.0.1:0, and the one way to start it: [`TestApp::builder`]
//! (a fresh database), [`TestApp::replica`] (another instance on this app's database) or
//! [`TestApp::on`] (a database the test manages), then config overrides, then `spawn`.

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use apexkit::config::{Cli, Environment, Secret};
use apexkit::{App, Config};
use clap::Parser;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::client::{Api, data};
use super::db::random_suffix;
use super::mail::{SmtpSink, fast_mail};
use super::{ADMIN_EMAIL, Backend, TEST_SECRET, TestDb};

/// Production settings for tests: [`TEST_SECRET`] and a plain-http base URL.
pub fn production(c: &mut Config) {
    c.server.environment = Environment::Production;
    c.server.secret = Some(Secret::new(TEST_SECRET));
    c.server.base_url = Some("http://127.0.0.1".to_owned());
}

/// A running app, stopped when dropped, and a client for it (it derefs to [`Api`]).
pub struct TestApp {
    api: Api,
    /// `http://…` of the metrics listener, when `metrics_listen` is set.
    pub metrics: Option<String>,
    /// The app's database: its own (removed with it), or a handle for a replica.
    pub db: TestDb,
    /// Password hashes and verifications this app has computed.
    hashes: Arc<AtomicU64>,
    shutdown: Option<oneshot::Sender<()>>,
}

type Override<'a> = Box<dyn FnOnce(&mut Config) + Send + 'a>;

enum Database {
    Fresh(Backend),
    At(String),
}

/// What to start: which database, and config overrides applied in order over the test
/// defaults (loopback, a free port, development).
#[must_use = "a builder does nothing until spawned"]
pub struct TestAppBuilder<'a> {
    database: Database,
    overrides: Vec<Override<'a>>,
}

impl TestApp {
    /// An app on a fresh database of `backend`, which it owns.
    pub fn builder<'a>(backend: Backend) -> TestAppBuilder<'a> {
        TestAppBuilder {
            database: Database::Fresh(backend),
            overrides: Vec::new(),
        }
    }

    /// An app on `db`, which stays the caller's.
    pub fn on<'a>(db: &TestDb) -> TestAppBuilder<'a> {
        TestAppBuilder {
            database: Database::At(db.url.clone()),
            overrides: Vec::new(),
        }
    }

    /// Another instance on this app's database: a replica, or the same service restarted. It
    /// starts from the test defaults, not from this app's overrides. Drop it before `self`: the
    /// database belongs to `self`.
    pub fn replica<'a>(&self) -> TestAppBuilder<'a> {
        Self::on(&self.db)
    }

    /// An app with the test defaults on a fresh database.
    pub async fn spawn(backend: Backend) -> Self {
        Self::builder(backend).spawn().await
    }

    /// Password hashes and verifications this app has computed so far.
    pub fn hash_count(&self) -> u64 {
        self.hashes.load(Ordering::SeqCst)
    }

    /// A one-time token of `purpose` (`verify-email`, `reset-password`) for the user holding
    /// `email`, expiring at `expires_at` (SQL timestamp text), planted as the mail flows store it
    /// (only its hash); returns the token a mailed link would carry.
    pub async fn plant_token(&self, email: &str, purpose: &str, expires_at: &str) -> String {
        let token = apexkit::auth::SessionToken::generate().expect("token");
        let id = random_suffix();
        self.db
            .execute(&format!(
                "INSERT INTO verification (id, identifier, value, expires_at, created_at, updated_at, user_id, purpose) \
                 SELECT 'v{id}', '{}', email, '{expires_at}', '2020-01-01 00:00:00', '2020-01-01 00:00:00', id, '{purpose}' \
                 FROM \"user\" WHERE email = '{email}'",
                token.hash()
            ))
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

impl Deref for TestApp {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl<'a> TestAppBuilder<'a> {
    /// Overrides config, after the defaults and any earlier override.
    pub fn config(mut self, tweak: impl FnOnce(&mut Config) + Send + 'a) -> Self {
        self.overrides.push(Box::new(tweak));
        self
    }

    /// Mail through `sink`: a fast outbox and quick retries.
    pub fn smtp(self, sink: &SmtpSink) -> Self {
        let url = sink.url();
        self.config(move |c| fast_mail(c, &url))
    }

    /// The deployment secret [`TEST_SECRET`], stable across instances (replicas need it to
    /// read each other's signing keys).
    pub fn secret(self) -> Self {
        self.config(|c| c.server.secret = Some(Secret::new(TEST_SECRET)))
    }

    /// Production settings (see [`production`]).
    pub fn production(self) -> Self {
        self.config(production)
    }

    /// The configuration this builder would start with. Only on an existing database
    /// ([`TestApp::on`], [`TestApp::replica`]): a fresh one is made by `spawn`.
    pub fn into_config(self) -> Config {
        let Database::At(url) = &self.database else {
            panic!("into_config needs an existing database: TestApp::on(&db)");
        };
        let url = url.clone();
        self.configure(&url)
    }

    fn configure(self, url: &str) -> Config {
        let mut config =
            Cli::try_parse_from(["apexkit", "--database-url", url, "--listen", "127.0.0.1:0"])
                .expect("test config")
                .config;
        through_pgbouncer(&mut config, url);
        for tweak in self.overrides {
            tweak(&mut config);
        }
        config
    }

    /// Builds the app (boot-time work: migrations, signing keys, admin promotion) without
    /// serving it.
    pub async fn boot(self) -> anyhow::Result<App> {
        App::build(self.into_config()).await
    }

    /// Starts the app and serves it until dropped.
    pub async fn spawn(self) -> TestApp {
        let db = match &self.database {
            Database::Fresh(backend) => TestDb::new(*backend).await,
            Database::At(url) => TestDb::at(url.clone()),
        };
        let config = self.configure(&db.url);
        let app = App::build(config).await.expect("app builds");
        let addr = app.local_addr();
        let metrics = app.metrics_addr().map(|a| format!("http://{a}"));
        let hashes = app.hash_counter();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(app.run_until(async move {
            let _ = rx.await;
        }));
        TestApp {
            api: Api::at(format!("http://{addr}")),
            metrics,
            db,
            hashes,
            shutdown: Some(tx),
        }
    }

    /// Starts the app with [`ADMIN_EMAIL`] in `APEXKIT_ADMIN_EMAILS` (set before the other
    /// overrides), signs that address up and verifies it (a listed address earns the role only
    /// once verified); returns the app and the admin's session token.
    pub async fn spawn_admin(mut self) -> (TestApp, String) {
        self.overrides.insert(
            0,
            Box::new(|c| c.admin.emails = vec![ADMIN_EMAIL.to_owned()]),
        );
        let app = self.spawn().await;
        let token = app.sign_up(ADMIN_EMAIL).await;
        app.verify_address(ADMIN_EMAIL).await;
        (app, token)
    }
}

/// With `APEXKIT_TEST_PGBOUNCER_URL` set (`postgres://user@host:port`, a PgBouncer in transaction
/// mode in front of the test PostgreSQL; `tests/pgbouncer/run-suite.sh` starts one), every
/// PostgreSQL app of the suite runs through it, configured as a deployment behind it is: the
/// pooled URL, prepared statements off, migrations on the direct URL.
fn through_pgbouncer(config: &mut Config, direct: &str) {
    let Ok(bouncer) = std::env::var("APEXKIT_TEST_PGBOUNCER_URL") else {
        return;
    };
    // Only the test PostgreSQL is behind it (a test may run a PostgreSQL of its own).
    let authority = |url: &str| {
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        let rest = rest.split_once('@').map_or(rest, |(_, r)| r);
        rest.split('/').next().unwrap_or(rest).to_owned()
    };
    if !direct.starts_with("postgres") || authority(direct) != authority(&super::pg_admin_url()) {
        return;
    }
    let database = direct.rsplit_once('/').map_or("", |(_, db)| db);
    config.database.url = format!("{}/{database}", bouncer.trim_end_matches('/'));
    config.database.migration_url = Some(direct.to_owned());
    config.database.prepared_statements = false;
}
