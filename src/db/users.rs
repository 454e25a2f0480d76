//! Queries on `user`.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::models::{NewAccount, NewSession, NewUser, Role, Session, User};
use super::schema::{account, session, user};
use super::{Conn, DbError, query, run, transaction};

pub async fn find_by_id(conn: &mut Conn, id: &str) -> Result<Option<User>, DbError> {
    run!(conn, |c| {
        user::table
            .find(id)
            .select(User::as_select())
            .first(c)
            .await
            .optional()
    })
}

pub async fn find_by_email(conn: &mut Conn, email: &str) -> Result<Option<User>, DbError> {
    run!(conn, |c| {
        user::table
            .filter(user::email.eq(email))
            .select(User::as_select())
            .first(c)
            .await
            .optional()
    })
}

query! {
    /// The user with this email and the password hash of their `provider` account (what a
    /// sign-in reads before it hashes).
    pub async fn find_with_password(
        c,
        email: &str,
        provider: &str,
    ) -> Option<(User, Option<String>)> {
        user::table
            .inner_join(account::table)
            .filter(user::email.eq(email))
            .filter(account::provider_id.eq(provider))
            .select((User::as_select(), account::password))
            .first(c)
            .await
            .optional()
    }
}

/// Creates the user, their credential account and (optionally) a first session atomically:
/// a sign-up either leaves all of them or none.
pub async fn create_with_account(
    conn: &mut Conn,
    new_user: &NewUser<'_>,
    new_account: &NewAccount<'_>,
    new_session: Option<&NewSession<'_>>,
) -> Result<(User, Option<Session>), DbError> {
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
        let session = match new_session {
            Some(s) => Some(
                diesel::insert_into(session::table)
                    .values(s)
                    .returning(Session::as_returning())
                    .get_result(c)
                    .await?,
            ),
            None => None,
        };
        Ok((created, session))
    })
}

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

/// The keyset position and filter of an admin user listing (oldest first).
pub struct UserFilter<'a> {
    /// A `LIKE` pattern, already lower-cased and escaped with `\`.
    pub pattern: Option<&'a str>,
    /// Users strictly after this `(created_at, id)`.
    pub after: Option<(NaiveDateTime, &'a str)>,
}

/// Up to `limit` users matching `filter`, oldest first, and the total matching count (ignoring
/// the position).
pub async fn page(
    conn: &mut Conn,
    filter: &UserFilter<'_>,
    limit: i64,
) -> Result<(Vec<User>, i64), DbError> {
    // A macro, not a closure: a boxed query is tied to one backend, and each `run!` arm has its own.
    macro_rules! matching {
        () => {{
            let mut q = user::table.into_boxed();
            if let Some(pattern) = filter.pattern {
                q = q.filter(
                    lower(user::email)
                        .like(pattern)
                        .escape('\\')
                        .or(lower(user::name).like(pattern).escape('\\')),
                );
            }
            q
        }};
    }
    let total: i64 = run!(conn, |c| matching!().count().get_result(c).await)?;
    let rows = run!(conn, |c| {
        let mut q = matching!();
        if let Some((at, id)) = filter.after {
            q = q.filter(
                user::created_at
                    .gt(at)
                    .or(user::created_at.eq(at).and(user::id.gt(id))),
            );
        }
        q.order((user::created_at.asc(), user::id.asc()))
            .limit(limit)
            .select(User::as_select())
            .load(c)
            .await
    })?;
    Ok((rows, total))
}

pub async fn set_role(
    conn: &mut Conn,
    id: &str,
    role: &str,
    now: NaiveDateTime,
) -> Result<Option<User>, DbError> {
    run!(conn, |c| {
        diesel::update(user::table.find(id))
            .set((user::role.eq(role), user::updated_at.eq(now)))
            .returning(User::as_returning())
            .get_result(c)
            .await
            .optional()
    })
}

/// Bans the user and ends every session of theirs, atomically.
pub async fn ban(
    conn: &mut Conn,
    id: &str,
    reason: Option<&str>,
    expires: Option<NaiveDateTime>,
    now: NaiveDateTime,
) -> Result<Option<User>, DbError> {
    transaction!(conn, |c| {
        let banned = diesel::update(user::table.find(id))
            .set((
                user::banned.eq(true),
                user::ban_reason.eq(reason),
                user::ban_expires.eq(expires),
                user::updated_at.eq(now),
            ))
            .returning(User::as_returning())
            .get_result(c)
            .await
            .optional()?;
        diesel::delete(session::table.filter(session::user_id.eq(id)))
            .execute(c)
            .await?;
        Ok(banned)
    })
}

/// Lifts a ban. With `only_expired_by`, only a ban whose expiry is at or before that time (the
/// lazy lift of an expired ban, safe against a concurrent re-ban).
pub async fn unban(
    conn: &mut Conn,
    id: &str,
    only_expired_by: Option<NaiveDateTime>,
    now: NaiveDateTime,
) -> Result<Option<User>, DbError> {
    run!(conn, |c| {
        let mut q = diesel::update(user::table)
            .filter(user::id.eq(id))
            .into_boxed();
        if let Some(t) = only_expired_by {
            q = q.filter(user::ban_expires.le(t));
        }
        q.set((
            user::banned.eq(false),
            user::ban_reason.eq(None::<String>),
            user::ban_expires.eq(None::<NaiveDateTime>),
            user::updated_at.eq(now),
        ))
        .returning(User::as_returning())
        .get_result(c)
        .await
        .optional()
    })
}

