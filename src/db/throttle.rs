//! Queries on `rate_limit` (fixed-window counters) and `sign_in_failure` (per-account failed
//! sign-ins). Each counter update is one atomic statement, so replicas share exact counts.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::{rate_limit, sign_in_failure};
use super::{Conn, DbError, run};

/// Adds one to the counter `key` (created at 1 when missing) and returns the new count.
pub async fn hit(conn: &mut Conn, key: &str, expires_at: NaiveDateTime) -> Result<i32, DbError> {
    run!(conn, |c| {
        diesel::insert_into(rate_limit::table)
            .values((
                rate_limit::key.eq(key),
                rate_limit::count.eq(1),
                rate_limit::expires_at.eq(expires_at),
            ))
            .on_conflict(rate_limit::key)
            .do_update()
            .set(rate_limit::count.eq(rate_limit::count + 1))
            .returning(rate_limit::count)
            .get_result(c)
            .await
    })
}

/// Deletes counters whose window ended before `now`.
pub async fn purge(conn: &mut Conn, now: NaiveDateTime) -> Result<usize, DbError> {
    run!(conn, |c| {
        diesel::delete(rate_limit::table.filter(rate_limit::expires_at.lt(now)))
            .execute(c)
            .await
    })
}

/// `(failures, locked_until, updated_at)` of an account key; `updated_at` is the row's version.
pub async fn find_failures(
    conn: &mut Conn,
    key: &str,
) -> Result<Option<(u32, NaiveDateTime, NaiveDateTime)>, DbError> {
    let row: Option<(i32, NaiveDateTime, NaiveDateTime)> = run!(conn, |c| {
        sign_in_failure::table
            .find(key)
            .select((
                sign_in_failure::failures,
                sign_in_failure::locked_until,
                sign_in_failure::updated_at,
            ))
            .first(c)
            .await
            .optional()
    })?;
    Ok(row.map(|(n, l, u)| (u32::try_from(n).unwrap_or(0), l, u)))
}

/// Records a first failure; false when another attempt created the row first.
pub async fn insert_failures(
    conn: &mut Conn,
    key: &str,
    locked_until: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let n = run!(conn, |c| {
        diesel::insert_into(sign_in_failure::table)
            .values((
                sign_in_failure::key.eq(key),
                sign_in_failure::failures.eq(1),
                sign_in_failure::locked_until.eq(locked_until),
                sign_in_failure::updated_at.eq(now),
            ))
            .on_conflict_do_nothing()
            .execute(c)
            .await
    })?;
    Ok(n == 1)
}

/// Compare-and-swap: moves the counter from `old` (count, version) to `new` (count, lock);
/// false when another attempt changed it in between.
pub async fn swap_failures(
    conn: &mut Conn,
    key: &str,
    old: (u32, NaiveDateTime),
    new: (u32, NaiveDateTime),
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let old_count = i32::try_from(old.0).unwrap_or(i32::MAX);
    let new_count = i32::try_from(new.0).unwrap_or(i32::MAX);
    let n = run!(conn, |c| {
        diesel::update(
            sign_in_failure::table
                .filter(sign_in_failure::key.eq(key))
                .filter(sign_in_failure::failures.eq(old_count))
                .filter(sign_in_failure::updated_at.eq(old.1)),
        )
        .set((
            sign_in_failure::failures.eq(new_count),
            sign_in_failure::locked_until.eq(new.1),
            sign_in_failure::updated_at.eq(now),
        ))
        .execute(c)
        .await
    })?;
    Ok(n == 1)
}

pub async fn clear_failures(conn: &mut Conn, key: &str) -> Result<(), DbError> {
    run!(conn, |c| {
        diesel::delete(sign_in_failure::table.find(key))
            .execute(c)
            .await
    })?;
    Ok(())
}

/// Deletes counters untouched since `cutoff`.
pub async fn purge_failures(conn: &mut Conn, cutoff: NaiveDateTime) -> Result<usize, DbError> {
    run!(conn, |c| {
        diesel::delete(sign_in_failure::table.filter(sign_in_failure::updated_at.lt(cutoff)))
            .execute(c)
            .await
    })
}
