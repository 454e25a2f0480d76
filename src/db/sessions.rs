//! Queries on `session`. Lookups go by the SHA-256 of the token (a unique index).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::models::{NewSession, Session, User};
use super::schema::{session, user};
use super::{Conn, DbError, query, run};

query! {
    pub async fn insert(c, new: &NewSession<'_>) -> Session {
        diesel::insert_into(session::table)
            .values(new)
            .returning(Session::as_returning())
            .get_result(c)
            .await
    }
}

/// The session behind a token hash and its user: one indexed lookup.
pub async fn find_with_user(
    conn: &mut Conn,
    token_hash: &str,
) -> Result<Option<(Session, User)>, DbError> {
    run!(conn, |c| {
        session::table
            .inner_join(user::table)
            .filter(session::token_hash.eq(token_hash))
            .select((Session::as_select(), User::as_select()))
            .first(c)
            .await
            .optional()
    })
}

/// Gives a session a new token (by its hash), if it still has the old one; returns whether it
/// did. Used once per session adopted from a Better Auth cookie.
pub async fn replace_token_hash(
    conn: &mut Conn,
    id: &str,
    old_hash: &str,
    new_hash: &str,
) -> Result<bool, DbError> {
    run!(conn, |c| {
        diesel::update(
            session::table
                .find(id)
                .filter(session::token_hash.eq(old_hash)),
        )
        .set(session::token_hash.eq(new_hash))
        .execute(c)
        .await
    })
    .map(|n| n > 0)
}

/// Moves the expiry of a session forward (the sliding window).
pub async fn extend(
    conn: &mut Conn,
    id: &str,
    expires_at: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    run!(conn, |c| {
        diesel::update(session::table.find(id))
            .set((
                session::expires_at.eq(expires_at),
                session::updated_at.eq(now),
            ))
            .execute(c)
            .await
    })
    .map(drop)
}

/// Deletes one session; returns whether it existed.
pub async fn delete(conn: &mut Conn, id: &str) -> Result<bool, DbError> {
    run!(conn, |c| {
        diesel::delete(session::table.find(id)).execute(c).await
    })
    .map(|n| n > 0)
}

/// Deletes every session that expired before `now` or was created before `born_before`;
/// returns how many.
pub async fn delete_expired(
    conn: &mut Conn,
    now: NaiveDateTime,
    born_before: NaiveDateTime,
) -> Result<usize, DbError> {
    run!(conn, |c| {
        diesel::delete(
            session::table.filter(
                session::expires_at
                    .le(now)
                    .or(session::created_at.le(born_before)),
            ),
        )
        .execute(c)
        .await
    })
}

/// A user's sessions still live at `now`, newest first.
pub async fn list_active_for_user(
    conn: &mut Conn,
    user_id: &str,
    now: NaiveDateTime,
) -> Result<Vec<Session>, DbError> {
    run!(conn, |c| {
        session::table
            .filter(session::user_id.eq(user_id))
            .filter(session::expires_at.gt(now))
            .order((session::created_at.desc(), session::id.desc()))
            .select(Session::as_select())
            .load(c)
            .await
    })
}

/// Deletes one session if it belongs to `user_id`; returns whether it did.
pub async fn delete_for_user(conn: &mut Conn, id: &str, user_id: &str) -> Result<bool, DbError> {
    run!(conn, |c| {
        diesel::delete(session::table.find(id).filter(session::user_id.eq(user_id)))
            .execute(c)
            .await
    })
    .map(|n| n > 0)
}

/// Deletes every session of `user_id`, except `keep` when given; returns how many.
pub async fn delete_all_for_user(
    conn: &mut Conn,
    user_id: &str,
    keep: Option<&str>,
) -> Result<usize, DbError> {
    run!(conn, |c| {
        // Ids are never empty, so "" keeps nothing.
        diesel::delete(
            session::table
                .filter(session::user_id.eq(user_id))
                .filter(session::id.ne(keep.unwrap_or(""))),
        )
        .execute(c)
        .await
    })
}
