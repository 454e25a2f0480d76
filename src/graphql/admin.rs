//! Resolvers of the admin fields and the developer tools. Every one starts with
//! `require_admin(ctx)`: the single authorization check, whose `Admin` the use cases require.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::types::{Session, User};
use super::{domain, require_admin, state};
use crate::auth::admin::{CreateUser, decode_cursor, encode_cursor, page_size};
use crate::auth::audit::AuditKind;
use crate::auth::audit::AuditRecord as AuditRow;
use crate::auth::migrations::MigrationState;
use crate::error::Error;

#[derive(SimpleObject)]
pub struct PageInfo {
    pub has_next_page: bool,
    /// Pass as `after` to get the next page; null on an empty page.
    pub end_cursor: Option<String>,
}

#[derive(SimpleObject)]
pub struct UserEdge {
    pub cursor: String,
    pub node: User,
}

#[derive(SimpleObject)]
pub struct UserConnection {
    pub edges: Vec<UserEdge>,
    pub page_info: PageInfo,
    /// Users matching the search, across all pages.
    pub total_count: i64,
}

/// One audit trail entry. `detail` is JSON text (never a password or token).
#[derive(SimpleObject)]
pub struct AuditEvent {
    pub id: ID,
    pub created_at: DateTime<Utc>,
    /// e.g. `sign_in`, `admin_ban_user`, `schema_push` (see the README).
    #[graphql(name = "type")]
    pub kind: String,
    pub actor_user_id: Option<ID>,
    pub subject_user_id: Option<ID>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    /// `success` or `failure`.
    pub outcome: String,
    pub detail: Option<String>,
}

impl From<AuditRow> for AuditEvent {
    fn from(r: AuditRow) -> Self {
        Self {
            id: ID(r.id),
            created_at: r.created_at.and_utc(),
            kind: r.kind,
            actor_user_id: r.actor_user_id.map(ID),
            subject_user_id: r.subject_user_id.map(ID),
            ip_address: r.ip_address,
            user_agent: r.user_agent,
            outcome: r.outcome,
            detail: r.detail,
        }
    }
}

#[derive(SimpleObject)]
pub struct AuditEventEdge {
    pub cursor: String,
    pub node: AuditEvent,
}

#[derive(SimpleObject)]
pub struct AuditEventConnection {
    pub edges: Vec<AuditEventEdge>,
    pub page_info: PageInfo,
    pub total_count: i64,
}

/// A migration as this service sees it.
#[derive(SimpleObject)]
pub struct Migration {
    /// As recorded in the database, e.g. `20261125000005`.
    pub version: String,
    /// The folder name, e.g. `2026-11-25-000005_audit_and_checksums`.
    pub name: String,
    pub applied: bool,
    pub applied_at: Option<DateTime<Utc>>,
    /// False for a migration only the database knows: it is ahead of this binary (a rollback
    /// deploy).
    pub known: bool,
    /// Applied, but its SQL changed since it ran (the recorded checksum differs).
    pub checksum_mismatch: bool,
}

impl From<MigrationState> for Migration {
    fn from(m: MigrationState) -> Self {
        Self {
            version: m.version,
            name: m.name,
            applied: m.applied,
            applied_at: m.applied_at.map(|t| t.and_utc()),
            known: m.known,
            checksum_mismatch: m.checksum_mismatch,
        }
    }
}

#[derive(SimpleObject)]
pub struct SchemaPushResult {
    pub dry_run: bool,
    /// The migrations directory read, or `embedded` when it does not exist.
    pub source: String,
    /// The migrations applied (or, dry, that would be), oldest first.
    pub migrations: Vec<String>,
    /// Their SQL, each under a `-- <name>` header.
    pub sql: String,
}

#[derive(InputObject)]
pub struct AdminCreateUserInput {
    pub name: String,
    pub email: String,
    pub password: String,
    /// `user` or `admin`; default `user` (`admin` for an address listed in
    /// APEXKIT_ADMIN_EMAILS created with `emailVerified: true`).
    pub role: Option<String>,
    pub email_verified: Option<bool>,
}

#[derive(InputObject)]
pub struct AdminSetRoleInput {
    pub user_id: ID,
    /// `user` or `admin`.
    pub role: String,
}

