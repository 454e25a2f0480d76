//! Boot and run: settings (validated once) → migrations → pool → domain → schema → routes, then
//! serve until a shutdown signal, draining in-flight requests.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use poem::Server;

use crate::auth::keys::{KeyStore, OnUnreadableKey};
use crate::auth::migrations::Migrator;
use crate::auth::password::Hasher;
use crate::auth::social::SocialProviders;
use crate::auth::two_factor::{TwoFactorSettings, default_issuer};
use crate::auth::verification::AccountFlows;
use crate::auth::{AccessTokens, Auth};
use crate::config::{Config, Mail, RateLimitStorage, RateLimits, Settings, Site};
use crate::db::{self, DatabaseUrl, PgMode, Pool, PoolOptions, migrations};
use crate::graphql::{CookiePolicy, Limits, build_schema};
use crate::http::conn::{self, ConnLimits, GuardedAcceptor};
use crate::http::{HttpState, metrics_routes, routes};
use crate::mail::Worker;
use crate::observability;
use crate::secret::Secret;
use crate::throttle::{AccountThrottle, RateLimiter};

/// How often expired sessions are purged.
const PURGE_EVERY: Duration = Duration::from_secs(3600);
/// Longest pause between checks whether the signing key is due for rotation.
const KEY_CHECK_MAX: Duration = Duration::from_secs(60);
/// How long the mail worker gets to finish a delivery after shutdown.
const MAIL_STOP_GRACE: Duration = Duration::from_secs(5);

/// A built application, bound to its listen address but not yet serving.
pub struct App {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    state: HttpState,
    /// Held here (not by the routes) so that shutdown can close it last.
    pool: Pool,
    auth: Auth,
    keys: KeyStore,
    ready: Arc<AtomicBool>,
    rate_limiter: Option<RateLimiter>,
    sign_in_throttle: AccountThrottle,
    hashes: Arc<AtomicU64>,
    /// How long in-flight requests get to finish after a shutdown signal.
    shutdown_timeout: Duration,
    mail: Worker,
    // issue 13: connection limits and the separate metrics listener.
    conn_limits: ConnLimits,
    metrics_listener: Option<(tokio::net::TcpListener, SocketAddr)>,
}

/// Connections the metrics listener keeps open at most (scrapers are few).
const METRICS_MAX_CONNECTIONS: usize = 64;
/// How long the metrics listener gets to finish a scrape after shutdown.
const METRICS_STOP_GRACE: Duration = Duration::from_secs(2);

/// Applies pending migrations (under the cross-process lock) and returns what ran; then checks
/// the history (see [`verify_history`]).
pub async fn migrate(config: &Config) -> anyhow::Result<Vec<String>> {
    let settings = config.resolve().map_err(anyhow::Error::msg)?;
    let (applied, _pool) = migrate_settled(&settings).await?;
    Ok(applied)
}

/// Migrates, then checks the history on a pool built after migrating (its first connection
/// never races the migration lock); returns what ran and that pool.
async fn migrate_settled(settings: &Settings) -> anyhow::Result<(Vec<String>, Pool)> {
    let db = &settings.database;
    check_pooling(settings).await?;
    let applied = run_migrations(settings).await?;
    // The history check reads and writes on the migration connection (direct when set).
    let direct = Pool::new(
        &db.migration_url,
        PoolOptions {
            max_size: 1,
            pg_mode: PgMode::Prepared,
            ..db.pool
        },
    );
    verify_history(settings, &direct).await?;
    drop(direct);
    let pool = Pool::new(&db.url, db.pool);
    Ok((applied, pool))
}

