//! The per-field rate limit. (Document limits, introspection included, are `document.rs`.)

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use async_graphql::extensions::{ExtensionContext, ResolveInfo};
use async_graphql::{PathSegment, ServerError, ServerResult};

use super::RequestState;
use crate::error::Error;
use crate::throttle::RateLimiter;

/// Counts every executed root field against the client's budget *before* its resolver runs:
/// aliases and batch entries count one each, and a refused field does no work (no hash).
/// Called from the one per-field hook ([`super::hooks::Hooks`]): a second extension with a
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
