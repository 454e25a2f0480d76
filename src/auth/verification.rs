//! One-time tokens and the flows that mail them: email verification (and sign-up when it is
//! required), password reset. A token is 256 bits from the OS CSPRNG, stored only as its
//! SHA-256, bound to one user and one purpose, expiring; it is written in the same transaction
//! as the mail that carries it, and consumed atomically by the operation that uses it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::audit::{AuditEvent, AuditKind};
use super::context::service;
use super::origin::TrustedOrigins;
use super::{CREDENTIAL_PROVIDER, ClientInfo, SessionToken, User, email, links, now, token};
use crate::clock::{after as add, before as sub};
use crate::db::outbox::{self, Enqueue, NewMail};
use crate::db::verifications::{self, Consumed, NewVerification, purpose};
use crate::db::{DbError, users};
use crate::error::{Error, Result};
use crate::mail::{Outgoing, compose};

/// Where the mailed links land when the client names no target.
pub const VERIFY_EMAIL_PATH: &str = "/verify-email";
pub const RESET_PASSWORD_PATH: &str = "/reset-password";

/// Settings of the account flows that send mail.
#[derive(Debug, Clone)]
pub struct AccountFlows {
    /// `APEXKIT_BASE_URL` without a trailing slash: the only source of link hosts.
    pub base_url: String,
    pub trusted: TrustedOrigins,
    pub require_email_verification: bool,
    pub reset_expires_in: Duration,
    pub verification_expires_in: Duration,
    /// At most `send_limit` messages per address per `send_window`; beyond, mail is dropped.
    pub send_limit: u32,
    pub send_window: Duration,
    /// Sensitive changes (email) need a session at most this old.
    pub fresh_session_age: Duration,
    /// Nudges the outbox worker when mail is queued.
    pub wake: Arc<Notify>,
}

service! {
    /// The flows that mail a one-time link: verification, password reset (and the queueing the
    /// account service's email change uses).
    MailFlows
}

/// A token about to be stored with the mail that carries it.
pub(super) struct TokenRow<'a> {
    pub purpose: &'static str,
    pub user_id: &'a str,
    pub value: &'a str,
    pub lifetime: Duration,
    pub hash: String,
}

/// A token string as a client sent it: anything not shaped like ours is invalid without a lookup.
fn parse_token(raw: &str) -> Result<SessionToken> {
    SessionToken::parse(raw.trim()).ok_or(Error::InvalidToken)
}

