//! Abuse throttling, in the domain: per-client budgets keyed by GraphQL field name (counted per
//! executed field, before it runs) and the per-account delay after failed sign-ins. Counters live
//! in memory (one instance) or in the database (shared by replicas, kept across restarts).

pub mod account;
mod memory;
pub mod net;

use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use account::AccountThrottle;

use crate::db::{Pool, throttle as queries};
use crate::error::{Error, Result};

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
        | "resetPassword" | "signInSocial" | "signInPasskey" => Class::Credential,
        "requestPasswordReset" | "sendVerificationEmail" => Class::Mail,
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
/// in-memory map (per instance); with database storage, only the credential and mail budgets go
/// to the database, so a session query costs one uncontended mutex, never a round trip.
#[derive(Clone)]
pub struct RateLimiter(Arc<Inner>);

struct Inner {
    rules: Rules,
    memory: memory::Windows,
    database: Option<Pool>,
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
        }))
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
        let count = match (&self.0.database, class) {
            (Some(pool), Class::Credential | Class::Mail) => {
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
            "signInPasskey",
        ] {
            assert_eq!(class_of(f), Class::Credential, "{f}");
        }
        for f in ["requestPasswordReset", "sendVerificationEmail"] {
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
