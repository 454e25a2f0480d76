//! The schema's one async-graphql extension. async-graphql calls every extension's `resolve` for
//! every field of a response, each call a boxed future, so everything that needs a hook shares
//! this one:
//!
//! - `request`: every error gets its contract code ([`super::errors`]);
//! - `parse_query`: NUL is refused in variables and literals ([`super::inputs`]), parse failures
//!   get their code;
//! - `validation`: a document the [`super::cache`] knows valid skips async-graphql's validation;
//!   a fresh verdict is recorded for later requests;
//! - `execute`: the per-operation tracing span;
//! - `resolve`, on root fields only: the rate limit ([`super::limits::RateLimit`]) before the
//!   resolver, then metrics (count by outcome, latency) and the sign-in outcome counter. Labels
//!   come from the schema's field names, never from client text, so their number stays bounded.

use std::sync::Arc;
use std::time::Instant;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextRequest,
    NextResolve, NextValidation, ResolveInfo,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Response, ServerError, ServerResult, ValidationResult, Value, Variables};
use tracing::Instrument as _;

use super::cache::{Pending, Validated};
use super::limits::RateLimit;
use super::{errors, inputs};
use crate::error::Error;
use crate::observability as obs;

/// Longest client-chosen operation name copied into the span.
const MAX_OPERATION_NAME: usize = 64;

/// The extension; with a limiter, root fields are also admitted or refused by it.
pub struct Hooks(pub Option<RateLimit>);

impl ExtensionFactory for Hooks {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(HooksExtension(self.0.clone()))
    }
}

struct HooksExtension(Option<RateLimit>);

#[async_trait::async_trait]
impl Extension for HooksExtension {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        errors::classify_all(&mut response);
        response
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        inputs::check_variables(variables)?;
        let document = next
            .run(ctx, query, variables)
            .await
            .map_err(errors::parse_failure)?;
        inputs::check_document(&document)?;
        Ok(document)
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
        let result = next.run(ctx).await.map_err(errors::validation_failure);
        if let (Ok(result), Some(pending)) = (&result, ctx.data_opt::<Pending>()) {
            pending.record(result);
        }
        result
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let name = operation_name
            .map(|n| n.chars().take(MAX_OPERATION_NAME).collect::<String>())
            .unwrap_or_default();
        let span = tracing::info_span!("graphql", operation = %name);
        next.run(ctx, operation_name).instrument(span).await
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        if info.path_node.parent.is_some() {
            return next.run(ctx, info).await;
        }
        // Boxed apart: this hook's own future (boxed for every field of every response) stays
        // a pointer wide instead of carrying the limiter's and the metrics' state, which every
        // field used to allocate and copy (perf: 3.7 % of the session query's CPU in memmove).
        Box::pin(self.root_field(ctx, info, next)).await
    }
}

impl HooksExtension {
    /// A root field: admitted by the limiter, run in its span, counted and timed.
    async fn root_field(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let field = info.name;
        let span = tracing::info_span!("field", name = field);
        let started = Instant::now();
        let result = match &self.0 {
            Some(limiter) => match limiter.admit(ctx, &info).await {
                Ok(()) => next.run(ctx, info).instrument(span).await,
                Err(refused) => Err(refused),
            },
            None => next.run(ctx, info).instrument(span).await,
        };
        let outcome = match &result {
            Ok(_) => "ok",
            Err(err) => err.source::<Error>().map_or("error", |e| e.code().as_str()),
        };
        let field = field.to_owned();
        metrics::histogram!(obs::GRAPHQL_DURATION, "field" => field.clone())
            .record(started.elapsed());
        if field == "signInEmail" {
            let outcome = if outcome == "ok" { "success" } else { outcome };
            metrics::counter!(obs::SIGN_IN, "outcome" => outcome).increment(1);
        }
        metrics::counter!(obs::GRAPHQL_REQUESTS, "field" => field, "outcome" => outcome)
            .increment(1);
        result
    }
}
