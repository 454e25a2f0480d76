//! Liveness and readiness.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use poem::http::StatusCode;
use poem::web::{Data, Json};
use poem::{IntoResponse, Response, handler};
use serde_json::json;

use super::HttpState;
use crate::auth::health::Readiness;

/// 200 while the process serves.
#[handler]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// 200 only when the database answers and every migration of this binary is applied.
#[handler]
pub async fn readyz(Data(state): Data<&Arc<HttpState>>) -> Response {
    let not_ready = |reason: &str| {
        Json(json!({ "status": "unavailable", "reason": reason }))
            .with_status(StatusCode::SERVICE_UNAVAILABLE)
            .into_response()
    };
    if !state.ready.load(Ordering::Acquire) {
        return not_ready("shutting down");
    }
    match state.auth.readiness(&state.expected_migrations).await {
        Readiness::Ready => Json(json!({ "status": "ready" })).into_response(),
        Readiness::MigrationsPending => not_ready("migrations pending"),
        Readiness::DatabaseUnreachable => not_ready("database unreachable"),
    }
}
