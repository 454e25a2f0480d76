//! Queries on `trusted_device`: browsers allowed to skip the second factor (the
//! `apexkit.trusted_device` cookie, stored as its SHA-256), each bound to one user.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::trusted_device;
use super::{Conn, DbError, run};

pub async fn insert(
    conn: &mut Conn,
    token_hash: &str,
    user_id: &str,
    expires_at: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    run!(conn, |c| {
        diesel::insert_into(trusted_device::table)
            .values((
                trusted_device::token_hash.eq(token_hash),
                trusted_device::user_id.eq(user_id),
                trusted_device::expires_at.eq(expires_at),
                trusted_device::created_at.eq(now),
            ))
            .execute(c)
            .await
    })
    .map(drop)
}

/// Whether this browser is trusted by this user at `now`.
pub async fn is_trusted(
    conn: &mut Conn,
    token_hash: &str,
    user_id: &str,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let found: i64 = run!(conn, |c| {
        trusted_device::table
            .filter(trusted_device::token_hash.eq(token_hash))
            .filter(trusted_device::user_id.eq(user_id))
            .filter(trusted_device::expires_at.gt(now))
            .count()
            .get_result(c)
            .await
    })?;
    Ok(found > 0)
}

/// Forgets every trusted browser of the user.
pub async fn delete_for_user(conn: &mut Conn, user_id: &str) -> Result<usize, DbError> {
    run!(conn, |c| {
        diesel::delete(trusted_device::table.filter(trusted_device::user_id.eq(user_id)))
            .execute(c)
            .await
    })
}

pub async fn delete_expired(conn: &mut Conn, now: NaiveDateTime) -> Result<usize, DbError> {
    run!(conn, |c| {
        diesel::delete(trusted_device::table.filter(trusted_device::expires_at.le(now)))
            .execute(c)
            .await
    })
}
