//! Access tokens: short-lived EdDSA JWTs (`typ: at+jwt`) that other services verify with our
//! JWKS alone. Apexkit itself never accepts them (see [`super::SessionToken::parse`]).

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime};
use jsonwebtoken::{Algorithm, Header};
use serde::Serialize;

use super::admin::AdminService;
use super::context::service;
use super::keys::{KeyStore, Signer};
use super::{Viewer, now};
use crate::error::{Error, Result};

/// The `typ` header of our access tokens (RFC 9068).
pub const TOKEN_TYPE: &str = "at+jwt";

/// A signed access token and when it expires.
pub struct AccessToken {
    pub token: String,
    pub expires_at: NaiveDateTime,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Who a token speaks for: a user and one of their sessions.
pub struct Subject<'a> {
    pub user_id: &'a str,
    pub email: &'a str,
    pub email_verified: bool,
    pub role: &'a str,
    pub session_id: &'a str,
    pub session_expires_at: NaiveDateTime,
}

impl<'a> From<&'a Viewer> for Subject<'a> {
    fn from(v: &'a Viewer) -> Self {
        Self {
            user_id: &v.user.id,
            email: &v.user.email,
            email_verified: v.user.email_verified.unwrap_or(false),
            role: &v.user.role,
            session_id: &v.session.id,
            session_expires_at: v.session.expires_at,
        }
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    sid: &'a str,
    email: &'a str,
    email_verified: bool,
    role: &'a str,
    iat: i64,
    exp: i64,
}

/// Issues access tokens for this deployment.
#[derive(Clone)]
pub struct AccessTokens {
    keys: KeyStore,
    issuer: String,
    audience: String,
    lifetime: Duration,
}

impl AccessTokens {
    pub fn new(keys: KeyStore, issuer: String, audience: String, lifetime: Duration) -> Self {
        Self {
            keys,
            issuer,
            audience,
            lifetime,
        }
    }

    pub fn keys(&self) -> &KeyStore {
        &self.keys
    }

    /// Signs a token for `subject` with the active key. It expires after the configured lifetime,
    /// or with its session if that comes first.
    pub async fn issue(&self, subject: &Subject<'_>) -> Result<AccessToken> {
        let signer = self.keys.signer().await?;
        self.issue_with(subject, &signer)
    }

    /// As [`Self::issue`], with the active key the caller already holds.
    pub fn issue_with(&self, subject: &Subject<'_>, signer: &Signer) -> Result<AccessToken> {
        let iat = now().and_utc().timestamp();
        let lifetime = i64::try_from(self.lifetime.as_secs()).unwrap_or(i64::MAX);
        let exp = iat
            .saturating_add(lifetime)
            .min(subject.session_expires_at.and_utc().timestamp());
        let claims = Claims {
            iss: &self.issuer,
            aud: &self.audience,
            sub: subject.user_id,
            sid: subject.session_id,
            email: subject.email,
            email_verified: subject.email_verified,
            role: subject.role,
            iat,
            exp,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(TOKEN_TYPE.to_owned());
        header.kid = Some(signer.kid().to_owned());
        let token = jsonwebtoken::encode(&header, &claims, signer.encoding_key())
            .map_err(|e| Error::internal(anyhow::anyhow!("signing an access token failed: {e}")))?;
        let expires_at = DateTime::from_timestamp(exp, 0)
            .map(|t| t.naive_utc())
            .ok_or_else(|| Error::internal(anyhow::anyhow!("access token expiry out of range")))?;
        Ok(AccessToken { token, expires_at })
    }
}

service! {
    /// Access tokens for the signed-in user.
    Tokens
}

impl Tokens<'_> {
    /// A fresh access token for the viewer's current session.
    pub async fn refresh(&self, viewer: &Viewer) -> Result<AccessToken> {
        self.tokens.issue(&Subject::from(viewer)).await
    }
}

impl AdminService<'_> {
    /// Retires the active signing key and creates a new one (admin, on demand).
    pub async fn rotate_signing_keys(
        &self,
        admin: &super::Admin,
        client: &super::ClientInfo,
    ) -> Result<super::keys::KeyInfo> {
        let key = self.tokens.keys().rotate().await?;
        self.record(
            super::audit::AuditEvent::success(super::audit::AuditKind::AdminRotateSigningKeys)
                .actor(&admin.user.id)
                .detail(serde_json::json!({ "kid": key.kid })),
            client,
        )
        .await;
        Ok(key)
    }
}
