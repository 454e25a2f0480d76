//! Sessions: opening, authenticating (with the sliding expiry), listing and ending them.

use chrono::NaiveDateTime;

use super::access_token::Subject;
use super::audit::{AuditEvent, AuditKind};
use super::context::{audit_failed, service};
use super::two_factor::SignInOutcome;
use super::{ClientInfo, Session, SignedIn, User, Viewer, now, token};
use crate::clock::{after as add, before};
use crate::db::models::NewSession;
use crate::db::signing_keys::SigningKeyRow;
use crate::db::{audit, pipeline, sessions};
use crate::error::{Error, Result};

service! {
    /// Sessions: the path every sign-in method ends in ([`Sessions::issue`]), authenticating a
    /// token (with the sliding expiry), listing and ending sessions.
    Sessions
}

const MAX_USER_AGENT_CHARS: usize = 512;

/// A session about to be inserted, with its token still in hand.
pub(super) struct DraftSession {
    pub token: SessionToken,
    id: String,
    token_hash: String,
    user_id: String,
    expires_at: NaiveDateTime,
    created_at: NaiveDateTime,
    ip: Option<String>,
    user_agent: Option<String>,
}

use super::SessionToken;

impl DraftSession {
    /// The access-token subject for this session, before it is written: a token that cannot
    /// be signed leaves nothing behind.
    pub fn subject<'a>(
        &'a self,
        email: &'a str,
        email_verified: bool,
        role: &'a str,
    ) -> Subject<'a> {
        Subject {
            user_id: &self.user_id,
            email,
            email_verified,
            role,
            session_id: &self.id,
            session_expires_at: self.expires_at,
        }
    }

    pub fn row(&self) -> NewSession<'_> {
        NewSession {
            id: &self.id,
            expires_at: self.expires_at,
            token_hash: &self.token_hash,
            created_at: self.created_at,
            updated_at: self.created_at,
            ip_address: self.ip.as_deref(),
            user_agent: self.user_agent.as_deref(),
            user_id: &self.user_id,
        }
    }
}