/// Refuses to boot on a DATABASE_URL that goes through a transaction-pooling proxy unless
/// prepared statements are off and migrations have a direct URL of their own (see
/// `db::pooling` for how it is detected); warns when no statement timeout reaches it then.
async fn check_pooling(settings: &Settings) -> anyhow::Result<()> {
    let db = &settings.database;
    let DatabaseUrl::Postgres(url) = &db.url else {
        return Ok(());
    };
    db::wait_until_reachable(&db.url, db.connect_timeout).await?;
    let pooled = db::pooling::transaction_pooled(url)
        .await
        .context("cannot probe DATABASE_URL for a transaction-pooling proxy")?;
    if !pooled {
        return Ok(());
    }
    let mut missing = Vec::new();
    if db.pool.pg_mode == PgMode::Prepared {
        missing.push("APEXKIT_DB_PREPARED_STATEMENTS=false");
    }
    if db.migration_url == db.url {
        missing.push(
            "APEXKIT_MIGRATION_DATABASE_URL=<a direct postgres:// URL, not through the pooler>",
        );
    }
    if !missing.is_empty() {
        anyhow::bail!(
            "DATABASE_URL goes through a transaction-pooling proxy (e.g. PgBouncer with \
             pool_mode = transaction): its server connections change between transactions, so \
             prepared statements and the session-level migration lock do not hold. Set {}; or \
             use pool_mode = session",
            missing.join(" and ")
        );
    }
    let timeout = db::pooling::statement_timeout(url)
        .await
        .unwrap_or_default();
    if timeout == "0" {
        tracing::warn!(
            "DATABASE_URL is transaction-pooled and no statement_timeout reaches it: \
             APEXKIT_DB_STATEMENT_TIMEOUT_MS is not applied behind transaction pooling; set \
             statement_timeout on the server side (PgBouncer connect_query, or ALTER ROLE … \
             SET statement_timeout)"
        );
    }
    tracing::info!(
        statement_timeout = %timeout,
        "DATABASE_URL is transaction-pooled: prepared statements off, migrations on \
         APEXKIT_MIGRATION_DATABASE_URL"
    );
    Ok(())
}

async fn run_migrations(settings: &Settings) -> anyhow::Result<Vec<String>> {
    let db = &settings.database;
    db::wait_until_reachable(&db.migration_url, db.connect_timeout).await?;
    // A database some other system made is adopted (or refused) before any migration runs.
    let adopted = db::adopt::adopt(&db.migration_url, settings.adopt.better_auth, false).await?;
    if !adopted.applied.is_empty() {
        tracing::info!(steps = %adopted.applied.join(", "), "Better Auth database adopted");
    }
    let applied = migrations::run_pending_checked(&db.migration_url, db.allow_out_of_order).await?;
    for version in &applied {
        tracing::info!(%version, backend = db.url.backend(), "migration applied");
    }
    Ok(applied)
}

/// `apexkit keys rotate`: migrates, then retires the active signing key and creates a new one.
/// Needs the deployment's APEXKIT_SECRET: a key sealed with any other secret is useless to it.
pub async fn rotate_keys(config: &Config) -> anyhow::Result<crate::auth::keys::KeyInfo> {
    let settings = config.resolve().map_err(anyhow::Error::msg)?;
    let (_, pool) = migrate_settled(&settings).await?;
    let Some(secret) = &settings.server.secret else {
        anyhow::bail!(
            "APEXKIT_SECRET is required to rotate signing keys (the service must be able to \
             decrypt the new key)"
        );
    };
    let keys = KeyStore::new(pool, secret, settings.tokens.keys);
    keys.rotate()
        .await
        .map_err(|e| anyhow::anyhow!("cannot rotate the signing key: {e:?}"))
}

