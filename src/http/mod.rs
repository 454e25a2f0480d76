//! HTTP surface: routes, the GraphQL transport (content type, body limit, GET vs mutations,
//! batches), credential extraction, and health. Refusals here carry the contract's JSON body.

mod graphql;
mod health;
mod jwks;
mod pages;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use poem::http::{HeaderValue, StatusCode, header};
use poem::middleware::SetHeader;
use poem::{EndpointExt, IntoEndpoint, Response, Route, get};

use crate::auth::keys::KeyStore;
use crate::db::Pool;
use crate::error::Code;
use crate::graphql::{ApiSchema, CookiePolicy};

/// Everything the HTTP handlers share.
pub struct HttpState {
    pub schema: ApiSchema,
    pub pool: Pool,
    pub auth: crate::auth::Auth,
    /// Signing keys, for the JWKS document.
    pub keys: KeyStore,
    pub cookie: CookiePolicy,
    pub max_body_bytes: usize,
    pub max_batch: usize,
    pub graphiql: bool,
    /// Migration versions this binary expects to find applied.
    pub expected_migrations: Vec<String>,
    /// Cleared when shutdown starts, so `/readyz` turns 503 at once.
    pub ready: Arc<AtomicBool>,
}

pub fn routes(state: HttpState) -> impl IntoEndpoint<Endpoint: 'static> {
    Route::new()
        .at("/graphql", graphql::endpoint)
        .at("/healthz", get(health::healthz))
        .at("/readyz", get(health::readyz))
        .at(
            "/verify-email",
            get(pages::verify_email_page).post(pages::verify_email),
        )
        .at(
            "/reset-password",
            get(pages::reset_password_page).post(pages::reset_password),
        )
        .at("/.well-known/jwks.json", get(jwks::jwks))
        .data(Arc::new(state))
        .with(SetHeader::new().overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
}

/// A refusal at the HTTP level: `{"errors":[{"message","extensions":{"code"}}]}`.
pub(crate) fn refusal(status: StatusCode, code: Code, message: &str) -> Response {
    let body = serde_json::json!({
        "errors": [{ "message": message, "extensions": { "code": code.as_str() } }]
    });
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(body.to_string())
}
