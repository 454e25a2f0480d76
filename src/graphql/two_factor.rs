//! Two-factor authentication (`enableTwoFactor`, the second step of sign-in, backup codes,
//! `adminDisableTwoFactor`) and passwordless sign-in (magic links, emailed codes).

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};

use super::auth::{outcome, signed_in};
use super::types::{AuthPayload, Session, User};
use super::{
    TRUSTED_DEVICE_COOKIE, TWO_FACTOR_COOKIE, domain, require_admin, require_viewer, state, viewer,
};
use crate::auth::passwordless::MagicLinkRequest;
use crate::auth::two_factor::{Completed, TRUSTED_DEVICE_LIFETIME, TotpVerified};
use crate::error::Error;

#[derive(InputObject)]
pub struct EnableTwoFactorInput {
    pub password: String,
}

/// The enrolment, shown once.
#[derive(SimpleObject)]
pub struct TwoFactorSetup {
    /// The `otpauth://totp/…` URI for an authenticator app (SHA-1, 6 digits, 30 s).
    #[graphql(name = "totpURI")]
    pub totp_uri: String,
    /// Ten single-use backup codes; only their hashes are kept.
    pub backup_codes: Vec<String>,
    /// The URI as a QR code, an SVG document (no QR library needed in the frontend).
    pub qr_code_svg: String,
}

#[derive(InputObject)]
pub struct VerifyTotpInput {
    pub code: String,
    /// The sign-in's second-step token; absent: the `apexkit.two_factor` cookie, or (signed
    /// in) the enrolment.
    pub two_factor_token: Option<String>,
    /// Skip the second factor on this browser for 30 days (`apexkit.trusted_device` cookie).
    pub trust_device: Option<bool>,
}

#[derive(InputObject)]
pub struct VerifyBackupCodeInput {
    pub code: String,
    /// Absent: the `apexkit.two_factor` cookie.
    pub two_factor_token: Option<String>,
    pub trust_device: Option<bool>,
}

#[derive(InputObject)]
pub struct VerifyTwoFactorOtpInput {
    pub code: String,
    /// Absent: the `apexkit.two_factor` cookie.
    pub two_factor_token: Option<String>,
    pub trust_device: Option<bool>,
}

#[derive(InputObject)]
pub struct GenerateBackupCodesInput {
    pub password: String,
    /// A current TOTP code or an unused backup code.
    pub code: String,
}

#[derive(InputObject)]
pub struct DisableTwoFactorInput {
    pub password: String,
    /// A current TOTP code or an unused backup code.
    pub code: String,
}

#[derive(InputObject)]
pub struct SignInMagicLinkInput {
    pub email: String,
    /// The new user's name (sign-up through the link).
    pub name: Option<String>,
    /// Where the browser lands once signed in (a path, or a URL on a trusted origin).
    #[graphql(name = "callbackURL")]
    pub callback_url: Option<String>,
    #[graphql(name = "newUserCallbackURL")]
    pub new_user_callback_url: Option<String>,
    #[graphql(name = "errorCallbackURL")]
    pub error_callback_url: Option<String>,
}

#[derive(InputObject)]
pub struct SendSignInOtpInput {
    pub email: String,
}

#[derive(InputObject)]
pub struct SignInEmailOtpInput {
    pub email: String,
    pub otp: String,
}

/// The second step's token: the argument, else the browser's cookie.
fn second_step_token(ctx: &Context<'_>, given: Option<String>) -> async_graphql::Result<String> {
    given
        .filter(|t| !t.is_empty())
        .or_else(|| state(ctx).ok().and_then(|s| s.two_factor_token.clone()))
        .ok_or_else(|| Error::InvalidToken.into())
}

