//! Data layer: the pooled connection to PostgreSQL or SQLite, the migrations, and one module of
//! queries per table. Knows nothing of GraphQL, HTTP or the rules of authentication.

pub mod accounts;
pub mod adopt;
pub mod audit;
pub mod email_codes;
pub mod migrations;
pub mod models;
pub mod outbox;
pub mod passkeys;
pub mod pooling;
pub mod schema;
pub mod sessions;
pub mod signing_keys;
pub mod throttle;
pub mod trusted_devices;
pub mod two_factor;
pub mod two_factor_challenges;
pub mod users;
pub mod verifications;

use std::fmt;
use std::time::Duration;

use diesel::SqliteConnection;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, PoolError};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use futures_util::FutureExt;

/// SQLite behind diesel-async's blocking-pool wrapper.
pub type SqliteConn = SyncConnectionWrapper<SqliteConnection>;
type PgManager = AsyncDieselConnectionManager<AsyncPgConnection>;
type SqliteManager = AsyncDieselConnectionManager<SqliteConn>;

/// Runs `$body` once per backend with `$c` bound to the concrete connection, so every query is
/// written once and type-checked against both databases. The body's error becomes a
/// [`DbError`] here, the one place queries run (no `.map_err(DbError::from)` at each query).
macro_rules! run {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::Conn::Postgres(pooled, mode) => {
                let conn: &mut diesel_async::AsyncPgConnection = &mut **pooled;
                let query = async |$c: &mut diesel_async::AsyncPgConnection| -> Result<_, $crate::db::DbError> {
                    $crate::db::lift($body)
                };
                match mode {
                    $crate::db::PgMode::Prepared => query(conn).await,
                    $crate::db::PgMode::Unprepared => $crate::db::wrapped!(conn, query),
                }
            }
            $crate::db::Conn::Sqlite(pooled) => {
                let $c: &mut $crate::db::SqliteConn = &mut **pooled;
                $crate::db::lift($body)
            }
        }
    };
}

