//! Sign-up and sign-in with email and password.

use super::audit::{AuditEvent, AuditKind};
use super::{Auth, CREDENTIAL_PROVIDER, ClientInfo, SignedIn, email, now, password, token};
use crate::db::{DbError, users};
use crate::error::{Error, Result};

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

impl Auth {
    /// Creates the user, their credential account and a first session, atomically.
    pub async fn sign_up(&self, input: SignUp<'_>, client: &ClientInfo) -> Result<SignedIn> {
        let name = check_name(input.name)?;
        let email = email::normalize(input.email)?;
        self.check_new_password(
            input.password,
            &password::Context {
                email: Some(&email),
                name: Some(name),
            },
        )?;
        let image = check_image(input.image)?;

        // Cheap early answer for the common case; the unique index decides races below.
        if users::find_by_email(&mut self.conn().await?, &email)
            .await?
            .is_some()
        {
            return Err(Error::UserAlreadyExists);
        }
        let hash = self.hasher.hash(input.password).await?;

        let now = now();
        let user_id = token::new_id()?;
        let account_id = token::new_id()?;
        let new_user = self.self_signed_up_user(&user_id, name, &email, image, now);
        let new_account = super::credential_account(&account_id, &user_id, &hash, now);
        let draft = self.draft_session(&user_id, input.remember_me, client, now)?;
        let access_token = self
            .tokens
            .issue(&draft.subject(new_user.email, new_user.email_verified, new_user.role))
            .await?;
        let mut conn = self.conn().await?;
        let (user, session) =
            users::create_with_account(&mut conn, &new_user, &new_account, Some(&draft.row()))
                .await
                .map_err(|e| match e {
                    DbError::UniqueViolation(_) => Error::UserAlreadyExists,
                    other => other.into(),
                })?;
        let session = session.ok_or_else(|| Error::internal(anyhow::anyhow!("no session row")))?;
        self.record_with(
            &mut conn,
            AuditEvent::success(AuditKind::SignUp)
                .actor(&user.id)
                .subject(&user.id),
            client,
        )
        .await;
        Ok(SignedIn {
            token: draft.token,
            session,
            user,
            access_token,
        })
    }

    /// Verifies the password (against a dummy hash when the email is unknown, so both failures
    /// look and take the same) and opens a new session.
    pub async fn sign_in(&self, input: SignIn<'_>, client: &ClientInfo) -> Result<SignedIn> {
        let email = email::normalize(input.email)?;
        password::check_not_too_long(input.password)?;
        // The account's turn is taken before any hashing; refused attempts cost nothing.
        self.sign_in_throttle.begin(&email).await.inspect_err(|e| {
            if matches!(e, Error::RateLimited { .. }) {
                crate::observability::record_rate_limited("signInEmail");
            }
        })?;
        let (found, active_key) = users::find_with_password_and_signing_key(
            &mut self.conn().await?,
            &email,
            CREDENTIAL_PROVIDER,
        )
        .await?;
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
        // Only the right password reveals a ban: a wrong one gets the ordinary answer above.
        let id = user.id.clone();
        let Some(user) = self.unless_banned(&mut self.conn().await?, user).await? else {
            self.record(failure(Some(&id), "banned"), client).await;
            return Err(Error::UserBanned);
        };
        // Only after a correct password, so the answer reveals nothing to a guesser.
        if self.requires_email_verification() && user.email_verified != Some(true) {
            return Err(Error::EmailNotVerified);
        }
        self.open_session(user, input.remember_me, client, active_key)
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
