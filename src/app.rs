//! Boot and run: config → migrations → pool → domain → schema → routes, then serve until a
//! shutdown signal, draining in-flight requests.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use poem::Server;
use poem::listener::TcpAcceptor;

use crate::auth::password::{Hasher, Policy as PasswordPolicy};
use crate::auth::{Auth, SessionPolicy};
use crate::config::{Config, RateLimitStorage};
use crate::db::{Pool, migrations};
use crate::graphql::{CookiePolicy, Limits, build_schema};
use crate::http::{HttpState, routes};
use crate::throttle::{AccountThrottle, RateLimiter, Rules};

/// How often expired sessions are purged.
const PURGE_EVERY: Duration = Duration::from_secs(3600);
/// How long in-flight requests get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A built application, bound to its listen address but not yet serving.
pub struct App {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    state: HttpState,
    auth: Auth,
    ready: Arc<AtomicBool>,
    rate_limiter: Option<RateLimiter>,
    sign_in_throttle: AccountThrottle,
    hashes: Arc<AtomicU64>,
}

/// Applies pending migrations (under the cross-process lock) and returns what ran.
pub async fn migrate(config: &Config) -> anyhow::Result<Vec<String>> {
    config.validate().map_err(anyhow::Error::msg)?;
    let url = config.database().map_err(anyhow::Error::msg)?;
    let applied = migrations::run_pending(&url).await?;
    for version in &applied {
        tracing::info!(%version, backend = url.backend(), "migration applied");
    }
    Ok(applied)
}

impl App {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        migrate(&config).await?;
        let url = config.database().map_err(anyhow::Error::msg)?;
        let pool = Pool::new(&url, config.pool_options());
        let hasher = Hasher::new(config.hash_concurrency())?;

        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        let base_url = config.base_url(addr);
        if !config.is_production() && config.secret.is_none() {
            tracing::warn!(
                "DEVELOPMENT MODE without APEXKIT_SECRET: using a throw-away secret; \
                 never expose this instance"
            );
        }

        let policy = SessionPolicy {
            expires_in: Duration::from_secs(config.session_expires_in),
            short_expires_in: Duration::from_secs(config.session_short_expires_in),
            update_age: Duration::from_secs(config.session_update_age),
        };
        let hashes = hasher.computed();
        let shared =
            (config.rate_limit_storage == RateLimitStorage::Database).then(|| pool.clone());
        let (rate_limiter, sign_in_throttle) = if config.rate_limit_enabled() {
            let rules = Rules {
                credential: config.rate_limit_credential,
                mail: config.rate_limit_mail,
                general: config.rate_limit_general,
            };
            (
                Some(RateLimiter::new(rules, shared.clone())),
                AccountThrottle::new(
                    config.sign_in_free_failures,
                    Duration::from_secs(config.sign_in_max_delay),
                    shared,
                ),
            )
        } else {
            (None, AccountThrottle::disabled())
        };
        let auth = Auth::new(pool.clone(), hasher, policy)
            .with_password_policy(PasswordPolicy {
                min_length: config.password_min_length,
            })
            .with_sign_in_throttle(sign_in_throttle.clone());
        let limits = Limits {
            max_depth: config.max_depth,
            max_complexity: config.max_complexity,
            max_directives: config.max_directives,
            introspection: config.introspection_enabled(),
            suggestions: !config.is_production(),
            rate_limiter: rate_limiter.clone(),
        };
        let ready = Arc::new(AtomicBool::new(true));
        let state = HttpState {
            schema: build_schema(Some(auth.clone()), limits),
            pool,
            cookie: CookiePolicy::for_base_url(&base_url),
            max_body_bytes: config.max_body_bytes,
            max_batch: config.max_batch,
            graphiql: !config.is_production(),
            expected_migrations: migrations::embedded_versions(&url),
            ready: ready.clone(),
            origins: Arc::new(config.trusted_origins(addr).map_err(anyhow::Error::msg)?),
            trusted_proxies: config.trusted_proxies().map_err(anyhow::Error::msg)?,
            max_query_bytes: config.max_query_bytes,
        };
        tracing::info!(
            backend = url.backend(),
            environment = ?config.environment,
            %base_url,
            "apexkit ready"
        );
        Ok(Self {
            listener,
            addr,
            state,
            auth,
            ready,
            rate_limiter,
            sign_in_throttle,
            hashes,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Password hashes and verifications computed so far (tests prove work was refused before).
    pub fn hash_counter(&self) -> Arc<AtomicU64> {
        self.hashes.clone()
    }

    /// Serves until SIGINT or SIGTERM.
    pub async fn run(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `signal` completes, then stops accepting, turns `/readyz` to 503 and lets
    /// in-flight requests finish.
    pub async fn run_until(self, signal: impl Future<Output = ()> + Send) -> std::io::Result<()> {
        let Self {
            listener,
            addr,
            state,
            auth,
            ready,
            rate_limiter,
            sign_in_throttle,
            hashes: _,
        } = self;
        let purge = tokio::spawn(async move {
            let mut tick = tokio::time::interval(PURGE_EVERY);
            loop {
                tick.tick().await;
                match auth.purge_expired_sessions().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(sessions = n, "purged expired sessions"),
                    Err(e) => tracing::warn!(error = %e, "session purge failed"),
                }
                if let Some(limiter) = &rate_limiter
                    && let Err(e) = limiter.purge().await
                {
                    tracing::warn!(error = %e, "rate-limit purge failed");
                }
                if let Err(e) = sign_in_throttle.purge().await {
                    tracing::warn!(error = %e, "sign-in counter purge failed");
                }
            }
        });
        tracing::info!(%addr, "listening on http://{addr}");
        let acceptor = TcpAcceptor::from_tokio(listener)?;
        let result = Server::new_with_acceptor(acceptor)
            .run_with_graceful_shutdown(
                routes(state),
                async move {
                    signal.await;
                    ready.store(false, Ordering::Release);
                    tracing::info!("shutting down: draining in-flight requests");
                },
                Some(SHUTDOWN_GRACE),
            )
            .await;
        purge.abort();
        result
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