/// A query that can also run pipelined with another ([`pipeline!`]). Written once, in its
/// table's module, like any query:
/// `query! { pub async fn find(c, id: &str) -> Option<Row> { table.find(id).first(c).await.optional() } }`
/// defines `find(conn: &mut Conn, id) -> Result<Option<Row>, DbError>` and, in a module of the
/// same name, the body on each backend's connection (`find::pg`, on a shared PostgreSQL
/// connection, and `find::sqlite`) for `pipeline!` to call.
macro_rules! query {
    ($(#[$meta:meta])* $vis:vis async fn $name:ident($c:ident $(, $arg:ident: $ty:ty)* $(,)?) -> $out:ty $body:block) => {
        $(#[$meta])*
        $vis async fn $name(
            conn: &mut $crate::db::Conn,
            $($arg: $ty),*
        ) -> Result<$out, $crate::db::DbError> {
            match conn {
                $crate::db::Conn::Postgres(pooled, $crate::db::PgMode::Prepared) => {
                    $crate::db::lift($name::pg(&mut &**pooled, $($arg),*).await)
                }
                $crate::db::Conn::Postgres(pooled, $crate::db::PgMode::Unprepared) => {
                    $crate::db::wrapped!(&mut **pooled, async |c: &mut diesel_async::AsyncPgConnection| {
                        $crate::db::lift($name::pg(&mut &*c, $($arg),*).await)
                    })
                }
                $crate::db::Conn::Sqlite(pooled) => {
                    $crate::db::lift($name::sqlite(&mut **pooled, $($arg),*).await)
                }
            }
        }

        $vis mod $name {
            #[allow(unused_imports)]
            use super::*;

            pub(crate) async fn pg(
                $c: &mut &diesel_async::AsyncPgConnection,
                $($arg: $ty),*
            ) -> diesel::QueryResult<$out> $body

            pub(crate) async fn sqlite(
                $c: &mut $crate::db::SqliteConn,
                $($arg: $ty),*
            ) -> diesel::QueryResult<$out> $body
        }
    };
}

/// Two independent [`query!`] queries, possibly of different tables, on one connection: both run
/// and both results are returned. Pipelined into one round trip on PostgreSQL (sent together,
/// executed in order, each its own implicit transaction), one after the other on SQLite (in
/// process: no round trip to save). `pipeline!(conn, users::find(id), keys::active())`.
/// Used only where a benchmark shows it matters (see the callers' comments for the figures).
/// Without prepared statements ([`PgMode::Unprepared`]) the two run one after the other, each
/// in its own transaction, like any query in that mode.
macro_rules! pipeline {
    ($conn:expr, $($a:ident)::+ ($($aa:expr),* $(,)?), $($b:ident)::+ ($($ba:expr),* $(,)?) $(,)?) => {
        match $conn {
            $crate::db::Conn::Postgres(pooled, $crate::db::PgMode::Unprepared) => {
                let conn: &mut diesel_async::AsyncPgConnection = &mut **pooled;
                let first = $crate::db::wrapped!(&mut *conn, async |c: &mut diesel_async::AsyncPgConnection| {
                    $crate::db::lift($($a)::+::pg(&mut &*c, $($aa),*).await)
                });
                let second = $crate::db::wrapped!(conn, async |c: &mut diesel_async::AsyncPgConnection| {
                    $crate::db::lift($($b)::+::pg(&mut &*c, $($ba),*).await)
                });
                (first, second)
            }
            $crate::db::Conn::Postgres(pooled, $crate::db::PgMode::Prepared) => {
                let shared: &diesel_async::AsyncPgConnection = &**pooled;
                let (first, second) = tokio::join!(
                    async { $($a)::+::pg(&mut &*shared, $($aa),*).await },
                    async { $($b)::+::pg(&mut &*shared, $($ba),*).await },
                );
                ($crate::db::lift(first), $crate::db::lift(second))
            }
            $crate::db::Conn::Sqlite(pooled) => {
                let first = $($a)::+::sqlite(&mut **pooled, $($aa),*).await;
                let second = $($b)::+::sqlite(&mut **pooled, $($ba),*).await;
                ($crate::db::lift(first), $crate::db::lift(second))
            }
        }
    };
}
pub(crate) use {pipeline, query};

/// How queries run on a PostgreSQL connection (`APEXKIT_DB_PREPARED_STATEMENTS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgMode {
    /// The driver prepares each distinct query once per connection and reuses it: one round
    /// trip per query. Needs a connection that stays on one server session (direct, or a
    /// session-pooling proxy).
    Prepared,
    /// Behind a transaction-pooling proxy (PgBouncer `pool_mode = transaction`, which before
    /// 1.21 keeps no prepared statements): the statement cache is off and every query runs in
    /// its own explicit transaction, so that the statement the driver prepares for it, its
    /// execution and its close reach the same server connection (outside a transaction the
    /// proxy may hand each protocol message to another server). Costs a `BEGIN`, a prepare and
    /// a `COMMIT` per query.
    Unprepared,
}

/// Runs the async closure `$query` (`async |c: &mut AsyncPgConnection| -> Result<_, DbError>`)
/// in a transaction of its own ([`PgMode::Unprepared`]). A macro, not a function: the
/// transaction needs the closure's future to be `Send`, which only its concrete type shows.
macro_rules! wrapped {
    ($conn:expr, $query:expr) => {
        diesel_async::AsyncConnection::transaction($conn, $query).await
    };
}
pub(crate) use wrapped;

/// The error of a query as the data layer reports it (see [`run!`]).
#[inline]
pub(crate) fn lift<T, E: Into<DbError>>(result: Result<T, E>) -> Result<T, DbError> {
    result.map_err(Into::into)
}

/// Like [`run!`], inside a transaction: a plain one on PostgreSQL, `BEGIN IMMEDIATE` on SQLite
/// (deferred read-then-write transactions fail with "database is locked" under concurrency).
macro_rules! transaction {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::Conn::Postgres(pooled, _) => {
                let conn: &mut diesel_async::AsyncPgConnection = &mut **pooled;
                diesel_async::AsyncConnection::transaction(
                    conn,
                    async |$c| -> Result<_, $crate::db::DbError> { $body },
                )
                .await
            }
            $crate::db::Conn::Sqlite(pooled) => {
                let conn: &mut $crate::db::SqliteConn = &mut **pooled;
                conn.immediate_transaction(async |$c| -> Result<_, $crate::db::DbError> { $body })
                    .await
            }
        }
    };
}
pub(crate) use {run, transaction};

