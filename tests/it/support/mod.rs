//! Test support, in one place. Test modules hold tests and the few helpers only they use;
//! everything shared lives here:
//!
//! - [`db`]: a fresh, empty database per test ([`TestDb`]) and direct SQL on it;
//! - [`app`]: the app running in-process on 127.0.0.1:0 ([`TestApp`]), started through its one
//!   builder: `TestApp::builder(backend)` for a fresh database, `app.replica()` for another
//!   instance on the same database (a replica, or the service restarted), `TestApp::on(&db)` on
//!   a database the test manages itself;
//! - [`client`]: a GraphQL/HTTP client that reads like the domain ([`Api`], which a
//!   [`TestApp`] derefs to) and helpers for reading answers (`code`, `data`, metrics);
//! - [`mail`]: a real SMTP server on loopback that keeps what arrives ([`SmtpSink`]);
//! - [`process`]: the real binary as operators run it ([`Proc`]);
//! - [`oidc`]: a real OpenID provider on loopback and a browser that walks its pages;
//!   [`presets`]: stand-ins for Microsoft's and Apple's endpoints, from their documentation.
//! - [`authenticator`]: a software WebAuthn authenticator (ES256, attestation `none`).
//! - [`pgbouncer`]: a PgBouncer of the test's own in front of the test PostgreSQL ([`PgBouncer`]).
//! - [`redis`]: a Redis of the test's own, killable by pid, and raw RESP commands ([`RedisServer`]).

mod app;
pub mod authenticator;
mod client;
mod db;
mod mail;
pub mod oidc;
mod pgbouncer;
pub mod presets;
mod process;
mod redis;

pub use app::TestApp;
pub use client::{Api, code, codes, data, get_status, metric_value, signed_in_token};
pub use db::TestDb;
pub use mail::SmtpSink;
pub use pgbouncer::{PgBouncer, PoolMode};
pub use process::{Proc, apexkit_cmd, npm_ci};
pub use redis::{RedisServer, Reply as RedisReply};

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

/// The password the sign-up helpers use.
pub const PASSWORD: &str = "correct horse battery staple";

/// A deployment secret for tests that need one stable across app instances.
pub const TEST_SECRET: &str = "test-secret-test-secret-test-secret-0123";

/// The address `spawn_admin` lists in `APEXKIT_ADMIN_EMAILS`, signs up and verifies.
pub const ADMIN_EMAIL: &str = "admin@example.com";

/// PostgreSQL server URL the tests create their databases through.
pub fn pg_admin_url() -> String {
    std::env::var("APEXKIT_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}
