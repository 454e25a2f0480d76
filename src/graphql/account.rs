//! Resolvers for account management and the mail flows: profile, password, email address,
//! deletion, verification and password reset.

use async_graphql::{Context, InputObject, MaybeUndefined, Object};

use super::auth::signed_in;
use super::types::{AuthPayload, Session, User};
use super::{domain, require_viewer, state};

#[derive(InputObject)]
pub struct UpdateUserInput {
    pub name: Option<String>,
    /// An http(s) URL; null removes the image.
    pub image: MaybeUndefined<String>,
}

#[derive(InputObject)]
pub struct ChangePasswordInput {
    pub current_password: String,
    pub new_password: String,
    /// End every other session and replace the current one (new token). Default false.
    pub revoke_other_sessions: Option<bool>,
}

#[derive(InputObject)]
pub struct DeleteUserInput {
    pub password: String,
}

#[derive(InputObject)]
pub struct ChangeEmailInput {
    pub new_email: String,
    /// Where the confirmation link points (a relative path or a trusted origin); default: the
    /// service's own /verify-email page.
    #[graphql(name = "callbackURL")]
    pub callback_url: Option<String>,
    /// The current password: required when the account has one (missing: `BAD_USER_INPUT` on
    /// `password`; wrong: `INVALID_PASSWORD`, counted toward the account's failed-attempt
    /// delay). An account without a password needs a sign-in within the last 5 minutes instead.
    pub password: Option<String>,
}

#[derive(InputObject)]
pub struct SendVerificationEmailInput {
    pub email: String,
    /// Where the verification link points (a relative path or a trusted origin); default: the
    /// service's own /verify-email page.
    #[graphql(name = "callbackURL")]
    pub callback_url: Option<String>,
}

#[derive(InputObject)]
pub struct RequestPasswordResetInput {
    pub email: String,
    /// Where the reset link points (a relative path or a trusted origin); default: the
    /// service's own /reset-password page.
    pub redirect_to: Option<String>,
}

#[derive(InputObject)]
pub struct ResetPasswordInput {
    pub token: String,
    pub new_password: String,
}

#[derive(Default)]
pub struct AccountMutation;

#[Object]
impl AccountMutation {
    /// Changes the signed-in user's name and/or image (email, role and verification are not
    /// settable here).
    async fn update_user(
        &self,
        ctx: &Context<'_>,
        input: UpdateUserInput,
    ) -> async_graphql::Result<User> {
        let viewer = require_viewer(ctx).await?;
        let image = match &input.image {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(v) => Some(Some(v.as_str())),
        };
        let user = domain(ctx)?
            .account()
            .update_user(&viewer, input.name.as_deref(), image)
            .await?;
        Ok(User(user))
    }

    /// Changes the password (the current one is required). With `revokeOtherSessions: true`,
    /// every other session ends and the current one is replaced: the answer carries the new
    /// `token` (also set as the cookie). Otherwise `token` is null and the session stays.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        input: ChangePasswordInput,
    ) -> async_graphql::Result<AuthPayload> {
        let viewer = require_viewer(ctx).await?;
        let changed = domain(ctx)?
            .account()
            .change_password(
                &viewer,
                &input.current_password,
                &input.new_password,
                input.revoke_other_sessions.unwrap_or(false),
                &state(ctx)?.client,
            )
            .await?;
        match changed.replacement {
            Some(signed) => signed_in(ctx, signed, changed.remember_me),
            None => Ok(AuthPayload {
                token: None,
                user: User(changed.user),
                session: Some(Session {
                    inner: changed.current,
                    current: true,
                }),
                access_token: None,
                access_token_expires_at: None,
                two_factor_required: false,
                two_factor_token: None,
            }),
        }
    }

    /// Deletes the signed-in user (password required) with their sessions, accounts and
    /// pending tokens, and clears the cookie.
    async fn delete_user(
        &self,
        ctx: &Context<'_>,
        input: DeleteUserInput,
    ) -> async_graphql::Result<bool> {
        let viewer = require_viewer(ctx).await?;
        domain(ctx)?
            .account()
            .delete_user(&viewer, &input.password, &state(ctx)?.client)
            .await?;
        ctx.append_http_header("set-cookie", state(ctx)?.cookie.clear());
        Ok(true)
    }

    /// Starts an email change: the new address gets a confirmation link and replaces the old
    /// one only once it is confirmed (`verifyEmail`); the current address is told. Needs the
    /// current `password` (or, for an account without one, a sign-in within the last 5
    /// minutes) and a session signed in recently. Answers `true` whether or not the address is
    /// taken.
    async fn change_email(
        &self,
        ctx: &Context<'_>,
        input: ChangeEmailInput,
    ) -> async_graphql::Result<bool> {
        let viewer = require_viewer(ctx).await?;
        let change = crate::auth::account::EmailChange {
            new_email: &input.new_email,
            callback_url: input.callback_url.as_deref(),
            password: input.password.as_deref(),
        };
        domain(ctx)?
            .account()
            .change_email(&viewer, change, &state(ctx)?.client)
            .await?;
        Ok(true)
    }

    /// Mails a verification link if the address belongs to an unverified user. Always `true`.
    async fn send_verification_email(
        &self,
        ctx: &Context<'_>,
        input: SendVerificationEmailInput,
    ) -> async_graphql::Result<bool> {
        domain(ctx)?
            .mail_flows()
            .send_verification_email(&input.email, input.callback_url.as_deref())
            .await?;
        Ok(true)
    }

    /// Confirms an address with the token from a verification or email-change link.
    /// Single use; `INVALID_TOKEN` or `TOKEN_EXPIRED` otherwise.
    async fn verify_email(&self, ctx: &Context<'_>, token: String) -> async_graphql::Result<User> {
        Ok(User(domain(ctx)?.mail_flows().verify_email(&token).await?))
    }

    /// Mails a password-reset link. Always `true`, and as fast, whether or not the address
    /// has an account.
    async fn request_password_reset(
        &self,
        ctx: &Context<'_>,
        input: RequestPasswordResetInput,
    ) -> async_graphql::Result<bool> {
        domain(ctx)?
            .mail_flows()
            .request_password_reset(&input.email, input.redirect_to.as_deref())
            .await?;
        Ok(true)
    }

    /// Sets a new password with the token from a reset link and ends every session of the
    /// user. Single use, expiring; a newer reset request voids older links.
    async fn reset_password(
        &self,
        ctx: &Context<'_>,
        input: ResetPasswordInput,
    ) -> async_graphql::Result<bool> {
        domain(ctx)?
            .mail_flows()
            .reset_password(&input.token, &input.new_password, &state(ctx)?.client)
            .await?;
        Ok(true)
    }
}