/// Which database a `DATABASE_URL` names.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Postgres(String),
    /// A filesystem path (created when missing).
    Sqlite(String),
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        if let Some(path) = url.strip_prefix("sqlite://") {
            return match path {
                "" => Err("DATABASE_URL sqlite:// needs a file path, e.g. sqlite://apexkit.db".into()),
                ":memory:" => Err(
                    "DATABASE_URL sqlite://:memory: is not supported: every pooled connection would \
                     get its own empty database; use a file path"
                        .into(),
                ),
                _ => Ok(Self::Sqlite(path.to_owned())),
            };
        }
        let scheme = url.split_once("://").map_or("(none)", |(s, _)| s);
        Err(format!(
            "DATABASE_URL has unsupported scheme {scheme:?}: use postgres://, postgresql:// or sqlite://PATH"
        ))
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Self::Postgres(_) => "postgres",
            Self::Sqlite(_) => "sqlite",
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    /// Never prints credentials: only the backend and, for SQLite, the path.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Postgres(_) => f.write_str("postgres://…"),
            Self::Sqlite(path) => write!(f, "sqlite://{path}"),
        }
    }
}

/// What the data layer reports upward.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// Pool exhausted, connection lost, database locked, read-only or full: retryable by the client.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("unique constraint violated: {0}")]
    UniqueViolation(String),
    #[error("database error: {0}")]
    Query(DieselError),
}

impl From<DieselError> for DbError {
    fn from(err: DieselError) -> Self {
        match &err {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                Self::UniqueViolation(info.constraint_name().unwrap_or(info.message()).to_owned())
            }
            DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
                Self::Unavailable(info.message().to_owned())
            }
            // No SQLSTATE: the driver could not talk to the server at all (connection closed,
            // reset, refused) — the database's state, not the query's fault.
            DieselError::DatabaseError(DatabaseErrorKind::UnableToSendCommand, info) => {
                Self::Unavailable(info.message().to_owned())
            }
            DieselError::BrokenTransactionManager => Self::Unavailable(err.to_string()),
            DieselError::DatabaseError(_, info) if is_transient(info.message()) => {
                Self::Unavailable(info.message().to_owned())
            }
            _ => Self::Query(err),
        }
    }
}

/// Messages of failures that are about the database's state, not the query.
fn is_transient(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "database is locked",
        "readonly database",
        "database or disk is full",
        "disk i/o error",
        "connection closed",
        "connection reset",
        "broken pipe",
        "terminating connection",
        "canceling statement due to statement timeout",
        "canceling statement due to lock timeout",
        "the database system is",
        "error communicating with the server",
        "too many clients",
        "attempt to write a readonly database",
        // SQLite rolls a transaction back by itself on SQLITE_FULL, SQLITE_IOERR, SQLITE_BUSY
        // or SQLITE_NOMEM; diesel's ROLLBACK then fails with this and hides the first error.
        "cannot rollback - no transaction is active",
    ]
    .iter()
    .any(|needle| m.contains(needle))
}

fn pool_error(err: bb8::RunError<PoolError>) -> DbError {
    DbError::Unavailable(match err {
        bb8::RunError::TimedOut => "timed out waiting for a pooled connection".to_owned(),
        bb8::RunError::User(e) => e.to_string(),
    })
}

/// Pool sizing and waiting.
#[derive(Debug, Clone, Copy)]
pub struct PoolOptions {
    pub max_size: u32,
    /// How long a request waits for a connection before failing with `SERVICE_UNAVAILABLE`.
    pub checkout_timeout: Duration,
    /// PostgreSQL `statement_timeout`, SQLite `busy_timeout`.
    pub statement_timeout: Duration,
    /// SQLite only: `PRAGMA max_page_count` so the file stops growing at this many MiB.
    pub sqlite_max_size_mb: Option<u64>,
    /// PostgreSQL only: prepared statements on (the default) or off (transaction pooling).
    pub pg_mode: PgMode,
}

#[derive(Clone)]
pub enum Pool {
    Postgres(bb8::Pool<PgManager>, PgMode),
    Sqlite(bb8::Pool<SqliteManager>),
}