/// Records the checksum of every applied migration that has none yet, then compares: an
/// applied migration whose SQL in this binary differs from what ran stops a production boot
/// and warns in development; migrations only the database knows (a rollback deploy) are
/// reported, and the service still starts (its own migrations are all applied).
async fn verify_history(settings: &Settings, pool: &Pool) -> anyhow::Result<()> {
    let mut conn = pool.get().await?;
    let known = migrations::embedded(&settings.database.url);
    migrations::record_checksums(&mut conn, &known).await?;
    let states = migrations::status(&mut conn, &known).await?;
    let drifted: Vec<&str> = states
        .iter()
        .filter(|s| s.checksum_mismatch)
        .map(|s| s.name.as_str())
        .collect();
    if !drifted.is_empty() {
        let message = format!(
            "applied migration(s) changed since they ran (up.sql checksum differs from the \
             one recorded): {}",
            drifted.join(", ")
        );
        if settings.is_production() {
            anyhow::bail!(
                "{message}; refusing to start in production. Restore the original SQL and ship \
                 the change as a new migration (see `apexkit migrate status`)"
            );
        }
        tracing::warn!("{message}; starting anyway (development)");
    }
    let ahead: Vec<&str> = states
        .iter()
        .filter(|s| !s.known)
        .map(|s| s.name.as_str())
        .collect();
    if !ahead.is_empty() {
        tracing::warn!(
            migrations = %ahead.join(", "),
            "the database has migrations this binary does not know (a newer release rolled \
             back?); serving, since every migration of this binary is applied"
        );
    }
    Ok(())
}

impl App {
    /// The boot: settings → migrations → pool → hasher → listeners → signing keys → domain →
    /// mail worker → schema and routes.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let settings = config.resolve().map_err(anyhow::Error::msg)?;
        let (_, pool) = migrate_settled(&settings).await?;
        let production = settings.is_production();
        let hasher = Hasher::new(settings.passwords.concurrency, settings.passwords.cost)?
            .with_legacy_padding(settings.adopt.better_auth);
        let hashes = hasher.computed();

        let conn_limits = fit_to_open_files(settings.server.conn_limits);
        let metrics_listener = bind_metrics(settings.metrics_listen).await?;
        let listen = settings.server.listen;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        // Built once: mailed-link targets and the HTTP layer's CORS/CSRF checks share it.
        let site = settings.server.site(addr).map_err(anyhow::Error::msg)?;

