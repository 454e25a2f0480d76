//! Observability: where metrics are served.

use std::net::SocketAddr;

#[derive(Debug, Clone, clap::Args)]
pub struct ObservabilityConfig {
    /// A separate address serving only GET /metrics (e.g. 127.0.0.1:9464). In production
    /// /metrics is served only there (404 on the main listener); development serves it on both.
    #[arg(long, env = "APEXKIT_METRICS_LISTEN", help_heading = "Observability")]
    pub metrics_listen: Option<SocketAddr>,
}

impl ObservabilityConfig {
    /// The separate metrics listener's address, if any.
    pub fn settings(&self) -> Option<SocketAddr> {
        self.metrics_listen
    }
}