#[expect(
    clippy::large_enum_variant,
    reason = "lives briefly on the stack once per request; boxing would allocate per checkout"
)]
pub enum Conn {
    Postgres(bb8::PooledConnection<'static, PgManager>, PgMode),
    Sqlite(bb8::PooledConnection<'static, SqliteManager>),
}

impl Pool {
    /// Builds the pool without connecting; boot connects once directly (migrations) first, so a
    /// bad URL fails there with the driver's own message instead of bb8's "timed out".
    pub fn new(url: &DatabaseUrl, opts: PoolOptions) -> Self {
        let statement_ms = opts.statement_timeout.as_millis();
        fn builder<M: bb8::ManageConnection>(opts: PoolOptions) -> bb8::Builder<M>
        where
            M::Error: fmt::Display,
        {
            bb8::Pool::builder()
                .max_size(opts.max_size)
                .min_idle(Some(1))
                .connection_timeout(opts.checkout_timeout)
                .idle_timeout(Some(Duration::from_secs(300)))
                // A broken connection is noticed on use and dropped; no round trip per checkout.
                .test_on_check_out(false)
                .error_sink(Box::new(LogErrorSink))
        }
        match url {
            DatabaseUrl::Postgres(url) => {
                let mut config = ManagerConfig::<AsyncPgConnection>::default();
                let mode = opts.pg_mode;
                config.custom_setup = Box::new(move |url| {
                    let url = url.to_owned();
                    async move { connect_postgres_with(&url, statement_ms, mode).await }.boxed()
                });
                let manager = PgManager::new_with_config(url.clone(), config);
                Self::Postgres(builder(opts).build_unchecked(manager), mode)
            }
            DatabaseUrl::Sqlite(path) => {
                let mut config = ManagerConfig::<SqliteConn>::default();
                let max_size_mb = opts.sqlite_max_size_mb;
                config.custom_setup = Box::new(move |path| {
                    let path = path.to_owned();
                    async move {
                        let mut conn = connect_sqlite(&path, statement_ms).await?;
                        if let Some(mb) = max_size_mb {
                            // Pages are SQLite's default 4 KiB (the schema never changes it).
                            conn.batch_execute(&format!(
                                "PRAGMA max_page_count = {}",
                                mb.saturating_mul(256)
                            ))
                            .await
                            .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
                        }
                        Ok(conn)
                    }
                    .boxed()
                });
                let manager = SqliteManager::new_with_config(path.clone(), config);
                Self::Sqlite(builder(opts).build_unchecked(manager))
            }
        }
    }

    pub async fn get(&self) -> Result<Conn, DbError> {
        match self {
            Self::Postgres(pool, mode) => pool
                .get_owned()
                .await
                .map(|pooled| Conn::Postgres(pooled, *mode)),
            Self::Sqlite(pool) => pool.get_owned().await.map(Conn::Sqlite),
        }
        .map_err(pool_error)
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Self::Postgres(..) => "postgres",
            Self::Sqlite(_) => "sqlite",
        }
    }

    /// Connections open and idle, and the pool's cumulative checkout statistics.
    pub fn stats(&self) -> PoolStats {
        let state = match self {
            Self::Postgres(pool, _) => pool.state(),
            Self::Sqlite(pool) => pool.state(),
        };
        let s = &state.statistics;
        PoolStats {
            connections: state.connections,
            idle: state.idle_connections,
            gets_waited: s.get_waited,
            gets_timed_out: s.get_timed_out,
            wait_time: s.get_wait_time,
            closed_broken: s.connections_closed_broken,
        }
    }
}

/// A snapshot of the pool for metrics.
#[derive(Debug, Clone, Copy)]
pub struct PoolStats {
    pub connections: u32,
    pub idle: u32,
    /// Checkouts that had to wait for a connection.
    pub gets_waited: u64,
    /// Checkouts that gave up (answered SERVICE_UNAVAILABLE).
    pub gets_timed_out: u64,
    pub wait_time: Duration,
    /// Connections discarded because they were found broken (e.g. after a database restart).
    pub closed_broken: u64,
}

/// Why the database cannot be reached at boot.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Retrying cannot help: bad credentials, unknown database, malformed URL.
    #[error("{0} (not retrying: fix the configuration)")]
    Fatal(String),
    /// Still unreachable when the connect timeout ran out.
    #[error("database still unreachable after {seconds} s and {attempts} attempts: {last}")]
    GaveUp {
        seconds: u64,
        attempts: u32,
        last: String,
    },
}

/// First and largest pause between connection attempts at boot.
const BACKOFF_FIRST: Duration = Duration::from_millis(250);
const BACKOFF_CAP: Duration = Duration::from_secs(5);

