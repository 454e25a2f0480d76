//! The single place where errors become GraphQL errors: every error leaving the schema carries
//! `extensions.code` from the contract, and internal causes go to the log, never to the client.

use async_graphql::{ErrorExtensionValues, Response, ServerError};

use crate::error::{Code, Error};

fn with_code(mut err: ServerError, code: Code) -> ServerError {
    let ext = err
        .extensions
        .get_or_insert_with(ErrorExtensionValues::default);
    ext.set("code", code.as_str());
    err
}

fn has_code(err: &ServerError) -> bool {
    err.extensions
        .as_ref()
        .is_some_and(|e| e.get("code").is_some())
}

/// Gives a resolver error its code (and field), replacing the message of unexpected errors.
fn classify(mut err: ServerError) -> ServerError {
    if has_code(&err) {
        return err;
    }
    let Some(domain) = err.source::<Error>() else {
        // Not ours: async-graphql's own input coercion ("Failed to parse …") lands here.
        return with_code(err, Code::BadUserInput);
    };
    let code = domain.code();
    let field = match domain {
        Error::BadUserInput { field, .. } => Some(*field),
        _ => None,
    };
    let retry_after = match domain {
        Error::RateLimited { retry_after } => Some(*retry_after),
        _ => None,
    };
    match domain {
        Error::Internal(cause) => {
            tracing::error!(error = ?cause, path = ?err.path, "internal error");
        }
        Error::ServiceUnavailable(cause) => {
            tracing::warn!(error = %cause, path = ?err.path, "database unavailable");
        }
        _ => {}
    }
    err.message = domain.to_string();
    let mut err = with_code(err, code);
    if let Some(ext) = err.extensions.as_mut() {
        if let Some(field) = field {
            ext.set("field", field);
        }
        if let Some(seconds) = retry_after {
            ext.set("retryAfter", seconds);
        }
    }
    err
}

/// Limit checks that async-graphql runs during parsing are validation failures, not syntax.
fn parse_error_code(err: &ServerError) -> Code {
    let m = err.message.to_ascii_lowercase();
    if m.contains("directives") || m.contains("recursion") || m.contains("depth") {
        Code::GraphqlValidationFailed
    } else {
        Code::GraphqlParseFailed
    }
}

/// Every error of a response gets its code (the `request` hook of [`super::hooks`]).
pub(super) fn classify_all(response: &mut Response) {
    let errors = std::mem::take(&mut response.errors);
    response.errors = errors.into_iter().map(classify).collect();
}

/// A parse failure gets its code unless it has one (NUL refusals do).
pub(super) fn parse_failure(e: ServerError) -> ServerError {
    if has_code(&e) {
        return e;
    }
    let code = parse_error_code(&e);
    with_code(e, code)
}

/// async-graphql's validation errors get `GRAPHQL_VALIDATION_FAILED`.
pub(super) fn validation_failure(errors: Vec<ServerError>) -> Vec<ServerError> {
    errors
        .into_iter()
        .map(|e| with_code(e, Code::GraphqlValidationFailed))
        .collect()
}
