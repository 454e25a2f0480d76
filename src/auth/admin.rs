//! The admin use cases (Better Auth's admin plugin): list, inspect, create, change role, ban,
//! unban, revoke sessions, remove and set passwords — each one recorded in the audit trail.
//! Each takes an [`Admin`], which only the authorization check can produce.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDateTime};

use super::audit::{AuditEvent, AuditKind};
use super::context::service;
use super::sign_in::{NewIds, NewUserInput, credential_account};
use super::{Admin, ClientInfo, Role, Session, User, now, token};
use crate::db::users::UserFilter;
use crate::db::{DbError, sessions, users};
use crate::error::{Error, Result};

service! {
    /// Administration (Better Auth's admin plugin): users, roles, bans, sessions, passwords;
    /// also the audit trail (`audit.rs`), the schema (`migrations.rs`) and signing-key rotation
    /// (`access_token.rs`). Every use case but the boot-time promotion takes an [`Admin`].
    AdminService
}

pub const DEFAULT_PAGE: i64 = 20;
pub const MAX_PAGE: i64 = 100;
const MAX_SEARCH_CHARS: usize = 256;
/// A ban can last at most ten years (keeps the expiry representable everywhere).
const MAX_BAN_SECONDS: i64 = 10 * 365 * 24 * 3600;

/// An opaque keyset position: base64url of `<created_at µs>:<id>`.
pub fn encode_cursor(at: NaiveDateTime, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{id}", at.and_utc().timestamp_micros()))
}

pub fn decode_cursor(cursor: &str) -> Result<(NaiveDateTime, String)> {
    let raw = URL_SAFE_NO_PAD
        .decode(cursor.as_bytes())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(bad_cursor)?;
    let (micros, id) = raw.split_once(':').ok_or_else(bad_cursor)?;
    let at = micros
        .parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(bad_cursor)?;
    Ok((at.naive_utc(), id.to_owned()))
}

fn bad_cursor() -> Error {
    Error::BadUserInput {
        field: "after",
        message: "not a cursor from this list",
    }
}

/// `first` within 1..=100 (default 20).
pub fn page_size(first: Option<i32>) -> Result<i64> {
    match first.map(i64::from) {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(Error::BadUserInput {
            field: "first",
            message: "must be between 1 and 100",
        }),
    }
}

/// A `LIKE` pattern matching `search` anywhere, case-insensitively, with `%`, `_` and `\`
/// taken literally.
fn like_pattern(search: &str) -> Result<Option<String>> {
    let search = search.trim();
    if search.is_empty() {
        return Ok(None);
    }
    if search.chars().count() > MAX_SEARCH_CHARS {
        return Err(Error::BadUserInput {
            field: "search",
            message: "must be at most 256 characters",
        });
    }
    let mut pattern = String::from("%");
    for c in search.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    Ok(Some(pattern))
}

/// A page of users, oldest first.
#[derive(Debug)]
pub struct UserPage {
    pub users: Vec<User>,
    pub has_next: bool,
    pub total: i64,
}

pub struct CreateUser<'a> {
    pub name: &'a str,
    pub email: &'a str,
    pub password: &'a str,
    pub role: Option<&'a str>,
    pub email_verified: bool,
}

fn check_role(role: &str) -> Result<&'static str> {
    Role::parse(role)
        .map(Role::as_str)
        .ok_or(Error::BadUserInput {
            field: "role",
            message: "must be \"user\" or \"admin\"",
        })
}

fn not_self(admin: &Admin, user_id: &str) -> Result<()> {
    if admin.user.id == user_id {
        return Err(Error::BadUserInput {
            field: "userId",
            message: "an admin cannot do this to their own account",
        });
    }
    Ok(())
}

