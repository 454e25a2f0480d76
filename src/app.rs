//! Boot and run: config → migrations → pool → domain → schema → routes, then serve until a
//! shutdown signal, draining in-flight requests.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use poem::Server;
use poem::listener::TcpAcceptor;

use crate::auth::{Auth, SessionPolicy, password::Hasher};
use crate::config::Config;
use crate::db::{self, Pool, migrations};
use crate::graphql::{CookiePolicy, Limits, build_schema};
use crate::http::{HttpState, routes};
use crate::observability;

/// How often expired sessions are purged.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// A built application, bound to its listen address but not yet serving.
pub struct App {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    state: HttpState,
    auth: Auth,
    ready: Arc<AtomicBool>,
    /// How long in-flight requests get to finish after a shutdown signal.
    shutdown_timeout: Duration,
}

/// Applies pending migrations (under the cross-process lock) and returns what ran.
pub async fn migrate(config: &Config) -> anyhow::Result<Vec<String>> {
    config.validate().map_err(anyhow::Error::msg)?;
    let url = config.database().map_err(anyhow::Error::msg)?;
    db::wait_until_reachable(&url, Duration::from_secs(config.db_connect_timeout)).await?;
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
        let auth = Auth::new(pool.clone(), hasher, policy);
        let limits = Limits {
            max_depth: config.max_depth,
            max_complexity: config.max_complexity,
            max_directives: config.max_directives,
            introspection: !config.is_production(),
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
            metrics: observability::prometheus(),
            pool_max_size: config.db_pool_size,
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
            shutdown_timeout: Duration::from_secs(config.shutdown_timeout),
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until SIGINT or SIGTERM.
    pub async fn run(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `signal` completes; then turns `/readyz` to 503 and stops accepting at once,
    /// lets in-flight requests finish for at most `APEXKIT_SHUTDOWN_TIMEOUT` (cutting off the
    /// rest), and closes the database pool before returning.
    pub async fn run_until(self, signal: impl Future<Output = ()> + Send) -> std::io::Result<()> {
        let Self {
            listener,
            addr,
            state,
            auth,
            ready,
            shutdown_timeout,
        } = self;
        let pool = state.pool.clone();
        let upkeep = state.metrics.clone().map(|handle| {
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(observability::UPKEEP_EVERY);
                loop {
                    tick.tick().await;
                    handle.run_upkeep();
                }
            })
        });
        let purge = tokio::spawn(async move {
            let mut tick = tokio::time::interval(PURGE_EVERY);
            loop {
                tick.tick().await;
                match auth.purge_expired_sessions().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(sessions = n, "purged expired sessions"),
                    Err(e) => tracing::warn!(error = %e, "session purge failed"),
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
                    tracing::info!(
                        timeout_s = shutdown_timeout.as_secs(),
                        "shutting down: draining in-flight requests"
                    );
                },
                Some(shutdown_timeout),
            )
            .await;
        purge.abort();
        if let Some(upkeep) = upkeep {
            upkeep.abort();
        }
        // The routes (and every clone of the pool they held) are gone; dropping the last one
        // closes the idle connections instead of leaving them to the process exit.
        let stats = pool.stats();
        drop(pool);
        tracing::info!(
            connections = stats.connections,
            "database pool closed; shutdown complete"
        );
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