        let (keys, secret) = signing_keys(&settings, &pool).await?;
        let social = social_providers(&settings, &site, &secret).await?;
        let (rate_limiter, sign_in_throttle) =
            throttles(settings.rate_limits.as_ref(), &pool).await?;
        let two_factor = TwoFactorSettings::new(
            &secret,
            settings
                .two_factor
                .totp_issuer
                .clone()
                .unwrap_or_else(|| default_issuer(&site.base_url)),
            settings.two_factor.email_second_factor,
            settings.two_factor.passwordless_sign_up,
        );
        let wake = Arc::new(tokio::sync::Notify::new());
        let auth = domain(
            &settings,
            &site,
            &pool,
            hasher,
            &keys,
            &sign_in_throttle,
            &wake,
            social,
            two_factor,
        )
        .await?
        .with_relying_party(relying_party(&settings, &site, &secret)?);
        let ready = Arc::new(AtomicBool::new(true));
        let state = http_state(&settings, &site, &auth, &keys, &rate_limiter, &ready);
        let mail = mail_worker(settings.mail, production, &pool, wake);
        tracing::info!(
            backend = settings.database.url.backend(),
            environment = ?settings.environment,
            base_url = %site.base_url,
            trusted_origins = %site.origins.all().join(","),
            "apexkit ready"
        );
        Ok(Self {
            listener,
            addr,
            state,
            pool,
            auth,
            keys,
            ready,
            rate_limiter,
            sign_in_throttle,
            hashes,
            shutdown_timeout: settings.server.shutdown_timeout,
            mail,
            conn_limits,
            metrics_listener,
        })
    }

    /// The bound address of the metrics listener, when `APEXKIT_METRICS_LISTEN` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().map(|(_, addr)| *addr)
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Password hashes and verifications computed so far (tests prove work was refused before).
    pub fn hash_counter(&self) -> Arc<AtomicU64> {
        self.hashes.clone()
    }

    /// Serves until SIGINT or SIGTERM. The signals are awaited on a thread of their own
    /// ([`ShutdownWatch`]) that also enforces the deadline: however busy the async workers are,
    /// the process exits at most [`EXIT_GRACE`] after `APEXKIT_SHUTDOWN_TIMEOUT`, and says so.
    pub async fn run(self) -> std::io::Result<()> {
        let watch = ShutdownWatch::spawn(self.shutdown_timeout + EXIT_GRACE)?;
        self.run_until(watch.signalled()).await
    }

    /// Serves until `signal` completes; then turns `/readyz` to 503 and stops accepting at once,
    /// lets in-flight requests finish for at most `APEXKIT_SHUTDOWN_TIMEOUT` (cutting off the
    /// rest), and closes the database pool before returning.
    pub async fn run_until(self, signal: impl Future<Output = ()> + Send) -> std::io::Result<()> {
        let Self {
            listener,
            addr,
            state,
            pool,
            auth,
            keys,
            ready,
            rate_limiter,
            sign_in_throttle,
            hashes: _,
            shutdown_timeout,
            mail,
            conn_limits,
            metrics_listener,
        } = self;
        let upkeep = state.metrics.clone().map(|handle| {
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(observability::UPKEEP_EVERY);
                loop {
                    tick.tick().await;
                    handle.run_upkeep();
                }
            })
        });
        let (stop_mail, mail_stopped) = tokio::sync::watch::channel(false);
        let mail = tokio::spawn(mail.run(mail_stopped));
        let purge = tokio::spawn(async move {
            let mut tick = tokio::time::interval(PURGE_EVERY);
            loop {
                tick.tick().await;
                match auth.sessions().purge_expired().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(sessions = n, "purged expired sessions"),
                    Err(e) => tracing::warn!(error = %e, "session purge failed"),
                }
                match auth.two_factor().purge_expired().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(rows = n, "purged expired second steps and codes"),
                    Err(e) => tracing::warn!(error = %e, "two-factor purge failed"),
                }
                match auth.passkeys().purge_expired_ceremonies().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(ceremonies = n, "purged abandoned passkey ceremonies"),
                    Err(e) => tracing::warn!(error = %e, "passkey ceremony purge failed"),
                }
                match auth.social().purge_expired_flows().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(flows = n, "purged abandoned social sign-in flows"),
                    Err(e) => tracing::warn!(error = %e, "social sign-in flow purge failed"),
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
        let rotation = tokio::spawn(async move {
            let every = keys
                .policy()
                .rotation_interval
                .clamp(Duration::from_secs(1), KEY_CHECK_MAX);
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if let Err(e) = keys.rotate_if_due().await {
                    tracing::warn!(error = ?e, "signing key rotation check failed");
                }
                match keys.purge_retired().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(keys = n, "deleted signing keys past retention"),
                    Err(e) => tracing::warn!(error = ?e, "signing key purge failed"),
                }
            }
        });
        let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
        let metrics_server = match metrics_listener {
            Some((listener, at)) => {
                tracing::info!(%at, "metrics on http://{at}/metrics");
                let limits = ConnLimits {
                    max_connections: METRICS_MAX_CONNECTIONS,
                    ..conn_limits
                };
                let server = Server::new_with_acceptor(GuardedAcceptor::new(listener, limits)?)
                    .run_with_graceful_shutdown(
                        metrics_routes(&state),
                        async move {
                            let _ = metrics_stopped.await;
                        },
                        Some(METRICS_STOP_GRACE),
                    );
                Some(tokio::spawn(server))
            }
            None => None,
        };
        tracing::info!(%addr, "listening on http://{addr}");
        let acceptor = GuardedAcceptor::new(listener, conn_limits)?;
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
        rotation.abort();
        let _ = stop_metrics.send(());
        if let Some(server) = metrics_server {
            let abort = server.abort_handle();
            if tokio::time::timeout(METRICS_STOP_GRACE * 2, server)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        // Let a delivery in progress finish (so it is not sent twice), but not forever.
        let _ = stop_mail.send(true);
        let abort = mail.abort_handle();
        if tokio::time::timeout(MAIL_STOP_GRACE, mail).await.is_err() {
            abort.abort();
        }
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

/// The connection limits with the cap lowered to what the open-file limit allows: many
/// connections need many descriptors (raised as far as the process may first).
fn fit_to_open_files(configured: ConnLimits) -> ConnLimits {
    let open_files = conn::raise_open_file_limit();
    let max_connections = conn::fit_cap(configured.max_connections, open_files);
    if max_connections < configured.max_connections {
        tracing::warn!(
            configured = configured.max_connections,
            max_connections,
            open_files,
            "APEXKIT_MAX_CONNECTIONS lowered to fit the open-file limit"
        );
    }
    ConnLimits {
        max_connections,
        ..configured
    }
}

/// The separate metrics listener, bound, with its address (`APEXKIT_METRICS_LISTEN`).
async fn bind_metrics(
    at: Option<SocketAddr>,
) -> anyhow::Result<Option<(tokio::net::TcpListener, SocketAddr)>> {
    let Some(at) = at else {
        return Ok(None);
    };
    let listener = tokio::net::TcpListener::bind(at)
        .await
        .with_context(|| format!("cannot listen on {at} (APEXKIT_METRICS_LISTEN)"))?;
    let bound = listener.local_addr()?;
    Ok(Some((listener, bound)))
}

/// The signing key store with an active key (created, or replaced in development when the
/// secret cannot open it). Development without APEXKIT_SECRET uses a throw-away secret.
async fn signing_keys(settings: &Settings, pool: &Pool) -> anyhow::Result<(KeyStore, Secret)> {
    let secret = match &settings.server.secret {
        Some(secret) => secret.clone(),
        None => {
            tracing::warn!(
                "DEVELOPMENT MODE without APEXKIT_SECRET: using a throw-away secret; \
                 never expose this instance"
            );
            Secret::generate().map_err(|e| anyhow::anyhow!("OS RNG failed: {e}"))?
        }
    };
    let keys = KeyStore::new(pool.clone(), &secret, settings.tokens.keys);
    let on_unreadable = if settings.is_production() {
        OnUnreadableKey::Refuse
    } else {
        OnUnreadableKey::Replace
    };
    let key = keys.ensure_active(on_unreadable).await?;
    tracing::info!(kid = %key.kid, "signing key ready");
    Ok((keys, secret))
}

/// The social sign-in providers, their discovery fetched now: a provider that cannot be
/// reached is a startup error naming it in production, a warning in development (it is tried
/// again at first use).
async fn social_providers(
    settings: &Settings,
    site: &Site,
    secret: &Secret,
) -> anyhow::Result<Option<SocialProviders>> {
    if settings.social.is_empty() {
        return Ok(None);
    }
    let providers = SocialProviders::new(
        settings.social.clone(),
        secret,
        &site.base_url,
        site.origins.clone(),
    )?;
    for (id, error) in providers.discover().await {
        if settings.is_production() {
            anyhow::bail!("social provider {id:?} cannot be reached: {error}");
        }
        tracing::warn!(provider = %id, %error, "social provider unreachable at boot; retried at first use");
    }
    Ok(Some(providers))
}

/// The passkeys' relying party: `APEXKIT_WEBAUTHN_RP_ID` (default the base URL's host), its
/// name, and the trusted origins as the allowed ones. A trusted origin outside the RP id cannot
/// use passkeys (browsers refuse): a warning names it.
fn relying_party(
    settings: &Settings,
    site: &Site,
    secret: &Secret,
) -> anyhow::Result<crate::auth::passkey::RelyingParty> {
    let rp_id = match &settings.webauthn.rp_id {
        Some(id) => id.clone(),
        None => url::Url::parse(&site.base_url)?
            .host_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("APEXKIT_BASE_URL has no host"))?,
    };
    let rp = crate::auth::passkey::RelyingParty::new(
        &rp_id,
        &settings.webauthn.rp_name,
        site.origins.all(),
        secret,
    )
    .map_err(anyhow::Error::msg)?;
    for origin in site.origins.all().iter().filter(|o| !rp.serves(o)) {
        tracing::warn!(%origin, rp_id = %rp_id, "trusted origin outside APEXKIT_WEBAUTHN_RP_ID: passkeys will not work there");
    }
    Ok(rp)
}