impl Sessions<'_> {
    /// A new session for `user_id`: always a fresh token from the CSPRNG, never one the client sent.
    pub(super) fn draft(
        &self,
        user_id: &str,
        remember_me: bool,
        client: &ClientInfo,
        now: NaiveDateTime,
    ) -> Result<DraftSession> {
        let token = SessionToken::generate()?;
        let lifetime = if remember_me {
            self.policy.expires_in
        } else {
            self.policy.short_expires_in
        };
        Ok(DraftSession {
            token_hash: token.hash(),
            token,
            id: token::new_id()?,
            user_id: user_id.to_owned(),
            expires_at: add(now, lifetime.min(self.policy.max_age)),
            created_at: now,
            ip: client.ip.map(|ip| ip.to_string()),
            user_agent: client
                .user_agent
                .as_deref()
                .map(|ua| ua.chars().take(MAX_USER_AGENT_CHARS).collect()),
        })
    }

    /// Every sign-in method ends here, once it has established who `user` is. The checks any
    /// method must pass come first — a ban in force (`USER_BANNED`, audited with
    /// `refused("banned")`), an unverified address while verification is required
    /// (`EMAIL_NOT_VERIFIED`) — then, for a user with two-factor on (on a browser they have
    /// not trusted), the second step instead of a session ([`SignInOutcome::SecondFactor`]);
    /// else a new session, its access token and the `SignIn` event.
    pub async fn issue(
        &self,
        user: User,
        remember_me: bool,
        client: &ClientInfo,
        refused: impl FnOnce(&str) -> AuditEvent,
    ) -> Result<SignInOutcome> {
        self.issue_with_key(user, remember_me, client, refused, None)
            .await
    }

    /// [`Self::issue`] with the active signing key row the caller read together with its own
    /// reads (`None`: read it here).
    pub async fn issue_with_key(
        &self,
        user: User,
        remember_me: bool,
        client: &ClientInfo,
        refused: impl FnOnce(&str) -> AuditEvent,
        active_key: Option<SigningKeyRow>,
    ) -> Result<SignInOutcome> {
        let user = self.admit(user, client, refused).await?;
        let two_factor = self.two_factor();
        if two_factor.required(&user, client).await? {
            let pending = two_factor.challenge(user, remember_me).await?;
            return Ok(SignInOutcome::SecondFactor(pending));
        }
        self.open(user, remember_me, client, active_key)
            .await
            .map(SignInOutcome::SignedIn)
    }

    /// The end of the second step ([`super::two_factor`]): the gates again (a ban set
    /// meanwhile keeps the user out), then the session.
    pub(super) async fn open_after_second_factor(
        &self,
        user: User,
        remember_me: bool,
        client: &ClientInfo,
        refused: impl FnOnce(&str) -> AuditEvent,
    ) -> Result<SignedIn> {
        let user = self.admit(user, client, refused).await?;
        self.open(user, remember_me, client, None).await
    }

    /// The gates of every sign-in: a ban in force, an unverified address while verification
    /// is required.
    async fn admit(
        &self,
        user: User,
        client: &ClientInfo,
        refused: impl FnOnce(&str) -> AuditEvent,
    ) -> Result<User> {
        let user = match user.banned {
            false => Some(user),
            true => self.unless_banned(&mut self.conn().await?, user).await?,
        };
        let Some(user) = user else {
            self.record(refused("banned"), client).await;
            return Err(Error::UserBanned);
        };
        if self.requires_email_verification() && user.email_verified != Some(true) {
            return Err(Error::EmailNotVerified);
        }
        Ok(user)
    }

    /// A new session for an admitted user. The session and its event are written in one
    /// round trip on PostgreSQL (they are independent statements: the event failing does not
    /// undo the session — the audit trail is best effort, see `Context::record`).
    async fn open(
        &self,
        user: User,
        remember_me: bool,
        client: &ClientInfo,
        active_key: Option<SigningKeyRow>,
    ) -> Result<SignedIn> {
        let draft = self.draft(&user.id, remember_me, client, now())?;
        // Signed before the row is written: a token that cannot be signed leaves nothing behind.
        let signer = self.tokens.keys().signer_from(active_key).await?;
        let access_token = self.tokens.issue_with(
            &draft.subject(
                &user.email,
                user.email_verified.unwrap_or(false),
                &user.role,
            ),
            &signer,
        )?;
        let event = AuditEvent::by_self(AuditKind::SignIn, &user.id);
        let mut conn = self.conn().await?;
        let session = match event.row(client) {
            Ok(row) => {
                let (session, recorded) = pipeline!(
                    &mut conn,
                    sessions::insert(&draft.row()),
                    audit::insert(&row)
                );
                if let Err(error) = recorded {
                    audit_failed(&event, &error.into());
                }
                session?
            }
            Err(error) => {
                audit_failed(&event, &error);
                sessions::insert(&mut conn, &draft.row()).await?
            }
        };
        Ok(SignedIn {
            token: draft.token,
            session,
            user,
            access_token,
        })
    }

    /// The moment a session created at `created_at` ends however active
    /// (`APEXKIT_SESSION_MAX_AGE`).
    fn session_deadline(&self, created_at: NaiveDateTime) -> NaiveDateTime {
        add(created_at, self.policy.max_age)
    }

    /// Whether a session is live at `now`: unexpired and within its absolute lifetime.
    fn session_live(&self, session: &Session, now: NaiveDateTime) -> bool {
        session.expires_at > now && self.session_deadline(session.created_at) > now
    }

    /// The session a token stands for, if it is live. An expired session (or one past its
    /// absolute lifetime) is deleted and treated as none; a live one is slid forward at most
    /// once per `update_age`, never past its absolute lifetime.
    pub async fn authenticate(&self, token: &SessionToken) -> Result<Option<Viewer>> {
        let mut conn = self.conn().await?;
        let Some((mut session, user)) = sessions::find_with_user(&mut conn, &token.hash()).await?
        else {
            return Ok(None);
        };
        let now = now();
        if !self.session_live(&session, now) {
            sessions::delete(&mut conn, &session.id).await?;
            return Ok(None);
        }
        // A banned user's sessions stop working at once, whoever set the ban.
        let Some(user) = self.unless_banned(&mut conn, user).await? else {
            return Ok(None);
        };
        let update_age = chrono::Duration::from_std(self.policy.update_age).unwrap_or_default();
        if now - session.updated_at >= update_age {
            // The session keeps the lifetime it was created with (remember-me or not).
            let lifetime = session.expires_at - session.updated_at;
            let expires_at = now
                .checked_add_signed(lifetime)
                .unwrap_or(session.expires_at)
                .min(self.session_deadline(session.created_at));
            sessions::extend(&mut conn, &session.id, expires_at, now).await?;
            session.expires_at = expires_at;
            session.updated_at = now;
        }
        Ok(Some(Viewer { session, user }))
    }

    /// A live session presented by a browser's Better Auth cookie (already checked against
    /// Better Auth's secret): it gets a fresh token, so that cookie works this once, and the
    /// new token comes back with the session's expiry for Apexkit's cookie. `None` when the
    /// session is not live (or another request exchanged it first).
    pub async fn exchange_better_auth(
        &self,
        token: &SessionToken,
    ) -> Result<Option<(SessionToken, NaiveDateTime)>> {
        let Some(viewer) = self.authenticate(token).await? else {
            return Ok(None);
        };
        let fresh = SessionToken::generate()?;
        let replaced = sessions::replace_token_hash(
            &mut self.conn().await?,
            &viewer.session.id,
            &token.hash(),
            &fresh.hash(),
        )
        .await?;
        Ok(replaced.then_some((fresh, viewer.session.expires_at)))
    }

    /// Ends the viewer's current session.
    pub async fn sign_out(&self, viewer: &Viewer, client: &ClientInfo) -> Result<()> {
        if sessions::delete(&mut self.conn().await?, &viewer.session.id).await? {
            self.record(
                AuditEvent::by_self(AuditKind::SignOut, &viewer.user.id),
                client,
            )
            .await;
            Ok(())
        } else {
            Err(Error::Unauthenticated)
        }
    }

    /// Deletes expired sessions and those past their absolute lifetime; run periodically.
    pub async fn purge_expired(&self) -> Result<usize> {
        let now = now();
        let born_before = before(now, self.policy.max_age);
        Ok(sessions::delete_expired(&mut self.conn().await?, now, born_before).await?)
    }

    /// Keeps the sessions live at `now` (the database query knows only `expires_at`).
    pub(super) fn live_sessions(&self, rows: Vec<Session>, now: NaiveDateTime) -> Vec<Session> {
        rows.into_iter()
            .filter(|s| self.session_live(s, now))
            .collect()
    }
}

