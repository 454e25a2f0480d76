//! The one error type of the domain and its closed set of codes (`CONTRACT.md`, "Errors").
//! How an error reaches a client is decided once, in `graphql::errors` and `http`.

use crate::db::DbError;

/// Every code a client can see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    GraphqlParseFailed,
    GraphqlValidationFailed,
    Unauthenticated,
    Forbidden,
    BadUserInput,
    InvalidEmail,
    PasswordTooShort,
    PasswordTooLong,
    PasswordCompromised,
    InvalidEmailOrPassword,
    UserAlreadyExists,
    InvalidPassword,
    EmailNotVerified,
    UserBanned,
    InvalidToken,
    TokenExpired,
    NotFound,
    RateLimited,
    PayloadTooLarge,
    UnsupportedMediaType,
    MethodNotAllowed,
    ServiceUnavailable,
    InternalServerError,
    ProviderNotFound,
    InvalidIdToken,
    FailedToUnlinkLastAccount,
    InvalidCode,
    TwoFactorNotEnabled,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GraphqlParseFailed => "GRAPHQL_PARSE_FAILED",
            Self::GraphqlValidationFailed => "GRAPHQL_VALIDATION_FAILED",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::BadUserInput => "BAD_USER_INPUT",
            Self::InvalidEmail => "INVALID_EMAIL",
            Self::PasswordTooShort => "PASSWORD_TOO_SHORT",
            Self::PasswordTooLong => "PASSWORD_TOO_LONG",
            Self::PasswordCompromised => "PASSWORD_COMPROMISED",
            Self::InvalidEmailOrPassword => "INVALID_EMAIL_OR_PASSWORD",
            Self::UserAlreadyExists => "USER_ALREADY_EXISTS",
            Self::InvalidPassword => "INVALID_PASSWORD",
            Self::EmailNotVerified => "EMAIL_NOT_VERIFIED",
            Self::UserBanned => "USER_BANNED",
            Self::InvalidToken => "INVALID_TOKEN",
            Self::TokenExpired => "TOKEN_EXPIRED",
            Self::NotFound => "NOT_FOUND",
            Self::RateLimited => "RATE_LIMITED",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            Self::InternalServerError => "INTERNAL_SERVER_ERROR",
            Self::ProviderNotFound => "PROVIDER_NOT_FOUND",
            Self::InvalidIdToken => "INVALID_ID_TOKEN",
            Self::FailedToUnlinkLastAccount => "FAILED_TO_UNLINK_LAST_ACCOUNT",
            Self::InvalidCode => "INVALID_CODE",
            Self::TwoFactorNotEnabled => "TWO_FACTOR_NOT_ENABLED",
        }
    }
}

/// A domain error. `Display` is the client-facing message: it never carries internals.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("You must be signed in")]
    Unauthenticated,
    #[error("You are not allowed to do this")]
    Forbidden,
    #[error("Invalid value for {field}: {message}")]
    BadUserInput {
        field: &'static str,
        message: &'static str,
    },
    #[error("Invalid email address")]
    InvalidEmail,
    #[error("Password must be at least {min} characters")]
    PasswordTooShort { min: usize },
    #[error("Password must be at most {max} characters")]
    PasswordTooLong { max: usize },
    #[error("This password is too common; choose another")]
    PasswordCompromised,
    #[error("Invalid email or password")]
    InvalidEmailOrPassword,
    #[error("A user with this email already exists")]
    UserAlreadyExists,
    #[error("The current password is wrong")]
    InvalidPassword,
    #[error("Verify your email address first")]
    EmailNotVerified,
    #[error("This account is banned")]
    UserBanned,
    #[error("Invalid token")]
    InvalidToken,
    #[error("This token has expired")]
    TokenExpired,
    #[error("Not found")]
    NotFound,
    #[error("Too many requests, retry in {retry_after} seconds")]
    RateLimited { retry_after: u64 },
    #[error("The service is temporarily unavailable, try again")]
    ServiceUnavailable(#[source] DbError),
    #[error("Unknown social sign-in provider")]
    ProviderNotFound,
    #[error("The ID token is not valid")]
    InvalidIdToken,
    #[error("This is your last way to sign in; add another before removing it")]
    FailedToUnlinkLastAccount,
    #[error("The code is not valid")]
    InvalidCode,
    #[error("Two-factor authentication is not enabled for this account")]
    TwoFactorNotEnabled,
    /// Anything unexpected; the cause is logged, never shown.
    #[error("Internal server error")]
    Internal(#[source] anyhow::Error),
}

impl Error {
    pub fn code(&self) -> Code {
        match self {
            Self::Unauthenticated => Code::Unauthenticated,
            Self::Forbidden => Code::Forbidden,
            Self::BadUserInput { .. } => Code::BadUserInput,
            Self::InvalidEmail => Code::InvalidEmail,
            Self::PasswordTooShort { .. } => Code::PasswordTooShort,
            Self::PasswordTooLong { .. } => Code::PasswordTooLong,
            Self::PasswordCompromised => Code::PasswordCompromised,
            Self::InvalidEmailOrPassword => Code::InvalidEmailOrPassword,
            Self::UserAlreadyExists => Code::UserAlreadyExists,
            Self::InvalidPassword => Code::InvalidPassword,
            Self::EmailNotVerified => Code::EmailNotVerified,
            Self::UserBanned => Code::UserBanned,
            Self::InvalidToken => Code::InvalidToken,
            Self::TokenExpired => Code::TokenExpired,
            Self::NotFound => Code::NotFound,
            Self::RateLimited { .. } => Code::RateLimited,
            Self::ServiceUnavailable(_) => Code::ServiceUnavailable,
            Self::Internal(_) => Code::InternalServerError,
            Self::ProviderNotFound => Code::ProviderNotFound,
            Self::InvalidIdToken => Code::InvalidIdToken,
            Self::FailedToUnlinkLastAccount => Code::FailedToUnlinkLastAccount,
            Self::InvalidCode => Code::InvalidCode,
            Self::TwoFactorNotEnabled => Code::TwoFactorNotEnabled,
        }
    }

    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self::Internal(cause.into())
    }
}

impl From<DbError> for Error {
    fn from(err: DbError) -> Self {
        match err {
            DbError::Unavailable(_) => Self::ServiceUnavailable(err),
            other => Self::Internal(other.into()),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
