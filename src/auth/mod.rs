//! The domain core: sign-up, sign-in, sessions and the rules around them (password policy,
//! expiry, enumeration safety). Knows nothing of GraphQL or HTTP; talks to `db` only.

pub mod access_token;
pub mod account;
pub mod admin;
pub mod audit;
pub mod email;
pub mod health;
pub mod keys;
pub mod links;
pub mod migrations;
pub mod origin;
pub mod password;
pub mod session;
pub mod sign_in;
pub mod token;
pub mod verification;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;

pub use crate::db::models::{Account, Session, User};
use crate::db::{Conn, Pool};
use crate::error::Result;
use crate::throttle::AccountThrottle;
pub use access_token::{AccessToken, AccessTokens};
pub use token::SessionToken;

/// Provider id of the email+password account (Better Auth's name).
pub const CREDENTIAL_PROVIDER: &str = "credential";

/// The email+password account row of `user_id` holding `hash`.
pub(crate) fn credential_account<'a>(
    id: &'a str,
    user_id: &'a str,
    hash: &'a str,
    now: NaiveDateTime,
) -> crate::db::models::NewAccount<'a> {
    crate::db::models::NewAccount {
        id,
        account_id: user_id,
        provider_id: CREDENTIAL_PROVIDER,
        user_id,
        password: Some(hash),
        created_at: now,
        updated_at: now,
    }
}

pub use crate::db::models::Role;
/// Role names (`user.role`), from [`Role`].
pub const ROLE_USER: &str = Role::User.as_str();
pub const ROLE_ADMIN: &str = Role::Admin.as_str();

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
    /// Absolute lifetime from sign-in: the sliding expiry never moves past it.
    pub max_age: Duration,
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

/// A viewer proven to be an admin: the admin use cases take one, so they cannot be reached
/// without the check in [`Admin::try_from`].
#[derive(Debug, Clone)]
pub struct Admin(Viewer);

impl TryFrom<Viewer> for Admin {
    type Error = crate::error::Error;
    fn try_from(viewer: Viewer) -> Result<Self> {
        if viewer.is_admin() {
            Ok(Self(viewer))
        } else {
            Err(crate::error::Error::Forbidden)
        }
    }
}

impl std::ops::Deref for Admin {
    type Target = Viewer;
    fn deref(&self) -> &Viewer {
        &self.0
    }
}

/// Whether a ban is in force at `now` (an expired ban counts as none).
pub fn ban_in_force(user: &User, now: NaiveDateTime) -> bool {
    user.banned && user.ban_expires.is_none_or(|t| t > now)
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
    /// Normalised emails that get role `admin` (`APEXKIT_ADMIN_EMAILS`).
    admin_emails: Arc<[String]>,
    migrator: Option<Arc<migrations::Migrator>>,
    password_policy: password::Policy,
    sign_in_throttle: AccountThrottle,
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
            admin_emails: Arc::from(Vec::new()),
            migrator: None,
            password_policy: password::Policy::default(),
            sign_in_throttle: AccountThrottle::disabled(),
        }
    }

    /// Users with one of these emails become admins once they have verified it (at
    /// verification, and at [`Auth::promote_admins`] on every boot); never at sign-up. Invalid
    /// emails are an error (a typo must not go unnoticed).
    pub fn with_admin_emails(mut self, emails: &[String]) -> Result<Self> {
        let normalized = emails
            .iter()
            .filter(|e| !e.trim().is_empty())
            .map(|e| email::normalize(e))
            .collect::<Result<Vec<_>>>()?;
        self.admin_emails = normalized.into();
        Ok(self)
    }

    /// Enables the migration status and (in development) `pushSchema` use cases.
    pub fn with_migrator(mut self, migrator: migrations::Migrator) -> Self {
        self.migrator = Some(Arc::new(migrator));
        self
    }

    /// Whether this (normalised) email is listed in `APEXKIT_ADMIN_EMAILS`.
    pub(crate) fn is_admin_email(&self, email: &str) -> bool {
        self.admin_emails.iter().any(|e| e == email)
    }

    /// The role a new user with this (normalised) email gets: `admin` only for a listed address
    /// that is verified, so nobody claims an admin address by signing up first.
    pub(crate) fn role_for(&self, email: &str, verified: bool) -> &'static str {
        if verified && self.is_admin_email(email) {
            ROLE_ADMIN
        } else {
            ROLE_USER
        }
    }

    /// The user row a self-service sign-up creates: unverified, so role `user` whatever the
    /// address (a listed one is promoted when its owner verifies it).
    pub(crate) fn self_signed_up_user<'a>(
        &self,
        id: &'a str,
        name: &'a str,
        email: &'a str,
        image: Option<&'a str>,
        now: NaiveDateTime,
    ) -> crate::db::models::NewUser<'a> {
        crate::db::models::NewUser {
            id,
            name,
            email,
            email_verified: false,
            image,
            created_at: now,
            updated_at: now,
            role: self.role_for(email, false),
        }
    }

    /// Run at every boot: gives role `admin` to the users listed in `APEXKIT_ADMIN_EMAILS` whose
    /// address is verified, and takes it back from listed users whose address is not (someone
    /// who claimed the address by signing up first, under releases that promoted at sign-up).
    /// Returns (promoted, demoted).
    pub async fn promote_admins(&self) -> Result<(usize, usize)> {
        if self.admin_emails.is_empty() {
            return Ok((0, 0));
        }
        let mut conn = self.conn().await?;
        let now = now();
        let users = &self.admin_emails;
        let demoted =
            crate::db::users::demote_unverified(&mut conn, users, (Role::Admin, Role::User), now)
                .await?;
        let promoted =
            crate::db::users::promote_verified(&mut conn, users, Role::Admin, now).await?;
        Ok((promoted, demoted))
    }

    /// The user as they stand once an expired ban is lifted (lazily, here); `None` while a ban
    /// is in force.
    pub(crate) async fn unless_banned(&self, conn: &mut Conn, user: User) -> Result<Option<User>> {
        if !user.banned {
            return Ok(Some(user));
        }
        let now = now();
        if ban_in_force(&user, now) {
            return Ok(None);
        }
        match crate::db::users::unban(conn, &user.id, Some(now), now).await? {
            Some(lifted) => Ok(Some(lifted)),
            // Re-banned (or unbanned) concurrently: decide on the row as it is now.
            None => Ok(crate::db::users::find_by_id(conn, &user.id)
                .await?
                .filter(|u| !ban_in_force(u, now))),
        }
    }

    /// Applies the configured password policy (minimum length) to every new password.
    pub fn with_password_policy(mut self, policy: password::Policy) -> Self {
        self.password_policy = policy;
        self
    }

    /// Counts failed sign-ins per account and delays further attempts.
    pub fn with_sign_in_throttle(mut self, throttle: AccountThrottle) -> Self {
        self.sign_in_throttle = throttle;
        self
    }

    /// Checks a new password (sign-up, change, reset, admin create/set) before any hashing,
    /// with the user's email and name as context words (issue 13, item 9).
    pub fn check_new_password(
        &self,
        password: &str,
        context: &password::Context<'_>,
    ) -> Result<()> {
        self.password_policy.check_for(password, context)
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

pub use crate::clock::now;
