//! Queries on `account`.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::models::{Account, NewSession, Session};
use super::schema::{account, session};
use super::{Conn, DbError, run, transaction};

pub async fn list_for_user(conn: &mut Conn, user_id: &str) -> Result<Vec<Account>, DbError> {
    run!(conn, |c| {
        account::table
            .filter(account::user_id.eq(user_id))
            .order(account::created_at.asc())
            .select(Account::as_select())
            .load(c)
            .await
    })
}

/// The password hash of a user's account with `provider`: `None` when there is no such account.
pub async fn password_hash(
    conn: &mut Conn,
    user_id: &str,
    provider: &str,
) -> Result<Option<Option<String>>, DbError> {
    run!(conn, |c| {
        account::table
            .filter(account::user_id.eq(user_id))
            .filter(account::provider_id.eq(provider))
            .select(account::password)
            .first(c)
            .await
            .optional()
    })
}

/// Replaces the password hash `old` with `new` (same password, current argon2 cost); a hash
/// changed in the meantime is left alone. Returns whether the row was updated.
pub async fn upgrade_hash(
    conn: &mut Conn,
    user_id: &str,
    provider: &str,
    old: &str,
    new: &str,
) -> Result<bool, DbError> {
    run!(conn, |c| {
        diesel::update(
            account::table
                .filter(account::user_id.eq(user_id))
                .filter(account::provider_id.eq(provider))
                .filter(account::password.eq(old)),
        )
        .set(account::password.eq(new))
        .execute(c)
        .await
    })
    .map(|n| n > 0)
}

/// Sets a new password hash and, when `replacement` is given, ends every session of the user
/// and opens that one instead — all in one transaction.
pub async fn change_password(
    conn: &mut Conn,
    user_id: &str,
    provider: &str,
    hash: &str,
    now: chrono::NaiveDateTime,
    replacement: Option<&NewSession<'_>>,
) -> Result<Option<Session>, DbError> {
    transaction!(conn, |c| {
        diesel::update(
            account::table
                .filter(account::user_id.eq(user_id))
                .filter(account::provider_id.eq(provider)),
        )
        .set((account::password.eq(hash), account::updated_at.eq(now)))
        .execute(c)
        .await?;
        let Some(new) = replacement else {
            return Ok(None);
        };
        diesel::delete(session::table.filter(session::user_id.eq(user_id)))
            .execute(c)
            .await?;
        let created = diesel::insert_into(session::table)
            .values(new)
            .returning(Session::as_returning())
            .get_result(c)
            .await?;
        Ok(Some(created))
    })
}
