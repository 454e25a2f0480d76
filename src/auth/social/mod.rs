//! Social sign-in through OAuth 2.0 / OpenID Connect providers: the authorization-code flow
//! with PKCE (S256), `state` and `nonce` ([`Social::start`], [`Social::finish`]), and the
//! direct `idToken` sign-in of native apps ([`Social::sign_in_id_token`]). Both end in
//! [`Sessions::issue`](super::session::Sessions::issue).
//!
//! The flow's state lives in the `verification` table (purpose `oauth-state`), so any replica
//! finishes what another started: the row's identifier is the SHA-256 of the `state` together
//! with a random value kept in a short-lived HttpOnly cookie of the starting browser, so only
//! that browser can finish it (and a `state` presented by another finds nothing, spends
//! nothing); the PKCE verifier and the nonce are sealed with `APEXKIT_SECRET`. Single use:
//! the row is deleted when the callback takes it. Provider tokens are stored sealed.
//!
//! Linking without takeover: an identity whose email matches an existing user is linked only
//! when the provider asserts the email verified **and** the user's own address is verified.

mod apple;
mod provider;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::audit::{AuditEvent, AuditKind};
use super::context::service;
use super::origin::TrustedOrigins;
use super::seal::{Sealer, random};
use super::{ClientInfo, SignInOutcome, User, email, links, now, token};
use crate::clock::after as add;
use crate::db::models::{NewProviderAccount, NewUser, ProviderTokens};
use crate::db::verifications::{self, Consumed, NewVerification, purpose};
use crate::db::{DbError, accounts, users};
use crate::error::{Error, Result};
use crate::secret::Secret;
pub use apple::AppleKey;
pub use provider::ProviderError;
use provider::{Claims, Provider, TokenResponse};

/// How long a started flow may take to come back.
pub const STATE_LIFETIME: Duration = Duration::from_secs(600);
/// The cookie binding a flow to the browser that started it.
pub const STATE_COOKIE: &str = "apexkit.oauth_state";
/// Where failures land when the flow named no `errorCallbackURL`.
pub const ERROR_PATH: &str = "/error";
const MAX_NAME_CHARS: usize = 256;
const MAX_IMAGE_CHARS: usize = 2048;

/// A provider as configured (checked by the configuration).
#[derive(Debug, Clone)]
pub struct ProviderSpec {
    pub id: String,
    /// For buttons.
    pub name: String,
    pub client_id: String,
    /// How the client authenticates at the token endpoint.
    pub client_auth: ClientAuth,
    pub scopes: Vec<String>,
    /// OpenID Connect: the issuer (discovery, JWKS, `id_token`s). `None`: plain OAuth 2.0.
    pub issuer: Option<String>,
    /// How an `id_token`'s `iss` is compared with the issuer discovery names.
    pub issuer_rule: IssuerRule,
    /// Configured endpoints (override discovery).
    pub endpoints: Endpoints,
    /// What the userinfo endpoint answers.
    pub profile: Profile,
    /// Ask for `response_mode=form_post` (the callback arrives as a POST).
    pub form_post: bool,
}

/// The social sign-in settings: the providers and the linking policy.
#[derive(Debug, Clone, Default)]
pub struct SocialSettings {
    pub providers: Vec<ProviderSpec>,
    /// `linkSocial` may link an identity whose email is not the user's own verified one.
    pub allow_different_emails: bool,
}

impl SocialSettings {
    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }
}

/// The client's credentials at the token endpoint.
#[derive(Debug, Clone)]
pub enum ClientAuth {
    /// `client_secret_basic` (RFC 6749 §2.3.1).
    Basic(Secret),
    /// `client_secret_post`: `client_id` and `client_secret` in the form.
    Post(Secret),
    /// Apple: a `client_secret_post` whose secret is a JWT signed with the developer's key.
    AppleKey(AppleKey),
}

/// How an `id_token`'s `iss` must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssuerRule {
    /// Exactly the configured issuer (OpenID Connect Core §3.1.3.7).
    Exact,
    /// Microsoft's multi-tenant endpoints (`common`, `organizations`): discovery names the
    /// issuer `https://login.microsoftonline.com/{tenantid}/v2.0`; a token's `iss` must be that
    /// with `{tenantid}` replaced by its own `tid` claim, a GUID (Microsoft identity platform,
    /// "Validate the issuer").
    MicrosoftTenant,
}

/// The shape of a provider's user API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// OpenID Connect userinfo claims (`sub`, `email`, `email_verified`, `name`, `picture`).
    Standard,
    /// GitHub's REST API: `GET /user`, and the verified primary address from `/user/emails`.
    GitHub,
    /// Discord's `GET /users/@me` (`id`, `username`, `global_name`, `email`, `verified`,
    /// `avatar`).
    Discord,
    /// Microsoft: the `email` claim (else `preferred_username`) is never verified by Microsoft.
    Microsoft,
    /// Apple: the name from the first `form_post`'s `user` field.
    Apple,
}

#[derive(Debug, Clone, Default)]
pub struct Endpoints {
    pub authorization: Option<String>,
    pub token: Option<String>,
    pub userinfo: Option<String>,
}

