//! Databases: a fresh, empty one per test, and direct SQL on it for setting up and asserting.

use std::time::Duration;

use apexkit::db::{Conn, DatabaseUrl, PgMode, Pool, PoolOptions};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};

use super::{Backend, pg_admin_url};

pub(super) fn random_suffix() -> String {
    let mut b = [0u8; 6];
    getrandom::fill(&mut b).expect("rng");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A test database: a fresh, empty one ([`TestDb::new`], removed when dropped), or a handle on
/// one that something else owns ([`TestDb::at`], left alone when dropped).
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

    /// A handle on the database at `url`, which its owner removes (or not): dropping the handle
    /// leaves it alone.
    pub fn at(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            pg_name: None,
            _dir: None,
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
                pg_mode: PgMode::Prepared,
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
            Conn::Postgres(c, _) => diesel::sql_query(sql).load(&mut **c).await,
            Conn::Sqlite(c) => diesel::sql_query(sql).load(&mut **c).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows.iter().map(|r| r.n).next().unwrap_or(0)
    }

    /// Runs a `SELECT … AS s …` of one text column and returns its values.
    pub async fn strings(&self, sql: &str) -> Vec<String> {
        #[derive(QueryableByName)]
        struct S {
            #[diesel(sql_type = Text)]
            s: String,
        }
        let pool = self.pool();
        let mut conn = pool.get().await.expect("test connection");
        let rows: Vec<S> = match &mut conn {
            Conn::Postgres(c, _) => diesel::sql_query(sql).load(&mut **c).await,
            Conn::Sqlite(c) => diesel::sql_query(sql).load(&mut **c).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows.into_iter().map(|r| r.s).collect()
    }

    /// How many users there are.
    pub async fn users(&self) -> i64 {
        self.count("SELECT COUNT(*) AS n FROM \"user\"").await
    }

    /// Runs a statement; `Err` with the database's message when it fails.
    pub async fn try_execute(&self, sql: &str) -> Result<usize, String> {
        let pool = self.pool();
        let mut conn = pool.get().await.expect("test connection");
        match &mut conn {
            Conn::Postgres(c, _) => diesel::sql_query(sql).execute(&mut **c).await,
            Conn::Sqlite(c) => diesel::sql_query(sql).execute(&mut **c).await,
        }
        .map_err(|e| e.to_string())
    }

    pub async fn execute(&self, sql: &str) -> usize {
        self.try_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Blocks writes from other connections until the lock is released or dropped:
    /// `LOCK TABLE "user"` inside an open transaction on PostgreSQL, `BEGIN IMMEDIATE` plus a
    /// write on SQLite (the single writer lock).
    pub async fn lock_writes(&self) -> WriteLock {
        if let Some(path) = self.url.strip_prefix("sqlite://") {
            let mut c = apexkit::db::connect_sqlite(path, 0).await.unwrap();
            c.batch_execute("BEGIN IMMEDIATE; INSERT INTO verification (id, identifier, value, expires_at, created_at, updated_at) VALUES ('x','x','x','2000-01-01 00:00:00','2000-01-01 00:00:00','2000-01-01 00:00:00')")
                .await
                .unwrap();
            WriteLock::Sqlite(c)
        } else {
            let mut c = apexkit::db::connect_postgres(&self.url, 0).await.unwrap();
            c.batch_execute("BEGIN; LOCK TABLE \"user\" IN ACCESS EXCLUSIVE MODE")
                .await
                .unwrap();
            WriteLock::Postgres(Box::new(c))
        }
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

/// Writes held off by [`TestDb::lock_writes`]; dropping it (closing the connection) releases
/// them too.
pub enum WriteLock {
    Postgres(Box<diesel_async::AsyncPgConnection>),
    Sqlite(apexkit::db::SqliteConn),
}

impl WriteLock {
    pub async fn release(self) {
        match self {
            Self::Postgres(mut c) => c.batch_execute("ROLLBACK").await.unwrap(),
            Self::Sqlite(mut c) => c.batch_execute("ROLLBACK").await.unwrap(),
        }
    }
}
