//! Queries on `verification`: one-time tokens (stored as their SHA-256 in `identifier`), each
//! bound to a user and a purpose. Consuming a token is a single `DELETE … RETURNING` inside the
//! transaction that applies its effect, so of two concurrent uses exactly one wins.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::models::User;
use super::schema::{account, session, user, verification};
use super::{Conn, DbError, run, transaction};

/// What a token is for. A token of one purpose is no token for another.
pub mod purpose {
    pub const RESET_PASSWORD: &str = "reset-password";
    pub const VERIFY_EMAIL: &str = "verify-email";
    pub const CHANGE_EMAIL: &str = "change-email";
    /// A social sign-in in progress (the `state` of the authorization request).
    pub const OAUTH_STATE: &str = "oauth-state";
    /// A magic sign-in link (`signInMagicLink`); `value` holds the flow as JSON.
    pub const MAGIC_LINK: &str = "magic-link";
    /// A magic link already used, kept until it would have expired: a second use still knows
    /// the flow's `errorCallbackURL`.
    pub const MAGIC_LINK_SPENT: &str = "magic-link-spent";
    /// A passkey registration in progress (`identifier`: SHA-256 of its challenge).
    pub const PASSKEY_REGISTRATION: &str = "passkey-registration";
    /// A passkey sign-in in progress (`identifier`: SHA-256 of its challenge).
    pub const PASSKEY_AUTHENTICATION: &str = "passkey-authentication";
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = verification)]
pub struct Verification {
    pub id: String,
    /// For email verification and change: the address the token vouches for.
    pub value: String,
    pub expires_at: NaiveDateTime,
    pub user_id: Option<String>,
    pub purpose: String,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = verification, treat_none_as_default_value = false)]
pub struct NewVerification<'a> {
    pub id: &'a str,
    /// SHA-256 of the token.
    pub identifier: &'a str,
    pub value: &'a str,
    pub expires_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub user_id: Option<&'a str>,
    pub purpose: &'a str,
}

/// The outcome of presenting a token.
#[derive(Debug)]
pub enum Consumed<T> {
    /// Unknown, already used, or of another purpose.
    Missing,
    /// It existed but had expired; it is gone now.
    Expired,
    Done(T),
}

/// The user a live (unexpired) token of `purpose` belongs to, without consuming it.
pub async fn live_user(
    conn: &mut Conn,
    token_hash: &str,
    purpose: &str,
    now: NaiveDateTime,
) -> Result<Option<User>, DbError> {
    run!(conn, |c| {
        verification::table
            .inner_join(user::table.on(verification::user_id.eq(user::id.nullable())))
            .filter(verification::identifier.eq(token_hash))
            .filter(verification::purpose.eq(purpose))
            .filter(verification::expires_at.gt(now))
            .select(User::as_select())
            .first(c)
            .await
            .optional()
    })
}

/// Whether a token of `purpose` is live at `now`, without consuming it: one indexed read, so a
/// made-up or expired token is refused before any costly work (hashing a new password). An
/// expired token is deleted, as consuming it would have. The consuming transaction decides
/// races; this is only the cheap early answer.
pub async fn check(
    conn: &mut Conn,
    token_hash: &str,
    token_purpose: &str,
    now: NaiveDateTime,
) -> Result<Consumed<()>, DbError> {
    let found: Option<(NaiveDateTime, Option<String>)> = run!(conn, |c| {
        verification::table
            .filter(verification::identifier.eq(token_hash))
            .filter(verification::purpose.eq(token_purpose))
            .select((verification::expires_at, verification::user_id))
            .first(c)
            .await
            .optional()
    })?;
    match found {
        None | Some((_, None)) => Ok(Consumed::Missing),
        Some((expires_at, Some(_))) if expires_at <= now => {
            run!(conn, |c| {
                diesel::delete(
                    verification::table
                        .filter(verification::identifier.eq(token_hash))
                        .filter(verification::purpose.eq(token_purpose)),
                )
                .execute(c)
                .await
            })?;
            Ok(Consumed::Expired)
        }
        Some(_) => Ok(Consumed::Done(())),
    }
}

/// Consumes a password-reset token and, in the same transaction, sets the credential's new
/// hash and ends every session of the user. Returns the user id.
pub async fn reset_password(
    conn: &mut Conn,
    token_hash: &str,
    password_hash: &str,
    provider: &str,
    now: NaiveDateTime,
) -> Result<Consumed<String>, DbError> {
    transaction!(conn, |c| {
        let taken: Option<Verification> = diesel::delete(
            verification::table
                .filter(verification::identifier.eq(token_hash))
                .filter(verification::purpose.eq(purpose::RESET_PASSWORD)),
        )
        .returning(Verification::as_returning())
        .get_result(c)
        .await
        .optional()?;
        let Some(token) = taken else {
            return Ok(Consumed::Missing);
        };
        let Some(user_id) = token.user_id else {
            return Ok(Consumed::Missing);
        };
        if token.expires_at <= now {
            return Ok(Consumed::Expired);
        }
        let updated = diesel::update(
            account::table
                .filter(account::user_id.eq(&user_id))
                .filter(account::provider_id.eq(provider)),
        )
        .set((
            account::password.eq(password_hash),
            account::updated_at.eq(now),
        ))
        .execute(c)
        .await?;
        if updated == 0 {
            return Ok(Consumed::Missing);
        }
        diesel::delete(session::table.filter(session::user_id.eq(&user_id)))
            .execute(c)
            .await?;
        // Any other outstanding reset link is void once the password has been reset.
        diesel::delete(
            verification::table
                .filter(verification::user_id.eq(&user_id))
                .filter(verification::purpose.eq(purpose::RESET_PASSWORD)),
        )
        .execute(c)
        .await?;
        Ok(Consumed::Done(user_id))
    })
}

