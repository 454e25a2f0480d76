//! `GET /metrics`: the Prometheus text exposition of the process's registry, with the pool's
//! figures refreshed at each scrape.

use std::sync::Arc;

use poem::http::{StatusCode, header};
use poem::web::Data;
use poem::{IntoResponse, Response, handler};

use super::HttpState;
use crate::observability;

#[handler]
pub async fn metrics(Data(state): Data<&Arc<HttpState>>) -> Response {
    let Some(handle) = &state.metrics else {
        return StatusCode::NOT_FOUND.into_response();
    };
    observability::record_pool(state.pool.stats(), state.pool_max_size);
    Response::builder()
        .status(StatusCode::OK)
        .header(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )
        .header(header::CACHE_CONTROL, "no-store")
        .body(handle.render())
}
