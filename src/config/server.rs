//! Server: environment, listen address, public URL, trusted origins and proxies, the secret,
//! connection limits and shutdown.

use std::net::SocketAddr;
use std::time::Duration;

use crate::auth::origin::{TrustedOrigins, origin_of};
use crate::http::conn::ConnLimits;
use crate::secret::Secret;
use crate::throttle::net::Cidr;

use super::Environment;

#[derive(Debug, Clone, clap::Args)]
pub struct ServerConfig {
    /// development: GraphiQL, introspection, a throw-away secret. production: strict.
    #[arg(
        long = "env",
        env = "APEXKIT_ENV",
        value_enum,
        default_value = "development",
        help_heading = "Server"
    )]
    pub environment: Environment,

    /// Address to listen on.
    #[arg(
        long,
        env = "APEXKIT_LISTEN",
        default_value = "127.0.0.1:4000",
        help_heading = "Server"
    )]
    pub listen: SocketAddr,

    /// Public URL of the service (issuer, mail links, trusted origin, passkeys' relying party).
    /// Required in production; development default: http:// + the listen address.
    #[arg(long, env = "APEXKIT_BASE_URL", help_heading = "Server")]
    pub base_url: Option<String>,

    /// Comma-separated origins trusted for CORS with credentials, cookie-authenticated mutations
    /// and redirect targets; APEXKIT_BASE_URL's origin is always trusted. Development default
    /// (when unset): http://127.0.0.1:5173, the example app's Vite dev server.
    #[arg(
        long,
        env = "APEXKIT_TRUSTED_ORIGINS",
        value_delimiter = ',',
        help_heading = "Server"
    )]
    pub trusted_origins: Vec<String>,

    /// Secret of at least 32 bytes (encrypts signing keys). Required in production.
    #[arg(
        long,
        env = "APEXKIT_SECRET",
        hide_env_values = true,
        help_heading = "Server"
    )]
    pub secret: Option<Secret>,

    /// Comma-separated CIDRs of reverse proxies whose X-Forwarded-For is believed. Empty: the
    /// client address is the socket peer.
    #[arg(
        long,
        env = "APEXKIT_TRUSTED_PROXIES",
        value_delimiter = ',',
        help_heading = "Server"
    )]
    pub trusted_proxies: Vec<String>,

    /// Seconds in-flight requests get to finish after SIGTERM/SIGINT before the process exits.
    #[arg(
        long,
        env = "APEXKIT_SHUTDOWN_TIMEOUT",
        default_value_t = 10,
        help_heading = "Server"
    )]
    pub shutdown_timeout: u64,

    /// Seconds a client gets to send a request's headers: from the connection's accept for the
    /// first request, from its first byte for later ones. Slower connections are closed.
    #[arg(
        long,
        env = "APEXKIT_HEADER_READ_TIMEOUT",
        default_value_t = 10,
        help_heading = "Server"
    )]
    pub header_read_timeout: u64,

    /// Seconds an idle keep-alive connection is kept open waiting for its next request.
    #[arg(
        long,
        env = "APEXKIT_KEEP_ALIVE_TIMEOUT",
        default_value_t = 75,
        help_heading = "Server"
    )]
    pub keep_alive_timeout: u64,

    /// Most client connections open at once (per listener); beyond it the service stops
    /// accepting (new connections wait in the kernel's backlog) until one closes. Lowered to
    /// fit the open-file limit.
    #[arg(
        long,
        env = "APEXKIT_MAX_CONNECTIONS",
        default_value_t = 10_000,
        help_heading = "Server"
    )]
    pub max_connections: usize,

    /// Strict-Transport-Security max-age in seconds, sent when APEXKIT_BASE_URL is https://
    /// (never for http://); 0 disables it.
    #[arg(
        long,
        env = "APEXKIT_HSTS_MAX_AGE",
        default_value_t = 31_536_000,
        help_heading = "Server"
    )]
    pub hsts_max_age: u64,
}

/// Trusted in development when APEXKIT_TRUSTED_ORIGINS is unset: where `npm run dev` serves the
/// example app (`examples/web`), so `cargo run` and it work together with nothing configured.
/// The same host as development's base URL (`http://127.0.0.1:4000`), hence the same site: the
/// session cookie goes along with the app's requests.
pub const DEV_FRONTEND_ORIGIN: &str = "http://127.0.0.1:5173";

