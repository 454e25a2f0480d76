//! `GET /metrics`: the Prometheus text exposition of the process's registry, with the pool's
//! figures refreshed at each scrape.

use std::sync::Arc;

use poem::http::{StatusCode, header};
use poem::web::Data;
use poem::{IntoResponse, Response, handler};

use super::HttpState;
use crate::auth::Auth;
use crate::observability;

/// What a scrape reads: the registry and the pool (shared by both listeners).
pub struct Source {
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    auth: Auth,
    pool_max_size: u32,
}

impl Source {
    pub fn of(state: &HttpState) -> Self {
        Self {
            metrics: state.metrics.clone(),
            auth: state.auth.clone(),
            pool_max_size: state.pool_max_size,
        }
    }
}

#[handler]
pub async fn metrics(Data(state): Data<&Arc<Source>>) -> Response {
    let Some(handle) = &state.metrics else {
        return StatusCode::NOT_FOUND.into_response();
    };
    observability::record_pool(state.auth.pool_stats(), state.pool_max_size);
    Response::builder()
        .status(StatusCode::OK)
        .header(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )
        .header(header::CACHE_CONTROL, "no-store")
        .body(handle.render())
}