/// A session as its owner sees it in a list.
#[derive(Debug, Clone)]
pub struct OwnSession {
    pub session: Session,
    /// Whether it is the session making the request.
    pub current: bool,
}

impl Sessions<'_> {
    /// The viewer's live sessions, newest first.
    pub async fn list(&self, viewer: &Viewer) -> Result<Vec<OwnSession>> {
        let now = now();
        let rows =
            sessions::list_active_for_user(&mut self.conn().await?, &viewer.user.id, now).await?;
        Ok(self
            .live_sessions(rows, now)
            .into_iter()
            .map(|session| OwnSession {
                current: session.id == viewer.session.id,
                session,
            })
            .collect())
    }

    /// Ends one of the viewer's sessions. Another user's session id is `NOT_FOUND`, exactly like
    /// an id that does not exist, and nothing is revoked. Returns whether it was the current one.
    pub async fn revoke(&self, viewer: &Viewer, id: &str, client: &ClientInfo) -> Result<bool> {
        if !sessions::delete_for_user(&mut self.conn().await?, id, &viewer.user.id).await? {
            return Err(Error::NotFound);
        }
        self.record_revocation(
            viewer,
            serde_json::json!({ "scope": "one", "session_id": id }),
            client,
        )
        .await;
        Ok(id == viewer.session.id)
    }

    /// Ends every session of the viewer, the current one included.
    pub async fn revoke_all(&self, viewer: &Viewer, client: &ClientInfo) -> Result<usize> {
        let ended =
            sessions::delete_all_for_user(&mut self.conn().await?, &viewer.user.id, None).await?;
        // Trusted browsers end with every session (a stolen one must not outlive this).
        self.two_factor().forget_devices(&viewer.user.id).await?;
        self.record_revocation(
            viewer,
            serde_json::json!({ "scope": "all", "count": ended }),
            client,
        )
        .await;
        Ok(ended)
    }

    /// Ends every session of the viewer but the current one.
    pub async fn revoke_others(&self, viewer: &Viewer, client: &ClientInfo) -> Result<usize> {
        let ended = sessions::delete_all_for_user(
            &mut self.conn().await?,
            &viewer.user.id,
            Some(&viewer.session.id),
        )
        .await?;
        self.record_revocation(
            viewer,
            serde_json::json!({ "scope": "others", "count": ended }),
            client,
        )
        .await;
        Ok(ended)
    }

    async fn record_revocation(
        &self,
        viewer: &Viewer,
        detail: serde_json::Value,
        client: &ClientInfo,
    ) {
        self.record(
            AuditEvent::by_self(AuditKind::SessionRevoke, &viewer.user.id).detail(detail),
            client,
        )
        .await;
    }
}