impl MailFlows<'_> {
    /// The absolute URL a mailed link points to, before its token is added.
    pub(super) fn link_target(
        &self,
        requested: Option<&str>,
        default_path: &str,
        field: &'static str,
    ) -> Result<String> {
        let flows = self.flows()?;
        match requested {
            Some(value) => links::redirect_target(value, &flows.base_url, &flows.trusted, field),
            None => Ok(format!("{}{default_path}", flows.base_url)),
        }
    }

    /// Queues `mail` (with its token, voiding older tokens of the same user and purpose) in one
    /// transaction, unless the recipient reached the send limit: then nothing is written and
    /// the caller answers as if it had been.
    pub(super) async fn queue(&self, mail: Outgoing, token: Option<TokenRow<'_>>) -> Result<()> {
        let now = now();
        let token_id = token::new_id()?;
        let new_token = token.as_ref().map(|t| NewVerification {
            id: &token_id,
            identifier: &t.hash,
            value: t.value,
            expires_at: add(now, t.lifetime),
            created_at: now,
            updated_at: now,
            user_id: Some(t.user_id),
            purpose: t.purpose,
        });
        self.queue_row(
            mail,
            new_token,
            token.as_ref().map(|t| (t.user_id, t.purpose)),
        )
        .await
        .map(drop)
    }

    /// [`Self::queue`] with a verification row as is (possibly bound to no user yet) and the
    /// (user, purpose) whose older rows it voids. Returns whether the mail was queued (false:
    /// the recipient reached the send limit, nothing was written).
    pub(super) async fn queue_row(
        &self,
        mail: Outgoing,
        token: Option<NewVerification<'_>>,
        invalidate: Option<(&str, &str)>,
    ) -> Result<bool> {
        let flows = self.flows()?;
        let now = now();
        let mail_id = token::new_id()?;
        let queued = outbox::enqueue(
            &mut self.conn().await?,
            &Enqueue {
                mail: NewMail {
                    id: &mail_id,
                    recipient: &mail.to,
                    subject: &mail.subject,
                    text_body: &mail.text,
                    html_body: &mail.html,
                    created_at: now,
                    next_attempt_at: now,
                },
                since: sub(now, flows.send_window),
                limit: i64::from(flows.send_limit),
                invalidate,
                token,
            },
        )
        .await?;
        if queued {
            flows.wake.notify_one();
        } else {
            tracing::info!(subject = %mail.subject, "mail dropped: recipient reached the send limit");
        }
        Ok(queued)
    }

    /// Mails a verification link to the user holding `email`, if there is one whose address is
    /// not verified yet. The answer never says which.
    pub async fn send_verification_email(
        &self,
        email: &str,
        callback_url: Option<&str>,
    ) -> Result<()> {
        let email = email::normalize(email)?;
        let target = self.link_target(callback_url, VERIFY_EMAIL_PATH, "callbackURL")?;
        let user = users::find_by_email(&mut self.conn().await?, &email).await?;
        match user {
            Some(user) if user.email_verified != Some(true) => {
                self.queue_verification(&user, &target).await
            }
            _ => Ok(()),
        }
    }

    pub(super) async fn queue_verification(&self, user: &User, target: &str) -> Result<()> {
        let lifetime = self.flows()?.verification_expires_in;
        let secret = SessionToken::generate()?;
        let link = links::with_token(target, secret.expose());
        let mail = compose::verify_email(&user.email, &user.name, &link, lifetime.as_secs());
        self.queue(
            mail,
            Some(TokenRow {
                purpose: purpose::VERIFY_EMAIL,
                user_id: &user.id,
                value: &user.email,
                lifetime,
                hash: secret.hash(),
            }),
        )
        .await
    }

    /// Consumes an email-verification or email-change token and returns the updated user; a
    /// user whose now verified address is listed in `APEXKIT_ADMIN_EMAILS` becomes an admin.
    pub async fn verify_email(&self, raw_token: &str) -> Result<User> {
        let secret = parse_token(raw_token)?;
        let mut conn = self.conn().await?;
        let outcome = verifications::confirm_email(&mut conn, &secret.hash(), now())
            .await
            .map_err(|e| match e {
                // The new address was taken after the link was sent.
                DbError::UniqueViolation(_) => Error::InvalidToken,
                other => other.into(),
            })?;
        match outcome {
            Consumed::Done(user) => {
                if user.role == super::ROLE_ADMIN || !self.is_admin_email(&user.email) {
                    return Ok(user);
                }
                // Should this fail after the commit, the next boot promotes the user instead.
                let emails = [user.email.clone()];
                users::promote_verified(&mut conn, &emails, super::Role::Admin, now()).await?;
                Ok(users::find_by_id(&mut conn, &user.id)
                    .await?
                    .unwrap_or(user))
            }
            Consumed::Expired => Err(Error::TokenExpired),
            Consumed::Missing => Err(Error::InvalidToken),
        }
    }

    /// Always succeeds (for a well-formed address) and does the same work whether or not the
    /// address has an account: one queued message either way — a reset link, or a note that
    /// no account uses the address.
    pub async fn request_password_reset(
        &self,
        email: &str,
        redirect_to: Option<&str>,
    ) -> Result<()> {
        let email = email::normalize(email)?;
        let target = self.link_target(redirect_to, RESET_PASSWORD_PATH, "redirectTo")?;
        let lifetime = self.flows()?.reset_expires_in;
        let user = users::find_by_email(&mut self.conn().await?, &email).await?;
        let secret = SessionToken::generate()?;
        match user {
            Some(user) => {
                let link = links::with_token(&target, secret.expose());
                let mail =
                    compose::reset_password(&user.email, &user.name, &link, lifetime.as_secs());
                self.queue(
                    mail,
                    Some(TokenRow {
                        purpose: purpose::RESET_PASSWORD,
                        user_id: &user.id,
                        value: "",
                        lifetime,
                        hash: secret.hash(),
                    }),
                )
                .await
            }
            None => {
                self.queue(compose::reset_without_account(&email), None)
                    .await
            }
        }
    }

    /// Sets a new password with a reset token: the policy first (a refused password does not
    /// burn the token), then a cheap read refuses a made-up or expired token before anything is
    /// hashed, then one transaction consumes the token, stores the hash and ends every session
    /// of the user.
    pub async fn reset_password(
        &self,
        raw_token: &str,
        new_password: &str,
        client: &ClientInfo,
    ) -> Result<()> {
        let secret = parse_token(raw_token)?;
        let token_hash = secret.hash();
        // The token's user gives the context words (none for a dead token, refused below).
        let user = verifications::live_user(
            &mut self.conn().await?,
            &token_hash,
            purpose::RESET_PASSWORD,
            now(),
        )
        .await?;
        self.check_new_password(
            new_password,
            &super::password::Context {
                email: user.as_ref().map(|u| u.email.as_str()),
                name: user.as_ref().map(|u| u.name.as_str()),
            },
        )?;
        let live = verifications::check(
            &mut self.conn().await?,
            &token_hash,
            purpose::RESET_PASSWORD,
            now(),
        )
        .await?;
        let outcome = match live {
            Consumed::Done(()) => {
                // Only a live token is worth a hash.
                let hash = self.hasher.hash(new_password).await?;
                verifications::reset_password(
                    &mut self.conn().await?,
                    &token_hash,
                    &hash,
                    CREDENTIAL_PROVIDER,
                    now(),
                )
                .await?
            }
            Consumed::Expired => Consumed::Expired,
            Consumed::Missing => Consumed::Missing,
        };
        let (result, event) = match outcome {
            Consumed::Done(user_id) => {
                // A reset ends every session, and every trusted browser with them.
                self.two_factor().forget_devices(&user_id).await?;
                (
                    Ok(()),
                    AuditEvent::by_self(AuditKind::PasswordReset, &user_id),
                )
            }
            Consumed::Expired => (
                Err(Error::TokenExpired),
                AuditEvent::failure(AuditKind::PasswordReset)
                    .detail(serde_json::json!({ "reason": "token_expired" })),
            ),
            Consumed::Missing => (
                Err(Error::InvalidToken),
                AuditEvent::failure(AuditKind::PasswordReset)
                    .detail(serde_json::json!({ "reason": "invalid_token" })),
            ),
        };
        self.record(event, client).await;
        result
    }
}
