//! Queries on `email_code`: the live sign-in code mailed to an address (`sendSignInOtp`), as a
//! keyed hash, with the attempts it has left. A new code replaces the old one; each attempt
//! takes a turn first, so parallel guesses cannot exceed the limit; the right code deletes it.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::email_code;
use super::{Conn, DbError, run, transaction};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = email_code)]
pub struct EmailCode {
    pub email: String,
    pub code_hash: String,
    pub attempts: i32,
    pub expires_at: NaiveDateTime,
}

/// Stores the code of `email`, voiding the one before it.
pub async fn replace(
    conn: &mut Conn,
    email: &str,
    code_hash: &str,
    expires_at: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    transaction!(conn, |c| {
        diesel::delete(email_code::table.find(email))
            .execute(c)
            .await?;
        diesel::insert_into(email_code::table)
            .values((
                email_code::email.eq(email),
                email_code::code_hash.eq(code_hash),
                email_code::attempts.eq(0),
                email_code::expires_at.eq(expires_at),
                email_code::created_at.eq(now),
            ))
            .execute(c)
            .await?;
        Ok(())
    })
}

/// Takes one attempt's turn on the code of `email`: `None` when there is no live code with
/// attempts left (unknown, spent, expired or used up).
pub async fn take_turn(
    conn: &mut Conn,
    email: &str,
    max: i32,
    now: NaiveDateTime,
) -> Result<Option<EmailCode>, DbError> {
    run!(conn, |c| {
        diesel::update(
            email_code::table
                .find(email)
                .filter(email_code::attempts.lt(max))
                .filter(email_code::expires_at.gt(now)),
        )
        .set(email_code::attempts.eq(email_code::attempts + 1))
        .returning(EmailCode::as_returning())
        .get_result(c)
        .await
        .optional()
    })
}

/// Whether a code of `email` exists but has expired (for the answer only; it stays dead).
pub async fn expired(conn: &mut Conn, email: &str, now: NaiveDateTime) -> Result<bool, DbError> {
    let n: i64 = run!(conn, |c| {
        email_code::table
            .find(email)
            .filter(email_code::expires_at.le(now))
            .count()
            .get_result(c)
            .await
    })?;
    Ok(n > 0)
}

/// Spends the code `code_hash` of `email` (single use). False when it is not that code or was
/// spent by a concurrent request.
pub async fn consume(conn: &mut Conn, email: &str, code_hash: &str) -> Result<bool, DbError> {
    let deleted = run!(conn, |c| {
        diesel::delete(
            email_code::table
                .find(email)
                .filter(email_code::code_hash.eq(code_hash)),
        )
        .execute(c)
        .await
    })?;
    Ok(deleted == 1)
}

/// Deletes a used-up code.
pub async fn delete(conn: &mut Conn, email: &str) -> Result<(), DbError> {
    run!(conn, |c| {
        diesel::delete(email_code::table.find(email))
            .execute(c)
            .await
    })
    .map(drop)
}

pub async fn delete_expired(conn: &mut Conn, now: NaiveDateTime) -> Result<usize, DbError> {
    run!(conn, |c| {
        diesel::delete(email_code::table.filter(email_code::expires_at.le(now)))
            .execute(c)
            .await
    })
}
