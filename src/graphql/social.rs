//! Social sign-in: `socialProviders`, `signInSocial` (the redirect flow, or a native app's
//! `idToken`).

use async_graphql::{Context, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::types::utc;
use super::types::{AuthPayload, Session, User};
use super::{CookiePolicy, domain, require_viewer, state};
use crate::auth::social::{STATE_COOKIE, STATE_LIFETIME, Start, Started};
use crate::observability::record_social_sign_in;

/// The cookie binding a flow to the browser that started it (see `auth::social`): HttpOnly,
/// the flow's 10 minutes, for the callback path only. Over https `SameSite=None; Secure`, so a
/// provider's `form_post` (a cross-site POST) carries it; over plain http `Lax` (browsers
/// refuse `None` without `Secure`).
pub fn binding_cookie(policy: &CookiePolicy, value: &str, max_age: i64) -> String {
    let same_site = if policy.secure { "None; Secure" } else { "Lax" };
    format!(
        "{STATE_COOKIE}={value}; Path=/callback; HttpOnly; SameSite={same_site}; Max-Age={max_age}"
    )
}

/// A configured provider, for rendering buttons.
#[derive(SimpleObject)]
pub struct SocialProvider {
    pub id: String,
    pub name: String,
}

/// The result of `signInSocial`: a URL to send the browser to (`redirect: true`), or, for an
/// `idToken`, the new session (`redirect: false`).
#[derive(SimpleObject)]
pub struct SocialSignInPayload {
    pub url: Option<String>,
    pub redirect: bool,
    pub token: Option<String>,
    pub user: Option<User>,
    pub session: Option<Session>,
    pub access_token: Option<String>,
    pub access_token_expires_at: Option<DateTime<Utc>>,
    /// True when the user has two-factor on: no session yet; finish with `verifyTotp`,
    /// `verifyBackupCode` or `verifyTwoFactorOtp` and `twoFactorToken`.
    pub two_factor_required: bool,
    pub two_factor_token: Option<String>,
}

/// An ID token a native app obtained from the provider's SDK.
#[derive(InputObject)]
pub struct SocialIdTokenInput {
    pub token: String,
    /// Compared with the token's `nonce` claim as is.
    pub nonce: Option<String>,
    /// Kept with the account, for `accountAccessToken`.
    pub access_token: Option<String>,
}

#[derive(InputObject)]
pub struct SignInSocialInput {
    /// A configured provider id (see `socialProviders`).
    pub provider: String,
    /// Where the browser lands once signed in (a path, or a URL on a trusted origin).
    #[graphql(name = "callbackURL")]
    pub callback_url: Option<String>,
    /// Where it lands on failure, with `?error=`; default the service's `/error` page.
    #[graphql(name = "errorCallbackURL")]
    pub error_callback_url: Option<String>,
    /// Where a new user lands; default `callbackURL`.
    #[graphql(name = "newUserCallbackURL")]
    pub new_user_callback_url: Option<String>,
    /// Scopes requested besides the provider's configured ones.
    pub scopes: Option<Vec<String>>,
    pub login_hint: Option<String>,
    /// Sign in directly with an ID token (native apps) instead of a redirect.
    pub id_token: Option<SocialIdTokenInput>,
}

#[derive(Default)]
pub struct SocialQuery;

#[Object]
impl SocialQuery {
    /// The configured social sign-in providers.
    async fn social_providers(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<SocialProvider>> {
        Ok(domain(ctx)?
            .social()
            .providers()
            .into_iter()
            .map(|p| SocialProvider {
                id: p.id,
                name: p.name,
            })
            .collect())
    }
}

#[derive(Default)]
pub struct SocialMutation;

#[Object]
impl SocialMutation {
    /// Starts a sign-in with a provider: `url` is where to send the browser (`redirect:
    /// true`); the provider sends it back to `/callback/{provider}`, which sets the session
    /// cookie and redirects to `callbackURL`. With `idToken` (native apps): signs in directly.
    async fn sign_in_social(
        &self,
        ctx: &Context<'_>,
        input: SignInSocialInput,
    ) -> async_graphql::Result<SocialSignInPayload> {
        let auth = domain(ctx)?;
        let state = state(ctx)?;
        if let Some(id_token) = input.id_token {
            let signed = auth
                .social()
                .sign_in_id_token(
                    &input.provider,
                    &id_token.token,
                    id_token.nonce.as_deref(),
                    id_token.access_token.as_deref(),
                    &state.client,
                )
                .await;
            let known = auth
                .social()
                .providers()
                .iter()
                .any(|p| p.id == input.provider);
            record_social_sign_in(
                if known { &input.provider } else { "unknown" },
                match &signed {
                    Ok(_) => "success",
                    Err(e) => e.code().as_str(),
                },
            );
            let signed = signed?;
            let payload = super::auth::outcome(ctx, signed, true)?;
            return Ok(from_signed_in(payload));
        }
        let started = auth
            .social()
            .start(Start {
                provider: &input.provider,
                callback_url: input.callback_url.as_deref(),
                error_callback_url: input.error_callback_url.as_deref(),
                new_user_callback_url: input.new_user_callback_url.as_deref(),
                scopes: input.scopes.as_deref().unwrap_or_default(),
                login_hint: input.login_hint.as_deref(),
                link_user: None,
            })
            .await?;
        Ok(redirect_to(ctx, started)?)
    }

    /// Links another provider account to the signed-in user, through the same redirect flow
    /// (`url` to send the browser to); the callback redirects to `callbackURL` without opening
    /// a new session. An identity linked to another user → `?error=account_already_linked`.
    async fn link_social(
        &self,
        ctx: &Context<'_>,
        input: LinkSocialInput,
    ) -> async_graphql::Result<SocialSignInPayload> {
        let viewer = require_viewer(ctx).await?;
        let started = domain(ctx)?
            .social()
            .start(Start {
                provider: &input.provider,
                callback_url: input.callback_url.as_deref(),
                error_callback_url: input.error_callback_url.as_deref(),
                new_user_callback_url: None,
                scopes: input.scopes.as_deref().unwrap_or_default(),
                login_hint: None,
                link_user: Some(&viewer.user.id),
            })
            .await?;
        Ok(redirect_to(ctx, started)?)
    }

    /// Removes one of the caller's accounts; refused for the last way to sign in
    /// (`FAILED_TO_UNLINK_LAST_ACCOUNT`); another user's or a missing one → `NOT_FOUND`.
    async fn unlink_account(
        &self,
        ctx: &Context<'_>,
        input: UnlinkAccountInput,
    ) -> async_graphql::Result<bool> {
        let viewer = require_viewer(ctx).await?;
        domain(ctx)?
            .social()
            .unlink(
                &viewer,
                &input.provider_id,
                input.account_id.as_deref(),
                &state(ctx)?.client,
            )
            .await?;
        Ok(true)
    }

    /// The provider's access token for one of the caller's accounts, refreshed first when it
    /// has expired. Another user's or a missing account → `NOT_FOUND`.
    async fn account_access_token(
        &self,
        ctx: &Context<'_>,
        input: AccountAccessTokenInput,
    ) -> async_graphql::Result<ProviderAccessToken> {
        let viewer = require_viewer(ctx).await?;
        let token = domain(ctx)?
            .social()
            .access_token(&viewer, &input.provider_id, input.account_id.as_deref())
            .await?;
        Ok(ProviderAccessToken {
            access_token: token.access_token,
            access_token_expires_at: token.expires_at.map(utc),
            scopes: token.scopes,
            id_token: token.id_token,
        })
    }
}

/// Sets the browser-binding cookie of a started flow and answers with its URL.
fn redirect_to(ctx: &Context<'_>, started: Started) -> crate::error::Result<SocialSignInPayload> {
    ctx.append_http_header(
        "set-cookie",
        binding_cookie(
            &state(ctx)?.cookie,
            &started.browser_binding,
            STATE_LIFETIME.as_secs() as i64,
        ),
    );
    Ok(SocialSignInPayload {
        url: Some(started.url),
        redirect: true,
        token: None,
        user: None,
        session: None,
        access_token: None,
        access_token_expires_at: None,
        two_factor_required: false,
        two_factor_token: None,
    })
}

#[derive(InputObject)]
pub struct LinkSocialInput {
    pub provider: String,
    #[graphql(name = "callbackURL")]
    pub callback_url: Option<String>,
    #[graphql(name = "errorCallbackURL")]
    pub error_callback_url: Option<String>,
    pub scopes: Option<Vec<String>>,
}

#[derive(InputObject)]
pub struct UnlinkAccountInput {
    pub provider_id: String,
    /// Which account, when the caller has several with the provider.
    pub account_id: Option<String>,
}

#[derive(InputObject)]
pub struct AccountAccessTokenInput {
    pub provider_id: String,
    pub account_id: Option<String>,
}

/// A provider's tokens for the caller's account: the only place they are ever returned.
#[derive(SimpleObject)]
pub struct ProviderAccessToken {
    pub access_token: String,
    pub access_token_expires_at: Option<DateTime<Utc>>,
    pub scopes: Vec<String>,
    pub id_token: Option<String>,
}

fn from_signed_in(p: AuthPayload) -> SocialSignInPayload {
    SocialSignInPayload {
        url: None,
        redirect: false,
        token: p.token,
        user: Some(p.user),
        session: p.session,
        access_token: p.access_token,
        access_token_expires_at: p.access_token_expires_at,
        two_factor_required: p.two_factor_required,
        two_factor_token: p.two_factor_token,
    }
}
