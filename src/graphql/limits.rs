//! Document and execution limits beyond async-graphql's own: introspection refused outright
//! where it is disabled (async-graphql's switch answers `__schema` with a silent null, which
//! tells a client nothing), and the per-field rate limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, ResolveInfo,
};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ErrorExtensionValues, PathSegment, Pos, ServerError, ServerResult, Variables};

use super::RequestState;
use crate::error::{Code, Error};
use crate::throttle::RateLimiter;

pub struct NoIntrospection;

impl ExtensionFactory for NoIntrospection {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(NoIntrospection)
    }
}

/// Whether a selection set asks for `__schema` or `__type`, through fragments too. Fragment
/// cycles are invalid GraphQL; `depth` bounds the walk regardless.
fn introspects(doc: &ExecutableDocument, set: &SelectionSet, depth: usize) -> bool {
    if depth > 32 {
        return false;
    }
    set.items.iter().any(|item| match &item.node {
        Selection::Field(f) => {
            let name = f.node.name.node.as_str();
            name == "__schema"
                || name == "__type"
                || introspects(doc, &f.node.selection_set.node, depth + 1)
        }
        Selection::InlineFragment(f) => introspects(doc, &f.node.selection_set.node, depth + 1),
        Selection::FragmentSpread(s) => doc
            .fragments
            .get(&s.node.fragment_name.node)
            .is_some_and(|f| introspects(doc, &f.node.selection_set.node, depth + 1)),
    })
}

#[async_trait::async_trait]
impl Extension for NoIntrospection {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        if doc
            .operations
            .iter()
            .any(|(_, op)| introspects(&doc, &op.node.selection_set.node, 0))
        {
            let mut err = ServerError::new("Introspection is disabled", Some(Pos::default()));
            let mut ext = ErrorExtensionValues::default();
            ext.set("code", Code::GraphqlValidationFailed.as_str());
            err.extensions = Some(ext);
            return Err(err);
        }
        Ok(doc)
    }
}

/// Counts every executed root field against the client's budget *before* its resolver runs:
/// aliases and batch entries count one each, and a refused field does no work (no hash).
/// Called from the one per-field hook ([`super::observe::Observe`]): a second extension with a
/// `resolve` hook would box a future for every field of every response.
#[derive(Clone)]
pub struct RateLimit(pub RateLimiter);

impl RateLimit {
    /// Admits or refuses the root field `info` describes.
    pub(super) async fn admit(
        &self,
        ctx: &ExtensionContext<'_>,
        info: &ResolveInfo<'_>,
    ) -> ServerResult<()> {
        if info.is_for_introspection {
            return Ok(());
        }
        let state = ctx.data_opt::<RequestState>();
        let ip = state.and_then(|s| s.client.ip);
        match self.0.hit(info.name, ip).await {
            Ok(()) => {
                if let Some(s) = state {
                    s.rate.ran();
                }
                Ok(())
            }
            Err(e) => {
                if let Error::RateLimited { retry_after } = &e {
                    crate::observability::record_rate_limited(info.name);
                    if let Some(s) = state {
                        s.rate.refused(*retry_after);
                    }
                }
                let mut err = ServerError::new(e.to_string(), None);
                err.path = vec![PathSegment::Field(
                    info.alias.unwrap_or(info.name).to_owned(),
                )];
                err.source = Some(Arc::new(e));
                Err(err)
            }
        }
    }
}

/// What the limiter did during one HTTP request (all operations of a batch): when it refused
/// every field and let none run, the transport answers 429 with `Retry-After`.
#[derive(Debug, Default)]
pub struct RateTally {
    ran: AtomicU32,
    refused: AtomicU32,
    retry_after: AtomicU64,
}

impl RateTally {
    fn ran(&self) {
        self.ran.fetch_add(1, Ordering::Relaxed);
    }

    fn refused(&self, retry_after: u64) {
        self.refused.fetch_add(1, Ordering::Relaxed);
        self.retry_after.fetch_max(retry_after, Ordering::Relaxed);
    }

    /// `Some(seconds)` when the limiter refused everything this request asked for.
    pub fn refused_whole_request(&self) -> Option<u64> {
        (self.refused.load(Ordering::Relaxed) > 0 && self.ran.load(Ordering::Relaxed) == 0)
            .then(|| self.retry_after.load(Ordering::Relaxed))
    }
}
