//! Queries on `account`.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::models::Account;
use super::schema::account;
use super::{Conn, DbError, run};

pub async fn list_for_user(conn: &mut Conn, user_id: &str) -> Result<Vec<Account>, DbError> {
    run!(conn, |c| {
        account::table
            .filter(account::user_id.eq(user_id))
            .order(account::created_at.asc())
            .select(Account::as_select())
            .load(c)
            .await
    })
    .map_err(DbError::from)
}
