//! Queries on `account`.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use chrono::NaiveDateTime;

use super::models::{
    Account, NewProviderAccount, NewSession, NewUser, ProviderTokens, Session, User,
};
use super::schema::{account, passkey, session, user};
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

/// Credential accounts whose password hash is not a PHC string (`$argon2id$…`): hashes from
/// an adopted database (Better Auth's `salt:key` scrypt), replaced at each one's next sign-in.
pub async fn count_legacy_hashes(conn: &mut Conn, provider: &str) -> Result<i64, DbError> {
    run!(conn, |c| {
        account::table
            .filter(account::provider_id.eq(provider))
            .filter(account::password.is_not_null())
            .filter(account::password.not_like("$%"))
            .count()
            .get_result(c)
            .await
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

/// A provider account by the provider's id for the user (`sub`), with its user.
pub async fn find_provider_account(
    conn: &mut Conn,
    provider: &str,
    account_id: &str,
) -> Result<Option<(Account, User)>, DbError> {
    run!(conn, |c| {
        account::table
            .inner_join(user::table)
            .filter(account::provider_id.eq(provider))
            .filter(account::account_id.eq(account_id))
            .select((Account::as_select(), User::as_select()))
            .first(c)
            .await
            .optional()
    })
}

/// Links a provider account to an existing user. A unique violation means the identity is
/// already linked (a concurrent first sign-in): the caller decides.
pub async fn insert_provider_account(
    conn: &mut Conn,
    new: &NewProviderAccount<'_>,
) -> Result<(), DbError> {
    run!(conn, |c| {
        diesel::insert_into(account::table)
            .values(new)
            .execute(c)
            .await
    })
    .map(drop)
}

/// Creates a user and their first (provider) account in one transaction.
pub async fn create_user_with_provider_account(
    conn: &mut Conn,
    new_user: &NewUser<'_>,
    new_account: &NewProviderAccount<'_>,
) -> Result<User, DbError> {
    transaction!(conn, |c| {
        let created = diesel::insert_into(user::table)
            .values(new_user)
            .returning(User::as_returning())
            .get_result(c)
            .await?;
        diesel::insert_into(account::table)
            .values(new_account)
            .execute(c)
            .await?;
        Ok(created)
    })
}

/// Replaces a provider account's (sealed) tokens.
pub async fn update_tokens(
    conn: &mut Conn,
    id: &str,
    tokens: &ProviderTokens,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    run!(conn, |c| {
        diesel::update(account::table.filter(account::id.eq(id)))
            .set((tokens, account::updated_at.eq(now)))
            .execute(c)
            .await
    })
    .map(drop)
}

/// One of the user's accounts with `provider` (the given `account_id`, else the oldest), with
/// its sealed tokens.
pub async fn provider_tokens(
    conn: &mut Conn,
    user_id: &str,
    provider: &str,
    account_id: Option<&str>,
) -> Result<Option<(Account, ProviderTokens)>, DbError> {
    run!(conn, |c| {
        let mut query = account::table
            .filter(account::user_id.eq(user_id))
            .filter(account::provider_id.eq(provider))
            .order(account::created_at.asc())
            .select((Account::as_select(), ProviderTokens::as_select()))
            .into_boxed();
        if let Some(account_id) = account_id {
            query = query.filter(account::account_id.eq(account_id));
        }
        query.first(c).await.optional()
    })
}

/// Removes one of the user's accounts unless it is their last: `Ok(None)` when there is no
/// such account, `Ok(Some(false))` when it is the user's last way to sign in: no other account
/// and no passkey (nothing removed).
pub async fn delete_unless_last(
    conn: &mut Conn,
    user_id: &str,
    provider: &str,
    account_id: Option<&str>,
) -> Result<Option<bool>, DbError> {
    transaction!(conn, |c| {
        // Locks the user row (see `passkeys::delete_unless_last`, which counts the same way).
        diesel::update(user::table.filter(user::id.eq(user_id)))
            .set(user::updated_at.eq(user::updated_at))
            .execute(c)
            .await?;
        let mut query = account::table
            .filter(account::user_id.eq(user_id))
            .filter(account::provider_id.eq(provider))
            .order(account::created_at.asc())
            .select(account::id)
            .into_boxed();
        if let Some(account_id) = account_id {
            query = query.filter(account::account_id.eq(account_id));
        }
        let Some(id) = query.first::<String>(c).await.optional()? else {
            return Ok(None);
        };
        let count: i64 = account::table
            .filter(account::user_id.eq(user_id))
            .count()
            .get_result(c)
            .await?;
        // Passkeys are ways to sign in too (CONTRACT: "no account row and no passkey").
        let passkeys: i64 = passkey::table
            .filter(passkey::user_id.eq(user_id))
            .count()
            .get_result(c)
            .await?;
        if count + passkeys <= 1 {
            return Ok(Some(false));
        }
        diesel::delete(account::table.filter(account::id.eq(&id)))
            .execute(c)
            .await?;
        Ok(Some(true))
    })
}
