//! The audit trail: who did what to whom, from where, and whether it worked. Any use case
//! records an event with one call, [`Context::record`](super::Context::record); nothing secret (password, token, hash) may
//! go into an event, only ids, emails and short reasons.

use chrono::NaiveDateTime;

use super::admin::AdminService;
use super::{ClientInfo, now, token};
use crate::db::audit::{self, AuditFilter};
use crate::db::models::AuditEvent as Row;
use crate::error::Result;

/// A recorded audit event, as the admin queries return it.
pub type AuditRecord = Row;

/// Every kind of event, and its name in the `audit_event.type` column (see the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditKind {
    SignUp,
    SignIn,
    SignOut,
    PasswordChange,
    PasswordReset,
    EmailChange,
    UserDelete,
    SessionRevoke,
    AdminCreateUser,
    AdminSetRole,
    AdminBanUser,
    AdminUnbanUser,
    AdminRevokeUserSessions,
    AdminRemoveUser,
    AdminSetUserPassword,
    AdminRotateSigningKeys,
    SchemaPush,
    SocialSignIn,
    AccountLink,
    AccountUnlink,
    TwoFactorEnable,
    TwoFactorDisable,
    TwoFactorVerify,
    BackupCodesRegenerate,
    AdminDisableTwoFactor,
    MagicLinkSignIn,
    EmailOtpSignIn,
    PasskeyRegister,
    PasskeyRename,
    PasskeyDelete,
    PasskeySignIn,
}

impl AuditKind {
    pub const ALL: [Self; 31] = [
        Self::SignUp,
        Self::SignIn,
        Self::SignOut,
        Self::PasswordChange,
        Self::PasswordReset,
        Self::EmailChange,
        Self::UserDelete,
        Self::SessionRevoke,
        Self::AdminCreateUser,
        Self::AdminSetRole,
        Self::AdminBanUser,
        Self::AdminUnbanUser,
        Self::AdminRevokeUserSessions,
        Self::AdminRemoveUser,
        Self::AdminSetUserPassword,
        Self::AdminRotateSigningKeys,
        Self::SchemaPush,
        Self::SocialSignIn,
        Self::AccountLink,
        Self::AccountUnlink,
        Self::TwoFactorEnable,
        Self::TwoFactorDisable,
        Self::TwoFactorVerify,
        Self::BackupCodesRegenerate,
        Self::AdminDisableTwoFactor,
        Self::MagicLinkSignIn,
        Self::EmailOtpSignIn,
        Self::PasskeyRegister,
        Self::PasskeyRename,
        Self::PasskeyDelete,
        Self::PasskeySignIn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignUp => "sign_up",
            Self::SignIn => "sign_in",
            Self::SignOut => "sign_out",
            Self::PasswordChange => "password_change",
            Self::PasswordReset => "password_reset",
            Self::EmailChange => "email_change",
            Self::UserDelete => "user_delete",
            Self::SessionRevoke => "session_revoke",
            Self::AdminCreateUser => "admin_create_user",
            Self::AdminSetRole => "admin_set_role",
            Self::AdminBanUser => "admin_ban_user",
            Self::AdminUnbanUser => "admin_unban_user",
            Self::AdminRevokeUserSessions => "admin_revoke_user_sessions",
            Self::AdminRemoveUser => "admin_remove_user",
            Self::AdminSetUserPassword => "admin_set_user_password",
            Self::AdminRotateSigningKeys => "admin_rotate_signing_keys",
            Self::SchemaPush => "schema_push",
            Self::SocialSignIn => "social_sign_in",
            Self::AccountLink => "account_link",
            Self::AccountUnlink => "account_unlink",
            Self::TwoFactorEnable => "two_factor_enable",
            Self::TwoFactorDisable => "two_factor_disable",
            Self::TwoFactorVerify => "two_factor_verify",
            Self::BackupCodesRegenerate => "backup_codes_regenerate",
            Self::AdminDisableTwoFactor => "admin_disable_two_factor",
            Self::MagicLinkSignIn => "magic_link_sign_in",
            Self::EmailOtpSignIn => "email_otp_sign_in",
            Self::PasskeyRegister => "passkey_register",
            Self::PasskeyRename => "passkey_rename",
            Self::PasskeyDelete => "passkey_delete",
            Self::PasskeySignIn => "passkey_sign_in",
        }
    }
}

pub const SUCCESS: &str = "success";
pub const FAILURE: &str = "failure";

/// An event about to be recorded: `AuditEvent::success(kind).actor(id).subject(id)`.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub kind: AuditKind,
    pub success: bool,
    /// Who acted (the signed-in user), if anyone.
    pub actor: Option<String>,
    /// Whom it was about.
    pub subject: Option<String>,
    /// Extra facts as JSON. Never a secret.
    pub detail: Option<serde_json::Value>,
}

impl AuditEvent {
    pub fn success(kind: AuditKind) -> Self {
        Self {
            kind,
            success: true,
            actor: None,
            subject: None,
            detail: None,
        }
    }

    pub fn failure(kind: AuditKind) -> Self {
        Self {
            success: false,
            ..Self::success(kind)
        }
    }

    /// A successful event a user caused about themselves (sign-in, password change, ...).
    pub fn by_self(kind: AuditKind, user_id: &str) -> Self {
        Self::success(kind).actor(user_id).subject(user_id)
    }

    pub fn actor(mut self, user_id: &str) -> Self {
        self.actor = Some(user_id.to_owned());
        self
    }

    pub fn subject(mut self, user_id: &str) -> Self {
        self.subject = Some(user_id.to_owned());
        self
    }

    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = Some(detail);
        self
    }

    pub(super) fn row(&self, client: &ClientInfo) -> Result<Row> {
        Ok(Row {
            id: token::new_id()?,
            created_at: now(),
            kind: self.kind.as_str().to_owned(),
            actor_user_id: self.actor.clone(),
            subject_user_id: self.subject.clone(),
            ip_address: client.ip.map(|ip| ip.to_string()),
            user_agent: client
                .user_agent
                .as_deref()
                .map(|ua| ua.chars().take(512).collect()),
            outcome: if self.success { SUCCESS } else { FAILURE }.to_owned(),
            detail: self.detail.as_ref().map(ToString::to_string),
        })
    }
}

/// A page of audit events, newest first.
#[derive(Debug)]
pub struct AuditPage {
    pub events: Vec<Row>,
    pub has_next: bool,
    pub total: i64,
}

impl AdminService<'_> {
    /// Audit events, newest first, optionally about one user and of one type.
    pub async fn audit_events(
        &self,
        _admin: &super::Admin,
        subject: Option<&str>,
        kind: Option<&str>,
        first: i64,
        before: Option<(NaiveDateTime, &str)>,
    ) -> Result<AuditPage> {
        let mut conn = self.conn().await?;
        let filter = AuditFilter {
            subject_user_id: subject,
            kind,
            before,
        };
        let (mut events, total) = audit::page(&mut conn, &filter, first + 1).await?;
        let has_next = events.len() as i64 > first;
        events.truncate(usize::try_from(first).unwrap_or(0));
        Ok(AuditPage {
            events,
            has_next,
            total,
        })
    }
}