/// Deletes the user; sessions and accounts go with them (`ON DELETE CASCADE`).
pub async fn delete(conn: &mut Conn, id: &str) -> Result<bool, DbError> {
    run!(conn, |c| {
        diesel::delete(user::table.find(id)).execute(c).await
    })
    .map(|n| n > 0)
}

/// Replaces the password hash of the user's credential account, creating the account when the
/// user has none. False when the user does not exist.
pub async fn set_password(
    conn: &mut Conn,
    user_id: &str,
    new_account: &NewAccount<'_>,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    transaction!(conn, |c| {
        let exists: i64 = user::table
            .filter(user::id.eq(user_id))
            .count()
            .get_result(c)
            .await?;
        if exists == 0 {
            return Ok(false);
        }
        let updated = diesel::update(
            account::table
                .filter(account::user_id.eq(user_id))
                .filter(account::provider_id.eq(new_account.provider_id)),
        )
        .set((
            account::password.eq(new_account.password),
            account::updated_at.eq(now),
        ))
        .execute(c)
        .await?;
        if updated == 0 {
            diesel::insert_into(account::table)
                .values(new_account)
                .execute(c)
                .await?;
        }
        Ok(true)
    })
}

/// Gives `role` to the users with these (normalised) emails whose address is verified;
/// returns how many changed.
pub async fn promote_verified(
    conn: &mut Conn,
    emails: &[String],
    role: Role,
    now: NaiveDateTime,
) -> Result<usize, DbError> {
    let admin_role = role.as_str();
    run!(conn, |c| {
        diesel::update(
            user::table
                .filter(user::email.eq_any(emails))
                .filter(user::email_verified.eq(true))
                .filter(user::role.ne(admin_role)),
        )
        .set((user::role.eq(admin_role), user::updated_at.eq(now)))
        .execute(c)
        .await
    })
}

/// Replaces `from_role` by `to_role` for the users with these (normalised) emails whose
/// address is not verified; returns how many changed.
pub async fn demote_unverified(
    conn: &mut Conn,
    emails: &[String],
    (from, to): (Role, Role),
    now: NaiveDateTime,
) -> Result<usize, DbError> {
    let (from_role, to_role) = (from.as_str(), to.as_str());
    run!(conn, |c| {
        diesel::update(
            user::table
                .filter(user::email.eq_any(emails))
                .filter(
                    user::email_verified
                        .eq(false)
                        .or(user::email_verified.is_null()),
                )
                .filter(user::role.eq(from_role)),
        )
        .set((user::role.eq(to_role), user::updated_at.eq(now)))
        .execute(c)
        .await
    })
}

/// Profile fields a user may change themselves; `None` leaves a field as it is.
#[derive(Debug, AsChangeset)]
#[diesel(table_name = user)]
pub struct ProfileChanges<'a> {
    pub name: Option<&'a str>,
    /// `Some(None)` clears the image.
    pub image: Option<Option<&'a str>>,
    pub updated_at: chrono::NaiveDateTime,
}

pub async fn update_profile(
    conn: &mut Conn,
    id: &str,
    changes: &ProfileChanges<'_>,
) -> Result<Option<User>, DbError> {
    run!(conn, |c| {
        diesel::update(user::table.find(id))
            .set(changes)
            .returning(User::as_returning())
            .get_result(c)
            .await
            .optional()
    })
}

/// Removes a user with their verification tokens, sessions and accounts in one transaction
/// (explicitly, rather than trusting every backend's cascade settings). Returns whether the
/// user existed.
pub async fn delete_with_everything(conn: &mut Conn, id: &str) -> Result<bool, DbError> {
    use super::schema::verification;
    transaction!(conn, |c| {
        diesel::delete(verification::table.filter(verification::user_id.eq(id)))
            .execute(c)
            .await?;
        diesel::delete(session::table.filter(session::user_id.eq(id)))
            .execute(c)
            .await?;
        diesel::delete(account::table.filter(account::user_id.eq(id)))
            .execute(c)
            .await?;
        let n = diesel::delete(user::table.find(id)).execute(c).await?;
        Ok(n > 0)
    })
}

/// Creates a user with no account row (passwordless sign-up: magic link, email code).
pub async fn create(conn: &mut Conn, new_user: &NewUser<'_>) -> Result<User, DbError> {
    run!(conn, |c| {
        diesel::insert_into(user::table)
            .values(new_user)
            .returning(User::as_returning())
            .get_result(c)
            .await
    })
}

/// Marks the user's address verified (ownership was just proven by a link or code).
pub async fn mark_email_verified(
    conn: &mut Conn,
    id: &str,
    now: NaiveDateTime,
) -> Result<Option<User>, DbError> {
    run!(conn, |c| {
        diesel::update(user::table.find(id))
            .set((user::email_verified.eq(true), user::updated_at.eq(now)))
            .returning(User::as_returning())
            .get_result(c)
            .await
            .optional()
    })
}
