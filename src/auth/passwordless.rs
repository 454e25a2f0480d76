//! Passwordless sign-in by mail: magic links (`signInMagicLink`, spent by the `/magic-link`
//! page's POST or `verifyMagicLink`) and 6-digit codes (`sendSignInOtp` / `signInEmailOtp`).
//! Links and codes are single use and live 5 minutes; a link is stored as the SHA-256 of its
//! token, a code as a keyed hash with 3 attempts. Asking never reveals whether the address has
//! an account: the answer and the mail-queue work are the same (a link or code to a new
//! address signs it up, unless that is off: then a note that no account uses the address).
//! Proving the address by a link or code marks it verified. Both end in `Sessions::issue`, so
//! a user with two-factor on stops at the second step.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::audit::{AuditEvent, AuditKind};
use super::context::service;
use super::sign_in::check_name;
use super::two_factor::{SignInOutcome, constant_time_eq, six_digits};
use super::{ClientInfo, SessionToken, User, email, links, now, token};
use crate::clock::after as add;
use crate::db::models::NewUser;
use crate::db::verifications::{self, NewVerification, purpose};
use crate::db::{DbError, email_codes, users};
use crate::error::{Error, Result};
use crate::mail::compose;

/// A magic link or a sign-in code lives this long.
pub const LINK_LIFETIME: Duration = Duration::from_secs(5 * 60);
/// Wrong guesses a mailed sign-in code survives.
pub const MAX_CODE_ATTEMPTS: i32 = 3;
/// Where a magic link lands: a page whose button (a POST) spends it.
pub const MAGIC_LINK_PATH: &str = "/magic-link";
const MAX_NAME_FROM_EMAIL: usize = 64;

service! {
    /// Sign-in (and sign-up) by a mailed link or code.
    Passwordless
}

/// `signInMagicLink`'s input.
pub struct MagicLinkRequest<'a> {
    pub email: &'a str,
    pub name: Option<&'a str>,
    pub callback_url: Option<&'a str>,
    pub new_user_callback_url: Option<&'a str>,
    pub error_callback_url: Option<&'a str>,
}

/// A magic link's flow, as stored with its token (`verification.value`).
#[derive(Serialize, Deserialize)]
struct LinkFlow {
    email: String,
    name: Option<String>,
    callback: String,
    new_user_callback: String,
    error_callback: String,
}

/// A spent magic link or code: how the sign-in ended, and where a browser goes next.
pub struct PasswordlessSignIn {
    pub outcome: SignInOutcome,
    pub new_user: bool,
    pub callback: String,
    pub new_user_callback: String,
}

/// A dead magic link, and where its browser goes (the flow's `errorCallbackURL`, when the
/// link was known).
pub struct DeadLink {
    pub error: Error,
    pub error_callback: Option<String>,
}

