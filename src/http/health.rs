//! Liveness and readiness.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use poem::http::StatusCode;
use poem::web::{Data, Json};
use poem::{IntoResponse, Response, handler};
use serde_json::json;

use super::HttpState;
use crate::db::migrations;

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
    let mut conn = match state.pool.get().await {
        Ok(conn) => conn,
        Err(e) => {
            tracing::warn!(error = %e, "readiness: database unreachable");
            return not_ready("database unreachable");
        }
    };
    match migrations::applied_versions(&mut conn).await {
        Ok(applied)
            if state
                .expected_migrations
                .iter()
                .all(|v| applied.contains(v)) =>
        {
            Json(json!({ "status": "ready" })).into_response()
        }
        Ok(_) => not_ready("migrations pending"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: cannot read migrations");
            not_ready("database unreachable")
        }
    }
}
