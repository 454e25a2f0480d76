//! Rate limits: per-client budgets per field and the failed sign-in delay.

use std::time::Duration;

use crate::throttle::{RedisSettings, Rule, Rules};

use super::{RateLimitStorage, Toggle};

#[derive(Debug, Clone, clap::Args)]
pub struct RateLimitsConfig {
    /// Rate limiting per client address and per executed field: on or off. Default: on in
    /// production, off in development.
    #[arg(
        id = "rate_limit",
        long = "rate-limit",
        value_name = "RATE_LIMIT",
        env = "APEXKIT_RATE_LIMIT",
        value_enum,
        help_heading = "Rate limits"
    )]
    pub enabled: Option<Toggle>,

    /// Where rate-limit counters live: memory (one instance), database (shared by replicas,
    /// survives restarts) or redis (shared by replicas through APEXKIT_REDIS_URL; while Redis is
    /// unreachable each replica counts in its own memory). With database or redis, the failed
    /// sign-in delay is kept in the database.
    #[arg(
        id = "rate_limit_storage",
        long = "rate-limit-storage",
        value_name = "RATE_LIMIT_STORAGE",
        env = "APEXKIT_RATE_LIMIT_STORAGE",
        value_enum,
        default_value = "memory",
        help_heading = "Rate limits"
    )]
    pub storage: RateLimitStorage,

    /// Redis for the rate-limit counters (required with APEXKIT_RATE_LIMIT_STORAGE=redis):
    /// redis://[user:password@]host[:port][/db], or rediss://… for TLS (rustls, system roots).
    #[arg(
        long = "redis-url",
        value_name = "REDIS_URL",
        env = "APEXKIT_REDIS_URL",
        help_heading = "Rate limits"
    )]
    pub redis_url: Option<String>,

    /// Prefix of every Redis key this service writes (several deployments can share a Redis).
    #[arg(
        long = "redis-key-prefix",
        value_name = "REDIS_KEY_PREFIX",
        env = "APEXKIT_REDIS_KEY_PREFIX",
        default_value = "apexkit:",
        help_heading = "Rate limits"
    )]
    pub redis_key_prefix: String,

    /// Longest wait in milliseconds for a Redis counter before the request is counted in this
    /// replica's memory instead (Redis never holds a request up for longer).
    #[arg(
        long = "redis-timeout-ms",
        value_name = "REDIS_TIMEOUT_MS",
        env = "APEXKIT_REDIS_TIMEOUT_MS",
        default_value_t = 250,
        help_heading = "Rate limits"
    )]
    pub redis_timeout_ms: u64,

    /// Budget of the credential-checking fields (signInEmail, signUpEmail, changePassword,
    /// changeEmail, deleteUser) per client address, as COUNT/SECONDS.
    #[arg(
        id = "rate_limit_credential",
        long = "rate-limit-credential",
        value_name = "RATE_LIMIT_CREDENTIAL",
        env = "APEXKIT_RATE_LIMIT_CREDENTIAL",
        default_value = "3/10",
        help_heading = "Rate limits"
    )]
    pub credential: Rule,

    /// Budget of the mail-sending fields (requestPasswordReset, sendVerificationEmail) per client
    /// address, as COUNT/SECONDS.
    #[arg(
        id = "rate_limit_mail",
        long = "rate-limit-mail",
        value_name = "RATE_LIMIT_MAIL",
        env = "APEXKIT_RATE_LIMIT_MAIL",
        default_value = "3/60",
        help_heading = "Rate limits"
    )]
    pub mail: Rule,

    /// Budget of every other field per client address, as COUNT/SECONDS.
    #[arg(
        id = "rate_limit_general",
        long = "rate-limit-general",
        value_name = "RATE_LIMIT_GENERAL",
        env = "APEXKIT_RATE_LIMIT_GENERAL",
        default_value = "100/10",
        help_heading = "Rate limits"
    )]
    pub general: Rule,

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
}

/// The rate-limit settings, validated (present only when rate limiting is on).
pub struct RateLimits {
    pub rules: Rules,
    pub storage: RateLimitStorage,
    /// Where Redis is (`storage` is redis).
    pub redis: Option<RedisSettings>,
    /// Failed sign-ins of an account before each further attempt waits…
    pub sign_in_free_failures: u32,
    /// …at most this long.
    pub sign_in_max_delay: Duration,
}

impl RateLimitsConfig {
    /// `None` when rate limiting (and the failed sign-in delay) is off.
    pub fn settings(&self, production: bool) -> Result<Option<RateLimits>, String> {
        if self.sign_in_max_delay == 0 {
            return Err("APEXKIT_SIGN_IN_MAX_DELAY must be positive".to_owned());
        }
        let redis = match (self.storage, &self.redis_url) {
            (RateLimitStorage::Redis, None) => {
                return Err(
                    "APEXKIT_RATE_LIMIT_STORAGE=redis needs APEXKIT_REDIS_URL (redis://host:6379)"
                        .to_owned(),
                );
            }
            (RateLimitStorage::Redis, Some(url)) => Some(RedisSettings::new(
                url,
                self.redis_key_prefix.clone(),
                Duration::from_millis(self.redis_timeout_ms),
            )?),
            _ => None,
        };
        let enabled = self.enabled.map_or(production, |t| t == Toggle::On);
        Ok(enabled.then(|| RateLimits {
            redis,
            rules: Rules {
                credential: self.credential,
                mail: self.mail,
                general: self.general,
            },
            storage: self.storage,
            sign_in_free_failures: self.sign_in_free_failures,
            sign_in_max_delay: Duration::from_secs(self.sign_in_max_delay),
        }))
    }
}