/// Waits until PostgreSQL accepts a connection, retrying transient failures (refused, reset,
/// starting up, too many clients) with capped exponential backoff for at most `timeout`, and
/// logging each failed attempt. Errors retrying cannot fix end the wait at once. SQLite is a
/// local file: opening it is left to the migrations, which report their own error.
pub async fn wait_until_reachable(
    url: &DatabaseUrl,
    timeout: Duration,
) -> Result<(), ConnectError> {
    let DatabaseUrl::Postgres(url) = url else {
        return Ok(());
    };
    let started = tokio::time::Instant::now();
    let deadline = started + timeout;
    let mut backoff = BACKOFF_FIRST;
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        // A black-holed host would hang a connect forever: bound each attempt too.
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        let attempt = tokio::time::timeout(remaining.max(Duration::from_millis(100)), async {
            // Safe through any pooler (see `connect_postgres_with`).
            connect_postgres_with(url, 0, PgMode::Unprepared).await
        })
        .await;
        let message = match attempt {
            Ok(Ok(_conn)) => {
                if attempts > 1 {
                    tracing::info!(attempts, "database reachable");
                }
                return Ok(());
            }
            Ok(Err(e)) => {
                let message = e.to_string();
                if !is_retryable_connect_error(&message) {
                    return Err(ConnectError::Fatal(format!(
                        "cannot connect to PostgreSQL: {message}"
                    )));
                }
                message
            }
            Err(_) => "connection attempt timed out".to_owned(),
        };
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Err(ConnectError::GaveUp {
                seconds: timeout.as_secs(),
                attempts,
                last: message,
            });
        }
        // The last pause is shortened so the final attempt lands on the deadline.
        let pause = backoff.min(left);
        tracing::warn!(
            attempt = attempts,
            error = %message,
            retry_in_ms = pause.as_millis() as u64,
            "database unreachable, retrying"
        );
        tokio::time::sleep(pause).await;
        backoff = (backoff * 2).min(BACKOFF_CAP);
    }
}

/// Classifies a failed PostgreSQL connect. The driver reports a server refusal (SQLSTATE) by its
/// message and a transport failure without one; only the transient kinds are retried.
fn is_retryable_connect_error(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    let fatal = [
        "invalid configuration",
        "invalid connection",
        "does not exist",
        "password authentication failed",
        "authentication failed",
        "no pg_hba.conf entry",
        "permission denied",
        "not permitted to log in",
        "password missing",
    ];
    if fatal.iter().any(|needle| m.contains(needle)) {
        return false;
    }
    [
        "error connecting to server",
        "connection refused",
        "connection reset",
        "connection closed",
        "error communicating with the server",
        "timed out",
        "the database system is",
        "too many clients",
        "failed to lookup",
        "name or service not known",
        "temporary failure in name resolution",
    ]
    .iter()
    .any(|needle| m.contains(needle))
}

/// Opens one direct PostgreSQL connection with the session settings every connection needs.
pub async fn connect_postgres(
    url: &str,
    statement_timeout_ms: u128,
) -> diesel::ConnectionResult<AsyncPgConnection> {
    connect_postgres_with(url, statement_timeout_ms, PgMode::Prepared).await
}

/// Opens one PostgreSQL connection for `mode`. Timestamps are stored as `timestamp` in UTC, so
/// the session zone is pinned to UTC (so `now()` agrees): a setting PgBouncer tracks per client
/// and restores on whichever server it hands the client, so it holds in every pool mode.
/// `statement_timeout` is not tracked: behind transaction pooling a `SET` would stay on the
/// server connection and apply to other clients while this one's next transaction lands
/// elsewhere, so in [`PgMode::Unprepared`] it is left to the server side (PgBouncer's
/// `connect_query` or `ALTER ROLE … SET statement_timeout`; see the deploying chapter).
///
/// diesel-async's own connection setup runs two statements that its driver prepares by name
/// (`s0`, `s1`, … numbered per process). Outside a transaction, behind transaction pooling,
/// their prepare and execution may reach different server connections, and a name left on a
/// server collides with the same name from another process ("prepared statement "s0" already
/// exists"). So the setup runs inside a transaction opened over the simple query protocol, and
/// in [`PgMode::Unprepared`] the statements it cached are closed before that transaction ends.
pub async fn connect_postgres_with(
    url: &str,
    statement_timeout_ms: u128,
    mode: PgMode,
) -> diesel::ConnectionResult<AsyncPgConnection> {
    // The driver's error names its kind ("db error"); its sources say what happened.
    let bad = |e: &dyn std::error::Error| {
        let mut text = e.to_string();
        let mut source = e.source();
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        diesel::ConnectionError::BadConnection(text)
    };
    let (client, mut connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| bad(&e))?;
    // The connection is driven by diesel-async once handed over; until then, here.
    tokio::select! {
        begun = client.batch_execute("BEGIN") => begun.map_err(|e| bad(&e))?,
        ended = &mut connection => {
            return Err(match ended {
                Err(e) => bad(&e),
                Ok(()) => diesel::ConnectionError::BadConnection(
                    "connection closed during setup".to_owned(),
                ),
            });
        }
    }
    let mut conn = AsyncPgConnection::try_from_client_and_connection(client, connection).await?;
    let settings = match mode {
        PgMode::Prepared => {
            format!("SET TIME ZONE 'UTC'; COMMIT; SET statement_timeout = {statement_timeout_ms}")
        }
        PgMode::Unprepared => {
            // Drops the cached setup statements: their Close goes out before the COMMIT.
            conn.set_prepared_statement_cache_size(diesel::connection::CacheSize::Disabled);
            "SET TIME ZONE 'UTC'; COMMIT".to_owned()
        }
    };
    // The simple query protocol: no statement is prepared for it.
    conn.batch_execute(&settings).await.map_err(|e| bad(&e))?;
    Ok(conn)
}

