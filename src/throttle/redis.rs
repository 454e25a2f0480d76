//! Rate-limit counters in Redis, shared by every replica (`APEXKIT_RATE_LIMIT_STORAGE=redis`).
//!
//! One counter per (class, client bucket, window), counted by a Lua script in one round trip:
//! `INCR`, and a TTL of one window on the first hit (or on a key that somehow has none), so no
//! key outlives its window by more than that and nothing grows without bound.
//!
//! Redis is never allowed to hold a request up: every call has a short timeout and fails fast
//! while the client is disconnected. The caller falls back to its per-replica memory counters
//! then; fred reconnects in the background with a bounded exponential backoff, and the caller
//! goes back to Redis once it answers again.

use std::fmt;
use std::time::Duration;

use fred::prelude::{
    Builder, Client, ClientLike, Config as FredConfig, LuaInterface, ReconnectPolicy,
};
use fred::types::config::Options;

/// `KEYS[1]`: the counter; `ARGV[1]`: its TTL in milliseconds. Returns the new count.
const COUNT: &str = "local n = redis.call('INCR', KEYS[1]) \
     if n == 1 or redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end \
     return n";

/// Reconnection backoff: from 100 ms doubling up to 2 s, for ever.
const RECONNECT_MIN_MS: u32 = 100;
const RECONNECT_MAX_MS: u32 = 2_000;

/// Where and how to reach Redis, validated at startup.
#[derive(Clone)]
pub struct RedisSettings {
    config: FredConfig,
    /// Prepended to every key (several deployments can share one Redis).
    pub prefix: String,
    /// The longest a counter call may take before the request falls back to memory.
    pub timeout: Duration,
}

impl fmt::Debug for RedisSettings {
    // The URL may carry a password: never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSettings")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisSettings {
    /// `url`: `redis://[user:password@]host[:port][/db]`, or `rediss://…` for TLS (rustls, the
    /// system's root certificates).
    pub fn new(url: &str, prefix: String, timeout: Duration) -> Result<Self, String> {
        let scheme = url.split_once("://").map(|(s, _)| s);
        if !matches!(scheme, Some("redis" | "rediss")) {
            return Err("APEXKIT_REDIS_URL must start with redis:// or rediss:// (TLS)".to_owned());
        }
        let mut config = FredConfig::from_url_centralized(url).map_err(|e| {
            format!(
                "APEXKIT_REDIS_URL is not a valid Redis URL: {}",
                e.details()
            )
        })?;
        // Unreachable at boot: keep retrying in the background instead of failing the client.
        config.fail_fast = false;
        if timeout.is_zero() {
            return Err("APEXKIT_REDIS_TIMEOUT_MS must be positive".to_owned());
        }
        Ok(Self {
            config,
            prefix,
            timeout,
        })
    }
}

/// The connected (or reconnecting) client.
pub(super) struct RedisCounters {
    client: Client,
    prefix: String,
    options: Options,
    timeout: Duration,
}

impl RedisCounters {
    /// Builds the client and starts its connection task (which reconnects for ever with a
    /// bounded backoff). Needs a Tokio runtime.
    pub fn start(settings: &RedisSettings) -> Result<Self, String> {
        let timeout = settings.timeout;
        let client = Builder::from_config(settings.config.clone())
            .with_connection_config(|c| {
                c.connection_timeout = timeout.max(Duration::from_millis(500));
                c.internal_command_timeout = timeout.max(Duration::from_millis(500));
                c.max_command_attempts = 1;
                c.tcp.nodelay = Some(true);
            })
            .with_performance_config(|p| p.default_command_timeout = timeout)
            .set_policy(ReconnectPolicy::new_exponential(
                0,
                RECONNECT_MIN_MS,
                RECONNECT_MAX_MS,
                2,
            ))
            .build()
            .map_err(|e| format!("Redis client: {}", e.details()))?;
        // The task drives the connection and its reconnections; it ends with the client.
        drop(client.connect());
        Ok(Self {
            client,
            prefix: settings.prefix.clone(),
            options: Options {
                timeout: Some(timeout),
                fail_fast: true,
                max_attempts: Some(1),
                ..Options::default()
            },
            timeout,
        })
    }

    /// Waits at most `within` for the first connection; `false` when Redis did not answer.
    pub async fn wait_connected(&self, within: Duration) -> bool {
        matches!(
            tokio::time::timeout(within, self.client.wait_for_connect()).await,
            Ok(Ok(()))
        ) && self.client.is_connected()
    }

    /// The full key of a counter.
    pub fn key(&self, class: &str, bucket: u128, window: u64) -> String {
        format!("{}rl:{class}:{bucket:032x}:{window}", self.prefix)
    }

    /// Counts one hit on `key` (which expires `ttl` after its first hit); `None` when Redis is
    /// disconnected, slow or failing: the caller counts in memory instead.
    pub async fn hit(&self, key: String, ttl: Duration) -> Option<u32> {
        if !self.client.is_connected() {
            return None;
        }
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let client = self.client.with_options(&self.options);
        let call = client.eval::<i64, _, _, _>(COUNT, key, ttl_ms);
        // fred's own timeout first; this one in case a write is stuck in a full socket.
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(n)) => Some(u32::try_from(n.max(0)).unwrap_or(u32::MAX)),
            Ok(Err(e)) => {
                tracing::debug!(error = %e.details(), "Redis counter call failed");
                None
            }
            Err(_) => None,
        }
    }

    /// Whether the client holds a live connection.
    pub fn connected(&self) -> bool {
        self.client.is_connected()
    }
}
