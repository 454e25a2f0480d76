//! Sign-up and sign-in with email and password: the first sign-in method, and the model for
//! the others (a service that establishes who the user is, then ends in
//! [`Sessions::issue`](super::session::Sessions::issue)).

use chrono::NaiveDateTime;

use super::audit::{AuditEvent, AuditKind};
use super::context::service;
use super::verification::VERIFY_EMAIL_PATH;
use super::{
    CREDENTIAL_PROVIDER, ClientInfo, Context, SignedIn, User, email, now, password, token,
};
use crate::db::models::{NewAccount, NewUser};
use crate::db::{DbError, pipeline, signing_keys, users};
use crate::error::{Error, Result};
use crate::mail::compose;

service! {
    /// Sign-up and sign-in with email and password.
    Passwords
}

/// The result of a sign-up.
pub enum Registered {
    SignedIn(SignedIn),
    /// Verification is required: no session yet. The user is the new one — or, when the
    /// address was taken, a look-alike that exists nowhere, so both answers are the same.
    PendingVerification(User),
}

const MAX_NAME_CHARS: usize = 256;
const MAX_IMAGE_CHARS: usize = 2048;

pub struct SignUp<'a> {
    pub name: &'a str,
    pub email: &'a str,
    pub password: &'a str,
    pub image: Option<&'a str>,
    pub remember_me: bool,
}

pub struct SignIn<'a> {
    pub email: &'a str,
    pub password: &'a str,
    pub remember_me: bool,
}

/// A new user's details as every way of creating one checks them (sign-up, sign-up pending
/// verification, admin creation): name, normalised email, password policy (with the name and
/// email as context words), image URL — all before anything is hashed or written.
pub(super) struct NewUserInput<'a> {
    pub name: &'a str,
    pub email: String,
    pub image: Option<&'a str>,
}

impl<'a> NewUserInput<'a> {
    pub fn check(
        ctx: &Context,
        name: &'a str,
        email: &str,
        password: &str,
        image: Option<&'a str>,
    ) -> Result<Self> {
        let name = check_name(name)?;
        let email = email::normalize(email)?;
        ctx.check_new_password(
            password,
            &password::Context {
                email: Some(&email),
                name: Some(name),
            },
        )?;
        let image = check_image(image)?;
        Ok(Self { name, email, image })
    }

    /// The user row and its credential account holding `hash`, with fresh ids.
    pub fn rows<'r>(
        &'r self,
        ids: &'r NewIds,
        hash: &'r str,
        verified: bool,
        role: &'r str,
        now: NaiveDateTime,
    ) -> (NewUser<'r>, NewAccount<'r>) {
        let user = NewUser {
            id: &ids.user,
            name: self.name,
            email: &self.email,
            email_verified: verified,
            image: self.image,
            created_at: now,
            updated_at: now,
            role,
        };
        (user, credential_account(&ids.account, &ids.user, hash, now))
    }
}

/// Fresh ids of a new user and their credential account.
pub(super) struct NewIds {
    pub user: String,
    pub account: String,
}

impl NewIds {
    pub fn generate() -> Result<Self> {
        Ok(Self {
            user: token::new_id()?,
            account: token::new_id()?,
        })
    }
}

/// The email+password account row of `user_id` holding `hash`.
pub(super) fn credential_account<'a>(
    id: &'a str,
    user_id: &'a str,
    hash: &'a str,
    now: NaiveDateTime,
) -> NewAccount<'a> {
    NewAccount {
        id,
        account_id: user_id,
        provider_id: CREDENTIAL_PROVIDER,
        user_id,
        password: Some(hash),
        created_at: now,
        updated_at: now,
    }
}

pub(super) fn check_name(name: &str) -> Result<&str> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::BadUserInput {
            field: "name",
            message: "must not be empty",
        });
    }
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(Error::BadUserInput {
            field: "name",
            message: "must be at most 256 characters without control characters",
        });
    }
    Ok(name)
}

