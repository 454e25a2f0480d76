//! Readiness and the pool's figures, for the HTTP layer's `/readyz` and `/metrics`: the transport
//! asks the domain, never the database.

use super::Context;
use crate::db::{PoolStats, migrations};

/// Whether this replica should receive traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    DatabaseUnreachable,
    MigrationsPending,
}

impl Context {
    /// `Ready` when the database answers and every migration in `expected` is applied.
    pub async fn readiness(&self, expected: &[String]) -> Readiness {
        let mut conn = match self.pool.get().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "readiness: database unreachable");
                return Readiness::DatabaseUnreachable;
            }
        };
        match migrations::applied_versions(&mut conn).await {
            Ok(applied) if expected.iter().all(|v| applied.contains(v)) => Readiness::Ready,
            Ok(_) => Readiness::MigrationsPending,
            Err(e) => {
                tracing::warn!(error = %e, "readiness: cannot read migrations");
                Readiness::DatabaseUnreachable
            }
        }
    }

    /// The connection pool's live figures.
    pub fn pool_stats(&self) -> PoolStats {
        self.pool.stats()
    }
}
