//! The domain core: sign-up, sign-in, sessions and the rules around them (password policy,
//! expiry, enumeration safety). Knows nothing of GraphQL or HTTP; talks to `db` only.
//!
//! The use cases are grouped into services that share one [`Context`] (pool, hasher, policies,
//! audit): [`Auth::sessions`] (the session-issuing path every sign-in method ends in,
//! authentication, listing, revocation), [`Auth::passwords`] (email-and-password sign-up and
//! sign-in), [`Auth::account`] (a user managing their own account), [`Auth::mail_flows`]
//! (verification and reset by mail), [`Auth::admin`] (administration, audit trail, schema,
//! signing keys) and [`Auth::tokens`] (access tokens). A new sign-in method is a new module with
//! a service of its own that ends in [`session::Sessions::issue`].

pub mod access_token;
pub mod account;
pub mod admin;
pub mod audit;
pub mod better_auth;
mod context;
pub mod email;
pub mod health;
pub mod keys;
pub mod links;
pub mod migrations;
pub mod origin;
pub mod passkey;
pub mod password;
pub mod passwordless;
pub mod seal;
pub mod session;
pub mod sign_in;
pub mod social;
pub mod token;
pub mod two_factor;
pub mod verification;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;

use crate::db::Pool;
pub use crate::db::models::{Account, Session, User};
use crate::error::Result;
use crate::throttle::AccountThrottle;
pub use access_token::{AccessToken, AccessTokens};
pub use context::Context;
pub use token::SessionToken;
pub use two_factor::{SecondFactorRequired, SignInOutcome};

/// Provider id of the email+password account (Better Auth's name).
pub const CREDENTIAL_PROVIDER: &str = "credential";

pub use crate::db::models::Role;
/// Role names (`user.role`), from [`Role`].
pub const ROLE_USER: &str = Role::User.as_str();
pub const ROLE_ADMIN: &str = Role::Admin.as_str();

/// Facts about the client making a request, as the HTTP layer established them.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    /// The browser's `apexkit.trusted_device` cookie, if any (skips the second factor for the
    /// user it was issued to).
    pub trusted_device: Option<SessionToken>,
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

/// The use cases, shared by every request: a cheap handle on the one [`Context`], whose
/// services (`auth.sessions()`, `auth.passwords()`, ...) are reached through `Deref`.
#[derive(Clone)]
pub struct Auth(Arc<Context>);

impl std::ops::Deref for Auth {
    type Target = Context;
    fn deref(&self) -> &Context {
        &self.0
    }
}

impl Auth {
    pub fn new(
        pool: Pool,
        hasher: password::Hasher,
        policy: SessionPolicy,
        tokens: AccessTokens,
    ) -> Self {
        Self(Arc::new(Context {
            pool,
            hasher,
            policy,
            flows: None,
            tokens,
            admin_emails: Arc::from(Vec::new()),
            migrator: None,
            password_policy: password::Policy::default(),
            sign_in_throttle: AccountThrottle::disabled(),
            social: None,
            two_factor: None,
            relying_party: None,
        }))
    }

    /// The context while the service is being assembled at boot (before it is shared).
    fn assembling(&mut self) -> &mut Context {
        Arc::make_mut(&mut self.0)
    }

    /// Users with one of these (normalised, see `config::AdminConfig::settings`) emails become
    /// admins once they have verified it (at verification, and at
    /// [`admin::AdminService::promote_listed`] on every boot); never at sign-up.
    pub fn with_admin_emails(mut self, normalized: Vec<String>) -> Self {
        self.assembling().admin_emails = normalized.into();
        self
    }

    /// Enables the migration status and (in development) `pushSchema` use cases.
    pub fn with_migrator(mut self, migrator: migrations::Migrator) -> Self {
        self.assembling().migrator = Some(Arc::new(migrator));
        self
    }

    /// Applies the configured password policy (minimum length) to every new password.
    pub fn with_password_policy(mut self, policy: password::Policy) -> Self {
        self.assembling().password_policy = policy;
        self
    }

    /// Counts failed sign-ins per account and delays further attempts.
    pub fn with_sign_in_throttle(mut self, throttle: AccountThrottle) -> Self {
        self.assembling().sign_in_throttle = throttle;
        self
    }

    /// Social sign-in with these providers.
    pub fn with_social(mut self, providers: Option<social::SocialProviders>) -> Self {
        self.assembling().social = providers.map(Arc::new);
        self
    }

    /// Two-factor authentication and passwordless sign-in with these keys and settings.
    pub fn with_two_factor(mut self, settings: two_factor::TwoFactorSettings) -> Self {
        self.assembling().two_factor = Some(Arc::new(settings));
        self
    }

    /// Passkeys with this relying party.
    pub fn with_relying_party(mut self, rp: passkey::RelyingParty) -> Self {
        self.assembling().relying_party = Some(Arc::new(rp));
        self
    }

    pub fn with_account_flows(mut self, flows: verification::AccountFlows) -> Self {
        self.assembling().flows = Some(Arc::new(flows));
        self
    }
}

pub use crate::clock::now;