pub(super) fn check_image(image: Option<&str>) -> Result<Option<&str>> {
    match image.map(str::trim) {
        None | Some("") => Ok(None),
        Some(url)
            if url.chars().count() <= MAX_IMAGE_CHARS
                && (url.starts_with("https://") || url.starts_with("http://"))
                && !url.chars().any(|c| c.is_control() || c.is_whitespace()) =>
        {
            Ok(Some(url))
        }
        Some(_) => Err(Error::BadUserInput {
            field: "image",
            message: "must be an http(s) URL of at most 2048 characters",
        }),
    }
}

impl Passwords<'_> {
    /// Sign-up. Without required verification: the user, their credential account and a first
    /// session, atomically. With it: no session, a verification link by mail, and a registered
    /// address answers exactly like a fresh one (same work — the password is hashed either way
    /// — and the owner of the address is told someone tried).
    pub async fn sign_up(&self, input: SignUp<'_>, client: &ClientInfo) -> Result<Registered> {
        let new = NewUserInput::check(self, input.name, input.email, input.password, input.image)?;
        if self.requires_email_verification() {
            return self.sign_up_pending(new, input.password, client).await;
        }
        // Cheap early answer for the common case; the unique index decides races below.
        if users::find_by_email(&mut self.conn().await?, &new.email)
            .await?
            .is_some()
        {
            return Err(Error::UserAlreadyExists);
        }
        let hash = self.hasher.hash(input.password).await?;

        let now = now();
        let ids = NewIds::generate()?;
        // Unverified, so role `user` whatever the address (a listed one is promoted when its
        // owner verifies it).
        let (new_user, new_account) =
            new.rows(&ids, &hash, false, self.role_for(&new.email, false), now);
        let sessions = self.sessions();
        let draft = sessions.draft(&ids.user, input.remember_me, client, now)?;
        let access_token = self
            .tokens
            .issue(&draft.subject(new_user.email, new_user.email_verified, new_user.role))
            .await?;
        let (user, session) = users::create_with_account(
            &mut self.conn().await?,
            &new_user,
            &new_account,
            Some(&draft.row()),
        )
        .await
        .map_err(|e| match e {
            DbError::UniqueViolation(_) => Error::UserAlreadyExists,
            other => other.into(),
        })?;
        let session = session.ok_or_else(|| Error::internal(anyhow::anyhow!("no session row")))?;
        self.record(AuditEvent::by_self(AuditKind::SignUp, &user.id), client)
            .await;
        Ok(Registered::SignedIn(SignedIn {
            token: draft.token,
            session,
            user,
            access_token,
        }))
    }

    /// Sign-up while verification is required (see [`Self::sign_up`]).
    async fn sign_up_pending(
        &self,
        new: NewUserInput<'_>,
        password: &str,
        client: &ClientInfo,
    ) -> Result<Registered> {
        let flows = self.mail_flows();
        let target = flows.link_target(None, VERIFY_EMAIL_PATH, "callbackURL")?;
        let hash = self.hasher.hash(password).await?;

        let now = now();
        let ids = NewIds::generate()?;
        let role = self.role_for(&new.email, false);
        let look_alike = User {
            id: ids.user.clone(),
            name: new.name.to_owned(),
            email: new.email.clone(),
            email_verified: Some(false),
            image: new.image.map(str::to_owned),
            created_at: now,
            updated_at: now,
            role: role.to_owned(),
            banned: false,
            ban_reason: None,
            ban_expires: None,
        };
        if let Some(existing) = users::find_by_email(&mut self.conn().await?, &new.email).await? {
            flows
                .queue(
                    compose::already_registered(&existing.email, &existing.name),
                    None,
                )
                .await?;
            return Ok(Registered::PendingVerification(look_alike));
        }
        let (new_user, new_account) = new.rows(&ids, &hash, false, role, now);
        let created =
            users::create_with_account(&mut self.conn().await?, &new_user, &new_account, None)
                .await;
        match created {
            Ok((user, _)) => {
                self.record(AuditEvent::by_self(AuditKind::SignUp, &user.id), client)
                    .await;
                flows.queue_verification(&user, &target).await?;
                Ok(Registered::PendingVerification(user))
            }
            // Lost a race with another sign-up of this address: answer the same way.
            Err(DbError::UniqueViolation(_)) => Ok(Registered::PendingVerification(look_alike)),
            Err(other) => Err(other.into()),
        }
    }

    /// Verifies the password (against a dummy hash when the email is unknown, so both failures
    /// look and take the same) and opens a new session.
    pub async fn sign_in(
        &self,
        input: SignIn<'_>,
        client: &ClientInfo,
    ) -> Result<super::SignInOutcome> {
        let email = email::normalize(input.email)?;
        password::check_not_too_long(input.password)?;
        // The account's turn is taken before any hashing; refused attempts cost nothing.
        self.sign_in_throttle.begin(&email).await.inspect_err(|e| {
            if matches!(e, Error::RateLimited { .. }) {
                crate::observability::record_rate_limited("signInEmail");
            }
        })?;
        // The active signing key is read with the user, in one round trip on PostgreSQL, so that
        // signing the access token costs none of its own. It matters: without this and the
        // pipelined writes in `Sessions::issue_with_key`, sign-in ran 2.4 % slower (bench/ab.sh,
        // 16 connections, PostgreSQL, 3 alternating rounds: 135.7 → 132.4 sign-ins/s).
        let (found, active_key) = pipeline!(
            &mut self.conn().await?,
            users::find_with_password(&email, CREDENTIAL_PROVIDER),
            signing_keys::find_active(),
        );
        let (found, active_key) = (found?, active_key?);
        let (user, hash) = match found {
            Some((user, hash)) => (Some(user), hash),
            None => (None, None),
        };
        let verified = self.hasher.verify(input.password, hash.as_deref()).await?;
        // The attempted email is recorded (normalised); never the password.
        let failure = |user: Option<&str>, reason: &str| {
            let mut event = AuditEvent::failure(AuditKind::SignIn)
                .detail(serde_json::json!({ "email": email, "reason": reason }));
            if let Some(id) = user {
                event = event.subject(id);
            }
            event
        };
        let user = match user {
            Some(user) if verified => user,
            user => {
                let id = user.as_ref().map(|u| u.id.as_str());
                self.record(failure(id, "invalid_email_or_password"), client)
                    .await;
                return Err(Error::InvalidEmailOrPassword);
            }
        };
        // The right password resets the account's failure count, banned or not.
        self.sign_in_throttle.succeeded(&email).await?;
        if let Some(old) = hash.as_deref()
            && self.hasher.cost().is_outdated(old)
        {
            self.upgrade_password_hash(&user.id, input.password, old)
                .await;
        }
        // Only the right password reveals a ban or an unverified address: a wrong one gets the
        // ordinary answer above, so the answer reveals nothing to a guesser.
        let id = user.id.clone();
        self.sessions()
            .issue_with_key(
                user,
                input.remember_me,
                client,
                |reason| failure(Some(&id), reason),
                active_key,
            )
            .await
    }

    /// Stores the just-verified password again at the configured argon2 cost (after the cost
    /// was changed). Best effort: a failure is logged and the sign-in goes on.
    async fn upgrade_password_hash(&self, user_id: &str, password: &str, old: &str) {
        let upgraded = async {
            let new = self.hasher.hash(password).await?;
            Ok::<_, Error>(
                crate::db::accounts::upgrade_hash(
                    &mut self.conn().await?,
                    user_id,
                    CREDENTIAL_PROVIDER,
                    old,
                    &new,
                )
                .await?,
            )
        }
        .await;
        match upgraded {
            Ok(true) => tracing::info!(user_id, "password rehashed at the configured argon2 cost"),
            Ok(false) => {}
            Err(e) => tracing::warn!(user_id, error = %e, "password rehash failed"),
        }
    }
}