/// A finished second step: the session cookie, the second step's cookie cleared, and the
/// trusted-device cookie when asked for.
fn completed(ctx: &Context<'_>, done: Completed) -> async_graphql::Result<AuthPayload> {
    let state = state(ctx)?;
    ctx.append_http_header(
        "set-cookie",
        state.cookie.set_named(TWO_FACTOR_COOKIE, "", Some(0)),
    );
    if let Some(device) = &done.trusted_device {
        let max_age = i64::try_from(TRUSTED_DEVICE_LIFETIME.as_secs()).unwrap_or(i64::MAX);
        ctx.append_http_header(
            "set-cookie",
            state
                .cookie
                .set_named(TRUSTED_DEVICE_COOKIE, device.expose(), Some(max_age)),
        );
    }
    signed_in(ctx, done.signed, done.remember_me)
}

#[derive(Default)]
pub struct TwoFactorMutation;

#[Object]
impl TwoFactorMutation {
    /// Starts a TOTP enrolment after the password: the `otpauth://` URI (and its QR code) and
    /// ten backup codes, shown once. Two-factor is on only after the first correct
    /// `verifyTotp`.
    async fn enable_two_factor(
        &self,
        ctx: &Context<'_>,
        input: EnableTwoFactorInput,
    ) -> async_graphql::Result<TwoFactorSetup> {
        let viewer = require_viewer(ctx).await?;
        let setup = domain(ctx)?
            .two_factor()
            .enable(&viewer, &input.password, &state(ctx)?.client)
            .await?;
        Ok(TwoFactorSetup {
            totp_uri: setup.totp_uri,
            backup_codes: setup.backup_codes,
            qr_code_svg: setup.qr_code_svg,
        })
    }

    /// A TOTP code: with a `twoFactorToken` (argument or cookie), finishes a sign-in; signed in
    /// without one, confirms the enrolment (the session stays: `token` null, `user` set).
    async fn verify_totp(
        &self,
        ctx: &Context<'_>,
        input: VerifyTotpInput,
    ) -> async_graphql::Result<AuthPayload> {
        let state = state(ctx)?;
        let viewer = match input.two_factor_token {
            Some(_) => None,
            None => viewer(ctx).await?,
        };
        let token = match (&input.two_factor_token, &viewer) {
            (Some(t), _) => Some(t.clone()),
            (None, Some(_)) => None,
            (None, None) => Some(second_step_token(ctx, None)?),
        };
        let verified = domain(ctx)?
            .two_factor()
            .verify_totp(
                &input.code,
                token.as_deref(),
                viewer.as_ref(),
                input.trust_device.unwrap_or(false),
                &state.client,
            )
            .await?;
        match verified {
            TotpVerified::SignedIn(done) => completed(ctx, done),
            TotpVerified::Enrolled { user, session } => {
                let mut payload = AuthPayload::user_only(user);
                payload.session = Some(Session {
                    inner: session,
                    current: true,
                });
                Ok(payload)
            }
        }
    }

    /// Finishes a sign-in with a backup code (each works once).
    async fn verify_backup_code(
        &self,
        ctx: &Context<'_>,
        input: VerifyBackupCodeInput,
    ) -> async_graphql::Result<AuthPayload> {
        let token = second_step_token(ctx, input.two_factor_token)?;
        let done = domain(ctx)?
            .two_factor()
            .verify_backup_code(
                &input.code,
                &token,
                input.trust_device.unwrap_or(false),
                &state(ctx)?.client,
            )
            .await?;
        completed(ctx, done)
    }

    /// Mails a 6-digit code as the second factor (only with `APEXKIT_TWO_FACTOR_EMAIL=true`;
    /// otherwise `TWO_FACTOR_NOT_ENABLED`).
    async fn send_two_factor_otp(
        &self,
        ctx: &Context<'_>,
        two_factor_token: Option<String>,
    ) -> async_graphql::Result<bool> {
        let token = second_step_token(ctx, two_factor_token)?;
        domain(ctx)?.two_factor().send_otp(&token).await?;
        Ok(true)
    }