impl AdminService<'_> {
    pub async fn users(
        &self,
        _admin: &Admin,
        search: Option<&str>,
        first: i64,
        after: Option<(NaiveDateTime, &str)>,
    ) -> Result<UserPage> {
        let pattern = search.map(like_pattern).transpose()?.flatten();
        let filter = UserFilter {
            pattern: pattern.as_deref(),
            after,
        };
        let mut conn = self.conn().await?;
        let (mut users, total) = users::page(&mut conn, &filter, first + 1).await?;
        let has_next = users.len() as i64 > first;
        users.truncate(usize::try_from(first).unwrap_or(0));
        Ok(UserPage {
            users,
            has_next,
            total,
        })
    }

    pub async fn user(&self, _admin: &Admin, id: &str) -> Result<Option<User>> {
        Ok(users::find_by_id(&mut self.conn().await?, id).await?)
    }

    /// The user's live sessions, newest first.
    pub async fn user_sessions(&self, _admin: &Admin, user_id: &str) -> Result<Vec<Session>> {
        let now = now();
        let rows = sessions::list_active_for_user(&mut self.conn().await?, user_id, now).await?;
        Ok(self.sessions().live_sessions(rows, now))
    }

    pub async fn create_user(
        &self,
        admin: &Admin,
        client: &ClientInfo,
        input: CreateUser<'_>,
    ) -> Result<User> {
        let new = NewUserInput::check(self, input.name, input.email, input.password, None)?;
        let role = match input.role {
            Some(role) => check_role(role)?,
            None => self.role_for(&new.email, input.email_verified),
        };
        let hash = self.hasher.hash(input.password).await?;
        let ids = NewIds::generate()?;
        let (new_user, new_account) = new.rows(&ids, &hash, input.email_verified, role, now());
        let (user, _) =
            users::create_with_account(&mut self.conn().await?, &new_user, &new_account, None)
                .await
                .map_err(|e| match e {
                    DbError::UniqueViolation(_) => Error::UserAlreadyExists,
                    other => other.into(),
                })?;
        self.record(
            AuditEvent::success(AuditKind::AdminCreateUser)
                .actor(&admin.user.id)
                .subject(&user.id)
                .detail(serde_json::json!({ "email": user.email, "role": user.role })),
            client,
        )
        .await;
        Ok(user)
    }

    pub async fn set_role(
        &self,
        admin: &Admin,
        client: &ClientInfo,
        user_id: &str,
        role: &str,
    ) -> Result<User> {
        let role = check_role(role)?;
        let user = users::set_role(&mut self.conn().await?, user_id, role, now())
            .await?
            .ok_or(Error::NotFound)?;
        self.record(
            AuditEvent::success(AuditKind::AdminSetRole)
                .actor(&admin.user.id)
                .subject(&user.id)
                .detail(serde_json::json!({ "role": role })),
            client,
        )
        .await;
        Ok(user)
    }

    /// Bans the user (for `expires_in` seconds, or for good) and ends their sessions.
    pub async fn ban_user(
        &self,
        admin: &Admin,
        client: &ClientInfo,
        user_id: &str,
        reason: Option<&str>,
        expires_in: Option<i64>,
    ) -> Result<User> {
        not_self(admin, user_id)?;
        let reason = reason.map(str::trim).filter(|r| !r.is_empty());
        if reason.is_some_and(|r| r.chars().count() > 1024 || r.chars().any(char::is_control)) {
            return Err(Error::BadUserInput {
                field: "reason",
                message: "must be at most 1024 characters without control characters",
            });
        }
        let now = now();
        let expires = match expires_in {
            None => None,
            Some(s) if (1..=MAX_BAN_SECONDS).contains(&s) => {
                Some(now + chrono::Duration::seconds(s))
            }
            Some(_) => {
                return Err(Error::BadUserInput {
                    field: "expiresIn",
                    message: "must be a positive number of seconds, at most ten years",
                });
            }
        };
        let user = users::ban(&mut self.conn().await?, user_id, reason, expires, now)
            .await?
            .ok_or(Error::NotFound)?;
        // A ban ends the user's trusted browsers too (they would outlive it otherwise).
        self.two_factor().forget_devices(&user.id).await?;
        self.record(
            AuditEvent::success(AuditKind::AdminBanUser)
                .actor(&admin.user.id)
                .subject(&user.id)
                .detail(serde_json::json!({ "reason": reason, "expiresIn": expires_in })),
            client,
        )
        .await;
        Ok(user)
    }

    pub async fn unban_user(
        &self,
        admin: &Admin,
        client: &ClientInfo,
        user_id: &str,
    ) -> Result<User> {
        let user = users::unban(&mut self.conn().await?, user_id, None, now())
            .await?
            .ok_or(Error::NotFound)?;
        self.record(
            AuditEvent::success(AuditKind::AdminUnbanUser)
                .actor(&admin.user.id)
                .subject(&user.id),
            client,
        )
        .await;
        Ok(user)
    }

    /// Ends every session of the user (the admin's own included, when it is theirs).
    pub async fn revoke_user_sessions(
        &self,
        admin: &Admin,
        client: &ClientInfo,
        user_id: &str,
    ) -> Result<bool> {
        let ended = {
            let mut conn = self.conn().await?;
            if users::find_by_id(&mut conn, user_id).await?.is_none() {
                return Err(Error::NotFound);
            }
            sessions::delete_all_for_user(&mut conn, user_id, None).await?
        };
        self.two_factor().forget_devices(user_id).await?;
        self.record(
            AuditEvent::success(AuditKind::AdminRevokeUserSessions)
                .actor(&admin.user.id)
                .subject(user_id)
                .detail(serde_json::json!({ "sessions": ended })),
            client,
        )
        .await;
        Ok(true)
    }

    /// Removes the user with their sessions and accounts.
    pub async fn remove_user(
        &self,
        admin: &Admin,
        client: &ClientInfo,
        user_id: &str,
    ) -> Result<bool> {
        not_self(admin, user_id)?;
        let email = {
            let mut conn = self.conn().await?;
            let email = users::find_by_id(&mut conn, user_id)
                .await?
                .ok_or(Error::NotFound)?
                .email;
            if !users::delete(&mut conn, user_id).await? {
                return Err(Error::NotFound);
            }
            email
        };
        self.record(
            AuditEvent::success(AuditKind::AdminRemoveUser)
                .actor(&admin.user.id)
                .subject(user_id)
                .detail(serde_json::json!({ "email": email })),
            client,
        )
        .await;
        Ok(true)
    }

    /// Sets the user's password (the policy applies); their sessions stay.
    pub async fn set_user_password(
        &self,
        admin: &Admin,
        client: &ClientInfo,
        user_id: &str,
        new_password: &str,
    ) -> Result<bool> {
        let user = users::find_by_id(&mut self.conn().await?, user_id)
            .await?
            .ok_or(Error::NotFound)?;
        self.check_new_password(
            new_password,
            &super::password::Context {
                email: Some(&user.email),
                name: Some(&user.name),
            },
        )?;
        let hash = self.hasher.hash(new_password).await?;
        let now = now();
        let account_id = token::new_id()?;
        let account = credential_account(&account_id, user_id, &hash, now);
        if !users::set_password(&mut self.conn().await?, user_id, &account, now).await? {
            return Err(Error::NotFound);
        }
        self.record(
            AuditEvent::success(AuditKind::AdminSetUserPassword)
                .actor(&admin.user.id)
                .subject(user_id),
            client,
        )
        .await;
        Ok(true)
    }
}

impl AdminService<'_> {
    /// Run at every boot: gives role `admin` to the users listed in `APEXKIT_ADMIN_EMAILS` whose
    /// address is verified, and takes it back from listed users whose address is not (someone
    /// who claimed the address by signing up first, under releases that promoted at sign-up).
    /// Returns (promoted, demoted).
    pub async fn promote_listed(&self) -> Result<(usize, usize)> {
        if self.admin_emails.is_empty() {
            return Ok((0, 0));
        }
        let mut conn = self.conn().await?;
        let now = now();
        let listed = &self.admin_emails;
        let demoted =
            users::demote_unverified(&mut conn, listed, (Role::Admin, Role::User), now).await?;
        let promoted = users::promote_verified(&mut conn, listed, Role::Admin, now).await?;
        Ok((promoted, demoted))
    }
}
