//! Database: where it is, the pool, statement limits and migrations.

use std::path::PathBuf;
use std::time::Duration;

use crate::db::{DatabaseUrl, PgMode, PoolOptions};

#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseConfig {
    /// Database: postgres://…, postgresql://… or sqlite://PATH (file created when missing).
    #[arg(
        id = "database_url",
        long = "database-url",
        value_name = "DATABASE_URL",
        env = "DATABASE_URL",
        default_value = "sqlite://apexkit.db",
        hide_env_values = true,
        help_heading = "Database"
    )]
    pub url: String,

    /// PostgreSQL: a direct connection for migrations, their cross-process lock, the checksum
    /// check at boot, `migrate status` and `pushSchema`, when DATABASE_URL goes through a
    /// transaction-pooling proxy (PgBouncer `pool_mode = transaction`). Default: DATABASE_URL.
    #[arg(
        id = "migration_database_url",
        long = "migration-database-url",
        value_name = "MIGRATION_DATABASE_URL",
        env = "APEXKIT_MIGRATION_DATABASE_URL",
        hide_env_values = true,
        help_heading = "Database"
    )]
    pub migration_url: Option<String>,

    /// PostgreSQL: prepare each query once per connection and reuse it (true), or not at all
    /// (false: every query in its own transaction with the statement cache off; required
    /// behind PgBouncer in transaction mode, which keeps no prepared statements before 1.21).
    #[arg(
        id = "db_prepared_statements",
        long = "db-prepared-statements",
        value_name = "DB_PREPARED_STATEMENTS",
        env = "APEXKIT_DB_PREPARED_STATEMENTS",
        default_value_t = true,
        action = clap::ArgAction::Set,
        help_heading = "Database"
    )]
    pub prepared_statements: bool,

    /// Maximum pooled database connections.
    #[arg(
        id = "db_pool_size",
        long = "db-pool-size",
        value_name = "DB_POOL_SIZE",
        env = "APEXKIT_DB_POOL_SIZE",
        default_value_t = 10,
        help_heading = "Database"
    )]
    pub pool_size: u32,

    /// Milliseconds a request waits for a database connection before SERVICE_UNAVAILABLE.
    #[arg(
        id = "db_pool_timeout_ms",
        long = "db-pool-timeout-ms",
        value_name = "DB_POOL_TIMEOUT_MS",
        env = "APEXKIT_DB_POOL_TIMEOUT_MS",
        default_value_t = 3000,
        help_heading = "Database"
    )]
    pub pool_timeout_ms: u64,

    /// Milliseconds one statement may run (PostgreSQL statement_timeout, SQLite busy_timeout).
    /// Not applied with APEXKIT_DB_PREPARED_STATEMENTS=false: set statement_timeout on the
    /// server side then (see the deploying chapter).
    #[arg(
        id = "db_statement_timeout_ms",
        long = "db-statement-timeout-ms",
        value_name = "DB_STATEMENT_TIMEOUT_MS",
        env = "APEXKIT_DB_STATEMENT_TIMEOUT_MS",
        default_value_t = 5000,
        help_heading = "Database"
    )]
    pub statement_timeout_ms: u64,

    /// Directory with postgres/ and sqlite/ migration folders: read by `pushSchema` and
    /// `migrate status` (development), written by `migrate new`.
    #[arg(
        long,
        env = "APEXKIT_MIGRATIONS_DIR",
        default_value = "migrations",
        help_heading = "Database"
    )]
    pub migrations_dir: std::path::PathBuf,

    /// Apply a pending migration older than the newest applied one (production refuses by
    /// default; development applies it with a warning).
    #[arg(long, env = "APEXKIT_ALLOW_OUT_OF_ORDER", help_heading = "Database")]
    pub allow_out_of_order: bool,

    /// Seconds to keep retrying (capped exponential backoff) when PostgreSQL is unreachable at
    /// boot; then exit non-zero. Bad credentials, an unknown database or a bad URL exit at once.
    #[arg(
        id = "db_connect_timeout",
        long = "db-connect-timeout",
        value_name = "DB_CONNECT_TIMEOUT",
        env = "APEXKIT_DB_CONNECT_TIMEOUT",
        default_value_t = 30,
        help_heading = "Database"
    )]
    pub connect_timeout: u64,

    /// Cap on the SQLite database size in MiB (PRAGMA max_page_count on every connection);
    /// beyond it writes fail with SERVICE_UNAVAILABLE while reads keep working. Default: none.
    #[arg(long, env = "APEXKIT_SQLITE_MAX_SIZE_MB", help_heading = "Database")]
    pub sqlite_max_size_mb: Option<u64>,
}