/// The server settings, validated.
pub struct Server {
    pub listen: SocketAddr,
    /// APEXKIT_BASE_URL without a trailing slash.
    base_url: Option<String>,
    /// APEXKIT_TRUSTED_ORIGINS (each checked to be an origin).
    trusted_origins: Vec<String>,
    /// The configured secret; development without one uses a throw-away secret.
    pub secret: Option<Secret>,
    pub trusted_proxies: Vec<Cidr>,
    pub shutdown_timeout: Duration,
    /// As configured; boot lowers the cap to fit the open-file limit.
    pub conn_limits: ConnLimits,
    pub hsts_max_age: u64,
}

/// What the bound listen address completes: the public base URL and the origins trusted.
pub struct Site {
    /// Without a trailing slash.
    pub base_url: String,
    pub origins: TrustedOrigins,
}

impl ServerConfig {
    pub fn settings(&self) -> Result<Server, String> {
        let mut problems = Vec::new();
        if let Some(url) = &self.base_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            problems.push(format!(
                "APEXKIT_BASE_URL must start with http:// or https://, got {url:?}"
            ));
        }
        // The messages of `TrustedOrigins::new`, which builds the set once the address is bound.
        let base_url = self.base_url.as_deref().unwrap_or("http://localhost");
        if origin_of(base_url).is_none() {
            problems.push(format!("invalid base URL {base_url:?}"));
        } else if let Some(raw) = self
            .trusted_origins
            .iter()
            .map(|s| s.trim())
            .find(|s| !s.is_empty() && origin_of(s).is_none())
        {
            problems.push(format!(
                "APEXKIT_TRUSTED_ORIGINS: {raw:?} is not an http(s) origin"
            ));
        }
        let trusted_proxies = self
            .trusted_proxies
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<Cidr>()
                    .map_err(|_| format!("APEXKIT_TRUSTED_PROXIES: {s:?} is not a CIDR or address"))
            })
            .collect::<Result<Vec<_>, _>>()
            .unwrap_or_else(|e| {
                problems.push(e);
                Vec::new()
            });
        if self.header_read_timeout == 0
            || self.keep_alive_timeout == 0
            || self.max_connections == 0
        {
            problems.push(
                "APEXKIT_HEADER_READ_TIMEOUT, APEXKIT_KEEP_ALIVE_TIMEOUT and \
                 APEXKIT_MAX_CONNECTIONS must be positive"
                    .to_owned(),
            );
        }
        super::problems(problems)?;
        Ok(Server {
            listen: self.listen,
            base_url: self
                .base_url
                .as_deref()
                .map(|url| url.trim_end_matches('/').to_owned()),
            trusted_origins: if self.environment == Environment::Development
                && self.trusted_origins.iter().all(|s| s.trim().is_empty())
            {
                vec![DEV_FRONTEND_ORIGIN.to_owned()]
            } else {
                self.trusted_origins.clone()
            },
            secret: self.secret.clone(),
            trusted_proxies,
            shutdown_timeout: Duration::from_secs(self.shutdown_timeout),
            conn_limits: ConnLimits {
                header_read: Duration::from_secs(self.header_read_timeout),
                keep_alive: Duration::from_secs(self.keep_alive_timeout),
                max_connections: self.max_connections,
            },
            hsts_max_age: self.hsts_max_age,
        })
    }

    /// Production needs the secret (of at least 32 bytes) and the public URL.
    pub(super) fn production_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.environment != Environment::Production {
            return problems;
        }
        match &self.secret {
            None => problems.push("APEXKIT_SECRET is required in production".to_owned()),
            Some(s) if s.expose().len() < 32 => {
                problems.push("APEXKIT_SECRET must be at least 32 bytes".to_owned())
            }
            Some(_) => {}
        }
        if self.base_url.is_none() {
            problems.push("APEXKIT_BASE_URL is required in production".to_owned());
        }
        problems
    }
}

impl Server {
    /// The public site once the listen address is bound (it is the development base URL).
    pub fn site(&self, bound: SocketAddr) -> Result<Site, String> {
        let base_url = match &self.base_url {
            Some(url) => url.clone(),
            None => format!("http://{bound}"),
        };
        let origins = TrustedOrigins::new(&base_url, &self.trusted_origins)?;
        Ok(Site { base_url, origins })
    }
}