impl Passwordless<'_> {
    fn sign_up_allowed(&self) -> Result<bool> {
        Ok(self.two_factor().settings()?.passwordless_sign_up)
    }

    fn target(&self, value: Option<&str>, field: &'static str, default: &str) -> Result<String> {
        let flows = self.flows()?;
        match value {
            Some(v) => links::redirect_target(v, &flows.base_url, &flows.trusted, field),
            None => Ok(format!("{}{default}", flows.base_url)),
        }
    }

    /// `signInMagicLink`: always succeeds for a well-formed address (and valid targets).
    pub async fn send_magic_link(&self, req: MagicLinkRequest<'_>) -> Result<()> {
        let email = email::normalize(req.email)?;
        let name = req.name.map(check_name).transpose()?;
        let callback = self.target(req.callback_url, "callbackURL", "/")?;
        let new_user_callback = match req.new_user_callback_url {
            Some(_) => self.target(req.new_user_callback_url, "newUserCallbackURL", "/")?,
            None => callback.clone(),
        };
        let error_callback = self.target(req.error_callback_url, "errorCallbackURL", "/error")?;
        let user = users::find_by_email(&mut self.conn().await?, &email).await?;
        let flows = self.mail_flows();
        if user.is_none() && !self.sign_up_allowed()? {
            flows
                .queue_row(compose::sign_in_without_account(&email), None, None)
                .await?;
            return Ok(());
        }
        // Spent links are kept only until they would have expired.
        verifications::delete_expired(&mut self.conn().await?, purpose::MAGIC_LINK_SPENT, now())
            .await?;
        let secret = SessionToken::generate()?;
        let link = links::with_token(
            &format!("{}{MAGIC_LINK_PATH}", self.flows()?.base_url),
            secret.expose(),
        );
        let flow = serde_json::to_string(&LinkFlow {
            email: email.clone(),
            name: name.map(str::to_owned),
            callback,
            new_user_callback,
            error_callback,
        })
        .map_err(Error::internal)?;
        let greeting = user.as_ref().map_or("there", |u| u.name.as_str());
        let mail = compose::magic_link(&email, greeting, &link, LINK_LIFETIME.as_secs());
        let now = now();
        let id = token::new_id()?;
        let hash = secret.hash();
        flows
            .queue_row(
                mail,
                Some(NewVerification {
                    id: &id,
                    identifier: &hash,
                    value: &flow,
                    expires_at: add(now, LINK_LIFETIME),
                    created_at: now,
                    updated_at: now,
                    user_id: user.as_ref().map(|u| u.id.as_str()),
                    purpose: purpose::MAGIC_LINK,
                }),
                None,
            )
            .await?;
        Ok(())
    }

    /// Spends a magic link: the user (created when new and allowed), the address verified,
    /// then `Sessions::issue`. A dead link says where its browser goes.
    pub async fn verify_magic_link(
        &self,
        raw_token: &str,
        client: &ClientInfo,
    ) -> std::result::Result<PasswordlessSignIn, DeadLink> {
        let dead = |error, error_callback| DeadLink {
            error,
            error_callback,
        };
        let Some(secret) = SessionToken::parse(raw_token.trim()) else {
            return Err(dead(Error::InvalidToken, None));
        };
        // Spent by marking it, not deleting it: a second use still knows its errorCallbackURL.
        let hash = secret.hash();
        let taken = async {
            let mut conn = self.conn().await?;
            let row = verifications::spend_row(
                &mut conn,
                &hash,
                purpose::MAGIC_LINK,
                purpose::MAGIC_LINK_SPENT,
            )
            .await?;
            let spent = match row {
                Some(_) => None,
                None => {
                    verifications::find_row(&mut conn, &hash, purpose::MAGIC_LINK_SPENT).await?
                }
            };
            Ok::<_, Error>((row, spent))
        }
        .await
        .map_err(|e| dead(e, None))?;
        let flow_of =
            |row: &verifications::Verification| serde_json::from_str::<LinkFlow>(&row.value).ok();
        let row = match taken {
            (Some(row), _) => row,
            (None, spent) => {
                self.record_failure(AuditKind::MagicLinkSignIn, None, "invalid_token", client)
                    .await;
                let error_callback = spent.as_ref().and_then(flow_of).map(|f| f.error_callback);
                return Err(dead(Error::InvalidToken, error_callback));
            }
        };
        let Some(flow) = flow_of(&row) else {
            return Err(dead(Error::InvalidToken, None));
        };
        if row.expires_at <= now() {
            self.record_failure(
                AuditKind::MagicLinkSignIn,
                row.user_id.as_deref(),
                "token_expired",
                client,
            )
            .await;
            return Err(dead(Error::TokenExpired, Some(flow.error_callback)));
        }
        let error_callback = flow.error_callback.clone();
        let signed = async {
            let (user, new_user) = match &row.user_id {
                Some(id) => {
                    let user = users::find_by_id(&mut self.conn().await?, id)
                        .await?
                        // Deleted, or its address changed since the link was sent.
                        .filter(|u| u.email == flow.email)
                        .ok_or(Error::InvalidToken)?;
                    (user, false)
                }
                None => {
                    self.find_or_sign_up(&flow.email, flow.name.as_deref(), client)
                        .await?
                }
            };
            let outcome = self
                .finish(user, new_user, AuditKind::MagicLinkSignIn, client)
                .await?;
            Ok::<_, Error>(PasswordlessSignIn {
                outcome,
                new_user,
                callback: flow.callback,
                new_user_callback: flow.new_user_callback,
            })
        }
        .await;
        signed.map_err(|e| dead(e, Some(error_callback)))
    }

    /// `sendSignInOtp`: always succeeds for a well-formed address; a new code voids the old.
    pub async fn send_sign_in_otp(&self, email: &str) -> Result<()> {
        let email = email::normalize(email)?;
        let user = users::find_by_email(&mut self.conn().await?, &email).await?;
        let flows = self.mail_flows();
        if user.is_none() && !self.sign_up_allowed()? {
            flows
                .queue_row(compose::sign_in_without_account(&email), None, None)
                .await?;
            return Ok(());
        }
        let code = six_digits()?;
        let greeting = user.as_ref().map_or("there", |u| u.name.as_str());
        let mail = compose::sign_in_code(&email, greeting, &code, LINK_LIFETIME.as_secs());
        // Only a queued code replaces the old one (at the send limit, the old one stays).
        if flows.queue_row(mail, None, None).await? {
            let hash = self
                .two_factor()
                .settings()?
                .code_hash("sign-in-otp", &email, &code);
            let now = now();
            email_codes::replace(
                &mut self.conn().await?,
                &email,
                &hash,
                add(now, LINK_LIFETIME),
                now,
            )
            .await?;
        }
        Ok(())
    }

    /// `signInEmailOtp`: the mailed code (3 attempts, then dead); wrong or dead → `INVALID_CODE`.
    pub async fn sign_in_email_otp(
        &self,
        email: &str,
        otp: &str,
        client: &ClientInfo,
    ) -> Result<SignInOutcome> {
        let email = email::normalize(email)?;
        let now = now();
        let turn =
            email_codes::take_turn(&mut self.conn().await?, &email, MAX_CODE_ATTEMPTS, now).await?;
        let Some(stored) = turn else {
            self.record_failure(AuditKind::EmailOtpSignIn, None, "no_live_code", client)
                .await;
            return Err(Error::InvalidCode);
        };
        let given: String = otp
            .chars()
            .filter(|c| !c.is_whitespace())
            .take(16)
            .collect();
        let hash = self
            .two_factor()
            .settings()?
            .code_hash("sign-in-otp", &email, &given);
        let right = constant_time_eq(stored.code_hash.as_bytes(), hash.as_bytes())
            && email_codes::consume(&mut self.conn().await?, &email, &hash).await?;
        if !right {
            if stored.attempts >= MAX_CODE_ATTEMPTS {
                email_codes::delete(&mut self.conn().await?, &email).await?;
            }
            self.record_failure(AuditKind::EmailOtpSignIn, None, "invalid_code", client)
                .await;
            return Err(Error::InvalidCode);
        }
        let existing = users::find_by_email(&mut self.conn().await?, &email).await?;
        let (user, new_user) = match existing {
            Some(user) => (user, false),
            None => self.find_or_sign_up(&email, None, client).await?,
        };
        self.finish(user, new_user, AuditKind::EmailOtpSignIn, client)
            .await
    }

    /// The user holding `email`, or a new one (address verified: the link or code proved it)
    /// when sign-up through mail is on. `true` with a new user.
    async fn find_or_sign_up(
        &self,
        email: &str,
        name: Option<&str>,
        client: &ClientInfo,
    ) -> Result<(User, bool)> {
        let mut conn = self.conn().await?;
        if let Some(user) = users::find_by_email(&mut conn, email).await? {
            return Ok((user, false));
        }
        if !self.sign_up_allowed()? {
            return Err(Error::InvalidToken);
        }
        let fallback: String = email
            .split('@')
            .next()
            .unwrap_or_default()
            .chars()
            .take(MAX_NAME_FROM_EMAIL)
            .collect();
        let name = name.unwrap_or(&fallback);
        let now = now();
        let id = token::new_id()?;
        let created = users::create(
            &mut conn,
            &NewUser {
                id: &id,
                name,
                email,
                email_verified: true,
                image: None,
                created_at: now,
                updated_at: now,
                role: self.role_for(email, true),
            },
        )
        .await;
        match created {
            Ok(user) => {
                drop(conn);
                self.record(AuditEvent::by_self(AuditKind::SignUp, &user.id), client)
                    .await;
                Ok((user, true))
            }
            // Signed up concurrently (another link or code): that user it is.
            Err(DbError::UniqueViolation(_)) => users::find_by_email(&mut conn, email)
                .await?
                .map(|u| (u, false))
                .ok_or(Error::InvalidToken),
            Err(other) => Err(other.into()),
        }
    }

    /// The address is proven: mark it verified (promoting a listed admin address), then the
    /// common path (bans, the second factor, the session).
    async fn finish(
        &self,
        user: User,
        new_user: bool,
        kind: AuditKind,
        client: &ClientInfo,
    ) -> Result<SignInOutcome> {
        let user = if user.email_verified == Some(true) {
            user
        } else {
            let mut conn = self.conn().await?;
            let verified = users::mark_email_verified(&mut conn, &user.id, now())
                .await?
                .unwrap_or(user);
            if verified.role != super::ROLE_ADMIN && self.is_admin_email(&verified.email) {
                let emails = [verified.email.clone()];
                users::promote_verified(&mut conn, &emails, super::Role::Admin, now()).await?;
                users::find_by_id(&mut conn, &verified.id)
                    .await?
                    .unwrap_or(verified)
            } else {
                verified
            }
        };
        let id = user.id.clone();
        let outcome = self
            .sessions()
            .issue(user, true, client, |reason| {
                AuditEvent::failure(kind)
                    .subject(&id)
                    .detail(serde_json::json!({ "reason": reason }))
            })
            .await?;
        let user_id = match &outcome {
            SignInOutcome::SignedIn(s) => &s.user.id,
            SignInOutcome::SecondFactor(p) => &p.user.id,
        };
        let stage = match &outcome {
            SignInOutcome::SignedIn(_) => "signed_in",
            SignInOutcome::SecondFactor(_) => "second_factor_required",
        };
        self.record(
            AuditEvent::by_self(kind, user_id)
                .detail(serde_json::json!({ "new_user": new_user, "stage": stage })),
            client,
        )
        .await;
        Ok(outcome)
    }

    async fn record_failure(
        &self,
        kind: AuditKind,
        user_id: Option<&str>,
        reason: &str,
        client: &ClientInfo,
    ) {
        let mut event = AuditEvent::failure(kind).detail(serde_json::json!({ "reason": reason }));
        if let Some(id) = user_id {
            event = event.subject(id);
        }
        self.record(event, client).await;
    }
}