/// Opens one SQLite connection: `busy_timeout` first (before WAL, or processes starting together
/// fail at once), then WAL, foreign keys and `synchronous = NORMAL`.
pub async fn connect_sqlite(
    path: &str,
    busy_timeout_ms: u128,
) -> diesel::ConnectionResult<SqliteConn> {
    let mut conn = SqliteConn::establish(path).await?;
    let started = std::time::Instant::now();
    loop {
        match conn.batch_execute(&sqlite_pragmas(busy_timeout_ms)).await {
            Ok(()) => return Ok(conn),
            Err(e) if sqlite_setup_may_retry(&e, started, busy_timeout_ms) => {
                tokio::time::sleep(SQLITE_SETUP_RETRY).await;
            }
            Err(e) => return Err(diesel::ConnectionError::BadConnection(e.to_string())),
        }
    }
}

/// How long to wait before configuring a new SQLite connection again.
pub(crate) const SQLITE_SETUP_RETRY: Duration = Duration::from_millis(50);

/// Whether setting a new SQLite connection up failed only because another one holds the lock.
/// Switching a new file to WAL while other processes open it can answer "database is locked"
/// without waiting on `busy_timeout` (SQLite refuses to wait where waiting could deadlock), so
/// the setup is retried for as long as `busy_timeout` would have waited.
pub(crate) fn sqlite_setup_may_retry(
    error: &DieselError,
    started: std::time::Instant,
    busy_timeout_ms: u128,
) -> bool {
    error.to_string().contains("locked") && started.elapsed().as_millis() < busy_timeout_ms
}

/// Per-connection settings: WAL, the busy timeout, foreign keys, and a 512 KiB page cache (a
/// quarter of SQLite's default: every pooled connection has its own, and the OS caches the file
/// anyway; the upper B-tree levels a lookup walks fit many times over).
pub(crate) fn sqlite_pragmas(busy_timeout_ms: u128) -> String {
    format!(
        "PRAGMA busy_timeout = {busy_timeout_ms}; PRAGMA journal_mode = WAL; \
         PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -512;"
    )
}

/// Sends bb8's connection errors to the log instead of dropping them.
#[derive(Debug, Clone, Copy)]
struct LogErrorSink;

impl<E: fmt::Display> bb8::ErrorSink<E> for LogErrorSink {
    fn sink(&self, error: E) {
        tracing::warn!(%error, "database connection failed");
    }

    fn boxed_clone(&self) -> Box<dyn bb8::ErrorSink<E>> {
        Box::new(*self)
    }
}

#[cfg(test)]
mod tests {
    use super::is_retryable_connect_error as retryable;

    #[test]
    fn classifies_connect_errors() {
        for transient in [
            "error connecting to server: Connection refused (os error 111)",
            "the database system is starting up",
            "sorry, too many clients already",
            "error communicating with the server: Connection reset by peer (os error 104)",
            "error connecting to server: failed to lookup address information: Name or service not known",
        ] {
            assert!(retryable(transient), "{transient}");
        }
        for fatal in [
            "database \"nope\" does not exist",
            "password authentication failed for user \"x\"",
            "role \"x\" does not exist",
            "invalid configuration: invalid port",
            "no pg_hba.conf entry for host",
            "something nobody anticipated",
        ] {
            assert!(!retryable(fatal), "{fatal}");
        }
    }
}