#[derive(InputObject)]
pub struct AdminBanUserInput {
    pub user_id: ID,
    pub reason: Option<String>,
    /// Seconds until the ban lifts by itself; absent: permanent.
    pub expires_in: Option<i64>,
}

#[derive(InputObject)]
pub struct AdminSetUserPasswordInput {
    pub user_id: ID,
    pub new_password: String,
}

fn decode_after(after: Option<&str>) -> Result<Option<(chrono::NaiveDateTime, String)>, Error> {
    after.map(decode_cursor).transpose()
}

#[derive(Default)]
pub struct AdminQuery;

#[Object]
impl AdminQuery {
    /// Users, oldest first. `search` matches email and name anywhere, case-insensitively, with
    /// `%` and `_` taken literally. `first`: 1 to 100, default 20. (admin)
    async fn admin_users(
        &self,
        ctx: &Context<'_>,
        search: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<UserConnection> {
        let admin = require_admin(ctx).await?;
        let first = page_size(first)?;
        let after = decode_after(after.as_deref())?;
        let page = domain(ctx)?
            .admin()
            .users(
                &admin,
                search.as_deref(),
                first,
                after.as_ref().map(|(t, id)| (*t, id.as_str())),
            )
            .await?;
        let edges: Vec<UserEdge> = page
            .users
            .into_iter()
            .map(|u| UserEdge {
                cursor: encode_cursor(u.created_at, &u.id),
                node: User(u),
            })
            .collect();
        Ok(UserConnection {
            page_info: PageInfo {
                has_next_page: page.has_next,
                end_cursor: edges.last().map(|e| e.cursor.clone()),
            },
            edges,
            total_count: page.total,
        })
    }

    /// One user, or null. (admin)
    async fn admin_user(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<User>> {
        let admin = require_admin(ctx).await?;
        Ok(domain(ctx)?.admin().user(&admin, &id).await?.map(User))
    }

    /// The user's live sessions, newest first. (admin)
    async fn admin_user_sessions(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
    ) -> async_graphql::Result<Vec<Session>> {
        let admin = require_admin(ctx).await?;
        let sessions = domain(ctx)?.admin().user_sessions(&admin, &user_id).await?;
        Ok(sessions
            .into_iter()
            .map(|s| Session {
                current: s.id == admin.session.id,
                inner: s,
            })
            .collect())
    }

    /// The audit trail, newest first, optionally about one user (`userId`: the subject) and of
    /// one `type`. (admin)
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        user_id: Option<ID>,
        #[graphql(name = "type")] kind: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<AuditEventConnection> {
        let admin = require_admin(ctx).await?;
        let first = page_size(first)?;
        if let Some(kind) = &kind
            && !AuditKind::ALL.iter().any(|k| k.as_str() == kind)
        {
            return Err(Error::BadUserInput {
                field: "type",
                message: "not an audit event type",
            }
            .into());
        }
        let after = decode_after(after.as_deref())?;
        let page = domain(ctx)?
            .admin()
            .audit_events(
                &admin,
                user_id.as_ref().map(|id| id.as_str()),
                kind.as_deref(),
                first,
                after.as_ref().map(|(t, id)| (*t, id.as_str())),
            )
            .await?;
        let edges: Vec<AuditEventEdge> = page
            .events
            .into_iter()
            .map(|e| AuditEventEdge {
                cursor: encode_cursor(e.created_at, &e.id),
                node: AuditEvent::from(e),
            })
            .collect();
        Ok(AuditEventConnection {
            page_info: PageInfo {
                has_next_page: page.has_next,
                end_cursor: edges.last().map(|e| e.cursor.clone()),
            },
            edges,
            total_count: page.total,
        })
    }

    /// Every migration this binary knows (in development, plus those only in the migrations
    /// directory) and every one the database has applied, oldest first. (admin)
    async fn migrations(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Migration>> {
        let admin = require_admin(ctx).await?;
        let states = domain(ctx)?.admin().migration_status(&admin).await?;
        Ok(states.into_iter().map(Migration::from).collect())
    }

    /// How many accounts still hold a password hash from an adopted Better Auth database
    /// (scrypt); each is re-stored as argon2id at its owner's next successful sign-in. (admin)
    async fn legacy_password_hashes(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        let admin = require_admin(ctx).await?;
        Ok(domain(ctx)?.admin().legacy_password_hashes(&admin).await?)
    }
}

#[derive(Default)]
pub struct AdminMutation;

#[Object]
impl AdminMutation {
    /// Creates a user with a credential account (no session). (admin)
    async fn admin_create_user(
        &self,
        ctx: &Context<'_>,
        input: AdminCreateUserInput,
    ) -> async_graphql::Result<User> {
        let admin = require_admin(ctx).await?;
        let user = domain(ctx)?
            .admin()
            .create_user(
                &admin,
                &state(ctx)?.client,
                CreateUser {
                    name: &input.name,
                    email: &input.email,
                    password: &input.password,
                    role: input.role.as_deref(),
                    email_verified: input.email_verified.unwrap_or(false),
                },
            )
            .await?;
        Ok(User(user))
    }

    /// Sets the role: `user` or `admin`. (admin)
    async fn admin_set_role(
        &self,
        ctx: &Context<'_>,
        input: AdminSetRoleInput,
    ) -> async_graphql::Result<User> {
        let admin = require_admin(ctx).await?;
        let user = domain(ctx)?
            .admin()
            .set_role(&admin, &state(ctx)?.client, &input.user_id, &input.role)
            .await?;
        Ok(User(user))
    }

    /// Bans the user (for `expiresIn` seconds, or for good) and ends their sessions. (admin)
    async fn admin_ban_user(
        &self,
        ctx: &Context<'_>,
        input: AdminBanUserInput,
    ) -> async_graphql::Result<User> {
        let admin = require_admin(ctx).await?;
        let user = domain(ctx)?
            .admin()
            .ban_user(
                &admin,
                &state(ctx)?.client,
                &input.user_id,
                input.reason.as_deref(),
                input.expires_in,
            )
            .await?;
        Ok(User(user))
    }

    /// Lifts a ban. (admin)
    async fn admin_unban_user(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
    ) -> async_graphql::Result<User> {
        let admin = require_admin(ctx).await?;
        let user = domain(ctx)?
            .admin()
            .unban_user(&admin, &state(ctx)?.client, &user_id)
            .await?;
        Ok(User(user))
    }

    /// Ends every session of the user. (admin)
    async fn admin_revoke_user_sessions(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
    ) -> async_graphql::Result<bool> {
        let admin = require_admin(ctx).await?;
        Ok(domain(ctx)?
            .admin()
            .revoke_user_sessions(&admin, &state(ctx)?.client, &user_id)
            .await?)
    }

    /// Removes the user with their sessions and accounts. (admin)
    async fn admin_remove_user(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
    ) -> async_graphql::Result<bool> {
        let admin = require_admin(ctx).await?;
        Ok(domain(ctx)?
            .admin()
            .remove_user(&admin, &state(ctx)?.client, &user_id)
            .await?)
    }

    /// Sets the user's password (the password policy applies). (admin)
    async fn admin_set_user_password(
        &self,
        ctx: &Context<'_>,
        input: AdminSetUserPasswordInput,
    ) -> async_graphql::Result<bool> {
        let admin = require_admin(ctx).await?;
        Ok(domain(ctx)?
            .admin()
            .set_user_password(
                &admin,
                &state(ctx)?.client,
                &input.user_id,
                &input.new_password,
            )
            .await?)
    }
}

/// Fields that exist only in the development schema.
#[derive(Default)]
pub struct DevToolsMutation;

#[Object]
impl DevToolsMutation {
    /// Applies the pending migrations of the migrations directory on disk (or, without one, the
    /// embedded set) to the live database, like `drizzle-kit push`; `dryRun: true` only lists
    /// them with their SQL. (admin, development only: absent from the production schema)
    async fn push_schema(
        &self,
        ctx: &Context<'_>,
        dry_run: Option<bool>,
    ) -> async_graphql::Result<SchemaPushResult> {
        let admin = require_admin(ctx).await?;
        let report = domain(ctx)?
            .admin()
            .push_schema(&admin, &state(ctx)?.client, dry_run.unwrap_or(false))
            .await?;
        Ok(SchemaPushResult {
            dry_run: report.dry_run,
            source: report.source,
            migrations: report.migrations,
            sql: report.sql,
        })
    }
}
