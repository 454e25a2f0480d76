//! `GET /.well-known/jwks.json`: the public keys that verify our access tokens.

use std::sync::Arc;

use poem::http::{StatusCode, header};
use poem::web::Data;
use poem::{Response, handler};

use super::{HttpState, refusal};
use crate::error::Code;

/// Verifiers may cache the document this long. A new key signs at once after a rotation, so
/// verifiers refetch on an unknown `kid`; a retired key stays published far longer than this.
const MAX_AGE_SECS: u32 = 300;

#[handler]
pub async fn jwks(Data(state): Data<&Arc<HttpState>>) -> Response {
    let doc = match state.keys.jwks().await {
        Ok(doc) => doc,
        Err(e) => {
            tracing::warn!(error = ?e, "cannot read signing keys for the JWKS");
            return refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                Code::ServiceUnavailable,
                "The service is temporarily unavailable, try again",
            );
        }
    };
    match serde_json::to_vec(&doc) {
        Ok(body) => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/jwk-set+json")
            .header(
                header::CACHE_CONTROL,
                format!("public, max-age={MAX_AGE_SECS}"),
            )
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "cannot serialize the JWKS");
            refusal(
                StatusCode::INTERNAL_SERVER_ERROR,
                Code::InternalServerError,
                "Internal server error",
            )
        }
    }
}
