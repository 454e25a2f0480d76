//! Per-operation tracing spans and per-root-field metrics (count by outcome, latency), plus the
//! sign-in outcome counter. Labels come from the schema's field names, never from client text,
//! so their number stays bounded. This is the schema's only per-field hook, so the rate limit
//! ([`super::limits::RateLimit`]) runs from here too, before a root field's resolver.

use std::sync::Arc;
use std::time::Instant;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextResolve, ResolveInfo,
};
use async_graphql::{Response, ServerResult, Value};
use tracing::Instrument as _;

use super::limits::RateLimit;
use crate::error::Error;
use crate::observability as obs;

/// Longest client-chosen operation name copied into the span.
const MAX_OPERATION_NAME: usize = 64;

/// The extension; with a limiter, root fields are also admitted or refused by it.
pub struct Observe(pub Option<RateLimit>);

impl ExtensionFactory for Observe {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ObserveExtension(self.0.clone()))
    }
}

struct ObserveExtension(Option<RateLimit>);

#[async_trait::async_trait]
impl Extension for ObserveExtension {
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