    /// Finishes a sign-in with the mailed code (only with `APEXKIT_TWO_FACTOR_EMAIL=true`).
    async fn verify_two_factor_otp(
        &self,
        ctx: &Context<'_>,
        input: VerifyTwoFactorOtpInput,
    ) -> async_graphql::Result<AuthPayload> {
        let token = second_step_token(ctx, input.two_factor_token)?;
        let done = domain(ctx)?
            .two_factor()
            .verify_otp(
                &input.code,
                &token,
                input.trust_device.unwrap_or(false),
                &state(ctx)?.client,
            )
            .await?;
        completed(ctx, done)
    }

    /// Ten new backup codes (the old ones are void); needs the password and a current code.
    async fn generate_backup_codes(
        &self,
        ctx: &Context<'_>,
        input: GenerateBackupCodesInput,
    ) -> async_graphql::Result<Vec<String>> {
        let viewer = require_viewer(ctx).await?;
        Ok(domain(ctx)?
            .two_factor()
            .generate_backup_codes(&viewer, &input.password, &input.code, &state(ctx)?.client)
            .await?)
    }

    /// Turns two-factor off (and forgets trusted browsers); needs the password and a code.
    async fn disable_two_factor(
        &self,
        ctx: &Context<'_>,
        input: DisableTwoFactorInput,
    ) -> async_graphql::Result<bool> {
        let viewer = require_viewer(ctx).await?;
        let state = state(ctx)?;
        domain(ctx)?
            .two_factor()
            .disable(&viewer, &input.password, &input.code, &state.client)
            .await?;
        ctx.append_http_header(
            "set-cookie",
            state.cookie.set_named(TRUSTED_DEVICE_COOKIE, "", Some(0)),
        );
        Ok(true)
    }

    /// Admin: turns a user's two-factor off (lost authenticator and backup codes), audited.
    async fn admin_disable_two_factor(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
    ) -> async_graphql::Result<User> {
        let admin = require_admin(ctx).await?;
        let user = domain(ctx)?
            .two_factor()
            .admin_disable(&admin, &user_id, &state(ctx)?.client)
            .await?;
        Ok(User(user))
    }
}

#[derive(Default)]
pub struct PasswordlessMutation;

#[Object]
impl PasswordlessMutation {
    /// Mails a sign-in link (single use, 5 minutes) landing on `/magic-link`. Always `true`:
    /// the answer never says whether the address has an account.
    async fn sign_in_magic_link(
        &self,
        ctx: &Context<'_>,
        input: SignInMagicLinkInput,
    ) -> async_graphql::Result<bool> {
        domain(ctx)?
            .passwordless()
            .send_magic_link(MagicLinkRequest {
                email: &input.email,
                name: input.name.as_deref(),
                callback_url: input.callback_url.as_deref(),
                new_user_callback_url: input.new_user_callback_url.as_deref(),
                error_callback_url: input.error_callback_url.as_deref(),
            })
            .await?;
        Ok(true)
    }

    /// Spends a magic link's token (for apps that handle the link themselves).
    async fn verify_magic_link(
        &self,
        ctx: &Context<'_>,
        token: String,
    ) -> async_graphql::Result<AuthPayload> {
        let signed = domain(ctx)?
            .passwordless()
            .verify_magic_link(&token, &state(ctx)?.client)
            .await
            .map_err(|dead| dead.error)?;
        outcome(ctx, signed.outcome, true)
    }

    /// Mails a 6-digit sign-in code (5 minutes, 3 attempts; a new one voids the old). Always
    /// `true`.
    async fn send_sign_in_otp(
        &self,
        ctx: &Context<'_>,
        input: SendSignInOtpInput,
    ) -> async_graphql::Result<bool> {
        domain(ctx)?
            .passwordless()
            .send_sign_in_otp(&input.email)
            .await?;
        Ok(true)
    }

    /// Signs in (or up) with the mailed code; wrong or dead → `INVALID_CODE`.
    async fn sign_in_email_otp(
        &self,
        ctx: &Context<'_>,
        input: SignInEmailOtpInput,
    ) -> async_graphql::Result<AuthPayload> {
        let signed = domain(ctx)?
            .passwordless()
            .sign_in_email_otp(&input.email, &input.otp, &state(ctx)?.client)
            .await?;
        outcome(ctx, signed, true)
    }
}
