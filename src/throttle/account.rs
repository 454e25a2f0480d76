//! The per-account failed sign-in counter. Every attempt is counted *before* its password is
//! checked (and forgotten on success), through a compare-and-swap, so parallel attempts each take
//! their own turn: after `free` consecutive failures every further attempt must wait a delay that
//! doubles per failure up to `max_delay`. At most 100 consecutive failures are counted, and the
//! delay is capped, so unauthenticated input never locks an account for good.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::NaiveDateTime;
use sha2::{Digest, Sha256};

use crate::clock::{after, now};
use crate::db::{Pool, throttle as queries};
use crate::error::{Error, Result};

/// NIST SP 800-63B: no more than 100 consecutive failed attempts are counted.
pub const MAX_COUNTED: u32 = 100;
/// Compare-and-swap rounds before an attempt is refused as contended.
const CAS_ROUNDS: usize = 8;

#[derive(Clone, Default)]
pub struct AccountThrottle(Option<Arc<Inner>>);

struct Inner {
    free: u32,
    max_delay: Duration,
    store: Store,
}

enum Store {
    Memory(Mutex<HashMap<String, Failures>>),
    Database(Pool),
}

#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    locked_until: NaiveDateTime,
}

/// The wait imposed after the `n`th consecutive failure.
pub fn delay(n: u32, free: u32, max: Duration) -> Duration {
    if n <= free {
        return Duration::ZERO;
    }
    let doublings = (n - free - 1).min(30);
    Duration::from_secs(1u64 << doublings).min(max)
}

/// Accounts are keyed by a hash of the normalised email: the table never lists addresses, and
/// unknown addresses are counted like known ones (no enumeration through the delay).
fn key(email: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(email.as_bytes()))
}

fn retry_after(until: NaiveDateTime, now: NaiveDateTime) -> u64 {
    let ms = (until - now).num_milliseconds().max(0);
    u64::try_from(ms).map_or(1, |ms| ms.div_ceil(1000).max(1))
}

impl AccountThrottle {
    /// No counting at all (rate limiting off).
    pub fn disabled() -> Self {
        Self(None)
    }

    /// `database`: share the counters through it; `None` keeps them in this process.
    pub fn new(free: u32, max_delay: Duration, database: Option<Pool>) -> Self {
        let store = match database {
            Some(pool) => Store::Database(pool),
            None => Store::Memory(Mutex::new(HashMap::new())),
        };
        Self(Some(Arc::new(Inner {
            free,
            max_delay,
            store,
        })))
    }

    /// Takes a turn to check a password of `email`: counts it as a failure up front, or refuses
    /// with `RATE_LIMITED` while the account's delay runs.
    pub async fn begin(&self, email: &str) -> Result<()> {
        let Some(inner) = &self.0 else {
            return Ok(());
        };
        let key = key(email);
        match &inner.store {
            Store::Memory(map) => {
                let now = now();
                let mut map = map.lock().unwrap_or_else(PoisonError::into_inner);
                let current = map.get(&key).copied();
                let count = inner.next(current.map(|f| (f.count, f.locked_until)), now)?;
                map.insert(
                    key,
                    Failures {
                        count,
                        locked_until: after(now, delay(count, inner.free, inner.max_delay)),
                    },
                );
                Ok(())
            }
            Store::Database(pool) => {
                let mut conn = pool.get().await?;
                for _ in 0..CAS_ROUNDS {
                    let current = queries::find_failures(&mut conn, &key).await?;
                    // Read the clock after the row: a `now` taken before it could be older
                    // than the `locked_until` a concurrent attempt just wrote (its own `now`,
                    // when no delay is due) and refuse this attempt for a lock that is not there.
                    let now = now();
                    let count = inner.next(current.map(|r| (r.0, r.1)), now)?;
                    let locked_until = after(now, delay(count, inner.free, inner.max_delay));
                    let won = match current {
                        None => {
                            queries::insert_failures(&mut conn, &key, locked_until, now).await?
                        }
                        Some((old, _, version)) => {
                            queries::swap_failures(
                                &mut conn,
                                &key,
                                (old, version),
                                (count, locked_until),
                                now,
                            )
                            .await?
                        }
                    };
                    if won {
                        return Ok(());
                    }
                }
                // Others kept winning the race for this account: they are the attempts counted.
                Err(Error::RateLimited { retry_after: 1 })
            }
        }
    }

    /// Forgets the failures of `email` after a correct password.
    pub async fn succeeded(&self, email: &str) -> Result<()> {
        let Some(inner) = &self.0 else {
            return Ok(());
        };
        let key = key(email);
        match &inner.store {
            Store::Memory(map) => {
                map.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&key);
            }
            Store::Database(pool) => {
                queries::clear_failures(&mut pool.get().await?, &key).await?;
            }
        }
        Ok(())
    }

    /// Drops counters idle for a day: a day of quiet forgets old failures.
    pub async fn purge(&self) -> Result<usize> {
        let Some(inner) = &self.0 else {
            return Ok(0);
        };
        let cutoff = now() - chrono::Duration::days(1);
        match &inner.store {
            Store::Memory(map) => {
                let mut map = map.lock().unwrap_or_else(PoisonError::into_inner);
                let before = map.len();
                map.retain(|_, f| f.locked_until > cutoff);
                Ok(before - map.len())
            }
            Store::Database(pool) => {
                Ok(queries::purge_failures(&mut pool.get().await?, cutoff).await?)
            }
        }
    }
}

impl Inner {
    /// The count this attempt would record, or the refusal while a delay runs.
    fn next(&self, current: Option<(u32, NaiveDateTime)>, now: NaiveDateTime) -> Result<u32> {
        match current {
            Some((_, until)) if until > now => Err(Error::RateLimited {
                retry_after: retry_after(until, now),
            }),
            Some((count, _)) => Ok((count + 1).min(MAX_COUNTED)),
            None => Ok(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_doubles_then_caps() {
        let max = Duration::from_secs(900);
        assert_eq!(delay(1, 5, max), Duration::ZERO);
        assert_eq!(delay(5, 5, max), Duration::ZERO);
        assert_eq!(delay(6, 5, max), Duration::from_secs(1));
        assert_eq!(delay(7, 5, max), Duration::from_secs(2));
        assert_eq!(delay(10, 5, max), Duration::from_secs(16));
        assert_eq!(delay(MAX_COUNTED, 5, max), max);
        assert_eq!(delay(u32::MAX, 0, max), max);
    }

    #[tokio::test]
    async fn memory_counter_delays_and_forgets_on_success() {
        let t = AccountThrottle::new(2, Duration::from_secs(60), None);
        t.begin("ada@example.com").await.unwrap();
        t.begin("ada@example.com").await.unwrap();
        // The third attempt is allowed but starts a one-second delay.
        t.begin("ada@example.com").await.unwrap();
        assert!(matches!(
            t.begin("ada@example.com").await,
            Err(Error::RateLimited { retry_after: 1 })
        ));
        t.begin("bob@example.com").await.unwrap();
        t.succeeded("ada@example.com").await.unwrap();
        t.begin("ada@example.com").await.unwrap();
        AccountThrottle::disabled().begin("x").await.unwrap();
    }
}
