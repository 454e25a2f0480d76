//! Typed configuration: every setting is a flag and an environment variable (the flag wins),
//! validated once at start and then passed down by value. No globals.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::db::{DatabaseUrl, PoolOptions};
pub use crate::secret::Secret;
use crate::throttle::Rule;
use crate::throttle::net::Cidr;

pub mod reference;

/// Apexkit Auth: a self-hosted authentication service speaking GraphQL.
#[derive(Debug, Parser)]
#[command(name = "apexkit", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Apply pending database migrations and exit (a container init step).
    #[arg(long, env = "APEXKIT_MIGRATE_ONLY")]
    pub migrate_only: bool,

    #[command(flatten)]
    pub config: Config,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the GraphQL schema (SDL) to stdout; `schema.graphql` is this output.
    PrintSchema,
    /// Print the configuration reference (Markdown) to stdout; `docs/src/configuration.md` is
    /// this output.
    PrintConfigReference,
    /// Time argon2 password hashes (this build, this machine) and print the sign-in ceiling.
    BenchHash {
        /// Hashes to time (sequentially, one core).
        #[arg(long, default_value_t = 20)]
        iterations: u32,
        /// Also time this many threads hashing at once (0: skip).
        #[arg(long, default_value_t = 0)]
        threads: usize,
    },
    /// Manage the keys that sign access tokens.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Migration tooling: `migrate status` and `migrate new <name>`.
    Migrate {
        #[command(subcommand)]
        action: MigrateCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Retire the active signing key and create a new one (migrates first; needs
    /// APEXKIT_SECRET). Tokens signed by the old key stay verifiable until they expire.
    Rotate,
}

#[derive(Debug, Subcommand)]
pub enum MigrateCommand {
    /// List every migration (applied or pending, and when), flag applied migrations whose SQL
    /// changed since they ran, and those only the database knows (a rollback deploy). Exits 1
    /// when something needs attention.
    Status,
    /// Create a paired migration: <APEXKIT_MIGRATIONS_DIR>/postgres/<version>_<name>/{up,down}.sql
    /// and the same under sqlite/.
    New {
        /// snake_case description, e.g. add_user_phone
        name: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Environment {
    Development,
    Production,
}

#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Database: postgres://…, postgresql://… or sqlite://PATH (file created when missing).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://apexkit.db",
        hide_env_values = true,
        help_heading = "Database"
    )]
    pub database_url: String,

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

    /// Public URL of the service (issuer, mail links, trusted origin). Required in production;
    /// development default: http:// + the listen address.
    #[arg(long, env = "APEXKIT_BASE_URL", help_heading = "Server")]
    pub base_url: Option<String>,

    /// Comma-separated origins trusted for CORS with credentials, cookie-authenticated mutations
    /// and redirect targets; APEXKIT_BASE_URL's origin is always trusted.
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

    /// Session lifetime in seconds (sliding).
    #[arg(long, env = "APEXKIT_SESSION_EXPIRES_IN", default_value_t = 7 * 24 * 3600, help_heading = "Sessions")]
    pub session_expires_in: u64,

    /// A session's expiry is pushed forward at most once per this many seconds of use.
    #[arg(long, env = "APEXKIT_SESSION_UPDATE_AGE", default_value_t = 24 * 3600, help_heading = "Sessions")]
    pub session_update_age: u64,

    /// Lifetime in seconds of a session signed in with `rememberMe: false`.
    #[arg(long, env = "APEXKIT_SESSION_SHORT_EXPIRES_IN", default_value_t = 24 * 3600, help_heading = "Sessions")]
    pub session_short_expires_in: u64,

    /// Maximum pooled database connections.
    #[arg(
        long,
        env = "APEXKIT_DB_POOL_SIZE",
        default_value_t = 10,
        help_heading = "Database"
    )]
    pub db_pool_size: u32,

    /// Milliseconds a request waits for a database connection before SERVICE_UNAVAILABLE.
    #[arg(
        long,
        env = "APEXKIT_DB_POOL_TIMEOUT_MS",
        default_value_t = 3000,
        help_heading = "Database"
    )]
    pub db_pool_timeout_ms: u64,

    /// Milliseconds one statement may run (PostgreSQL statement_timeout, SQLite busy_timeout).
    #[arg(
        long,
        env = "APEXKIT_DB_STATEMENT_TIMEOUT_MS",
        default_value_t = 5000,
        help_heading = "Database"
    )]
    pub db_statement_timeout_ms: u64,

    /// Concurrent argon2 computations (each holds its memory cost); default: the number of cores.
    #[arg(long, env = "APEXKIT_HASH_CONCURRENCY", help_heading = "Passwords")]
    pub hash_concurrency: Option<usize>,

    /// argon2id memory cost in KiB (an OWASP row with APEXKIT_ARGON2_ITERATIONS: 7168 x 5,
    /// 9216 x 4, 12288 x 3, 19456 x 2, 47104 x 1). Changing it rehashes passwords at sign-in.
    #[arg(
        long,
        env = "APEXKIT_ARGON2_MEMORY_KIB",
        default_value_t = 7_168,
        help_heading = "Passwords"
    )]
    pub argon2_memory_kib: u32,

    /// argon2id passes (time cost); see APEXKIT_ARGON2_MEMORY_KIB.
    #[arg(
        long,
        env = "APEXKIT_ARGON2_ITERATIONS",
        default_value_t = 5,
        help_heading = "Passwords"
    )]
    pub argon2_iterations: u32,

    /// Largest accepted request body in bytes (413 beyond).
    #[arg(long, env = "APEXKIT_MAX_BODY_BYTES", default_value_t = 64 * 1024, help_heading = "GraphQL limits")]
    pub max_body_bytes: usize,

    /// Maximum GraphQL query depth.
    #[arg(
        long,
        env = "APEXKIT_MAX_DEPTH",
        default_value_t = 10,
        help_heading = "GraphQL limits"
    )]
    pub max_depth: usize,

    /// Maximum GraphQL query complexity (every selected field counts, aliases included).
    #[arg(
        long,
        env = "APEXKIT_MAX_COMPLEXITY",
        default_value_t = 200,
        help_heading = "GraphQL limits"
    )]
    pub max_complexity: usize,

    /// Maximum directives in one document.
    #[arg(
        long,
        env = "APEXKIT_MAX_DIRECTIVES",
        default_value_t = 20,
        help_heading = "GraphQL limits"
    )]
    pub max_directives: usize,

    /// Maximum operations in one batched (JSON array) request.
    #[arg(
        long,
        env = "APEXKIT_MAX_BATCH",
        default_value_t = 5,
        help_heading = "GraphQL limits"
    )]
    pub max_batch: usize,

    // --- issue 3: access tokens and signing keys ---
    /// Lifetime of an access token (JWT) in seconds.
    #[arg(
        long,
        env = "APEXKIT_ACCESS_TOKEN_EXPIRES_IN",
        default_value_t = 900,
        help_heading = "Access tokens and signing keys"
    )]
    pub access_token_expires_in: u64,

    /// Seconds after which the signing key is replaced (default 30 days); a retired key stays
    /// in the JWKS until the tokens it signed have expired.
    #[arg(long, env = "APEXKIT_KEY_ROTATION_INTERVAL", default_value_t = 30 * 24 * 3600, help_heading = "Access tokens and signing keys")]
    pub key_rotation_interval: u64,

    /// `aud` claim of access tokens; default: the issuer (APEXKIT_BASE_URL without a trailing slash).
    #[arg(
        long,
        env = "APEXKIT_JWT_AUDIENCE",
        help_heading = "Access tokens and signing keys"
    )]
    pub jwt_audience: Option<String>,

    // --- issue 5: administration and the schema workflow ---
    /// Comma-separated emails that get role `admin` once their owner has verified the address:
    /// at verification, and at every boot for verified users (never at sign-up).
    #[arg(
        long,
        env = "APEXKIT_ADMIN_EMAILS",
        value_delimiter = ',',
        help_heading = "Administration"
    )]
    pub admin_emails: Vec<String>,

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

    // --- issue 6: abuse resistance ---
    /// Rate limiting per client address and per executed field: on or off. Default: on in
    /// production, off in development.
    #[arg(
        long,
        env = "APEXKIT_RATE_LIMIT",
        value_enum,
        help_heading = "Rate limits"
    )]
    pub rate_limit: Option<Toggle>,

    /// Where rate-limit counters live: memory (one instance) or database (shared by replicas,
    /// survives restarts).
    #[arg(
        long,
        env = "APEXKIT_RATE_LIMIT_STORAGE",
        value_enum,
        default_value = "memory",
        help_heading = "Rate limits"
    )]
    pub rate_limit_storage: RateLimitStorage,

    /// Budget of the credential-checking fields (signInEmail, signUpEmail, changePassword,
    /// changeEmail, deleteUser) per client address, as COUNT/SECONDS.
    #[arg(
        long,
        env = "APEXKIT_RATE_LIMIT_CREDENTIAL",
        default_value = "3/10",
        help_heading = "Rate limits"
    )]
    pub rate_limit_credential: Rule,

    /// Budget of the mail-sending fields (requestPasswordReset, sendVerificationEmail) per client
    /// address, as COUNT/SECONDS.
    #[arg(
        long,
        env = "APEXKIT_RATE_LIMIT_MAIL",
        default_value = "3/60",
        help_heading = "Rate limits"
    )]
    pub rate_limit_mail: Rule,

    /// Budget of every other field per client address, as COUNT/SECONDS.
    #[arg(
        long,
        env = "APEXKIT_RATE_LIMIT_GENERAL",
        default_value = "100/10",
        help_heading = "Rate limits"
    )]
    pub rate_limit_general: Rule,

    /// Consecutive failed sign-ins of one account before each further attempt must wait.
    #[arg(
        long,
        env = "APEXKIT_SIGN_IN_FREE_FAILURES",
        default_value_t = 5,
        help_heading = "Rate limits"
    )]
    pub sign_in_free_failures: u32,

    /// Longest wait in seconds between sign-in attempts of an account after repeated failures
    /// (the wait doubles per failure up to this; never a permanent lockout).
    #[arg(
        long,
        env = "APEXKIT_SIGN_IN_MAX_DELAY",
        default_value_t = 900,
        help_heading = "Rate limits"
    )]
    pub sign_in_max_delay: u64,

    /// Comma-separated CIDRs of reverse proxies whose X-Forwarded-For is believed. Empty: the
    /// client address is the socket peer.
    #[arg(
        long,
        env = "APEXKIT_TRUSTED_PROXIES",
        value_delimiter = ',',
        help_heading = "Server"
    )]
    pub trusted_proxies: Vec<String>,

    /// Longest accepted GraphQL query text in bytes.
    #[arg(long, env = "APEXKIT_MAX_QUERY_BYTES", default_value_t = 8 * 1024, help_heading = "GraphQL limits")]
    pub max_query_bytes: usize,

    /// GraphQL introspection: on or off. Default: off in production, on in development.
    #[arg(
        long,
        env = "APEXKIT_INTROSPECTION",
        value_enum,
        help_heading = "GraphQL limits"
    )]
    pub introspection: Option<Toggle>,

    /// Shortest accepted new password in characters (at least 8).
    #[arg(
        long,
        env = "APEXKIT_PASSWORD_MIN_LENGTH",
        default_value_t = 8,
        help_heading = "Passwords"
    )]
    pub password_min_length: usize,

    // --- issue 7: operations ---
    /// Seconds in-flight requests get to finish after SIGTERM/SIGINT before the process exits.
    #[arg(
        long,
        env = "APEXKIT_SHUTDOWN_TIMEOUT",
        default_value_t = 10,
        help_heading = "Server"
    )]
    pub shutdown_timeout: u64,

    /// Seconds to keep retrying (capped exponential backoff) when PostgreSQL is unreachable at
    /// boot; then exit non-zero. Bad credentials, an unknown database or a bad URL exit at once.
    #[arg(
        long,
        env = "APEXKIT_DB_CONNECT_TIMEOUT",
        default_value_t = 30,
        help_heading = "Database"
    )]
    pub db_connect_timeout: u64,

    /// Cap on the SQLite database size in MiB (PRAGMA max_page_count on every connection);
    /// beyond it writes fail with SERVICE_UNAVAILABLE while reads keep working. Default: none.
    #[arg(long, env = "APEXKIT_SQLITE_MAX_SIZE_MB", help_heading = "Database")]
    pub sqlite_max_size_mb: Option<u64>,

    // --- issue 4: mail and account flows ---
    /// Outgoing mail server: smtp://user:pass@host:port (STARTTLS whenever offered;
    /// ?tls=required to insist) or smtps://user:pass@host:port (implicit TLS). Unset: development
    /// logs each message with its links to stderr; production logs only that it was not sent.
    #[arg(
        long,
        env = "APEXKIT_SMTP_URL",
        hide_env_values = true,
        help_heading = "Mail and account flows"
    )]
    pub smtp_url: Option<Secret>,

    /// Sender of outgoing mail, e.g. "Apexkit <no-reply@example.com>". Required in production
    /// when APEXKIT_SMTP_URL is set; otherwise "Apexkit <no-reply@localhost>".
    #[arg(
        long,
        env = "APEXKIT_MAIL_FROM",
        help_heading = "Mail and account flows"
    )]
    pub mail_from: Option<String>,

    /// Sign-up gives no session until the address is verified, and unverified users cannot
    /// sign in (EMAIL_NOT_VERIFIED, only after a correct password).
    #[arg(
        long,
        env = "APEXKIT_REQUIRE_EMAIL_VERIFICATION",
        help_heading = "Mail and account flows"
    )]
    pub require_email_verification: bool,

    /// Lifetime of a password-reset link, in seconds.
    #[arg(
        long,
        env = "APEXKIT_RESET_TOKEN_EXPIRES_IN",
        default_value_t = 3600,
        help_heading = "Mail and account flows"
    )]
    pub reset_token_expires_in: u64,

    /// Lifetime of an email verification or email change link, in seconds.
    #[arg(long, env = "APEXKIT_VERIFICATION_TOKEN_EXPIRES_IN", default_value_t = 24 * 3600, help_heading = "Mail and account flows")]
    pub verification_token_expires_in: u64,

    /// Messages sent to one address per APEXKIT_MAIL_LIMIT_WINDOW; more are dropped silently.
    #[arg(
        long,
        env = "APEXKIT_MAIL_LIMIT",
        default_value_t = 5,
        help_heading = "Mail and account flows"
    )]
    pub mail_limit: u32,

    /// The per-address send-limit window, in seconds.
    #[arg(
        long,
        env = "APEXKIT_MAIL_LIMIT_WINDOW",
        default_value_t = 900,
        help_heading = "Mail and account flows"
    )]
    pub mail_limit_window: u64,

    /// How often the mail outbox is polled, in milliseconds (queuing mail also wakes it).
    #[arg(
        long,
        env = "APEXKIT_MAIL_POLL_INTERVAL_MS",
        default_value_t = 5000,
        help_heading = "Mail and account flows"
    )]
    pub mail_poll_interval_ms: u64,

    /// Delay before retrying a failed delivery, in milliseconds; doubled per further failure.
    #[arg(
        long,
        env = "APEXKIT_MAIL_RETRY_BASE_MS",
        default_value_t = 10_000,
        help_heading = "Mail and account flows"
    )]
    pub mail_retry_base_ms: u64,

    /// Longest delay between delivery attempts, in milliseconds.
    #[arg(
        long,
        env = "APEXKIT_MAIL_RETRY_MAX_MS",
        default_value_t = 3_600_000,
        help_heading = "Mail and account flows"
    )]
    pub mail_retry_max_ms: u64,

    /// Delivery attempts before a message is given up on.
    #[arg(
        long,
        env = "APEXKIT_MAIL_MAX_ATTEMPTS",
        default_value_t = 12,
        help_heading = "Mail and account flows"
    )]
    pub mail_max_attempts: u32,

    /// changeEmail needs a session created at most this many seconds ago.
    #[arg(long, env = "APEXKIT_FRESH_SESSION_AGE", default_value_t = 24 * 3600, help_heading = "Sessions")]
    pub fresh_session_age: u64,

    // --- issue 13: sessions ---
    /// Absolute session lifetime in seconds from sign-in (default 30 days): a session ends then
    /// however active, whatever the sliding expiry. At least APEXKIT_SESSION_EXPIRES_IN and
    /// APEXKIT_SESSION_SHORT_EXPIRES_IN (a smaller value refuses to start).
    #[arg(long, env = "APEXKIT_SESSION_MAX_AGE", default_value_t = 30 * 24 * 3600, help_heading = "Sessions")]
    pub session_max_age: u64,

    // --- issue 13: connection limits, HSTS, metrics listener (items 5, 12, 13) ---
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

    /// A separate address serving only GET /metrics (e.g. 127.0.0.1:9464). In production
    /// /metrics is served only there (404 on the main listener); development serves it on both.
    #[arg(long, env = "APEXKIT_METRICS_LISTEN", help_heading = "Observability")]
    pub metrics_listen: Option<SocketAddr>,
}

