//! What every use case shares: the pool, the hasher, the policies, the audit trail. The services
//! are views on it (`ctx.sessions()`, `ctx.passwords()`, ...), each defined in its own module
//! with [`service!`](crate::auth::context::service), so a use case in one service calls another
//! service's by name instead of through one hub.

use std::sync::Arc;

use super::access_token::{AccessTokens, Tokens};
use super::account::Accounts;
use super::admin::AdminService;
use super::audit::AuditEvent;
use super::migrations::Migrator;
use super::passkey::{Passkeys, RelyingParty};
use super::passwordless::Passwordless;
use super::session::Sessions;
use super::sign_in::Passwords;
use super::social::{Social, SocialProviders};
use super::two_factor::{TwoFactor, TwoFactorSettings};
use super::verification::{AccountFlows, MailFlows};
use super::{ClientInfo, ROLE_ADMIN, ROLE_USER, SessionPolicy, User, ban_in_force, now, password};
use crate::db::{Conn, Pool, users};
use crate::error::{Error, Result};
use crate::throttle::AccountThrottle;

/// Defines a service: a `Copy` view on the [`Context`] that derefs to it, so a use case reads
/// `self.hasher`, `self.conn()`, `self.record(..)`.
macro_rules! service {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy)]
        pub struct $name<'a> {
            pub(in crate::auth) ctx: &'a $crate::auth::Context,
        }

        impl std::ops::Deref for $name<'_> {
            type Target = $crate::auth::Context;
            fn deref(&self) -> &$crate::auth::Context {
                self.ctx
            }
        }
    };
}
pub(super) use service;

/// The shared state of the use cases, built once at boot.
#[derive(Clone)]
pub struct Context {
    pub(super) pool: Pool,
    pub(super) hasher: password::Hasher,
    pub(super) policy: SessionPolicy,
    /// Mail-sending flows (verification, reset, email change); set by `with_account_flows`.
    pub(super) flows: Option<Arc<AccountFlows>>,
    pub(super) tokens: AccessTokens,
    /// Normalised emails that get role `admin` (`APEXKIT_ADMIN_EMAILS`).
    pub(super) admin_emails: Arc<[String]>,
    pub(super) migrator: Option<Arc<Migrator>>,
    pub(super) password_policy: password::Policy,
    pub(super) sign_in_throttle: AccountThrottle,
    /// The social sign-in providers (`None`: none configured).
    pub(super) social: Option<Arc<SocialProviders>>,
    /// Two-factor and passwordless sign-in keys and settings (`None`: not configured).
    pub(super) two_factor: Option<Arc<TwoFactorSettings>>,
    /// The passkeys' relying party (`None`: passkeys not configured).
    pub(super) relying_party: Option<Arc<RelyingParty>>,
}

/// The services.
impl Context {
    /// Opening, checking, listing and ending sessions; the path every sign-in ends in.
    pub fn sessions(&self) -> Sessions<'_> {
        Sessions { ctx: self }
    }

    /// Sign-up and sign-in with email and password.
    pub fn passwords(&self) -> Passwords<'_> {
        Passwords { ctx: self }
    }

    /// A signed-in user managing their own account.
    pub fn account(&self) -> Accounts<'_> {
        Accounts { ctx: self }
    }

    /// Verification and password reset by mail.
    pub fn mail_flows(&self) -> MailFlows<'_> {
        MailFlows { ctx: self }
    }

    /// Administration: users, bans, the audit trail, the schema, signing keys.
    pub fn admin(&self) -> AdminService<'_> {
        AdminService { ctx: self }
    }

    /// Sign-in with OAuth 2.0 / OpenID Connect providers.
    pub fn social(&self) -> Social<'_> {
        Social { ctx: self }
    }

    /// Two-factor authentication: enrolment, the second step of sign-in, backup codes.
    pub fn two_factor(&self) -> TwoFactor<'_> {
        TwoFactor { ctx: self }
    }

    /// Passwordless sign-in: magic links and emailed codes.
    pub fn passwordless(&self) -> Passwordless<'_> {
        Passwordless { ctx: self }
    }

    /// Passkeys: WebAuthn registration and sign-in, the user's list.
    pub fn passkeys(&self) -> Passkeys<'_> {
        Passkeys { ctx: self }
    }

    /// Access tokens for other services.
    pub fn tokens(&self) -> Tokens<'_> {
        Tokens { ctx: self }
    }
}

/// What the services share.
impl Context {
    /// A pooled connection. Hold it only for the statements at hand (never across a password
    /// hash, and never while another use case checks out its own).
    pub(super) async fn conn(&self) -> Result<Conn> {
        Ok(self.pool.get().await?)
    }

    /// Records an audit event — the one way to write one. Best effort: a failure to write is
    /// logged loudly but does not fail the use case that already happened (a broken audit table
    /// must not lock every user out). Checks out its own connection: call it holding none.
    pub(super) async fn record(&self, event: AuditEvent, client: &ClientInfo) {
        let written = async {
            let row = event.row(client)?;
            crate::db::audit::insert(&mut self.conn().await?, &row).await?;
            Ok::<_, Error>(())
        }
        .await;
        if let Err(error) = written {
            audit_failed(&event, &error);
        }
    }

    /// Checks a new password (sign-up, change, reset, admin create/set) before any hashing,
    /// with the user's email and name as context words.
    pub(super) fn check_new_password(
        &self,
        password: &str,
        context: &password::Context<'_>,
    ) -> Result<()> {
        self.password_policy.check_for(password, context)
    }

    /// Whether this (normalised) email is listed in `APEXKIT_ADMIN_EMAILS`.
    pub(super) fn is_admin_email(&self, email: &str) -> bool {
        self.admin_emails.iter().any(|e| e == email)
    }

    /// The role a new user with this (normalised) email gets: `admin` only for a listed address
    /// that is verified, so nobody claims an admin address by signing up first.
    pub(super) fn role_for(&self, email: &str, verified: bool) -> &'static str {
        if verified && self.is_admin_email(email) {
            ROLE_ADMIN
        } else {
            ROLE_USER
        }
    }

    /// The user as they stand once an expired ban is lifted (lazily, here); `None` while a ban
    /// is in force.
    pub(super) async fn unless_banned(&self, conn: &mut Conn, user: User) -> Result<Option<User>> {
        if !user.banned {
            return Ok(Some(user));
        }
        let now = now();
        if ban_in_force(&user, now) {
            return Ok(None);
        }
        match users::unban(conn, &user.id, Some(now), now).await? {
            Some(lifted) => Ok(Some(lifted)),
            // Re-banned (or unbanned) concurrently: decide on the row as it is now.
            None => Ok(users::find_by_id(conn, &user.id)
                .await?
                .filter(|u| !ban_in_force(u, now))),
        }
    }

    /// The settings of the mail flows (configured at boot).
    pub(super) fn flows(&self) -> Result<&AccountFlows> {
        self.flows
            .as_deref()
            .ok_or_else(|| Error::internal(anyhow::anyhow!("account flows not configured")))
    }

    pub fn requires_email_verification(&self) -> bool {
        self.flows
            .as_deref()
            .is_some_and(|f| f.require_email_verification)
    }
}

/// Logs an audit event that could not be written (see [`Context::record`]).
pub(super) fn audit_failed(event: &AuditEvent, error: &Error) {
    tracing::error!(%error, kind = event.kind.as_str(), "cannot write audit event");
}
