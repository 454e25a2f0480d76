//! Resolvers for sign-up, sign-in, sign-out and the current session.

use async_graphql::{Context, InputObject, Object};

use super::TWO_FACTOR_COOKIE;
use super::types::{Account, AuthPayload, SessionWithUser, User};
use super::{domain, require_viewer, state, viewer};
use crate::auth::sign_in::Registered;
use crate::auth::sign_in::{SignIn, SignUp};
use crate::auth::two_factor::CHALLENGE_LIFETIME;
use crate::auth::{SignInOutcome, SignedIn};

#[derive(InputObject)]
pub struct SignUpEmailInput {
    pub name: String,
    pub email: String,
    pub password: String,
    pub image: Option<String>,
    /// Default true; false gives a one-day session and a browser-session cookie.
    pub remember_me: Option<bool>,
}

#[derive(InputObject)]
pub struct SignInEmailInput {
    pub email: String,
    pub password: String,
    /// Default true; false gives a one-day session and a browser-session cookie.
    pub remember_me: Option<bool>,
}

#[derive(Default)]
pub struct SessionQuery;

#[Object]
impl SessionQuery {
    /// The current session and its user; null when not signed in.
    async fn session(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<SessionWithUser>> {
        Ok(viewer(ctx).await?.map(SessionWithUser::from))
    }

    /// The signed-in user; null when not signed in.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        Ok(viewer(ctx).await?.map(|v| User(v.user)))
    }

    /// The signed-in user's linked accounts (`credential` for email and password).
    async fn accounts(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Account>> {
        let viewer = require_viewer(ctx).await?;
        let accounts = domain(ctx)?.account().accounts(&viewer).await?;
        Ok(accounts.into_iter().map(Account).collect())
    }
}

#[derive(Default)]
pub struct SessionMutation;

/// Sets the session cookie for a new session and turns it into the payload.
pub(super) fn signed_in(
    ctx: &Context<'_>,
    signed: SignedIn,
    remember_me: bool,
) -> async_graphql::Result<AuthPayload> {
    let state = state(ctx)?;
    let max_age =
        remember_me.then(|| (signed.session.expires_at - signed.session.created_at).num_seconds());
    ctx.append_http_header(
        "set-cookie",
        state.cookie.set(signed.token.expose(), max_age),
    );
    Ok(AuthPayload::from(signed))
}

/// A sign-in's end as the client sees it: the session (cookie set), or the second step (no
/// session; the `twoFactorToken`, also as the `apexkit.two_factor` cookie).
pub(super) fn outcome(
    ctx: &Context<'_>,
    outcome: SignInOutcome,
    remember_me: bool,
) -> async_graphql::Result<AuthPayload> {
    match outcome {
        SignInOutcome::SignedIn(signed) => signed_in(ctx, signed, remember_me),
        SignInOutcome::SecondFactor(pending) => {
            let state = state(ctx)?;
            let max_age = i64::try_from(CHALLENGE_LIFETIME.as_secs()).unwrap_or(300);
            ctx.append_http_header(
                "set-cookie",
                state
                    .cookie
                    .set_named(TWO_FACTOR_COOKIE, pending.token.expose(), Some(max_age)),
            );
            let mut payload = AuthPayload::user_only(pending.user);
            payload.two_factor_required = true;
            payload.two_factor_token = Some(pending.token.expose().to_owned());
            Ok(payload)
        }
    }
}

#[Object]
impl SessionMutation {
    /// Creates a user with an email and password, their credential account and a session.
    /// When email verification is required: no session (`token` and `session` are null) and a
    /// verification link by mail; a registered address then answers exactly like a new one.
    async fn sign_up_email(
        &self,
        ctx: &Context<'_>,
        input: SignUpEmailInput,
    ) -> async_graphql::Result<AuthPayload> {
        let remember_me = input.remember_me.unwrap_or(true);
        let registered = domain(ctx)?
            .passwords()
            .sign_up(
                SignUp {
                    name: &input.name,
                    email: &input.email,
                    password: &input.password,
                    image: input.image.as_deref(),
                    remember_me,
                },
                &state(ctx)?.client,
            )
            .await?;
        match registered {
            Registered::SignedIn(signed) => signed_in(ctx, signed, remember_me),
            Registered::PendingVerification(user) => Ok(AuthPayload::user_only(user)),
        }
    }

    /// Opens a new session (never reusing a token the client sent).
    async fn sign_in_email(
        &self,
        ctx: &Context<'_>,
        input: SignInEmailInput,
    ) -> async_graphql::Result<AuthPayload> {
        let remember_me = input.remember_me.unwrap_or(true);
        let signed = domain(ctx)?
            .passwords()
            .sign_in(
                SignIn {
                    email: &input.email,
                    password: &input.password,
                    remember_me,
                },
                &state(ctx)?.client,
            )
            .await?;
        outcome(ctx, signed, remember_me)
    }

    /// Ends the current session and clears the cookie.
    async fn sign_out(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        let viewer = require_viewer(ctx).await?;
        domain(ctx)?
            .sessions()
            .sign_out(&viewer, &state(ctx)?.client)
            .await?;
        ctx.append_http_header("set-cookie", state(ctx)?.cookie.clear());
        Ok(true)
    }
}
