//! Queries on `two_factor` (a user's TOTP enrolment: sealed secret, enabled flag, last accepted
//! step) and `two_factor_backup_code` (one row per unused backup code, keyed hash only).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::{trusted_device, two_factor, two_factor_backup_code, two_factor_challenge};
use super::{Conn, DbError, run, transaction};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = two_factor)]
pub struct TwoFactor {
    pub user_id: String,
    pub secret: String,
    pub enabled: bool,
    pub last_step: Option<i64>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = two_factor_backup_code, treat_none_as_default_value = false)]
pub struct NewBackupCode<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub code_hash: &'a str,
    pub created_at: NaiveDateTime,
}

pub async fn find(conn: &mut Conn, user_id: &str) -> Result<Option<TwoFactor>, DbError> {
    run!(conn, |c| {
        two_factor::table
            .find(user_id)
            .select(TwoFactor::as_select())
            .first(c)
            .await
            .optional()
    })
}

/// Whether the user has two-factor on (an enrolment not yet confirmed does not count).
pub async fn is_enabled(conn: &mut Conn, user_id: &str) -> Result<bool, DbError> {
    let enabled: Option<bool> = run!(conn, |c| {
        two_factor::table
            .find(user_id)
            .select(two_factor::enabled)
            .first(c)
            .await
            .optional()
    })?;
    Ok(enabled == Some(true))
}

/// Starts (or restarts) an enrolment: a new secret, not enabled, and a new set of backup codes
/// replacing any old ones — all in one transaction. Refuses (returns false, writes nothing)
/// when two-factor is already enabled.
pub async fn enrol(
    conn: &mut Conn,
    user_id: &str,
    sealed_secret: &str,
    codes: &[NewBackupCode<'_>],
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    transaction!(conn, |c| {
        let enabled: Option<bool> = two_factor::table
            .find(user_id)
            .select(two_factor::enabled)
            .first(c)
            .await
            .optional()?;
        match enabled {
            Some(true) => return Ok(false),
            Some(false) => {
                diesel::update(two_factor::table.find(user_id))
                    .set((
                        two_factor::secret.eq(sealed_secret),
                        two_factor::last_step.eq(None::<i64>),
                        two_factor::updated_at.eq(now),
                    ))
                    .execute(c)
                    .await?;
            }
            None => {
                diesel::insert_into(two_factor::table)
                    .values((
                        two_factor::user_id.eq(user_id),
                        two_factor::secret.eq(sealed_secret),
                        two_factor::enabled.eq(false),
                        two_factor::created_at.eq(now),
                        two_factor::updated_at.eq(now),
                    ))
                    .execute(c)
                    .await?;
            }
        }
        diesel::delete(
            two_factor_backup_code::table.filter(two_factor_backup_code::user_id.eq(user_id)),
        )
        .execute(c)
        .await?;
        // One row at a time: SQLite has no multi-row insert with defaults in diesel.
        for code in codes {
            diesel::insert_into(two_factor_backup_code::table)
                .values(code)
                .execute(c)
                .await?;
        }
        Ok(true)
    })
}

/// Records `step` as the last accepted TOTP step, only if it is later than the last one (and,
/// with `enable`, turns two-factor on). False: a replay (or no enrolment) — nothing changed.
pub async fn accept_step(
    conn: &mut Conn,
    user_id: &str,
    step: i64,
    enable: bool,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let fresh = two_factor::last_step
        .is_null()
        .or(two_factor::last_step.lt(step));
    let updated = if enable {
        run!(conn, |c| {
            diesel::update(two_factor::table.find(user_id).filter(fresh))
                .set((
                    two_factor::last_step.eq(step),
                    two_factor::enabled.eq(true),
                    two_factor::updated_at.eq(now),
                ))
                .execute(c)
                .await
        })?
    } else {
        run!(conn, |c| {
            diesel::update(
                two_factor::table
                    .find(user_id)
                    .filter(two_factor::enabled.eq(true))
                    .filter(fresh),
            )
            .set(two_factor::last_step.eq(step))
            .execute(c)
            .await
        })?
    };
    Ok(updated == 1)
}

/// Spends one backup code (single use: of two concurrent uses, one deletes the row).
pub async fn spend_backup_code(
    conn: &mut Conn,
    user_id: &str,
    code_hash: &str,
) -> Result<bool, DbError> {
    let deleted = run!(conn, |c| {
        diesel::delete(
            two_factor_backup_code::table
                .filter(two_factor_backup_code::user_id.eq(user_id))
                .filter(two_factor_backup_code::code_hash.eq(code_hash)),
        )
        .execute(c)
        .await
    })?;
    Ok(deleted == 1)
}

/// The user's unused backup codes.
pub async fn count_backup_codes(conn: &mut Conn, user_id: &str) -> Result<i64, DbError> {
    run!(conn, |c| {
        two_factor_backup_code::table
            .filter(two_factor_backup_code::user_id.eq(user_id))
            .count()
            .get_result(c)
            .await
    })
}

/// Replaces every backup code of the user (the old ones are void).
pub async fn replace_backup_codes(
    conn: &mut Conn,
    user_id: &str,
    codes: &[NewBackupCode<'_>],
) -> Result<(), DbError> {
    transaction!(conn, |c| {
        diesel::delete(
            two_factor_backup_code::table.filter(two_factor_backup_code::user_id.eq(user_id)),
        )
        .execute(c)
        .await?;
        // One row at a time: SQLite has no multi-row insert with defaults in diesel.
        for code in codes {
            diesel::insert_into(two_factor_backup_code::table)
                .values(code)
                .execute(c)
                .await?;
        }
        Ok(())
    })
}

/// Turns two-factor off: the enrolment, the backup codes, pending second steps and trusted
/// browsers go together. False when there was nothing to turn off.
pub async fn remove(conn: &mut Conn, user_id: &str) -> Result<bool, DbError> {
    transaction!(conn, |c| {
        let removed = diesel::delete(two_factor::table.find(user_id))
            .execute(c)
            .await?;
        diesel::delete(
            two_factor_backup_code::table.filter(two_factor_backup_code::user_id.eq(user_id)),
        )
        .execute(c)
        .await?;
        diesel::delete(
            two_factor_challenge::table.filter(two_factor_challenge::user_id.eq(user_id)),
        )
        .execute(c)
        .await?;
        diesel::delete(trusted_device::table.filter(trusted_device::user_id.eq(user_id)))
            .execute(c)
            .await?;
        Ok(removed == 1)
    })
}
