//! GraphQL object types: views of domain values. Tokens and hashes have no field here.

use async_graphql::{ID, Object, SimpleObject};
use chrono::{DateTime, NaiveDateTime, Utc};

use crate::auth;

pub(crate) fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

pub struct User(pub auth::User);

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn email(&self) -> &str {
        &self.0.email
    }
    async fn email_verified(&self) -> bool {
        self.0.email_verified.unwrap_or(false)
    }
    async fn image(&self) -> Option<&str> {
        self.0.image.as_deref()
    }
    /// `user` or `admin`.
    async fn role(&self) -> &str {
        &self.0.role
    }
    async fn banned(&self) -> bool {
        self.0.banned
    }
    async fn ban_reason(&self) -> Option<&str> {
        self.0.ban_reason.as_deref()
    }
    /// When the ban lifts by itself; null for a permanent ban (or none).
    async fn ban_expires(&self) -> Option<DateTime<Utc>> {
        self.0.ban_expires.map(utc)
    }
    async fn created_at(&self) -> DateTime<Utc> {
        utc(self.0.created_at)
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        utc(self.0.updated_at)
    }
    /// Whether sign-ins of this user stop at a second factor (TOTP enrolled and confirmed).
    async fn two_factor_enabled(
        &self,
        ctx: &async_graphql::Context<'_>,
    ) -> async_graphql::Result<bool> {
        Ok(super::domain(ctx)?
            .two_factor()
            .is_enabled(&self.0.id)
            .await?)
    }
    /// How many unused backup codes the user has left.
    async fn backup_codes_remaining(
        &self,
        ctx: &async_graphql::Context<'_>,
    ) -> async_graphql::Result<i32> {
        let n = super::domain(ctx)?
            .two_factor()
            .backup_codes_remaining(&self.0.id)
            .await?;
        Ok(i32::try_from(n).unwrap_or(i32::MAX))
    }
}

pub struct Session {
    pub inner: auth::Session,
    /// Whether this is the session making the request.
    pub current: bool,
}

#[Object]
impl Session {
    async fn id(&self) -> ID {
        ID(self.inner.id.clone())
    }
    async fn user_id(&self) -> ID {
        ID(self.inner.user_id.clone())
    }
    async fn expires_at(&self) -> DateTime<Utc> {
        utc(self.inner.expires_at)
    }
    async fn created_at(&self) -> DateTime<Utc> {
        utc(self.inner.created_at)
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        utc(self.inner.updated_at)
    }
    /// The client address at sign-in, as the service saw it.
    async fn ip_address(&self) -> Option<&str> {
        self.inner.ip_address.as_deref()
    }
    async fn user_agent(&self) -> Option<&str> {
        self.inner.user_agent.as_deref()
    }
    /// True for the session making this request.
    async fn current(&self) -> bool {
        self.current
    }
}

#[derive(SimpleObject)]
pub struct SessionWithUser {
    pub session: Session,
    pub user: User,
}

impl From<auth::Viewer> for SessionWithUser {
    fn from(v: auth::Viewer) -> Self {
        Self {
            session: Session {
                inner: v.session,
                current: true,
            },
            user: User(v.user),
        }
    }
}

/// The result of signing up or in.
#[derive(SimpleObject)]
pub struct AuthPayload {
    /// The opaque session token (also set as the session cookie). Shown once.
    pub token: Option<String>,
    pub user: User,
    pub session: Option<Session>,
    /// A short-lived JWT (EdDSA, `typ: at+jwt`) for other services, verifiable with
    /// `/.well-known/jwks.json`. Apexkit itself accepts only the session token.
    pub access_token: Option<String>,
    pub access_token_expires_at: Option<DateTime<Utc>>,
    /// True when the user has two-factor on and this sign-in stopped at the second step:
    /// `token`, `session` and the access token are null; finish with `verifyTotp`,
    /// `verifyBackupCode` or `verifyTwoFactorOtp`.
    pub two_factor_required: bool,
    /// The second step's token (single use, 5 minutes; also the `apexkit.two_factor` cookie).
    pub two_factor_token: Option<String>,
}

impl AuthPayload {
    /// A payload with the user only: no session, no second step.
    pub fn user_only(user: auth::User) -> Self {
        Self {
            token: None,
            user: User(user),
            session: None,
            access_token: None,
            access_token_expires_at: None,
            two_factor_required: false,
            two_factor_token: None,
        }
    }
}

impl From<auth::SignedIn> for AuthPayload {
    fn from(s: auth::SignedIn) -> Self {
        Self {
            token: Some(s.token.expose().to_owned()),
            user: User(s.user),
            session: Some(Session {
                inner: s.session,
                current: true,
            }),
            access_token_expires_at: Some(utc(s.access_token.expires_at)),
            access_token: Some(s.access_token.token),
            two_factor_required: false,
            two_factor_token: None,
        }
    }
}

/// A JWT for other services.
#[derive(SimpleObject)]
pub struct AccessToken {
    /// EdDSA-signed, `typ: at+jwt`; verify it with `/.well-known/jwks.json`.
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

impl From<auth::AccessToken> for AccessToken {
    fn from(t: auth::AccessToken) -> Self {
        Self {
            expires_at: utc(t.expires_at),
            token: t.token,
        }
    }
}

/// A key that signs access tokens (public facts only).
pub struct SigningKey(pub auth::keys::KeyInfo);

#[Object]
impl SigningKey {
    /// The `kid` in token headers and in the JWKS.
    async fn kid(&self) -> ID {
        ID(self.0.kid.clone())
    }
    /// `EdDSA`.
    async fn algorithm(&self) -> &str {
        &self.0.algorithm
    }
    async fn created_at(&self) -> DateTime<Utc> {
        utc(self.0.created_at)
    }
    /// When it stopped signing; null for the active key.
    async fn retired_at(&self) -> Option<DateTime<Utc>> {
        self.0.retired_at.map(utc)
    }
}

pub struct Account(pub auth::Account);

#[Object]
impl Account {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// `credential` for email and password.
    async fn provider_id(&self) -> &str {
        &self.0.provider_id
    }
    async fn account_id(&self) -> &str {
        &self.0.account_id
    }
    /// The scopes the provider granted (empty for `credential`).
    async fn scopes(&self) -> Vec<String> {
        self.0
            .scope
            .as_deref()
            .unwrap_or_default()
            .split([' ', ','])
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        utc(self.0.created_at)
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        utc(self.0.updated_at)
    }
}
