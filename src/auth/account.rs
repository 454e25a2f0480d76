//! A signed-in user managing their own account: profile, password, email address, deletion.
//! Each use case is one function; the ones that touch several rows do it in one transaction.

use super::audit::{AuditEvent, AuditKind};
use super::sign_in::{check_image, check_name};
use super::verification::{VERIFY_EMAIL_PATH, add};
use super::{Auth, CREDENTIAL_PROVIDER, ClientInfo, Session, SessionToken, SignedIn, User, Viewer};
use super::{email, links, now, password};
use crate::db::accounts;
use crate::db::users::{self, ProfileChanges};
use crate::db::verifications::purpose;
use crate::error::{Error, Result};
use crate::mail::compose;

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

impl Auth {
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

    /// Verifies the viewer's current password (`INVALID_PASSWORD` when wrong).
    async fn check_current_password(&self, viewer: &Viewer, given: &str) -> Result<()> {
        if password::check_not_too_long(given).is_err() {
            return Err(Error::InvalidPassword);
        }
        let hash = accounts::password_hash(
            &mut self.conn().await?,
            &viewer.user.id,
            CREDENTIAL_PROVIDER,
        )
        .await?
        .flatten();
        if self.hasher.verify(given, hash.as_deref()).await? {
            Ok(())
        } else {
            Err(Error::InvalidPassword)
        }
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
        if let Err(e) = self.check_current_password(viewer, current).await {
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
            Some(self.draft_session(&viewer.user.id, remember_me, client, now)?)
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
        if let Err(e) = self.check_current_password(viewer, password).await {
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
    pub async fn change_email(
        &self,
        viewer: &Viewer,
        new_email: &str,
        callback_url: Option<&str>,
        client: &ClientInfo,
    ) -> Result<()> {
        let new_email = email::normalize(new_email)?;
        let target = self.link_target(callback_url, VERIFY_EMAIL_PATH, "callbackURL")?;
        let flows = self.flows()?;
        // A stolen, long-lived session must not be enough to take the account over.
        if now() > add(viewer.session.created_at, flows.fresh_session_age) {
            return Err(Error::Unauthenticated);
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
        self.queue(
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
        self.queue(
            mail,
            Some(super::verification::TokenRow {
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
