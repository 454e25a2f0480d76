//! Sessions: sliding and absolute lifetimes, and how fresh a session sensitive changes need.

use std::time::Duration;

use crate::auth::SessionPolicy;

#[derive(Debug, Clone, clap::Args)]
pub struct SessionsConfig {
    /// Session lifetime in seconds (sliding).
    #[arg(id = "session_expires_in", long = "session-expires-in", value_name = "SESSION_EXPIRES_IN", env = "APEXKIT_SESSION_EXPIRES_IN", default_value_t = 7 * 24 * 3600, help_heading = "Sessions")]
    pub expires_in: u64,

    /// A session's expiry is pushed forward at most once per this many seconds of use.
    #[arg(id = "session_update_age", long = "session-update-age", value_name = "SESSION_UPDATE_AGE", env = "APEXKIT_SESSION_UPDATE_AGE", default_value_t = 24 * 3600, help_heading = "Sessions")]
    pub update_age: u64,

    /// Lifetime in seconds of a session signed in with `rememberMe: false`.
    #[arg(id = "session_short_expires_in", long = "session-short-expires-in", value_name = "SESSION_SHORT_EXPIRES_IN", env = "APEXKIT_SESSION_SHORT_EXPIRES_IN", default_value_t = 24 * 3600, help_heading = "Sessions")]
    pub short_expires_in: u64,

    /// changeEmail needs a session created at most this many seconds ago.
    #[arg(id = "fresh_session_age", long = "fresh-session-age", value_name = "FRESH_SESSION_AGE", env = "APEXKIT_FRESH_SESSION_AGE", default_value_t = 24 * 3600, help_heading = "Sessions")]
    pub fresh_age: u64,

    /// Absolute session lifetime in seconds from sign-in (default 30 days): a session ends then
    /// however active, whatever the sliding expiry. At least APEXKIT_SESSION_EXPIRES_IN and
    /// APEXKIT_SESSION_SHORT_EXPIRES_IN (a smaller value refuses to start).
    #[arg(id = "session_max_age", long = "session-max-age", value_name = "SESSION_MAX_AGE", env = "APEXKIT_SESSION_MAX_AGE", default_value_t = 30 * 24 * 3600, help_heading = "Sessions")]
    pub max_age: u64,
}

/// The session settings, validated.
pub struct Sessions {
    pub policy: SessionPolicy,
    /// changeEmail needs a session at most this old.
    pub fresh_age: Duration,
}

impl SessionsConfig {
    pub fn settings(&self) -> Result<Sessions, String> {
        let mut problems = Vec::new();
        if self.expires_in == 0 || self.short_expires_in == 0 {
            problems.push("session lifetimes must be positive".to_owned());
        }
        if self.max_age < self.expires_in.max(self.short_expires_in) {
            problems.push(format!(
                "APEXKIT_SESSION_MAX_AGE ({}) must be at least APEXKIT_SESSION_EXPIRES_IN ({}) \
                 and APEXKIT_SESSION_SHORT_EXPIRES_IN ({})",
                self.max_age, self.expires_in, self.short_expires_in
            ));
        }
        super::problems(problems)?;
        Ok(Sessions {
            policy: SessionPolicy {
                expires_in: Duration::from_secs(self.expires_in),
                short_expires_in: Duration::from_secs(self.short_expires_in),
                update_age: Duration::from_secs(self.update_age),
                max_age: Duration::from_secs(self.max_age),
            },
            fresh_age: Duration::from_secs(self.fresh_age),
        })
    }
}
