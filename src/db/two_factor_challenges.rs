//! Queries on `two_factor_challenge`: a sign-in waiting for its second factor (the
//! `twoFactorToken`, stored as its SHA-256). Each code attempt takes a turn first (an atomic
//! increment that only a live challenge with turns left allows), so parallel guesses cannot
//! exceed the limit; a right code then deletes the row (single use).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::two_factor_challenge;
use super::{Conn, DbError, run};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = two_factor_challenge)]
pub struct Challenge {
    pub token_hash: String,
    pub user_id: String,
    pub remember_me: bool,
    pub failures: i32,
    pub otp_hash: Option<String>,
    pub otp_expires_at: Option<NaiveDateTime>,
    pub expires_at: NaiveDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = two_factor_challenge)]
pub struct NewChallenge<'a> {
    pub token_hash: &'a str,
    pub user_id: &'a str,
    pub remember_me: bool,
    pub failures: i32,
    pub expires_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
}

pub async fn insert(conn: &mut Conn, row: &NewChallenge<'_>) -> Result<(), DbError> {
    run!(conn, |c| {
        diesel::insert_into(two_factor_challenge::table)
            .values(row)
            .execute(c)
            .await
    })
    .map(drop)
}

pub async fn find(conn: &mut Conn, token_hash: &str) -> Result<Option<Challenge>, DbError> {
    run!(conn, |c| {
        two_factor_challenge::table
            .find(token_hash)
            .select(Challenge::as_select())
            .first(c)
            .await
            .optional()
    })
}

/// Takes one attempt's turn: counts it up front, only while the challenge is live and has
/// fewer than `max` failures. `None`: no turn (unknown, spent, expired or dead).
pub async fn take_turn(
    conn: &mut Conn,
    token_hash: &str,
    max: i32,
    now: NaiveDateTime,
) -> Result<Option<Challenge>, DbError> {
    run!(conn, |c| {
        diesel::update(
            two_factor_challenge::table
                .find(token_hash)
                .filter(two_factor_challenge::failures.lt(max))
                .filter(two_factor_challenge::expires_at.gt(now)),
        )
        .set(two_factor_challenge::failures.eq(two_factor_challenge::failures + 1))
        .returning(Challenge::as_returning())
        .get_result(c)
        .await
        .optional()
    })
}

/// Consumes the challenge (single use). False when another request consumed it first.
pub async fn consume(conn: &mut Conn, token_hash: &str) -> Result<bool, DbError> {
    let deleted = run!(conn, |c| {
        diesel::delete(two_factor_challenge::table.find(token_hash))
            .execute(c)
            .await
    })?;
    Ok(deleted == 1)
}

/// Stores the mailed second-factor code of a challenge (replacing an older one).
pub async fn set_otp(
    conn: &mut Conn,
    token_hash: &str,
    otp_hash: &str,
    otp_expires_at: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let updated = run!(conn, |c| {
        diesel::update(
            two_factor_challenge::table
                .find(token_hash)
                .filter(two_factor_challenge::expires_at.gt(now)),
        )
        .set((
            two_factor_challenge::otp_hash.eq(otp_hash),
            two_factor_challenge::otp_expires_at.eq(otp_expires_at),
        ))
        .execute(c)
        .await
    })?;
    Ok(updated == 1)
}

/// Deletes expired challenges (abandoned sign-ins); run periodically.
pub async fn delete_expired(conn: &mut Conn, now: NaiveDateTime) -> Result<usize, DbError> {
    run!(conn, |c| {
        diesel::delete(two_factor_challenge::table.filter(two_factor_challenge::expires_at.le(now)))
            .execute(c)
            .await
    })
}
