//! The schema workflow as use cases: migration status (with checksum drift and a database
//! ahead of this binary) and, in development, pushing on-disk migrations into the live database.

use std::path::PathBuf;

use super::admin::AdminService;
use super::audit::{AuditEvent, AuditKind};
use super::{Admin, ClientInfo};
use crate::db::DatabaseUrl;
pub use crate::db::migrations::MigrationState;
use crate::db::migrations::{self, Script};
use crate::error::{Error, Result};

/// Where migrations come from, per deployment.
#[derive(Debug, Clone)]
pub struct Migrator {
    url: DatabaseUrl,
    /// The backend's migrations directory (`<APEXKIT_MIGRATIONS_DIR>/<backend>`).
    dir: PathBuf,
    development: bool,
}

/// What a push did (or, dry, would do).
#[derive(Debug)]
pub struct PushReport {
    pub dry_run: bool,
    /// The directory read, or `embedded` when it does not exist.
    pub source: String,
    /// Folder names of the migrations applied (or pending, when dry), oldest first.
    pub migrations: Vec<String>,
    /// Their `up.sql`, each under a `-- <name>` header.
    pub sql: String,
}

impl Migrator {
    pub fn new(url: DatabaseUrl, migrations_dir: PathBuf, development: bool) -> Self {
        let dir = migrations_dir.join(url.backend());
        Self {
            url,
            dir,
            development,
        }
    }

    /// The migrations a push applies: the directory on disk, or the embedded set without one.
    pub fn push_source(&self) -> anyhow::Result<(String, Vec<Script>)> {
        Ok(match migrations::read_dir(&self.dir)? {
            Some(scripts) => (self.dir.display().to_string(), scripts),
            None => ("embedded".to_owned(), migrations::embedded(&self.url)),
        })
    }

    /// Every migration status should list: the binary's, plus (in development) those only on
    /// disk, which a push would apply.
    pub fn known(&self) -> anyhow::Result<Vec<Script>> {
        let mut known = migrations::embedded(&self.url);
        if self.development
            && let Some(disk) = migrations::read_dir(&self.dir)?
        {
            for script in disk {
                if !known.iter().any(|k| k.version() == script.version()) {
                    known.push(script);
                }
            }
        }
        Ok(known)
    }
}

impl AdminService<'_> {
    fn migrator(&self) -> Result<&Migrator> {
        self.migrator
            .as_deref()
            .ok_or_else(|| Error::internal(anyhow::anyhow!("migrator not configured")))
    }

    /// Every known and every applied migration, oldest first.
    pub async fn migration_status(&self, _admin: &Admin) -> Result<Vec<MigrationState>> {
        let known = self.migrator()?.known().map_err(Error::internal)?;
        Ok(migrations::status(&mut self.conn().await?, &known).await?)
    }

    /// How many credential accounts still hold a password hash from an adopted database
    /// (Better Auth's scrypt); each becomes argon2id at its owner's next sign-in.
    pub async fn legacy_password_hashes(&self, _admin: &Admin) -> Result<i64> {
        Ok(crate::db::accounts::count_legacy_hashes(
            &mut self.conn().await?,
            super::CREDENTIAL_PROVIDER,
        )
        .await?)
    }

    /// Applies the pending on-disk migrations to the live database (development only), under
    /// the same lock as boot, and records their checksums; `dry_run` only reports.
    pub async fn push_schema(
        &self,
        admin: &Admin,
        client: &ClientInfo,
        dry_run: bool,
    ) -> Result<PushReport> {
        let migrator = self.migrator()?;
        if !migrator.development {
            return Err(Error::Forbidden);
        }
        let audit = |ok: bool| {
            let event = if ok {
                AuditEvent::success(AuditKind::SchemaPush)
            } else {
                AuditEvent::failure(AuditKind::SchemaPush)
            };
            event.actor(&admin.user.id)
        };
        let (source, scripts) = migrator.push_source().map_err(Error::internal)?;
        let pending = match migrations::push(&migrator.url, scripts.clone(), dry_run).await {
            Ok(pending) => pending,
            Err(e) => {
                // The database error explains what broke; the client gets the generic answer.
                let detail = serde_json::json!({ "source": source, "dryRun": dry_run, "error": format!("{e:#}") });
                self.record(audit(false).detail(detail), client).await;
                return Err(Error::internal(e));
            }
        };
        let ran: Vec<Script> = scripts
            .into_iter()
            .filter(|s| pending.contains(&s.name))
            .collect();
        if !dry_run {
            migrations::record_checksums(&mut self.conn().await?, &ran).await?;
        }
        let sql = ran
            .iter()
            .map(|s| format!("-- {}\n{}", s.name, s.up.trim_end()))
            .collect::<Vec<_>>()
            .join("\n\n");
        self.record(
            audit(true).detail(serde_json::json!({
                "source": source,
                "dryRun": dry_run,
                "migrations": pending,
            })),
            client,
        )
        .await;
        Ok(PushReport {
            dry_run,
            source,
            migrations: pending,
            sql,
        })
    }
}
