//! Queries on `passkey`: a user's WebAuthn credentials. The last way to sign in is counted
//! across `account` and `passkey` in one transaction ([`delete_unless_last`], and
//! `accounts::delete_unless_last` for the other direction).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::models::User;
use super::schema::{account, passkey, user};
use super::{Conn, DbError, run, transaction};

/// A passkey as stored. `public_key` is the verifier's serialised credential.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = passkey)]
pub struct Passkey {
    pub id: String,
    pub name: Option<String>,
    pub public_key: String,
    pub user_id: String,
    pub credential_id: String,
    pub counter: i64,
    pub device_type: String,
    pub backed_up: bool,
    pub transports: Option<String>,
    pub created_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
    pub aaguid: Option<String>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = passkey, treat_none_as_default_value = false)]
pub struct NewPasskey<'a> {
    pub id: &'a str,
    pub name: Option<&'a str>,
    pub public_key: &'a str,
    pub user_id: &'a str,
    pub credential_id: &'a str,
    pub counter: i64,
    pub device_type: &'a str,
    pub backed_up: bool,
    pub transports: Option<&'a str>,
    pub created_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
    pub aaguid: Option<&'a str>,
}

/// Stores a new passkey. A credential id already registered (by anyone) is a unique violation.
pub async fn insert(conn: &mut Conn, row: &NewPasskey<'_>) -> Result<Passkey, DbError> {
    run!(conn, |c| {
        diesel::insert_into(passkey::table)
            .values(row)
            .returning(Passkey::as_returning())
            .get_result(c)
            .await
    })
}

/// The user's passkeys, oldest first.
pub async fn list_for_user(conn: &mut Conn, user_id: &str) -> Result<Vec<Passkey>, DbError> {
    run!(conn, |c| {
        passkey::table
            .filter(passkey::user_id.eq(user_id))
            .order((passkey::created_at.asc(), passkey::id.asc()))
            .select(Passkey::as_select())
            .load(c)
            .await
    })
}

/// A passkey by its credential id, with its user.
pub async fn find_by_credential_id(
    conn: &mut Conn,
    credential_id: &str,
) -> Result<Option<(Passkey, User)>, DbError> {
    run!(conn, |c| {
        passkey::table
            .inner_join(user::table)
            .filter(passkey::credential_id.eq(credential_id))
            .select((Passkey::as_select(), User::as_select()))
            .first(c)
            .await
            .optional()
    })
}

/// Records a use: the new counter, backup state, credential and time. Refused (`false`, nothing
/// written) when another use got there first with a counter this one does not exceed — so two
/// concurrent assertions with the same non-zero counter cannot both pass.
pub async fn record_use(
    conn: &mut Conn,
    id: &str,
    previous_counter: i64,
    counter: i64,
    backed_up: bool,
    public_key: &str,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let updated = run!(conn, |c| {
        diesel::update(
            passkey::table
                .filter(passkey::id.eq(id))
                .filter(passkey::counter.eq(previous_counter)),
        )
        .set((
            passkey::counter.eq(counter),
            passkey::backed_up.eq(backed_up),
            passkey::public_key.eq(public_key),
            passkey::last_used_at.eq(now),
        ))
        .execute(c)
        .await
    })?;
    Ok(updated == 1)
}

/// Renames one of the user's passkeys; `None` when the user has no such passkey.
pub async fn rename(
    conn: &mut Conn,
    id: &str,
    user_id: &str,
    name: &str,
) -> Result<Option<Passkey>, DbError> {
    run!(conn, |c| {
        diesel::update(
            passkey::table
                .filter(passkey::id.eq(id))
                .filter(passkey::user_id.eq(user_id)),
        )
        .set(passkey::name.eq(name))
        .returning(Passkey::as_returning())
        .get_result(c)
        .await
        .optional()
    })
}

/// Deletes one of the user's passkeys unless it is their last way to sign in (no account row
/// and no other passkey): `Ok(None)` when the user has no such passkey, `Ok(Some(false))` when
/// it is the last (nothing removed). The user row is locked first (a no-op update), so two
/// concurrent removals of a user's last two ways cannot both succeed on PostgreSQL; SQLite's
/// immediate transaction serialises them anyway.
pub async fn delete_unless_last(
    conn: &mut Conn,
    id: &str,
    user_id: &str,
) -> Result<Option<bool>, DbError> {
    transaction!(conn, |c| {
        diesel::update(user::table.filter(user::id.eq(user_id)))
            .set(user::updated_at.eq(user::updated_at))
            .execute(c)
            .await?;
        let found: Option<String> = passkey::table
            .filter(passkey::id.eq(id))
            .filter(passkey::user_id.eq(user_id))
            .select(passkey::id)
            .first(c)
            .await
            .optional()?;
        if found.is_none() {
            return Ok(None);
        }
        let accounts: i64 = account::table
            .filter(account::user_id.eq(user_id))
            .count()
            .get_result(c)
            .await?;
        let passkeys: i64 = passkey::table
            .filter(passkey::user_id.eq(user_id))
            .count()
            .get_result(c)
            .await?;
        if accounts + passkeys <= 1 {
            return Ok(Some(false));
        }
        diesel::delete(passkey::table.filter(passkey::id.eq(id)))
            .execute(c)
            .await?;
        Ok(Some(true))
    })
}
