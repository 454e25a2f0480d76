//! Queries on `user`.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::models::{NewAccount, NewSession, NewUser, Session, User};
use super::schema::{account, session, user};
use super::{Conn, DbError, run, transaction};

pub async fn find_by_id(conn: &mut Conn, id: &str) -> Result<Option<User>, DbError> {
    run!(conn, |c| {
        user::table
            .find(id)
            .select(User::as_select())
            .first(c)
            .await
            .optional()
    })
    .map_err(DbError::from)
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
    .map_err(DbError::from)
}

/// The user with this email and the password hash of their credential account, in one query.
pub async fn find_with_password(
    conn: &mut Conn,
    email: &str,
    provider: &str,
) -> Result<Option<(User, Option<String>)>, DbError> {
    run!(conn, |c| {
        user::table
            .inner_join(account::table)
            .filter(user::email.eq(email))
            .filter(account::provider_id.eq(provider))
            .select((User::as_select(), account::password))
            .first(c)
            .await
            .optional()
    })
    .map_err(DbError::from)
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
    .map_err(DbError::from)
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
