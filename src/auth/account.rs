//! A signed-in user managing their own account: profile, password, email address, deletion.
//! Each use case is one function; the ones that touch several rows do it in one transaction.

use super::audit::{AuditEvent, AuditKind};
use super::context::service;
use super::sign_in::{check_image, check_name};
use super::verification::{TokenRow, VERIFY_EMAIL_PATH};
use super::{
    Account, CREDENTIAL_PROVIDER, ClientInfo, Session, SessionToken, SignedIn, User, Viewer,
};
use super::{email, links, now, password};
use crate::clock::after as add;
use crate::db::accounts;
use crate::db::users::{self, ProfileChanges};
use crate::db::verifications::purpose;
use crate::error::{Error, Result};
use crate::mail::compose;

service! {
    /// A signed-in user managing their own account.
    Accounts
}

/// How recent a sign-in must be to change the email of an account without a password.
pub const REAUTH_WITHOUT_PASSWORD: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// An email change as requested.
pub struct EmailChange<'a> {
    pub new_email: &'a str,
    /// Where the confirmation link points.
    pub callback_url: Option<&'a str>,
    /// The current password (required when the account has one).
    pub password: Option<&'a str>,
}

/// The outcome of a password change.
pub struct PasswordChanged {
    pub user: User,
    /// With `revokeOtherSessions`: the session that replaced every previous one.
    pub replacement: Option<SignedIn>,
    /// Without it: the current session, which stays.
    pub current: Session,
    /// Whether the replacement is a remember-me (persistent-cookie) session.
    pub remember_me: bool,
}