/// The providers and what the flows need besides them.
pub struct SocialProviders {
    providers: Vec<Arc<Provider>>,
    /// Seals a flow's PKCE verifier and nonce.
    state_sealer: Sealer,
    /// Seals provider tokens at rest.
    token_sealer: Sealer,
    /// `APEXKIT_BASE_URL` without a trailing slash.
    base_url: String,
    trusted: TrustedOrigins,
    allow_different_emails: bool,
}

impl SocialProviders {
    pub fn new(
        settings: SocialSettings,
        secret: &Secret,
        base_url: &str,
        trusted: TrustedOrigins,
    ) -> Result<Self, ProviderError> {
        Ok(Self {
            allow_different_emails: settings.allow_different_emails,
            providers: settings
                .providers
                .into_iter()
                .map(|s| Provider::new(s).map(Arc::new))
                .collect::<Result<_, _>>()?,
            state_sealer: Sealer::derive(secret, b"apexkit social", b"apexkit:oauth-state-seal:v1"),
            token_sealer: Sealer::derive(
                secret,
                b"apexkit social",
                b"apexkit:provider-token-seal:v1",
            ),
            base_url: base_url.trim_end_matches('/').to_owned(),
            trusted,
        })
    }

    /// Fetches every provider's discovery document now; the error names the first provider
    /// that cannot be reached. (Boot: fatal in production, a warning in development, where the
    /// provider is tried again at first use.)
    pub async fn discover(&self) -> Vec<(String, ProviderError)> {
        let mut failed = Vec::new();
        for p in &self.providers {
            if let Err(e) = p.metadata().await {
                failed.push((p.spec.id.clone(), e));
            }
        }
        failed
    }

    fn get(&self, id: &str) -> Option<&Arc<Provider>> {
        self.providers.iter().find(|p| p.spec.id == id)
    }

    fn redirect_uri(&self, id: &str) -> String {
        format!("{}/callback/{id}", self.base_url)
    }

    fn target(&self, value: Option<&str>, default: &str, field: &'static str) -> Result<String> {
        match value {
            Some(v) => links::redirect_target(v, &self.base_url, &self.trusted, field),
            None => Ok(format!("{}{default}", self.base_url)),
        }
    }

    /// The service's own error page with `?error=`.
    pub fn error_page(&self, failure: Failure) -> String {
        with_error(&format!("{}{ERROR_PATH}", self.base_url), failure)
    }
}

/// `target` with `pair` (already encoded) added to its query, before any fragment.
pub(crate) fn with_query(target: &str, pair: &str) -> String {
    let (before, fragment) = match target.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (target, None),
    };
    let sep = if before.contains('?') { '&' } else { '?' };
    match fragment {
        Some(f) => format!("{before}{sep}{pair}#{f}"),
        None => format!("{before}{sep}{pair}"),
    }
}

/// `target` with `error=<failure>` added to its query.
fn with_error(target: &str, failure: Failure) -> String {
    let (before, fragment) = match target.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (target, None),
    };
    let sep = if before.contains('?') { '&' } else { '?' };
    let mut out = format!("{before}{sep}error={}", failure.as_str());
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// Why a callback did not sign anyone in. [`Failure::as_str`] is the `?error=` value, always
/// one of the contract's seven; [`Failure::reason`] the finer reason kept in the audit trail,
/// the logs and the metrics' `outcome` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    StateMismatch,
    AccessDenied,
    InvalidCode,
    EmailNotFound,
    AccountNotLinked,
    AccountAlreadyLinked,
    ProviderNotFound,
    /// The user is banned → `access_denied` (the service, not the provider, refuses).
    UserBanned,
    /// `APEXKIT_REQUIRE_EMAIL_VERIFICATION` and an address nobody verified → `access_denied`.
    EmailNotVerified,
    /// `linkSocial` with an identity whose email is not the user's (verified by the provider)
    /// → `account_not_linked`.
    EmailMismatch,
    /// The flow could not be finished on our side (the database) → `invalid_code` after a
    /// valid `state` (the flow failed, start again), `state_mismatch` before one.
    ServerError,
}

impl Failure {
    /// The `?error=` value: one of the contract's seven.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StateMismatch => "state_mismatch",
            Self::AccessDenied | Self::UserBanned | Self::EmailNotVerified => "access_denied",
            Self::InvalidCode | Self::ServerError => "invalid_code",
            Self::EmailNotFound => "email_not_found",
            Self::AccountNotLinked | Self::EmailMismatch => "account_not_linked",
            Self::AccountAlreadyLinked => "account_already_linked",
            Self::ProviderNotFound => "provider_not_found",
        }
    }

    /// The reason, for the audit trail and metrics (a closed set too).
    pub fn reason(self) -> &'static str {
        match self {
            Self::UserBanned => "banned",
            Self::EmailNotVerified => "email_not_verified",
            Self::EmailMismatch => "email_mismatch",
            Self::ServerError => "server_error",
            other => other.as_str(),
        }
    }
}

service! {
    /// Sign-in with OAuth 2.0 / OpenID Connect providers.
    Social
}

/// A provider, for buttons.
#[derive(Debug, Clone)]
pub struct ProviderInfo {
    pub id: String,
    pub name: String,
}