/// Consumes an email-verification or email-change token and applies it: marks the address
/// verified (only if it is still the user's address), or replaces the address with the new,
/// now verified one. A unique violation (the new address was taken meanwhile) rolls back.
pub async fn confirm_email(
    conn: &mut Conn,
    token_hash: &str,
    now: NaiveDateTime,
) -> Result<Consumed<User>, DbError> {
    transaction!(conn, |c| {
        let taken: Option<Verification> = diesel::delete(
            verification::table
                .filter(verification::identifier.eq(token_hash))
                .filter(
                    verification::purpose.eq_any([purpose::VERIFY_EMAIL, purpose::CHANGE_EMAIL]),
                ),
        )
        .returning(Verification::as_returning())
        .get_result(c)
        .await
        .optional()?;
        let Some(token) = taken else {
            return Ok(Consumed::Missing);
        };
        let Some(user_id) = token.user_id else {
            return Ok(Consumed::Missing);
        };
        if token.expires_at <= now {
            return Ok(Consumed::Expired);
        }
        let updated: Option<User> = if token.purpose == purpose::CHANGE_EMAIL {
            let changed = diesel::update(user::table.find(&user_id))
                .set((
                    user::email.eq(&token.value),
                    user::email_verified.eq(true),
                    user::updated_at.eq(now),
                ))
                .returning(User::as_returning())
                .get_result(c)
                .await
                .optional()?;
            // Links sent for the old address (or for other new ones) vouch for nothing now.
            diesel::delete(
                verification::table
                    .filter(verification::user_id.eq(&user_id))
                    .filter(
                        verification::purpose
                            .eq_any([purpose::VERIFY_EMAIL, purpose::CHANGE_EMAIL]),
                    ),
            )
            .execute(c)
            .await?;
            changed
        } else {
            diesel::update(
                user::table
                    .find(&user_id)
                    .filter(user::email.eq(&token.value)),
            )
            .set((user::email_verified.eq(true), user::updated_at.eq(now)))
            .returning(User::as_returning())
            .get_result(c)
            .await
            .optional()?
        };
        Ok(match updated {
            Some(user) => Consumed::Done(user),
            None => Consumed::Missing,
        })
    })
}

/// Stores a one-time row (a social sign-in `state`, ...) that no mail carries.
pub async fn insert(conn: &mut Conn, row: &NewVerification<'_>) -> Result<(), DbError> {
    run!(conn, |c| {
        diesel::insert_into(verification::table)
            .values(row)
            .execute(c)
            .await
    })
    .map(drop)
}

/// Consumes a one-time row of `purpose` by its identifier (single use: of two concurrent
/// takes, one gets it). An expired row is consumed too, and reported as expired.
pub async fn take(
    conn: &mut Conn,
    identifier: &str,
    token_purpose: &str,
    now: NaiveDateTime,
) -> Result<Consumed<Verification>, DbError> {
    let taken: Option<Verification> = run!(conn, |c| {
        diesel::delete(
            verification::table
                .filter(verification::identifier.eq(identifier))
                .filter(verification::purpose.eq(token_purpose)),
        )
        .returning(Verification::as_returning())
        .get_result(c)
        .await
        .optional()
    })?;
    Ok(match taken {
        None => Consumed::Missing,
        Some(row) if row.expires_at <= now => Consumed::Expired,
        Some(row) => Consumed::Done(row),
    })
}

/// Deletes the expired rows of `token_purpose` (abandoned flows nobody will come back to).
pub async fn delete_expired(
    conn: &mut Conn,
    token_purpose: &str,
    now: NaiveDateTime,
) -> Result<usize, DbError> {
    run!(conn, |c| {
        diesel::delete(
            verification::table
                .filter(verification::purpose.eq(token_purpose))
                .filter(verification::expires_at.le(now)),
        )
        .execute(c)
        .await
    })
}

/// Spends a token of `token_purpose` by turning it into one of `spent_purpose` in one statement
/// (of two concurrent spenders, one gets the row) and returns it.
pub async fn spend_row(
    conn: &mut Conn,
    identifier: &str,
    token_purpose: &str,
    spent_purpose: &str,
) -> Result<Option<Verification>, DbError> {
    run!(conn, |c| {
        diesel::update(
            verification::table
                .filter(verification::identifier.eq(identifier))
                .filter(verification::purpose.eq(token_purpose)),
        )
        .set(verification::purpose.eq(spent_purpose))
        .returning(Verification::as_returning())
        .get_result(c)
        .await
        .optional()
    })
}

/// A row by its identifier and purpose, left in place.
pub async fn find_row(
    conn: &mut Conn,
    identifier: &str,
    token_purpose: &str,
) -> Result<Option<Verification>, DbError> {
    run!(conn, |c| {
        verification::table
            .filter(verification::identifier.eq(identifier))
            .filter(verification::purpose.eq(token_purpose))
            .select(Verification::as_select())
            .first(c)
            .await
            .optional()
    })
}