/// The per-client rate limiter and the failed sign-in delay (both off without rate limits);
/// counters in memory, shared in the database, or shared in Redis (the failed sign-in delay then
/// in the database). An unreachable Redis does not stop the boot (see `RateLimiter::redis`).
async fn throttles(
    rate_limits: Option<&RateLimits>,
    pool: &Pool,
) -> anyhow::Result<(Option<RateLimiter>, AccountThrottle)> {
    let Some(limits) = rate_limits else {
        return Ok((None, AccountThrottle::disabled()));
    };
    // The recorder first, so the Redis state recorded at boot reaches /metrics.
    let _ = observability::prometheus();
    let shared = (limits.storage != RateLimitStorage::Memory).then(|| pool.clone());
    let limiter = match &limits.redis {
        Some(redis) => RateLimiter::redis(limits.rules, redis, REDIS_BOOT_WAIT)
            .await
            .map_err(anyhow::Error::msg)?,
        None => RateLimiter::new(
            limits.rules,
            (limits.storage == RateLimitStorage::Database).then(|| pool.clone()),
        ),
    };
    Ok((
        Some(limiter),
        AccountThrottle::new(
            limits.sign_in_free_failures,
            limits.sign_in_max_delay,
            shared,
        ),
    ))
}

/// How long the boot waits for Redis before serving with memory counters.
const REDIS_BOOT_WAIT: Duration = Duration::from_secs(2);

