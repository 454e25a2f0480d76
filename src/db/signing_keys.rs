//! Queries on `signing_key`. At most one row is active (`retired_at IS NULL`, enforced by a
//! unique partial index); replacing it is one transaction that either wins or changes nothing.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::signing_key;
use super::{Conn, DbError, query, run, transaction};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = signing_key, treat_none_as_default_value = false)]
pub struct SigningKeyRow {
    /// The JWK `kid`.
    pub id: String,
    pub algorithm: String,
    /// base64url of the public key.
    pub public_key: String,
    /// The sealed private key (never leaves the domain in clear).
    pub private_key: String,
    pub created_at: NaiveDateTime,
    pub retired_at: Option<NaiveDateTime>,
}

query! {
    /// The key that signs now, if any.
    pub async fn find_active(c) -> Option<SigningKeyRow> {
        signing_key::table
            .filter(signing_key::retired_at.is_null())
            .select(SigningKeyRow::as_select())
            .first(c)
            .await
            .optional()
    }
}

/// Keys to publish: the active one and those retired after `retired_after`, newest first.
pub async fn list_published(
    conn: &mut Conn,
    retired_after: NaiveDateTime,
) -> Result<Vec<SigningKeyRow>, DbError> {
    run!(conn, |c| {
        signing_key::table
            .filter(
                signing_key::retired_at
                    .is_null()
                    .or(signing_key::retired_at.gt(retired_after)),
            )
            .order((signing_key::created_at.desc(), signing_key::id.desc()))
            .select(SigningKeyRow::as_select())
            .load(c)
            .await
    })
}

/// Makes `new` the active key, retiring `expected` (the active key the caller saw, or none).
/// Returns false, changing nothing, when another writer replaced the active key first: the
/// guarded update finds no row, or the unique index refuses a second active key.
pub async fn replace_active(
    conn: &mut Conn,
    expected: Option<&str>,
    new: &SigningKeyRow,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let result = transaction!(conn, |c| {
        if let Some(old) = expected {
            let retired = diesel::update(
                signing_key::table
                    .find(old)
                    .filter(signing_key::retired_at.is_null()),
            )
            .set(signing_key::retired_at.eq(now))
            .execute(c)
            .await?;
            if retired == 0 {
                return Ok(false);
            }
        }
        diesel::insert_into(signing_key::table)
            .values(new)
            .execute(c)
            .await?;
        Ok(true)
    });
    match result {
        Err(DbError::UniqueViolation(_)) => Ok(false),
        other => other,
    }
}

/// Deletes keys retired at or before `retired_before` (no longer published); returns how many.
pub async fn delete_retired_before(
    conn: &mut Conn,
    retired_before: NaiveDateTime,
) -> Result<usize, DbError> {
    run!(conn, |c| {
        diesel::delete(signing_key::table.filter(signing_key::retired_at.le(retired_before)))
            .execute(c)
            .await
    })
}