impl Accounts<'_> {
    /// The viewer's accounts (credential and, later, social providers).
    pub async fn accounts(&self, viewer: &Viewer) -> Result<Vec<Account>> {
        Ok(accounts::list_for_user(&mut self.conn().await?, &viewer.user.id).await?)
    }

    /// Changes name and/or image; `image: Some(None)` removes the image.
    pub async fn update_user(
        &self,
        viewer: &Viewer,
        name: Option<&str>,
        image: Option<Option<&str>>,
    ) -> Result<User> {
        let name = name.map(check_name).transpose()?;
        let image = match image {
            Some(value) => Some(check_image(value)?),
            None => None,
        };
        if name.is_none() && image.is_none() {
            return Ok(viewer.user.clone());
        }
        let changes = ProfileChanges {
            name,
            image,
            updated_at: now(),
        };
        users::update_profile(&mut self.conn().await?, &viewer.user.id, &changes)
            .await?
            .ok_or(Error::Unauthenticated)
    }

    /// The hash of the viewer's password, if their account has one.
    async fn password_hash(&self, viewer: &Viewer) -> Result<Option<String>> {
        Ok(accounts::password_hash(
            &mut self.conn().await?,
            &viewer.user.id,
            CREDENTIAL_PROVIDER,
        )
        .await?
        .flatten())
    }

    /// Verifies the viewer's current password (`INVALID_PASSWORD` when wrong) against `hash`.
    /// Like a sign-in, the attempt first takes the account's turn in the failed-attempt counter:
    /// a wrong password counts toward the account's delay, a right one clears it, and while a
    /// delay runs the attempt is refused (`RATE_LIMITED`) before anything is hashed.
    async fn verify_current_password(
        &self,
        viewer: &Viewer,
        given: &str,
        hash: Option<&str>,
        field: &'static str,
    ) -> Result<()> {
        self.sign_in_throttle
            .begin(&viewer.user.email)
            .await
            .inspect_err(|e| {
                if matches!(e, Error::RateLimited { .. }) {
                    crate::observability::record_rate_limited(field);
                }
            })?;
        if password::check_not_too_long(given).is_err() {
            return Err(Error::InvalidPassword);
        }
        if self.hasher.verify(given, hash).await? {
            self.sign_in_throttle.succeeded(&viewer.user.email).await?;
            Ok(())
        } else {
            Err(Error::InvalidPassword)
        }
    }

    /// [`Self::verify_current_password`] against the password the account holds (a dummy hash,
    /// so `INVALID_PASSWORD`, when it has none).
    pub(super) async fn check_current_password(
        &self,
        viewer: &Viewer,
        given: &str,
        field: &'static str,
    ) -> Result<()> {
        let hash = self.password_hash(viewer).await?;
        self.verify_current_password(viewer, given, hash.as_deref(), field)
            .await
    }

    /// Changes the password after checking the current one. With `revoke_others`, every session
    /// ends and a new one replaces the current one (new token), atomically with the change.
    pub async fn change_password(
        &self,
        viewer: &Viewer,
        current: &str,
        new: &str,
        revoke_others: bool,
        client: &ClientInfo,
    ) -> Result<PasswordChanged> {
        self.check_new_password(
            new,
            &super::password::Context {
                email: Some(&viewer.user.email),
                name: Some(&viewer.user.name),
            },
        )?;
        if let Err(e) = self
            .check_current_password(viewer, current, "changePassword")
            .await
        {
            self.audit_account(AuditKind::PasswordChange, viewer, false, None, client)
                .await;
            return Err(e);
        }
        let hash = self.hasher.hash(new).await?;
        let now = now();
        // The replacement keeps the kind of session it replaces (remember-me or not).
        let lifetime = viewer.session.expires_at - viewer.session.updated_at;
        let short = chrono::Duration::from_std(self.policy.short_expires_in).unwrap_or_default();
        let remember_me = lifetime > short;
        let draft = if revoke_others {
            Some(
                self.sessions()
                    .draft(&viewer.user.id, remember_me, client, now)?,
            )
        } else {
            None
        };
        // The replacement's access token is signed before the transaction, as at sign-in.
        let access_token = match &draft {
            Some(d) => Some(
                self.tokens
                    .issue(&d.subject(
                        &viewer.user.email,
                        viewer.user.email_verified.unwrap_or(false),
                        &viewer.user.role,
                    ))
                    .await?,
            ),
            None => None,
        };
        let row = draft.as_ref().map(|d| d.row());
        let created = accounts::change_password(
            &mut self.conn().await?,
            &viewer.user.id,
            CREDENTIAL_PROVIDER,
            &hash,
            now,
            row.as_ref(),
        )
        .await?;
        if revoke_others {
            // Every other session ended: so do the trusted browsers.
            self.two_factor().forget_devices(&viewer.user.id).await?;
        }
        let replacement = match (draft, created, access_token) {
            (Some(draft), Some(session), Some(access_token)) => Some(SignedIn {
                token: draft.token,
                session,
                user: viewer.user.clone(),
                access_token,
            }),
            _ => None,
        };
        self.audit_account(
            AuditKind::PasswordChange,
            viewer,
            true,
            Some(serde_json::json!({ "revoke_other_sessions": revoke_others })),
            client,
        )
        .await;
        Ok(PasswordChanged {
            user: viewer.user.clone(),
            replacement,
            current: viewer.session.clone(),
            remember_me,
        })
    }

    /// Deletes the viewer's user after a password check: user, sessions, accounts and
    /// verification tokens go in one transaction.
    pub async fn delete_user(
        &self,
        viewer: &Viewer,
        password: &str,
        client: &ClientInfo,
    ) -> Result<()> {
        if let Err(e) = self
            .check_current_password(viewer, password, "deleteUser")
            .await
        {
            self.audit_account(AuditKind::UserDelete, viewer, false, None, client)
                .await;
            return Err(e);
        }
        if users::delete_with_everything(&mut self.conn().await?, &viewer.user.id).await? {
            // The audit trail outlives the user (no foreign key): who deleted what, and when.
            let detail = serde_json::json!({ "email": viewer.user.email });
            self.audit_account(AuditKind::UserDelete, viewer, true, Some(detail), client)
                .await;
            Ok(())
        } else {
            Err(Error::Unauthenticated)
        }
    }

    /// Records an account event about the viewer, by the viewer.
    async fn audit_account(
        &self,
        kind: AuditKind,
        viewer: &Viewer,
        success: bool,
        detail: Option<serde_json::Value>,
        client: &ClientInfo,
    ) {
        let mut event = if success {
            AuditEvent::success(kind)
        } else {
            AuditEvent::failure(kind)
        }
        .actor(&viewer.user.id)
        .subject(&viewer.user.id);
        if let Some(detail) = detail {
            event = event.detail(detail);
        }
        self.record(event, client).await;
    }

    /// Starts an email change: the new address gets a confirmation link (and replaces the old
    /// one only when it is followed), the current address is told. An address that is taken
    /// gets no link, but the answer and the note to the current address are the same.
    ///
    /// Re-authentication, since a session alone must not be enough to take the account over:
    /// an account with a password must give it (missing: `BAD_USER_INPUT` on `password`; wrong:
    /// `INVALID_PASSWORD`, counted toward the account's failed-attempt delay); one without
    /// needs a session signed in within [`REAUTH_WITHOUT_PASSWORD`] (`UNAUTHENTICATED`
    /// otherwise). Either way the session must be younger than `APEXKIT_FRESH_SESSION_AGE`.
    pub async fn change_email(
        &self,
        viewer: &Viewer,
        change: EmailChange<'_>,
        client: &ClientInfo,
    ) -> Result<()> {
        let new_email = email::normalize(change.new_email)?;
        let mail_flows = self.mail_flows();
        let target =
            mail_flows.link_target(change.callback_url, VERIFY_EMAIL_PATH, "callbackURL")?;
        let flows = self.flows()?;
        // A stolen, long-lived session must not be enough to take the account over.
        if now() > add(viewer.session.created_at, flows.fresh_session_age) {
            return Err(Error::Unauthenticated);
        }
        match self.password_hash(viewer).await? {
            Some(hash) => {
                let Some(given) = change.password else {
                    return Err(Error::BadUserInput {
                        field: "password",
                        message: "is required: this account has a password",
                    });
                };
                if let Err(e) = self
                    .verify_current_password(viewer, given, Some(&hash), "changeEmail")
                    .await
                {
                    let detail =
                        serde_json::json!({ "stage": "requested", "reason": "reauthentication" });
                    self.audit_account(AuditKind::EmailChange, viewer, false, Some(detail), client)
                        .await;
                    return Err(e);
                }
            }
            None => {
                let window = REAUTH_WITHOUT_PASSWORD.min(flows.fresh_session_age);
                if now() > add(viewer.session.created_at, window) {
                    return Err(Error::Unauthenticated);
                }
            }
        }
        if new_email == viewer.user.email {
            return Ok(());
        }
        let lifetime = flows.verification_expires_in;
        let taken = users::find_by_email(&mut self.conn().await?, &new_email)
            .await?
            .is_some();
        let detail = serde_json::json!({ "stage": "requested", "new_email": new_email });
        self.audit_account(AuditKind::EmailChange, viewer, true, Some(detail), client)
            .await;
        mail_flows
            .queue(
                compose::email_change_requested(&viewer.user.email, &viewer.user.name, &new_email),
                None,
            )
            .await?;
        if taken {
            return Ok(());
        }
        let secret = SessionToken::generate()?;
        let link = links::with_token(&target, secret.expose());
        let mail =
            compose::confirm_new_email(&new_email, &viewer.user.name, &link, lifetime.as_secs());
        mail_flows
            .queue(
                mail,
                Some(TokenRow {
                    purpose: purpose::CHANGE_EMAIL,
                    user_id: &viewer.user.id,
                    value: &new_email,
                    lifetime,
                    hash: secret.hash(),
                }),
            )
            .await
    }
}