/// The domain: `Auth` with everything it is configured with (access tokens signed by `keys`),
/// and APEXKIT_ADMIN_EMAILS applied to the users already verified. All of `Auth`'s assembly is
/// here, in one place.
#[allow(clippy::too_many_arguments)] // each is one boot product; a struct would only rename them
async fn domain(
    settings: &Settings,
    site: &Site,
    pool: &Pool,
    hasher: Hasher,
    keys: &KeyStore,
    sign_in_throttle: &AccountThrottle,
    wake: &Arc<tokio::sync::Notify>,
    social: Option<SocialProviders>,
    two_factor: TwoFactorSettings,
) -> anyhow::Result<Auth> {
    let tokens = AccessTokens::new(
        keys.clone(),
        site.base_url.clone(),
        settings.tokens.audience(&site.base_url),
        settings.tokens.keys.token_lifetime,
    );
    let mail = &settings.mail.flows;
    let flows = AccountFlows {
        base_url: site.base_url.clone(),
        trusted: site.origins.clone(),
        require_email_verification: mail.require_email_verification,
        reset_expires_in: mail.reset_expires_in,
        verification_expires_in: mail.verification_expires_in,
        send_limit: mail.send_limit,
        send_window: mail.send_window,
        fresh_session_age: settings.sessions.fresh_age,
        wake: wake.clone(),
    };
    let auth = Auth::new(pool.clone(), hasher, settings.sessions.policy, tokens)
        .with_admin_emails(settings.admin_emails.clone())
        .with_migrator(Migrator::new(
            settings.database.migration_url.clone(),
            settings.database.migrations_dir.clone(),
            !settings.is_production(),
        ))
        .with_password_policy(settings.passwords.policy)
        .with_sign_in_throttle(sign_in_throttle.clone())
        .with_account_flows(flows)
        .with_social(social)
        .with_two_factor(two_factor);
    let (promoted, demoted) = auth
        .admin()
        .promote_listed()
        .await
        .map_err(|e| anyhow::anyhow!("cannot apply APEXKIT_ADMIN_EMAILS: {e:?}"))?;
    if promoted > 0 {
        tracing::info!(users = promoted, "APEXKIT_ADMIN_EMAILS: promoted to admin");
    }
    if demoted > 0 {
        tracing::warn!(
            users = demoted,
            "APEXKIT_ADMIN_EMAILS: admins with an unverified listed address demoted to user"
        );
    }
    Ok(auth)
}

