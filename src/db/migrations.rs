//! Embedded migrations (one set per backend) and the boot-time runner. Replicas booting together
//! serialize on a PostgreSQL advisory lock, or on an exclusive SQLite transaction.

use anyhow::Context as _;
use diesel::connection::SimpleConnection;
use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel::sqlite::Sqlite;
use diesel_async::{AsyncMigrationHarness, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::{Conn, DatabaseUrl, DbError, connect_postgres, run, sqlite_pragmas};

pub const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");
pub const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// Key of the PostgreSQL advisory lock held while migrating ("apexkit" in ASCII).
const ADVISORY_LOCK_KEY: i64 = 0x61_70_65_78_6b_69_74;
/// How long migrations may wait for a locked SQLite file.
const SQLITE_BUSY_MS: u128 = 30_000;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Versions of the migrations embedded in this binary for a backend, oldest first.
pub fn embedded_versions(url: &DatabaseUrl) -> Vec<String> {
    fn versions<DB: diesel::backend::Backend>(source: &impl MigrationSource<DB>) -> Vec<String> {
        let mut v: Vec<String> = source
            .migrations()
            .map(|ms| ms.iter().map(|m| m.name().version().to_string()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }
    match url {
        DatabaseUrl::Postgres(_) => versions::<Pg>(&POSTGRES),
        DatabaseUrl::Sqlite(_) => versions::<Sqlite>(&SQLITE),
    }
}

/// Applies every pending migration, once, even when several processes call this at once.
/// Returns the versions this call applied.
pub async fn run_pending(url: &DatabaseUrl) -> anyhow::Result<Vec<String>> {
    with_harness(url, |h| h.run_pending()).await
}

/// Reverts every applied migration (newest first). Used by tests of the down migrations.
pub async fn revert_all(url: &DatabaseUrl) -> anyhow::Result<Vec<String>> {
    with_harness(url, |h| h.revert_all()).await
}

/// The backend-specific half of a migration run, handed to [`with_harness`].
enum Harness<'a> {
    Postgres(&'a mut AsyncMigrationHarness<diesel_async::AsyncPgConnection>),
    Sqlite(&'a mut SqliteConnection),
}

impl Harness<'_> {
    fn run_pending(&mut self) -> Result<Vec<String>, BoxError> {
        let applied = match self {
            Self::Postgres(h) => h.run_pending_migrations(POSTGRES)?,
            Self::Sqlite(c) => c.run_pending_migrations(SQLITE)?,
        };
        Ok(applied.iter().map(ToString::to_string).collect())
    }

    fn revert_all(&mut self) -> Result<Vec<String>, BoxError> {
        let reverted = match self {
            Self::Postgres(h) => h.revert_all_migrations(POSTGRES)?,
            Self::Sqlite(c) => c.revert_all_migrations(SQLITE)?,
        };
        Ok(reverted.iter().map(ToString::to_string).collect())
    }
}

/// Error type for the SQLite exclusive transaction around a migration run.
#[derive(Debug, thiserror::Error)]
enum TxError {
    #[error(transparent)]
    Diesel(#[from] diesel::result::Error),
    #[error("{0}")]
    Migration(BoxError),
}

async fn with_harness<F>(url: &DatabaseUrl, f: F) -> anyhow::Result<Vec<String>>
where
    F: FnOnce(&mut Harness<'_>) -> Result<Vec<String>, BoxError> + Send + 'static,
{
    match url {
        DatabaseUrl::Postgres(url) => {
            let mut conn = connect_postgres(url, 0)
                .await
                .context("cannot connect to PostgreSQL")?;
            diesel::sql_query("SELECT pg_advisory_lock($1)")
                .bind::<BigInt, _>(ADVISORY_LOCK_KEY)
                .execute(&mut conn)
                .await
                .context("cannot take the migration lock")?;
            let mut harness = AsyncMigrationHarness::new(conn);
            let result = f(&mut Harness::Postgres(&mut harness));
            let mut conn = harness.into_inner();
            // Closing the connection would release the lock too; unlock explicitly anyway.
            let _ = diesel::sql_query("SELECT pg_advisory_unlock($1)")
                .bind::<BigInt, _>(ADVISORY_LOCK_KEY)
                .execute(&mut conn)
                .await;
            result.map_err(|e| anyhow::anyhow!("migration failed: {e}"))
        }
        DatabaseUrl::Sqlite(path) => {
            let path = path.clone();
            tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<String>> {
                let mut conn = SqliteConnection::establish(&path)
                    .with_context(|| format!("cannot open SQLite database {path}"))?;
                conn.batch_execute(&sqlite_pragmas(SQLITE_BUSY_MS))
                    .context("cannot configure SQLite connection")?;
                conn.exclusive_transaction(|c| {
                    f(&mut Harness::Sqlite(c)).map_err(TxError::Migration)
                })
                .map_err(|e| anyhow::anyhow!("migration failed: {e}"))
            })
            .await
            .context("migration task panicked")?
        }
    }
}

#[derive(QueryableByName)]
struct AppliedVersion {
    #[diesel(sql_type = Text)]
    version: String,
}

/// Versions recorded as applied in the database (empty when it was never migrated).
pub async fn applied_versions(conn: &mut Conn) -> Result<Vec<String>, DbError> {
    let rows: Vec<AppliedVersion> = run!(conn, |c| {
        diesel::sql_query("SELECT version FROM __diesel_schema_migrations")
            .load(c)
            .await
    })?;
    Ok(rows.into_iter().map(|r| r.version).collect())
}
