//! The domain core: sign-up, sign-in, sessions and the rules around them (password policy,
//! expiry, enumeration safety). Knows nothing of GraphQL or HTTP; talks to `db` only.

pub mod access_token;
pub mod account;
pub mod email;
pub mod keys;
pub mod links;
pub mod origin;
pub mod password;
pub mod session;
pub mod sign_in;
pub mod token;
pub mod verification;

use std::net::IpAddr;
use std::time::Duration;

use chrono::{NaiveDateTime, Utc};

pub use crate::db::models::{Account, Session, User};
use crate::db::{Conn, Pool};
use crate::error::Result;
pub use access_token::{AccessToken, AccessTokens};
pub use token::SessionToken;

/// Provider id of the email+password account (Better Auth's name).
pub const CREDENTIAL_PROVIDER: &str = "credential";

/// Roles (`user.role`), as Better Auth's admin plugin names them.
pub const ROLE_USER: &str = "user";
pub const ROLE_ADMIN: &str = "admin";

/// Facts about the client making a request, as the HTTP layer established them.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

/// Session rules, from configuration.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    pub expires_in: Duration,
    pub short_expires_in: Duration,
    pub update_age: Duration,
}

/// A freshly created session and the token that authenticates it (shown to the client once),
/// with a first access token for other services.
#[derive(Debug)]
pub struct SignedIn {
    pub token: SessionToken,
    pub session: Session,
    pub user: User,
    pub access_token: AccessToken,
}

/// An authenticated request: the session it presented and its user.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub session: Session,
    pub user: User,
}

impl Viewer {
    pub fn is_admin(&self) -> bool {
        self.user.role == ROLE_ADMIN
    }
}

/// The use cases, shared by every request.
#[derive(Clone)]
pub struct Auth {
    pool: Pool,
    hasher: password::Hasher,
    policy: SessionPolicy,
    /// Mail-sending flows (verification, reset, email change); set by `with_account_flows`.
    flows: Option<std::sync::Arc<verification::AccountFlows>>,
    tokens: AccessTokens,
}

impl Auth {
    pub fn new(
        pool: Pool,
        hasher: password::Hasher,
        policy: SessionPolicy,
        tokens: AccessTokens,
    ) -> Self {
        Self {
            pool,
            hasher,
            policy,
            flows: None,
            tokens,
        }
    }

    pub fn with_account_flows(mut self, flows: verification::AccountFlows) -> Self {
        self.flows = Some(std::sync::Arc::new(flows));
        self
    }

    async fn conn(&self) -> Result<Conn> {
        Ok(self.pool.get().await?)
    }

    pub async fn accounts(&self, viewer: &Viewer) -> Result<Vec<Account>> {
        let mut conn = self.conn().await?;
        Ok(crate::db::accounts::list_for_user(&mut conn, &viewer.user.id).await?)
    }
}

/// The current time as stored: UTC, truncated to microseconds (PostgreSQL's precision), so a
/// value reads back equal on both backends.
pub fn now() -> NaiveDateTime {
    let now = Utc::now().naive_utc();
    now.with_nanosecond_truncated()
}

trait TruncateMicros {
    fn with_nanosecond_truncated(self) -> Self;
}

impl TruncateMicros for NaiveDateTime {
    fn with_nanosecond_truncated(self) -> Self {
        use chrono::Timelike as _;
        let micros = self.nanosecond() / 1_000 * 1_000;
        self.with_nanosecond(micros).unwrap_or(self)
    }
}