/// What the routes share: the schema with its limits, the domain, the public site's cookie,
/// origins and HSTS, the transport's limits.
fn http_state(
    settings: &Settings,
    site: &Site,
    auth: &Auth,
    keys: &KeyStore,
    rate_limiter: &Option<RateLimiter>,
    ready: &Arc<AtomicBool>,
) -> HttpState {
    let production = settings.is_production();
    let graphql = &settings.graphql;
    let limits = Limits {
        rate_limiter: rate_limiter.clone(),
        ..graphql.limits.clone()
    };
    HttpState {
        schema: build_schema(Some(auth.clone()), limits),
        auth: auth.clone(),
        keys: keys.clone(),
        cookie: CookiePolicy::for_base_url(&site.base_url),
        max_body_bytes: graphql.max_body_bytes,
        max_batch: graphql.max_batch,
        graphiql: !production,
        expected_migrations: migrations::embedded_versions(&settings.database.url),
        ready: ready.clone(),
        origins: Arc::new(site.origins.clone()),
        trusted_proxies: settings.server.trusted_proxies.clone(),
        max_query_bytes: graphql.max_query_bytes,
        metrics: observability::prometheus(),
        pool_max_size: settings.database.pool.max_size,
        rate_limiter: rate_limiter.clone(),
        hsts: crate::http::hsts(&site.base_url, settings.server.hsts_max_age),
        metrics_on_main: !production,
        better_auth_secret: settings.adopt.better_auth_secret.clone(),
    }
}

/// The outbox worker, delivering through the configured transport (or the log).
fn mail_worker(
    mail: Mail,
    production: bool,
    pool: &Pool,
    wake: Arc<tokio::sync::Notify>,
) -> Worker {
    if !mail.smtp {
        if production {
            tracing::warn!(
                "no APEXKIT_SMTP_URL: mail is not delivered, only logged without its links"
            );
        } else {
            tracing::info!("no APEXKIT_SMTP_URL: mail is logged to stderr (links included)");
        }
    }
    Worker::new(pool.clone(), mail.transport, mail.outbox, wake)
}

/// How long after `APEXKIT_SHUTDOWN_TIMEOUT` the process exits whatever is still running (the
/// mail worker's grace and closing the pool fit in it).
pub const EXIT_GRACE: Duration = MAIL_STOP_GRACE.saturating_add(Duration::from_secs(2));

/// SIGINT/SIGTERM awaited on a dedicated thread with a runtime of its own, so that neither the
/// signal nor the deadline depends on the async workers being free: after the first signal the
/// service drains; when `deadline` passes (or at a second signal) the process exits, logging
/// why. Every runtime that listens for a signal is told of it, so the serving runtime learns
/// of it as soon as one of its workers is free.
struct ShutdownWatch {
    signalled: tokio::sync::watch::Receiver<bool>,
}

impl ShutdownWatch {
    fn spawn(deadline: Duration) -> std::io::Result<Self> {
        let (tell, signalled) = tokio::sync::watch::channel(false);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        // Listeners are registered before serving starts: a signal from then on is seen.
        let mut listeners = {
            let _context = runtime.enter();
            Signals::new()?
        };
        std::thread::Builder::new()
            .name("apexkit-shutdown".into())
            .spawn(move || {
                runtime.block_on(async move {
                    listeners.next().await;
                    let _ = tell.send(true);
                    let second = tokio::select! {
                        () = tokio::time::sleep(deadline) => false,
                        () = listeners.next() => true,
                    };
                    if second {
                        tracing::error!("second shutdown signal: exiting now");
                    } else {
                        tracing::error!(
                            deadline_s = deadline.as_secs(),
                            "shutdown deadline passed with work still running: exiting now"
                        );
                    }
                    std::process::exit(1);
                });
            })?;
        Ok(Self { signalled })
    }

    async fn signalled(mut self) {
        // An error means the watch thread is gone: nothing will ever signal.
        if self.signalled.wait_for(|s| *s).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// SIGINT and SIGTERM.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    #[cfg(unix)]
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    #[cfg(not(unix))]
    fn new() -> std::io::Result<Self> {
        Ok(Self {})
    }

    #[cfg(unix)]
    async fn next(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {},
            _ = self.int.recv() => {},
        }
    }

    #[cfg(not(unix))]
    async fn next(&mut self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}
