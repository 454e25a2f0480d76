//! The `apexkit migrate …` subcommands: `status` (what is applied, drift, a database ahead of
//! this binary), `new` (a paired migration for both databases) and `adopt` (a Better Auth
//! database, or its SQL with `--dry-run`).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::auth::migrations::Migrator;
use crate::config::Config;
use crate::db::{PgMode, Pool, PoolOptions, migrations};

/// Prints every migration with its state; returns whether all is well (no drift, nothing only
/// the database knows, nothing pending). Does not migrate.
pub async fn status(config: &Config, out: &mut impl std::io::Write) -> anyhow::Result<bool> {
    let settings = config.resolve().map_err(anyhow::Error::msg)?;
    let db = &settings.database;
    let migrator = Migrator::new(
        db.migration_url.clone(),
        db.migrations_dir.clone(),
        !settings.is_production(),
    );
    let known = migrator.known()?;
    // The migration connection is direct: prepared statements are fine on it.
    let pool = Pool::new(
        &db.migration_url,
        PoolOptions {
            pg_mode: PgMode::Prepared,
            ..db.pool
        },
    );
    let mut conn = pool.get().await.context("cannot connect to the database")?;
    let states = migrations::status(&mut conn, &known).await?;
    let mut healthy = true;
    writeln!(out, "{:<10} {:<20} name", "state", "applied at")?;
    for s in &states {
        let state = match (s.applied, s.known, s.checksum_mismatch) {
            (true, _, true) => "CHANGED",
            (true, false, _) => "UNKNOWN",
            (true, true, false) => "applied",
            (false, _, _) => "pending",
        };
        healthy &= state == "applied";
        let at = s
            .applied_at
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_else(|| "-".to_owned());
        writeln!(out, "{state:<10} {at:<20} {}", s.name)?;
    }
    if states.iter().any(|s| s.checksum_mismatch) {
        writeln!(
            out,
            "\nCHANGED: the SQL differs from what ran (checksum); production refuses to start."
        )?;
    }
    if states.iter().any(|s| !s.known) {
        writeln!(
            out,
            "\nUNKNOWN: applied, but not in this binary: the database is ahead (a rollback deploy?)."
        )?;
    }
    Ok(healthy)
}

/// Creates `<dir>/postgres/<version>_<name>/{up,down}.sql` and the sqlite twin; returns the
/// folders. The version is the current UTC time (`YYYY-MM-DD-HHMMSS`, diesel's format).
pub fn new_migration(dir: &Path, name: &str) -> anyhow::Result<Vec<PathBuf>> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    anyhow::ensure!(
        valid,
        "migration name must be snake_case (a-z, 0-9, _), at most 64 characters: {name:?}"
    );
    let version = chrono::Utc::now().format("%Y-%m-%d-%H%M%S");
    let folder = format!("{version}_{name}");
    let mut created = Vec::new();
    for backend in ["postgres", "sqlite"] {
        let path = dir.join(backend).join(&folder);
        anyhow::ensure!(!path.exists(), "{} already exists", path.display());
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        for (file, text) in [
            ("up.sql", format!("-- {name} ({backend}): your SQL here\n")),
            (
                "down.sql",
                format!("-- undo {name} ({backend}): the exact reverse of up.sql\n"),
            ),
        ] {
            let mut f = std::fs::File::create_new(path.join(file))
                .with_context(|| format!("cannot create {}", path.join(file).display()))?;
            f.write_all(text.as_bytes())?;
        }
        created.push(path);
    }
    Ok(created)
}

/// `apexkit migrate adopt [--dry-run]`: what the database holds and each adoption step's SQL;
/// without `--dry-run` (and with APEXKIT_ADOPT=better-auth) the steps run. Returns whether
/// there was nothing wrong.
pub async fn adopt(
    config: &Config,
    dry_run: bool,
    out: &mut impl std::io::Write,
) -> anyhow::Result<bool> {
    use crate::db::adopt::Found;
    let settings = config.resolve().map_err(anyhow::Error::msg)?;
    let db = &settings.database;
    // A dry run plans whether or not adoption is allowed: it only reads.
    let outcome = crate::db::adopt::adopt(
        &db.migration_url,
        settings.adopt.better_auth || dry_run,
        dry_run,
    )
    .await?;
    match &outcome.found {
        Found::Empty => writeln!(out, "-- the database is empty: nothing to adopt")?,
        Found::Apexkit => writeln!(
            out,
            "-- Apexkit's database (migrations recorded): nothing to adopt"
        )?,
        Found::Unrelated(_) => {}
        Found::BetterAuth { naming, resuming } => writeln!(
            out,
            "-- Better Auth's tables ({naming:?}){}",
            if *resuming {
                ", adoption under way"
            } else {
                ""
            }
        )?,
    }
    for (step, sql) in &outcome.plan {
        let state = if outcome.applied.contains(step) {
            "ran"
        } else if dry_run {
            "would run"
        } else {
            "done before"
        };
        writeln!(out, "\n-- step {step} ({state})")?;
        for statement in sql {
            writeln!(out, "{statement}")?;
        }
    }
    Ok(true)
}
