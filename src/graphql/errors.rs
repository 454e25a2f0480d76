//! The single place where errors become GraphQL errors: every error leaving the schema carries
//! `extensions.code` from the contract, and internal causes go to the log, never to the client.

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextRequest, NextValidation,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{
    ErrorExtensionValues, Response, ServerError, ServerResult, ValidationResult, Variables,
};

use super::cache::{Pending, Validated};
use crate::error::{Code, Error};

pub struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodesExtension)
    }
}

struct ErrorCodesExtension;

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

#[async_trait::async_trait]
impl Extension for ErrorCodesExtension {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        response.errors = response.errors.into_iter().map(classify).collect();
        response
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        next.run(ctx, query, variables).await.map_err(|e| {
            if has_code(&e) {
                return e;
            }
            let code = parse_error_code(&e);
            with_code(e, code)
        })
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        // A document the cache knows valid (the same text and operation, no variables).
        if let Some(Validated(result)) = ctx.data_opt::<Validated>() {
            return Ok(*result);
        }
        let result = next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|e| with_code(e, Code::GraphqlValidationFailed))
                .collect()
        });
        if let (Ok(result), Some(pending)) = (&result, ctx.data_opt::<Pending>()) {
            pending.record(result);
        }
        result
    }
}
