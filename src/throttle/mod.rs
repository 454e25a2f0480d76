//! Abuse throttling, in the domain: per-client budgets keyed by GraphQL field name (counted per
//! executed field, before it runs) and the per-account delay after failed sign-ins. Counters live
//! in memory (one instance), in the database (shared by replicas, kept across restarts) or in
//! Redis (shared by replicas, falling back to memory while Redis is unreachable: `redis.rs`).

pub mod account;
mod memory;
pub mod net;
mod redis;

use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use account::AccountThrottle;
pub use redis::RedisSettings;

use crate::db::{Pool, throttle as queries};
use crate::error::{Error, Result};
use crate::observability;

/// A budget: at most `max` executions per fixed window of `window` (`COUNT/SECONDS` in config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub max: u32,
    pub window: Duration,
}

impl FromStr for Rule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not COUNT/SECONDS (e.g. 3/10), both positive");
        let (max, secs) = s.trim().split_once('/').ok_or_else(bad)?;
        let max: u32 = max.trim().parse().map_err(|_| bad())?;
        let secs: u64 = secs.trim().parse().map_err(|_| bad())?;
        if max == 0 || secs == 0 {
            return Err(bad());
        }
        Ok(Self {
            max,
            window: Duration::from_secs(secs),
        })
    }
}

/// Which budget a field draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Fields that check a password or create one: brute-force targets.
    Credential,
    /// Fields that send mail: spam and cost targets.
    Mail,
    General,
}

impl Class {
    fn name(self) -> &'static str {
        match self {
            Self::Credential => "credential",
            Self::Mail => "mail",
            Self::General => "general",
        }
    }
}

/// The rule table, by GraphQL field name. A field named here is limited as soon as it exists in
/// the schema, whoever adds it. The HTML forms (`/reset-password`, `/verify-email`) draw from
/// the budget of their GraphQL twin, by its field name.
pub fn class_of(field: &str) -> Class {
    match field {
        "signInEmail" | "signUpEmail" | "changePassword" | "changeEmail" | "deleteUser"
        | "resetPassword" | "signInSocial" => Class::Credential,
        // issue 16: the second factor and passwordless sign-in (CONTRACT.md's buckets), plus
        // the operations that re-check a password or a code.
        "verifyTotp"
        | "verifyBackupCode"
        | "verifyTwoFactorOtp"
        | "verifyMagicLink"
        | "signInEmailOtp"
        | "signInPasskey"
        | "enableTwoFactor"
        | "disableTwoFactor"
        | "generateBackupCodes" => Class::Credential,
        "requestPasswordReset" | "sendVerificationEmail" => Class::Mail,
        "sendTwoFactorOtp" | "signInMagicLink" | "sendSignInOtp" => Class::Mail,
        _ => Class::General,
    }
}

/// The three budgets.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub credential: Rule,
    pub mail: Rule,
    pub general: Rule,
}

impl Rules {
    pub fn get(&self, class: Class) -> Rule {
        match class {
            Class::Credential => self.credential,
            Class::Mail => self.mail,
            Class::General => self.general,
        }
    }
}

/// Per-client budgets. Cheap on the hot path: the general budget is always counted in a sharded
/// in-memory map (per instance); with database or Redis storage, only the credential and mail
/// budgets go there, so a session query costs one uncontended mutex, never a round trip.
#[derive(Clone)]
pub struct RateLimiter(Arc<Inner>);

struct Inner {
    rules: Rules,
    memory: memory::Windows,
    database: Option<Pool>,
    redis: Option<Shared>,
}

/// While Redis fails, at most one request per this interval tries it (the others count in
/// memory at once), so a Redis that hangs costs one short timeout per interval, not one per
/// request.
const REDIS_RETRY_MS: u64 = 1_000;

/// The Redis counters and whether the limiter is currently falling back to memory.
struct Shared {
    counters: redis::RedisCounters,
    /// Counting in memory because Redis is unreachable.
    fallback: AtomicBool,
    /// Unix milliseconds before which a falling-back limiter does not try Redis again.
    retry_at: AtomicU64,
}

impl Shared {
    /// The count from Redis, or `None` (after recording the fallback) to count in memory.
    async fn hit(&self, key: String, ttl: Duration) -> Option<u32> {
        if self.fallback.load(Ordering::Relaxed) {
            let now = unix_millis();
            let due = self.retry_at.load(Ordering::Relaxed);
            if !self.counters.connected()
                || now < due
                || self
                    .retry_at
                    .compare_exchange(
                        due,
                        now + REDIS_RETRY_MS,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    )
                    .is_err()
            {
                return None;
            }
        }
        match self.counters.hit(key, ttl).await {
            Some(n) => {
                if self.fallback.swap(false, Ordering::Relaxed) {
                    observability::record_redis_fallback(false);
                    tracing::info!(
                        "Redis is back: rate-limit counters are shared by the replicas again"
                    );
                }
                Some(n)
            }
            None => {
                self.retry_at
                    .store(unix_millis() + REDIS_RETRY_MS, Ordering::Relaxed);
                if !self.fallback.swap(true, Ordering::Relaxed) {
                    observability::record_redis_fallback(true);
                    tracing::warn!(
                        "Redis unreachable: rate-limit counters fall back to this replica's memory \
                         (limits apply per replica until it is back)"
                    );
                }
                None
            }
        }
    }
}

fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl RateLimiter {
    /// `database`: where the credential and mail counters live; `None` keeps them in memory.
    pub fn new(rules: Rules, database: Option<Pool>) -> Self {
        Self(Arc::new(Inner {
            rules,
            memory: memory::Windows::new(),
            database,
            redis: None,
        }))
    }

    /// Credential and mail counters in Redis. Waits at most `boot_wait` for the first
    /// connection; when Redis does not answer, the limiter starts anyway, counting in memory
    /// (logged, and `apexkit_rate_limit_redis_fallback` is 1) until it does. Errs only on
    /// settings the client refuses.
    pub async fn redis(
        rules: Rules,
        settings: &RedisSettings,
        boot_wait: Duration,
    ) -> std::result::Result<Self, String> {
        let counters = redis::RedisCounters::start(settings)?;
        let connected = counters.wait_connected(boot_wait).await;
        if connected {
            tracing::info!(prefix = %settings.prefix, "rate-limit counters in Redis");
        } else {
            tracing::warn!(
                "Redis unreachable at boot: rate-limit counters fall back to this replica's \
                 memory until it answers (retried in the background)"
            );
        }
        observability::record_redis_fallback(!connected);
        Ok(Self(Arc::new(Inner {
            rules,
            memory: memory::Windows::new(),
            database: None,
            redis: Some(Shared {
                counters,
                fallback: AtomicBool::new(!connected),
                retry_at: AtomicU64::new(0),
            }),
        })))
    }

    /// Counts one execution of `field` by `client` and refuses it beyond the budget. Called
    /// before the field's resolver runs, so refused work is never done.
    pub async fn hit(&self, field: &str, client: Option<IpAddr>) -> Result<()> {
        let class = class_of(field);
        let rule = self.0.rules.get(class);
        // Requests without a peer address (never over TCP) share one bucket.
        let bucket = client.map_or(0, net::bucket);
        let secs = rule.window.as_secs().max(1);
        let now = unix_secs();
        let window = now / secs;
        let window_end = (window + 1) * secs;
        let shared = matches!(class, Class::Credential | Class::Mail);
        let count = match (&self.0.database, &self.0.redis) {
            (_, Some(redis)) if shared => {
                let key = redis.counters.key(class.name(), bucket, window);
                // One window of life from the first hit covers the rest of the window.
                match redis.hit(key, rule.window).await {
                    Some(n) => n,
                    None => self.0.memory.hit(class as u8, bucket, now, window_end),
                }
            }
            (Some(pool), _) if shared => {
                let key = format!("{}:{bucket:032x}:{window}", class.name());
                let expires = chrono::DateTime::from_timestamp(
                    i64::try_from(window_end).unwrap_or(i64::MAX),
                    0,
                )
                .map_or_else(crate::clock::now, |t| t.naive_utc());
                let mut conn = pool.get().await?;
                u32::try_from(queries::hit(&mut conn, &key, expires).await?).unwrap_or(u32::MAX)
            }
            _ => self.0.memory.hit(class as u8, bucket, now, window_end),
        };
        if count > rule.max {
            return Err(Error::RateLimited {
                retry_after: window_end.saturating_sub(now).max(1),
            });
        }
        Ok(())
    }

    /// Deletes expired counters (database storage); memory prunes itself.
    pub async fn purge(&self) -> Result<usize> {
        match &self.0.database {
            Some(pool) => {
                let mut conn = pool.get().await?;
                Ok(queries::purge(&mut conn, crate::clock::now()).await?)
            }
            None => Ok(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_table_by_field_name() {
        for f in [
            "signInEmail",
            "signUpEmail",
            "changePassword",
            "changeEmail",
            "deleteUser",
            "resetPassword",
            "signInSocial",
            "verifyTotp",
            "verifyBackupCode",
            "verifyTwoFactorOtp",
            "verifyMagicLink",
            "signInEmailOtp",
            "signInPasskey",
        ] {
            assert_eq!(class_of(f), Class::Credential, "{f}");
        }
        for f in [
            "requestPasswordReset",
            "sendVerificationEmail",
            "sendTwoFactorOtp",
            "signInMagicLink",
            "sendSignInOtp",
        ] {
            assert_eq!(class_of(f), Class::Mail, "{f}");
        }
        for f in [
            "session",
            "me",
            "signOut",
            "signinemail",
            "adminUsers",
            "__typename",
        ] {
            assert_eq!(class_of(f), Class::General, "{f}");
        }
    }

    #[test]
    fn rules_parse_from_config() {
        assert_eq!(
            "3/10".parse::<Rule>().unwrap(),
            Rule {
                max: 3,
                window: Duration::from_secs(10)
            }
        );
        for bad in ["3", "0/10", "3/0", "a/b", "-1/10", ""] {
            assert!(bad.parse::<Rule>().is_err(), "{bad:?}");
        }
    }

    fn limiter(max: u32) -> RateLimiter {
        let rule = Rule {
            max,
            window: Duration::from_secs(1_000_000_000),
        };
        RateLimiter::new(
            Rules {
                credential: rule,
                mail: rule,
                general: rule,
            },
            None,
        )
    }

    #[tokio::test]
    async fn memory_budget_per_class_and_bucket() {
        let l = limiter(2);
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let same64: IpAddr = "2001:db8::ffff:1".parse().unwrap();
        let other: IpAddr = "2001:db8:0:1::1".parse().unwrap();
        l.hit("signInEmail", Some(a)).await.unwrap();
        l.hit("signUpEmail", Some(same64)).await.unwrap();
        let Err(Error::RateLimited { retry_after }) = l.hit("signInEmail", Some(a)).await else {
            panic!("third credential hit of one /64 passes");
        };
        assert!((1..=1_000_000_000).contains(&retry_after));
        l.hit("signInEmail", Some(other)).await.unwrap();
        l.hit("sendVerificationEmail", Some(a)).await.unwrap();
        l.hit("me", Some(a)).await.unwrap();
    }
}
