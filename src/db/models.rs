//! Row types: what the tables hold and what the queries insert.
//!
//! Every `Insertable` says `treat_none_as_default_value = false`: `None` is bound as NULL (no
//! column with an `Option` field has another default), so an insert is the same SQL every time
//! and diesel-async keeps it as a prepared statement. With `DEFAULT` for `None`, diesel marks the
//! statement uncacheable and PostgreSQL parses and plans every insert again (an extra round trip).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{account, session, user};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = user)]
pub struct User {
    pub id: String,
    pub name: String,
    pub email: String,
    pub email_verified: Option<bool>,
    pub image: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// `user` or `admin`.
    pub role: String,
    pub banned: bool,
    pub ban_reason: Option<String>,
    pub ban_expires: Option<NaiveDateTime>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = user, treat_none_as_default_value = false)]
pub struct NewUser<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub email: &'a str,
    pub email_verified: bool,
    pub image: Option<&'a str>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub role: &'a str,
}

/// A session row. `token_hash` is deliberately not selected: nothing above the data layer
/// ever needs it back.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = session)]
pub struct Session {
    pub id: String,
    pub expires_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub user_id: String,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = session, treat_none_as_default_value = false)]
pub struct NewSession<'a> {
    pub id: &'a str,
    pub expires_at: NaiveDateTime,
    pub token_hash: &'a str,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub ip_address: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub user_id: &'a str,
}

/// An account row without provider tokens or the password hash.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = account)]
pub struct Account {
    pub id: String,
    pub account_id: String,
    pub provider_id: String,
    pub user_id: String,
    /// The scopes a provider granted, space-separated (none for `credential`).
    pub scope: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A provider account's tokens as stored: each sealed (see `auth::seal`), never plain.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = account, treat_none_as_default_value = false)]
pub struct ProviderTokens {
    pub access_token: Option<String>,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
    pub access_token_expires_at: Option<NaiveDateTime>,
    pub refresh_token_expires_at: Option<NaiveDateTime>,
    pub scope: Option<String>,
}

/// A provider (social) account about to be written, tokens sealed.
#[derive(Debug, Insertable)]
#[diesel(table_name = account, treat_none_as_default_value = false)]
pub struct NewProviderAccount<'a> {
    pub id: &'a str,
    pub account_id: &'a str,
    pub provider_id: &'a str,
    pub user_id: &'a str,
    #[diesel(embed)]
    pub tokens: ProviderTokens,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = account, treat_none_as_default_value = false)]
pub struct NewAccount<'a> {
    pub id: &'a str,
    pub account_id: &'a str,
    pub provider_id: &'a str,
    pub user_id: &'a str,
    pub password: Option<&'a str>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// One audit trail entry.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::audit_event, treat_none_as_default_value = false)]
pub struct AuditEvent {
    pub id: String,
    pub created_at: NaiveDateTime,
    pub kind: String,
    pub actor_user_id: Option<String>,
    pub subject_user_id: Option<String>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    /// `success` or `failure`.
    pub outcome: String,
    /// JSON, never a secret.
    pub detail: Option<String>,
}

/// A user's role (`user.role`), as Better Auth's admin plugin names them. At the bottom, so the
/// domain and the queries share it and `db` names nothing above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Admin => "admin",
        }
    }

    /// The role a stored or client-given name denotes; `None` for anything else.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::User, Self::Admin]
            .into_iter()
            .find(|r| r.as_str() == name)
    }
}