/// The database settings, validated.
pub struct Database {
    pub url: DatabaseUrl,
    /// Where migrations (and their lock) run: APEXKIT_MIGRATION_DATABASE_URL, or `url`.
    pub migration_url: DatabaseUrl,
    pub pool: PoolOptions,
    pub migrations_dir: PathBuf,
    /// `APEXKIT_ALLOW_OUT_OF_ORDER`, always on in development.
    pub allow_out_of_order: bool,
    /// How long boot keeps retrying an unreachable PostgreSQL.
    pub connect_timeout: Duration,
}

impl DatabaseConfig {
    pub fn settings(&self, production: bool) -> Result<Database, String> {
        let mut problems = Vec::new();
        if self.pool_size == 0 || self.pool_timeout_ms == 0 {
            problems.push(
                "APEXKIT_DB_POOL_SIZE and APEXKIT_DB_POOL_TIMEOUT_MS must be positive".to_owned(),
            );
        }
        let migration_url = match self.migration_url.as_deref().map(DatabaseUrl::parse) {
            None => None,
            Some(Ok(m @ DatabaseUrl::Postgres(_))) => Some(m),
            Some(Ok(DatabaseUrl::Sqlite(_))) => {
                problems.push(
                    "APEXKIT_MIGRATION_DATABASE_URL must be a postgres:// URL (it is the direct \
                     connection beside a pooled PostgreSQL DATABASE_URL)"
                        .to_owned(),
                );
                None
            }
            Some(Err(e)) => {
                problems.push(format!("APEXKIT_MIGRATION_DATABASE_URL: {e}"));
                None
            }
        };
        let url = super::checked(DatabaseUrl::parse(&self.url), problems)?;
        if migration_url.is_some() && !matches!(url, DatabaseUrl::Postgres(_)) {
            return Err(
                "APEXKIT_MIGRATION_DATABASE_URL is for PostgreSQL; DATABASE_URL is SQLite".into(),
            );
        }
        Ok(Database {
            migration_url: migration_url.unwrap_or_else(|| url.clone()),
            url,
            pool: PoolOptions {
                max_size: self.pool_size,
                checkout_timeout: Duration::from_millis(self.pool_timeout_ms),
                statement_timeout: Duration::from_millis(self.statement_timeout_ms),
                sqlite_max_size_mb: self.sqlite_max_size_mb,
                pg_mode: if self.prepared_statements {
                    PgMode::Prepared
                } else {
                    PgMode::Unprepared
                },
            },
            migrations_dir: self.migrations_dir.clone(),
            allow_out_of_order: self.allow_out_of_order || !production,
            connect_timeout: Duration::from_secs(self.connect_timeout),
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::config::Cli;

    fn database(args: &[&str]) -> Result<Database, String> {
        let mut all = vec!["apexkit"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all)
            .map_err(|e| e.to_string())?
            .config
            .database
            .settings(true)
    }

    #[test]
    fn pooler_settings_default_and_validate() {
        let direct = database(&["--database-url", "postgres://db/app"]).expect("valid");
        assert_eq!(direct.pool.pg_mode, PgMode::Prepared);
        assert!(direct.migration_url == direct.url);

        let pooled = database(&[
            "--database-url",
            "postgres://pgbouncer:6432/app",
            "--migration-database-url",
            "postgres://db:5432/app",
            "--db-prepared-statements",
            "false",
        ])
        .expect("valid");
        assert_eq!(pooled.pool.pg_mode, PgMode::Unprepared);
        assert!(pooled.migration_url == DatabaseUrl::Postgres("postgres://db:5432/app".into()));

        let sqlite_beside = database(&[
            "--database-url",
            "sqlite://app.db",
            "--migration-database-url",
            "postgres://db/app",
        ]);
        assert!(sqlite_beside.is_err());
        let sqlite_migrations = database(&[
            "--database-url",
            "postgres://db/app",
            "--migration-database-url",
            "sqlite://app.db",
        ]);
        assert!(
            sqlite_migrations
                .err()
                .is_some_and(|e| e.contains("APEXKIT_MIGRATION_DATABASE_URL"))
        );
        assert!(database(&["--db-prepared-statements", "maybe"]).is_err());
    }
}