/// What `signInSocial` asks for.
pub struct Start<'a> {
    pub provider: &'a str,
    pub callback_url: Option<&'a str>,
    pub error_callback_url: Option<&'a str>,
    pub new_user_callback_url: Option<&'a str>,
    pub scopes: &'a [String],
    pub login_hint: Option<&'a str>,
    /// `linkSocial`: the signed-in user the identity is linked to (no session is opened).
    pub link_user: Option<&'a str>,
}

/// A started flow: where to send the browser, and the cookie value binding the flow to it.
pub struct Started {
    pub url: String,
    pub browser_binding: String,
}

/// The parameters of a callback (query or form).
#[derive(Debug, Default, Deserialize)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub iss: Option<String>,
    /// Apple's first `form_post`: the user's name (JSON).
    pub user: Option<String>,
}

/// How a callback ended: where to send the browser and, on success, the new session.
pub struct Finished {
    pub redirect: String,
    /// Whether this callback spent a flow (its browser binding is void now).
    pub spent: bool,
    /// A new session, or none when the flow linked an account to a signed-in user.
    /// (With two-factor on: the second step, not yet a session.)
    pub outcome: std::result::Result<Option<SignInOutcome>, Failure>,
}

/// A flow in progress, as stored (`verification.value`).
#[derive(Serialize, Deserialize)]
struct FlowRow {
    provider: String,
    callback: String,
    error_callback: String,
    new_user_callback: String,
    /// The PKCE verifier and nonce, sealed ([`FlowSecrets`]).
    secrets: String,
    /// `linkSocial`: the user to link the identity to.
    #[serde(default)]
    link_user: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct FlowSecrets {
    verifier: String,
    nonce: String,
}

/// Who the provider says the user is, and the tokens to keep.
struct Identity {
    sub: String,
    email: Option<String>,
    email_verified: bool,
    name: Option<String>,
    picture: Option<String>,
    tokens: ProviderTokens,
}

fn b64_random<const N: usize>() -> Result<String> {
    Ok(URL_SAFE_NO_PAD.encode(random::<N>()?))
}

/// The row identifier of a flow: its `state` bound to the browser's cookie value.
fn flow_identifier(state: &str, browser: &str) -> String {
    let digest = Sha256::digest(format!("{state}.{browser}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl Social<'_> {
    fn registry(&self) -> Result<&SocialProviders> {
        self.social.as_deref().ok_or(Error::ProviderNotFound)
    }

    /// The configured providers.
    pub fn providers(&self) -> Vec<ProviderInfo> {
        self.social
            .as_deref()
            .map(|r| {
                r.providers
                    .iter()
                    .map(|p| ProviderInfo {
                        id: p.spec.id.clone(),
                        name: p.spec.name.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The service's `/error` page with `?error=`, for failures before any flow is known.
    pub fn error_page(&self, failure: Failure) -> Option<String> {
        self.social.as_deref().map(|r| r.error_page(failure))
    }

    /// Starts the redirect flow: checks the targets, stores the flow, and returns the
    /// provider's authorization URL (PKCE S256, `state`, `nonce`).
    pub async fn start(&self, input: Start<'_>) -> Result<Started> {
        let registry = self.registry()?;
        let provider = registry
            .get(input.provider)
            .ok_or(Error::ProviderNotFound)?;
        let callback = registry.target(input.callback_url, "/", "callbackURL")?;
        let error_callback =
            registry.target(input.error_callback_url, ERROR_PATH, "errorCallbackURL")?;
        let new_user_callback = match input.new_user_callback_url {
            Some(v) => registry.target(Some(v), "/", "newUserCallbackURL")?,
            None => callback.clone(),
        };
        let mut scopes = provider.spec.scopes.clone();
        for s in input.scopes {
            if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(Error::BadUserInput {
                    field: "scopes",
                    message: "each scope must be a single word",
                });
            }
            if !scopes.contains(s) {
                scopes.push(s.clone());
            }
        }
        let metadata = provider.metadata().await.map_err(|e| {
            tracing::warn!(provider = %provider.spec.id, error = %e, "social provider unavailable");
            Error::internal(anyhow::anyhow!("social provider unavailable"))
        })?;
        let state = b64_random::<32>()?;
        let browser = b64_random::<32>()?;
        let secrets = FlowSecrets {
            verifier: b64_random::<32>()?,
            nonce: b64_random::<32>()?,
        };
        let identifier = flow_identifier(&state, &browser);
        let sealed = registry.state_sealer.seal(
            &serde_json::to_vec(&secrets).map_err(Error::internal)?,
            identifier.as_bytes(),
        )?;
        let row = FlowRow {
            provider: provider.spec.id.clone(),
            callback,
            error_callback,
            new_user_callback,
            secrets: sealed,
            link_user: input.link_user.map(str::to_owned),
        };
        let value = serde_json::to_string(&row).map_err(Error::internal)?;
        let now = now();
        let id = token::new_id()?;
        verifications::insert(
            &mut self.conn().await?,
            &NewVerification {
                id: &id,
                identifier: &identifier,
                value: &value,
                expires_at: add(now, STATE_LIFETIME),
                created_at: now,
                updated_at: now,
                user_id: None,
                purpose: purpose::OAUTH_STATE,
            },
        )
        .await?;
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(secrets.verifier.as_bytes()));
        let mut url = url::Url::parse(&metadata.authorization).map_err(Error::internal)?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &provider.spec.client_id)
                .append_pair("redirect_uri", &registry.redirect_uri(&provider.spec.id))
                .append_pair("scope", &scopes.join(" "))
                .append_pair("state", &state)
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256");
            if provider.is_oidc() {
                q.append_pair("nonce", &secrets.nonce);
            }
            if let Some(hint) = input.login_hint {
                q.append_pair("login_hint", hint);
            }
            if provider.spec.form_post {
                q.append_pair("response_mode", "form_post");
            }
        }
        Ok(Started {
            url: url.into(),
            browser_binding: browser,
        })
    }

    /// Finishes a flow at `/callback/{provider}`. Never fails: every outcome is a redirect.
    pub async fn finish(
        &self,
        provider_id: &str,
        params: CallbackParams,
        browser: Option<&str>,
        client: &ClientInfo,
    ) -> Finished {
        let Ok(registry) = self.registry() else {
            return Finished {
                redirect: with_error(ERROR_PATH, Failure::ProviderNotFound),
                spent: false,
                outcome: Err(Failure::ProviderNotFound),
            };
        };
        let fail_early = |failure| Finished {
            redirect: registry.error_page(failure),
            spent: false,
            outcome: Err(failure),
        };
        let Some(provider) = registry.get(provider_id) else {
            return fail_early(Failure::ProviderNotFound);
        };
        let (Some(state), Some(browser)) = (params.state.as_deref(), browser) else {
            return fail_early(Failure::StateMismatch);
        };
        let identifier = flow_identifier(state, browser);
        let taken = match self.take_flow(&identifier).await {
            Ok(Some(row)) => row,
            Ok(None) => return fail_early(Failure::StateMismatch),
            Err(e) => {
                tracing::error!(error = ?e, "social sign-in: cannot read the flow");
                // Before a valid `state` the flow is unknown: start again.
                return fail_early(Failure::StateMismatch);
            }
        };
        let Ok(flow) = serde_json::from_str::<FlowRow>(&taken) else {
            return fail_early(Failure::StateMismatch);
        };
        // The callback must be the provider the state was issued for, and (RFC 9207) the
        // response must come from its issuer: a mix-up is a forged state for us.
        let foreign_iss = match params.iss.as_deref() {
            Some(iss) => !provider.is_own_issuer(iss).await,
            None => false,
        };
        if flow.provider != provider.spec.id || foreign_iss {
            return fail_early(Failure::StateMismatch);
        }
        let secrets = registry
            .state_sealer
            .open(&flow.secrets, identifier.as_bytes())
            .and_then(|plain| serde_json::from_slice::<FlowSecrets>(&plain).ok());
        let Some(secrets) = secrets else {
            return fail_early(Failure::StateMismatch);
        };
        let outcome = self
            .complete(
                registry,
                provider,
                &secrets,
                flow.link_user.as_deref(),
                &params,
                client,
            )
            .await;
        let redirect = match &outcome {
            // The second step is the frontend's: back to the callback, which says so.
            Ok((Some(SignInOutcome::SecondFactor(_)), _)) => {
                with_query(&flow.callback, "twoFactorRequired=true")
            }
            Ok((_, true)) => flow.new_user_callback.clone(),
            Ok((_, false)) => flow.callback.clone(),
            Err(failure) => with_error(&flow.error_callback, *failure),
        };
        // A ban is recorded by `Sessions::issue` itself.
        if let Err(failure) = outcome
            && failure != Failure::UserBanned
        {
            let kind = match flow.link_user {
                Some(_) => AuditKind::AccountLink,
                None => AuditKind::SocialSignIn,
            };
            self.record(
                AuditEvent::failure(kind).detail(serde_json::json!({
                    "provider": provider.spec.id,
                    "reason": failure.reason(),
                })),
                client,
            )
            .await;
        }
        Finished {
            redirect,
            spent: true,
            outcome: outcome.map(|(signed, _)| signed),
        }
    }

    /// Deletes flows started and never finished, once expired; run periodically.
    pub async fn purge_expired_flows(&self) -> Result<usize> {
        Ok(
            verifications::delete_expired(&mut self.conn().await?, purpose::OAUTH_STATE, now())
                .await?,
        )
    }

    /// Consumes the flow row; `None` when it is unknown, spent, expired or another browser's.
    async fn take_flow(&self, identifier: &str) -> Result<Option<String>> {
        match verifications::take(
            &mut self.conn().await?,
            identifier,
            purpose::OAUTH_STATE,
            now(),
        )
        .await?
        {
            Consumed::Done(row) => Ok(Some(row.value)),
            Consumed::Missing | Consumed::Expired => Ok(None),
        }
    }

    /// After a valid `state`: the provider's answer, the code exchange, the identity, the
    /// user, the session. `true` with a new user.
    async fn complete(
        &self,
        registry: &SocialProviders,
        provider: &Provider,
        secrets: &FlowSecrets,
        link_user: Option<&str>,
        params: &CallbackParams,
        client: &ClientInfo,
    ) -> std::result::Result<(Option<SignInOutcome>, bool), Failure> {
        if let Some(error) = &params.error {
            return Err(match error.as_str() {
                "access_denied"
                | "consent_required"
                | "login_required"
                | "interaction_required" => Failure::AccessDenied,
                _ => Failure::InvalidCode,
            });
        }
        let code = params.code.as_deref().ok_or(Failure::InvalidCode)?;
        let tokens = provider
            .exchange_code(
                code,
                &secrets.verifier,
                &registry.redirect_uri(&provider.spec.id),
            )
            .await
            .map_err(|e| {
                tracing::warn!(provider = %provider.spec.id, error = %e, "social sign-in: code exchange failed");
                Failure::InvalidCode
            })?;
        let mut identity = self
            .identify(registry, provider, tokens, Some(&secrets.nonce))
            .await
            .map_err(|e| {
                tracing::warn!(provider = %provider.spec.id, error = %e, "social sign-in: identity refused");
                Failure::InvalidCode
            })?;
        if provider.spec.profile == Profile::Apple && identity.name.is_none() {
            identity.name = params.user.as_deref().and_then(apple::name_from_user_field);
        }
        match link_user {
            Some(user_id) => {
                self.link_identity(registry, provider, user_id, identity, client)
                    .await?;
                Ok((None, false))
            }
            None => {
                let (signed, new_user) = self
                    .sign_in_identity(registry, provider, identity, client)
                    .await?;
                Ok((Some(signed), new_user))
            }
        }
    }

    /// `linkSocial`'s end: the identity joins the signed-in user's accounts (its tokens
    /// refreshed when it already did); another user's identity → `account_already_linked`;
    /// unless `APEXKIT_OAUTH_ALLOW_DIFFERENT_EMAILS`, an identity whose provider does not vouch
    /// for the user's own address → `account_not_linked` (as Better Auth's
    /// `accountLinking.allowDifferentEmails: false`).
    async fn link_identity(
        &self,
        registry: &SocialProviders,
        provider: &Provider,
        user_id: &str,
        identity: Identity,
        client: &ClientInfo,
    ) -> std::result::Result<(), Failure> {
        let server = |e: DbError| {
            tracing::error!(error = ?e, "linking a social account failed");
            Failure::ServerError
        };
        let pid = provider.spec.id.as_str();
        let now = now();
        let mut conn = self.conn().await.map_err(|e| {
            tracing::error!(error = ?e, "linking a social account failed");
            Failure::ServerError
        })?;
        match accounts::find_provider_account(&mut conn, pid, &identity.sub)
            .await
            .map_err(server)?
        {
            Some((account, owner)) if owner.id == user_id => {
                accounts::update_tokens(&mut conn, &account.id, &identity.tokens, now)
                    .await
                    .map_err(server)?;
                return Ok(());
            }
            Some(_) => return Err(Failure::AccountAlreadyLinked),
            None => {}
        }
        if !registry.allow_different_emails {
            let user = users::find_by_id(&mut conn, user_id)
                .await
                .map_err(server)?
                .ok_or(Failure::ServerError)?;
            let same = identity
                .email
                .as_deref()
                .and_then(|e| email::normalize(e).ok())
                .is_some_and(|e| e == user.email);
            if !(same && identity.email_verified) {
                return Err(Failure::EmailMismatch);
            }
        }
        let id = token::new_id().map_err(|_| Failure::ServerError)?;
        let row = NewProviderAccount {
            id: &id,
            account_id: &identity.sub,
            provider_id: pid,
            user_id,
            tokens: identity.tokens,
            created_at: now,
            updated_at: now,
        };
        match accounts::insert_provider_account(&mut conn, &row).await {
            Ok(()) => {}
            Err(DbError::UniqueViolation(_)) => return Err(Failure::AccountAlreadyLinked),
            Err(e) => return Err(server(e)),
        }
        drop(conn);
        self.record(
            AuditEvent::by_self(AuditKind::AccountLink, user_id)
                .detail(serde_json::json!({ "provider": pid })),
            client,
        )
        .await;
        Ok(())
    }

    /// The identity from a token response: the verified `id_token` (OIDC), else userinfo.
    async fn identify(
        &self,
        registry: &SocialProviders,
        provider: &Provider,
        tokens: TokenResponse,
        nonce: Option<&str>,
    ) -> std::result::Result<Identity, ProviderError> {
        let claims = match (&tokens.id_token, provider.is_oidc()) {
            (Some(id_token), true) => Some(provider.verify_id_token(id_token, nonce).await?),
            (None, true) => {
                return Err(ProviderError::InvalidIdToken("no id_token".into()));
            }
            _ => None,
        };
        let claims = match claims {
            Some(c) if c.email.is_some() => c,
            other => {
                let info = match provider.spec.profile {
                    Profile::Standard | Profile::Microsoft | Profile::Apple => {
                        provider.userinfo(&tokens.access_token).await?
                    }
                    Profile::GitHub => Some(provider.github_user(&tokens.access_token).await?),
                    Profile::Discord => Some(provider.discord_user(&tokens.access_token).await?),
                };
                match (other, info) {
                    (Some(c), Some(info)) if info.sub == c.sub => Claims {
                        email: info.email,
                        email_verified: info.email_verified,
                        name: c.name.or(info.name),
                        picture: c.picture.or(info.picture),
                        ..c
                    },
                    (Some(c), None) => c,
                    (Some(_), Some(_)) => {
                        return Err(ProviderError::Rejected(
                            "userinfo is another subject".into(),
                        ));
                    }
                    (None, Some(info)) => info,
                    (None, None) => {
                        return Err(ProviderError::Rejected("no userinfo endpoint".into()));
                    }
                }
            }
        };
        let now = now();
        let sealed = self.seal_tokens(registry, provider, &claims.sub, &tokens, now)?;
        Ok(Identity {
            sub: claims.sub,
            email: claims.email,
            email_verified: claims.email_verified,
            name: claims.name,
            picture: claims.picture,
            tokens: sealed,
        })
    }

    fn seal_tokens(
        &self,
        registry: &SocialProviders,
        provider: &Provider,
        sub: &str,
        tokens: &TokenResponse,
        now: NaiveDateTime,
    ) -> std::result::Result<ProviderTokens, ProviderError> {
        let seal = |value: &Option<String>, column: &str| {
            value
                .as_deref()
                .map(|v| {
                    registry.token_sealer.seal(
                        v.as_bytes(),
                        token_aad(&provider.spec.id, sub, column).as_bytes(),
                    )
                })
                .transpose()
                .map_err(|_| ProviderError::Rejected("cannot seal tokens".into()))
        };
        Ok(ProviderTokens {
            access_token: seal(&Some(tokens.access_token.clone()), "access_token")?,
            refresh_token: seal(&tokens.refresh_token, "refresh_token")?,
            id_token: seal(&tokens.id_token, "id_token")?,
            access_token_expires_at: tokens
                .expires_in
                .filter(|s| *s > 0)
                .map(|s| add(now, Duration::from_secs(s.unsigned_abs()))),
            refresh_token_expires_at: None,
            scope: tokens.scope.clone(),
        })
    }

    /// Finds or creates the user of an identity (by the provider account, else by a verified
    /// email on both sides), then issues the session. `true` with a new user.
    async fn sign_in_identity(
        &self,
        _registry: &SocialProviders,
        provider: &Provider,
        identity: Identity,
        client: &ClientInfo,
    ) -> std::result::Result<(SignInOutcome, bool), Failure> {
        let server = |e: Error| {
            tracing::error!(error = ?e, "social sign-in failed");
            Failure::ServerError
        };
        let pid = provider.spec.id.as_str();
        let now = now();
        let mut conn = self.conn().await.map_err(server)?;
        let existing = accounts::find_provider_account(&mut conn, pid, &identity.sub)
            .await
            .map_err(|e| server(e.into()))?;
        let (user, new_user) = match existing {
            Some((account, user)) => {
                accounts::update_tokens(&mut conn, &account.id, &identity.tokens, now)
                    .await
                    .map_err(|e| server(e.into()))?;
                (user, false)
            }
            None => {
                let raw = identity.email.as_deref().ok_or(Failure::EmailNotFound)?;
                let address = email::normalize(raw).map_err(|_| Failure::EmailNotFound)?;
                let account_id = token::new_id().map_err(server)?;
                match users::find_by_email(&mut conn, &address)
                    .await
                    .map_err(|e| server(e.into()))?
                {
                    Some(user) => {
                        if !(identity.email_verified && user.email_verified == Some(true)) {
                            return Err(Failure::AccountNotLinked);
                        }
                        let row = NewProviderAccount {
                            id: &account_id,
                            account_id: &identity.sub,
                            provider_id: pid,
                            user_id: &user.id,
                            tokens: identity.tokens.clone(),
                            created_at: now,
                            updated_at: now,
                        };
                        match accounts::insert_provider_account(&mut conn, &row).await {
                            Ok(()) => {}
                            Err(DbError::UniqueViolation(_)) => {
                                return Err(Failure::AccountAlreadyLinked);
                            }
                            Err(e) => return Err(server(e.into())),
                        }
                        drop(conn);
                        self.record(
                            AuditEvent::by_self(AuditKind::AccountLink, &user.id)
                                .detail(serde_json::json!({ "provider": pid })),
                            client,
                        )
                        .await;
                        (user, false)
                    }
                    None => {
                        let user_id = token::new_id().map_err(server)?;
                        let name = identity
                            .name
                            .as_deref()
                            .map(str::trim)
                            .filter(|n| !n.is_empty())
                            .unwrap_or_else(|| address.split('@').next().unwrap_or_default());
                        let name: String = name.chars().take(MAX_NAME_CHARS).collect();
                        let image = identity.picture.as_deref().filter(|p| {
                            p.chars().count() <= MAX_IMAGE_CHARS
                                && (p.starts_with("https://") || p.starts_with("http://"))
                        });
                        let verified = identity.email_verified;
                        let new_user = NewUser {
                            id: &user_id,
                            name: &name,
                            email: &address,
                            email_verified: verified,
                            image,
                            created_at: now,
                            updated_at: now,
                            role: self.role_for(&address, verified),
                        };
                        let row = NewProviderAccount {
                            id: &account_id,
                            account_id: &identity.sub,
                            provider_id: pid,
                            user_id: &user_id,
                            tokens: identity.tokens.clone(),
                            created_at: now,
                            updated_at: now,
                        };
                        match accounts::create_user_with_provider_account(
                            &mut conn, &new_user, &row,
                        )
                        .await
                        {
                            Ok(user) => {
                                drop(conn);
                                self.record(
                                    AuditEvent::by_self(AuditKind::SignUp, &user.id)
                                        .detail(serde_json::json!({ "provider": pid })),
                                    client,
                                )
                                .await;
                                (user, true)
                            }
                            // The address or the identity was taken meanwhile.
                            Err(DbError::UniqueViolation(_)) => {
                                return Err(Failure::AccountNotLinked);
                            }
                            Err(e) => return Err(server(e.into())),
                        }
                    }
                }
            }
        };
        let signed = self.issue(user, pid, client).await?;
        Ok((signed, new_user))
    }

    async fn issue(
        &self,
        user: User,
        provider: &str,
        client: &ClientInfo,
    ) -> std::result::Result<SignInOutcome, Failure> {
        let refused_provider = provider.to_owned();
        let signed = self
            .sessions()
            .issue(user, true, client, move |reason| {
                AuditEvent::failure(AuditKind::SocialSignIn).detail(serde_json::json!({
                    "provider": refused_provider,
                    "reason": reason,
                }))
            })
            .await
            .map_err(|e| match e {
                Error::UserBanned => Failure::UserBanned,
                Error::EmailNotVerified => Failure::EmailNotVerified,
                other => {
                    tracing::error!(error = ?other, "social sign-in: cannot issue the session");
                    Failure::ServerError
                }
            })?;
        let (user_id, stage) = match &signed {
            SignInOutcome::SignedIn(s) => (&s.user.id, "signed_in"),
            SignInOutcome::SecondFactor(p) => (&p.user.id, "second_factor_required"),
        };
        self.record(
            AuditEvent::by_self(AuditKind::SocialSignIn, user_id)
                .detail(serde_json::json!({ "provider": provider, "stage": stage })),
            client,
        )
        .await;
        Ok(signed)
    }

    /// Native apps: signs in with an `id_token` the provider's SDK obtained, verified exactly
    /// as in the redirect flow (the `nonce`, when given, compared as is).
    pub async fn sign_in_id_token(
        &self,
        provider_id: &str,
        id_token: &str,
        nonce: Option<&str>,
        access_token: Option<&str>,
        client: &ClientInfo,
    ) -> Result<SignInOutcome> {
        let registry = self.registry()?;
        let provider = registry.get(provider_id).ok_or(Error::ProviderNotFound)?;
        if !provider.is_oidc() {
            return Err(Error::InvalidIdToken);
        }
        let claims = provider.verify_id_token(id_token, nonce).await;
        let claims = match claims {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(provider = %provider_id, error = %e, "idToken sign-in refused");
                self.record(
                    AuditEvent::failure(AuditKind::SocialSignIn).detail(serde_json::json!({
                        "provider": provider_id,
                        "reason": "invalid_id_token",
                    })),
                    client,
                )
                .await;
                return Err(match e {
                    ProviderError::InvalidIdToken(_) => Error::InvalidIdToken,
                    other => Error::internal(other),
                });
            }
        };
        let now = now();
        let tokens = TokenResponse {
            access_token: access_token.unwrap_or_default().to_owned(),
            expires_in: None,
            refresh_token: None,
            id_token: Some(id_token.to_owned()),
            scope: None,
        };
        let mut sealed = self
            .seal_tokens(registry, provider, &claims.sub, &tokens, now)
            .map_err(Error::internal)?;
        if access_token.is_none() {
            sealed.access_token = None;
        }
        let identity = Identity {
            sub: claims.sub,
            email: claims.email,
            email_verified: claims.email_verified,
            name: claims.name,
            picture: claims.picture,
            tokens: sealed,
        };
        match self
            .sign_in_identity(registry, provider, identity, client)
            .await
        {
            Ok((signed, _)) => Ok(signed),
            Err(failure) => {
                if failure != Failure::UserBanned {
                    self.record(
                        AuditEvent::failure(AuditKind::SocialSignIn).detail(serde_json::json!({
                            "provider": provider_id,
                            "reason": failure.reason(),
                        })),
                        client,
                    )
                    .await;
                }
                Err(match failure {
                    Failure::UserBanned => Error::UserBanned,
                    Failure::EmailNotVerified => Error::EmailNotVerified,
                    Failure::EmailNotFound | Failure::AccountNotLinked => Error::InvalidIdToken,
                    Failure::AccountAlreadyLinked => Error::InvalidIdToken,
                    _ => Error::internal(anyhow::anyhow!("idToken sign-in failed")),
                })
            }
        }
    }
}

/// Associated data of a sealed provider token: its provider, subject and column.
fn token_aad(provider: &str, sub: &str, column: &str) -> String {
    format!("{provider}\u{0}{sub}\u{0}{column}")
}

/// A provider's access token for its user, as `accountAccessToken` answers it.
#[derive(Debug)]
pub struct ProviderAccessToken {
    pub access_token: String,
    pub expires_at: Option<NaiveDateTime>,
    pub scopes: Vec<String>,
    pub id_token: Option<String>,
}

/// An access token this close to its expiry is refreshed first.
const REFRESH_MARGIN: Duration = Duration::from_secs(5);

impl Social<'_> {
    /// Removes one of the viewer's accounts (`accountId`: which, when they have several with
    /// the provider), unless it is their last way to sign in.
    pub async fn unlink(
        &self,
        viewer: &super::Viewer,
        provider_id: &str,
        account_id: Option<&str>,
        client: &ClientInfo,
    ) -> Result<()> {
        let removed = accounts::delete_unless_last(
            &mut self.conn().await?,
            &viewer.user.id,
            provider_id,
            account_id,
        )
        .await?;
        match removed {
            None => Err(Error::NotFound),
            Some(false) => Err(Error::FailedToUnlinkLastAccount),
            Some(true) => {
                self.record(
                    AuditEvent::by_self(AuditKind::AccountUnlink, &viewer.user.id)
                        .detail(serde_json::json!({ "provider": provider_id })),
                    client,
                )
                .await;
                Ok(())
            }
        }
    }

    /// The provider's access token for one of the viewer's accounts, refreshed with the
    /// refresh token first when it has expired (or is about to).
    pub async fn access_token(
        &self,
        viewer: &super::Viewer,
        provider_id: &str,
        account_id: Option<&str>,
    ) -> Result<ProviderAccessToken> {
        let registry = self.registry().map_err(|_| Error::NotFound)?;
        let found = accounts::provider_tokens(
            &mut self.conn().await?,
            &viewer.user.id,
            provider_id,
            account_id,
        )
        .await?;
        let Some((account, stored)) = found else {
            return Err(Error::NotFound);
        };
        let open = |value: &Option<String>, column: &str| -> Option<String> {
            let sealed = value.as_deref()?;
            let aad = token_aad(provider_id, &account.account_id, column);
            let plain = registry.token_sealer.open(sealed, aad.as_bytes());
            if plain.is_none() {
                tracing::error!(provider = %provider_id, column, "a provider token cannot be unsealed (was APEXKIT_SECRET changed?)");
            }
            String::from_utf8(plain?).ok()
        };
        let now = now();
        let expired = stored
            .access_token_expires_at
            .is_some_and(|at| at <= add(now, REFRESH_MARGIN));
        let current = open(&stored.access_token, "access_token");
        let (tokens, access) = match (current, expired) {
            (Some(access), false) => (stored, access),
            (current, _) => {
                let refresh = open(&stored.refresh_token, "refresh_token");
                let provider = registry.get(provider_id);
                let (Some(refresh), Some(provider)) = (refresh, provider) else {
                    return match current {
                        Some(_) => Err(Error::TokenExpired),
                        None => Err(Error::NotFound),
                    };
                };
                let fresh = provider.refresh(&refresh).await.map_err(|e| {
                    tracing::warn!(provider = %provider_id, error = %e, "provider token refresh failed");
                    Error::TokenExpired
                })?;
                let mut sealed = self
                    .seal_tokens(registry, provider, &account.account_id, &fresh, now)
                    .map_err(Error::internal)?;
                // A provider that does not rotate them keeps the old refresh and id tokens.
                sealed.refresh_token = sealed.refresh_token.or(stored.refresh_token);
                sealed.id_token = sealed.id_token.or(stored.id_token);
                sealed.scope = sealed.scope.or(stored.scope);
                accounts::update_tokens(&mut self.conn().await?, &account.id, &sealed, now).await?;
                (sealed, fresh.access_token)
            }
        };
        Ok(ProviderAccessToken {
            access_token: access,
            expires_at: tokens.access_token_expires_at,
            scopes: tokens
                .scope
                .as_deref()
                .unwrap_or_default()
                .split([' ', ','])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            id_token: open(&tokens.id_token, "id_token"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Failure::{self, *};

    /// Every failure lands on one of the contract's seven `?error=` values (the finer reason
    /// stays in the audit trail and the metric).
    #[test]
    fn callback_errors_are_the_contracts() {
        let all: [(Failure, &str, &str); 11] = [
            (StateMismatch, "state_mismatch", "state_mismatch"),
            (AccessDenied, "access_denied", "access_denied"),
            (InvalidCode, "invalid_code", "invalid_code"),
            (EmailNotFound, "email_not_found", "email_not_found"),
            (AccountNotLinked, "account_not_linked", "account_not_linked"),
            (
                AccountAlreadyLinked,
                "account_already_linked",
                "account_already_linked",
            ),
            (ProviderNotFound, "provider_not_found", "provider_not_found"),
            (UserBanned, "access_denied", "banned"),
            (EmailNotVerified, "access_denied", "email_not_verified"),
            (EmailMismatch, "account_not_linked", "email_mismatch"),
            (ServerError, "invalid_code", "server_error"),
        ];
        for (failure, error, reason) in all {
            assert_eq!(failure.as_str(), error, "{failure:?}");
            assert_eq!(failure.reason(), reason, "{failure:?}");
        }
    }
}