/// An on/off switch whose default depends on the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Toggle {
    On,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RateLimitStorage {
    Memory,
    Database,
}

impl Config {
    /// Checks the settings against each other and the environment; names everything missing.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if let Err(e) = DatabaseUrl::parse(&self.database_url) {
            problems.push(e);
        }
        if self.environment == Environment::Production {
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
        }
        if let Err(e) = self.argon2_cost().validate() {
            problems.push(e);
        }
        if let Some(url) = &self.base_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            problems.push(format!(
                "APEXKIT_BASE_URL must start with http:// or https://, got {url:?}"
            ));
        }
        if let Err(e) = crate::auth::origin::TrustedOrigins::new(
            self.base_url.as_deref().unwrap_or("http://localhost"),
            &self.trusted_origins,
        ) {
            problems.push(e);
        }
        if self.session_expires_in == 0 || self.session_short_expires_in == 0 {
            problems.push("session lifetimes must be positive".to_owned());
        }
        if self.session_max_age < self.session_expires_in.max(self.session_short_expires_in) {
            problems.push(format!(
                "APEXKIT_SESSION_MAX_AGE ({}) must be at least APEXKIT_SESSION_EXPIRES_IN ({}) \
                 and APEXKIT_SESSION_SHORT_EXPIRES_IN ({})",
                self.session_max_age, self.session_expires_in, self.session_short_expires_in
            ));
        }
        if self.access_token_expires_in == 0 || self.key_rotation_interval == 0 {
            problems.push(
                "APEXKIT_ACCESS_TOKEN_EXPIRES_IN and APEXKIT_KEY_ROTATION_INTERVAL must be positive"
                    .to_owned(),
            );
        }
        if self
            .jwt_audience
            .as_deref()
            .is_some_and(|a| a.trim().is_empty())
        {
            problems.push("APEXKIT_JWT_AUDIENCE must not be empty".to_owned());
        }
        if self.db_pool_size == 0 || self.db_pool_timeout_ms == 0 {
            problems.push(
                "APEXKIT_DB_POOL_SIZE and APEXKIT_DB_POOL_TIMEOUT_MS must be positive".to_owned(),
            );
        }
        if self.reset_token_expires_in == 0
            || self.verification_token_expires_in == 0
            || self.mail_limit == 0
            || self.mail_limit_window == 0
            || self.mail_poll_interval_ms == 0
            || self.mail_max_attempts == 0
        {
            problems.push(
                "token lifetimes, APEXKIT_MAIL_LIMIT, APEXKIT_MAIL_LIMIT_WINDOW, \
                 APEXKIT_MAIL_POLL_INTERVAL_MS and APEXKIT_MAIL_MAX_ATTEMPTS must be positive"
                    .to_owned(),
            );
        }
        if self.is_production() && self.smtp_url.is_some() && self.mail_from.is_none() {
            problems.push(
                "APEXKIT_MAIL_FROM is required with APEXKIT_SMTP_URL in production".to_owned(),
            );
        }
        if let Err(e) = crate::mail::Transport::from_config(
            self.smtp_url.as_ref().map(Secret::expose),
            self.mail_from(),
            !self.is_production(),
        ) {
            problems.push(e);
        }
        for email in self.admin_emails.iter().filter(|e| !e.trim().is_empty()) {
            if crate::auth::email::normalize(email).is_err() {
                problems.push(format!(
                    "APEXKIT_ADMIN_EMAILS: {email:?} is not an email address"
                ));
            }
        }
        if let Err(e) = self.trusted_proxies() {
            problems.push(e);
        }
        if self.password_min_length < crate::auth::password::MIN_LENGTH
            || self.password_min_length > crate::auth::password::MAX_LENGTH
        {
            problems.push(format!(
                "APEXKIT_PASSWORD_MIN_LENGTH must be between {} and {}",
                crate::auth::password::MIN_LENGTH,
                crate::auth::password::MAX_LENGTH
            ));
        }
        if self.max_query_bytes == 0 || self.sign_in_max_delay == 0 {
            problems.push(
                "APEXKIT_MAX_QUERY_BYTES and APEXKIT_SIGN_IN_MAX_DELAY must be positive".to_owned(),
            );
        }
        // issue 13
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
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    pub fn is_production(&self) -> bool {
        self.environment == Environment::Production
    }

    /// The sender mailbox of outgoing mail.
    pub fn mail_from(&self) -> &str {
        self.mail_from
            .as_deref()
            .unwrap_or("Apexkit <no-reply@localhost>")
    }

    pub fn database(&self) -> Result<DatabaseUrl, String> {
        DatabaseUrl::parse(&self.database_url)
    }

    /// The public base URL without a trailing slash.
    pub fn base_url(&self, bound: SocketAddr) -> String {
        match &self.base_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{bound}"),
        }
    }

    /// The trusted origins, once the listen address is bound (it defines the development base URL).
    pub fn trusted_origins(
        &self,
        bound: SocketAddr,
    ) -> Result<crate::auth::origin::TrustedOrigins, String> {
        crate::auth::origin::TrustedOrigins::new(&self.base_url(bound), &self.trusted_origins)
    }

    /// The `aud` of access tokens: APEXKIT_JWT_AUDIENCE, else the issuer.
    pub fn jwt_audience(&self, bound: SocketAddr) -> String {
        match &self.jwt_audience {
            Some(aud) => aud.trim().to_owned(),
            None => self.base_url(bound),
        }
    }

    pub fn key_policy(&self) -> crate::auth::keys::KeyPolicy {
        crate::auth::keys::KeyPolicy {
            token_lifetime: Duration::from_secs(self.access_token_expires_in),
            rotation_interval: Duration::from_secs(self.key_rotation_interval),
        }
    }

    /// Whether rate limits (and the failed sign-in delay) apply.
    pub fn rate_limit_enabled(&self) -> bool {
        self.rate_limit
            .map_or(self.is_production(), |t| t == Toggle::On)
    }

    pub fn introspection_enabled(&self) -> bool {
        self.introspection
            .map_or(!self.is_production(), |t| t == Toggle::On)
    }

    pub fn trusted_proxies(&self) -> Result<Vec<Cidr>, String> {
        self.trusted_proxies
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<Cidr>()
                    .map_err(|_| format!("APEXKIT_TRUSTED_PROXIES: {s:?} is not a CIDR or address"))
            })
            .collect()
    }

    pub fn pool_options(&self) -> PoolOptions {
        PoolOptions {
            max_size: self.db_pool_size,
            checkout_timeout: Duration::from_millis(self.db_pool_timeout_ms),
            statement_timeout: Duration::from_millis(self.db_statement_timeout_ms),
            sqlite_max_size_mb: self.sqlite_max_size_mb,
        }
    }

    pub fn argon2_cost(&self) -> crate::auth::password::Cost {
        crate::auth::password::Cost {
            memory_kib: self.argon2_memory_kib,
            iterations: self.argon2_iterations,
        }
    }

    pub fn hash_concurrency(&self) -> usize {
        self.hash_concurrency.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Config {
        let mut all = vec!["apexkit"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).expect("parses").config
    }

    #[test]
    fn abuse_settings_default_by_environment_and_validate() {
        let dev = parse(&[]);
        assert!(!dev.rate_limit_enabled() && dev.introspection_enabled());
        let prod = parse(&["--env", "production"]);
        assert!(prod.rate_limit_enabled() && !prod.introspection_enabled());
        let over = parse(&[
            "--env",
            "production",
            "--rate-limit",
            "off",
            "--introspection",
            "on",
        ]);
        assert!(!over.rate_limit_enabled() && over.introspection_enabled());

        assert!(parse(&["--password-min-length", "7"]).validate().is_err());
        assert!(parse(&["--password-min-length", "12"]).validate().is_ok());
        assert!(
            parse(&["--trusted-proxies", "10.0.0.0/8,::1"])
                .validate()
                .is_ok()
        );
        assert!(
            parse(&["--trusted-proxies", "10.0.0.0/99"])
                .validate()
                .is_err()
        );
        let rules = parse(&["--rate-limit-credential", "5/30"]);
        assert_eq!(rules.rate_limit_credential.max, 5);
        let bad = vec!["apexkit", "--rate-limit-mail", "0/60"];
        assert!(Cli::try_parse_from(bad).is_err());
    }

    #[test]
    fn session_max_age_defaults_to_30_days_and_covers_the_lifetimes() {
        let default = parse(&[]);
        assert_eq!(default.session_max_age, 2_592_000);
        assert!(default.validate().is_ok());
        let short = parse(&["--session-max-age", "3600"]);
        let err = short.validate().unwrap_err();
        assert!(err.contains("APEXKIT_SESSION_MAX_AGE"), "{err}");
        let fits = parse(&[
            "--session-max-age",
            "3600",
            "--session-expires-in",
            "3600",
            "--session-short-expires-in",
            "600",
        ]);
        assert!(fits.validate().is_ok());
    }
}
