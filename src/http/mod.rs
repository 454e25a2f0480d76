//! HTTP surface: routes, the GraphQL transport (content type, body limit, GET vs mutations,
//! batches), credential extraction, and health. Refusals here carry the contract's JSON body.

pub mod conn;
mod graphql;
mod health;
mod jwks;
mod pages;
pub(crate) mod social;

/// Parsers of untrusted header input, public for the fuzz targets in `fuzz/`.
pub use graphql::{find_cookie, parse_hop};
mod metrics;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::{Endpoint, EndpointExt, IntoEndpoint, IntoResponse, Request, Response, Route, get};
use tracing::Instrument as _;

use crate::auth::keys::KeyStore;
use crate::auth::origin::TrustedOrigins;
use crate::error::Code;
use crate::graphql::{ApiSchema, CookiePolicy};
use crate::observability;
use crate::throttle::net::Cidr;

/// Everything the HTTP handlers share.
pub struct HttpState {
    pub schema: ApiSchema,
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
    /// Origins trusted for CORS with credentials and cookie-authenticated mutations.
    pub origins: Arc<TrustedOrigins>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<Cidr>,
    pub max_query_bytes: usize,
    /// The Prometheus registry `/metrics` renders (`None`: another recorder owns the process).
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// `APEXKIT_DB_POOL_SIZE`, reported next to the pool's live figures.
    pub pool_max_size: u32,
    /// issue 13: the per-client budgets, for the HTML form posts (`None`: rate limiting off).
    pub rate_limiter: Option<crate::throttle::RateLimiter>,
    /// issue 13: the `Strict-Transport-Security` value (https base URL only), see [`hsts`].
    pub hsts: Option<HeaderValue>,
    /// issue 13: whether the main listener serves `/metrics` (not in production).
    pub metrics_on_main: bool,
    /// issue 18: Better Auth's secret, for its signed session cookie and bearer tokens.
    pub better_auth_secret: Option<crate::auth::better_auth::Secret>,
}

/// The `Strict-Transport-Security` value for a base URL: only for https, and none for a zero
/// max-age.
pub fn hsts(base_url: &str, max_age: u64) -> Option<HeaderValue> {
    let https = base_url
        .get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"));
    (https && max_age > 0)
        .then(|| HeaderValue::from_str(&format!("max-age={max_age}")).ok())
        .flatten()
}

/// The routes of the separate metrics listener (`APEXKIT_METRICS_LISTEN`): `/metrics` only.
pub fn metrics_routes(state: &HttpState) -> impl IntoEndpoint<Endpoint: 'static> + use<> {
    Route::new()
        .at("/metrics", get(metrics::metrics))
        .data(Arc::new(metrics::Source::of(state)))
        .around(|ep, req| async move { Ok(secure(ep.call(req).await, None)) })
}

pub fn routes(state: HttpState) -> impl IntoEndpoint<Endpoint: 'static> {
    let origins = state.origins.clone();
    let hsts = state.hsts.clone();
    let metrics_source = Arc::new(metrics::Source::of(&state));
    let route = Route::new()
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
        .at(
            "/magic-link",
            get(pages::magic_link_page).post(pages::magic_link),
        )
        .at("/.well-known/jwks.json", get(jwks::jwks))
        .at(
            "/callback/:provider",
            get(social::callback_get).post(social::callback_post),
        )
        .at("/error", get(social::error_page));
    // In production /metrics lives only on APEXKIT_METRICS_LISTEN (contract).
    let route = if state.metrics_on_main {
        route.at("/metrics", get(metrics::metrics))
    } else {
        route
    };
    route
        .data(Arc::new(state))
        .data(metrics_source)
        .around(move |ep, req| {
            let origins = origins.clone();
            async move { Ok(cors(ep.as_ref(), req, &origins).await) }
        })
        .around(move |ep, req| {
            let hsts = hsts.clone();
            async move { Ok(secure(ep.call(req).await, hsts)) }
        })
        .around(with_request_id)
}

/// The security headers of every response (errors and 404s included): `nosniff` always, HSTS
/// when the base URL is https, and on HTML pages a refusal to be framed (`X-Frame-Options`,
/// `frame-ancestors 'none'` unless the page sets its own policy) and no referrer.
fn secure(resp: poem::Result<Response>, hsts: Option<HeaderValue>) -> Response {
    let mut resp = match resp {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    let html = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/html"));
    let headers = resp.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Some(value) = hsts {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, value);
    }
    if html {
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("frame-ancestors 'none'"),
            );
        }
        if !headers.contains_key(header::REFERRER_POLICY) {
            headers.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            );
        }
    }
    resp
}

/// CORS for trusted origins only, with credentials: the answer names the request's own origin
/// (never `*`, never an untrusted origin); a preflight from anyone else is refused.
async fn cors<E: Endpoint>(ep: &E, req: Request, origins: &TrustedOrigins) -> Response {
    let origin = req.header(header::ORIGIN).map(str::to_owned);
    let trusted = origin.filter(|o| origins.allows(o));
    let preflight = req.method() == Method::OPTIONS
        && req.headers().contains_key(header::ORIGIN)
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut resp = if preflight {
        if trusted.is_none() {
            return refusal(
                StatusCode::FORBIDDEN,
                crate::error::Code::Forbidden,
                "Origin not allowed",
            );
        }
        Response::builder()
            .status(StatusCode::NO_CONTENT)
            .header(header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST")
            .header(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                "authorization, content-type",
            )
            .header(header::ACCESS_CONTROL_MAX_AGE, "600")
            .finish()
    } else {
        match ep.call(req).await {
            Ok(r) => r.into_response(),
            Err(e) => e.into_response(),
        }
    };
    let headers = resp.headers_mut();
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(value) = trusted.and_then(|o| HeaderValue::from_str(&o).ok()) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    resp
}

/// The `x-request-id` response header.
pub const REQUEST_ID: &str = "x-request-id";

/// Gives every request an id (the client's when sane, else a fresh one): a tracing span carries
/// it onto every log line of the request, and the response returns it.
async fn with_request_id<E: Endpoint>(next: Arc<E>, req: Request) -> poem::Result<Response> {
    let id = observability::request_id(req.header(REQUEST_ID));
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %req.uri().path(),
    );
    let mut resp = async {
        let _in_flight = observability::InFlight::enter();
        let started = std::time::Instant::now();
        let resp = match next.call(req).await {
            Ok(resp) => resp.into_response(),
            Err(err) => err.into_response(),
        };
        tracing::debug!(
            status = resp.status().as_u16(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "request finished"
        );
        resp
    }
    .instrument(span)
    .await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID, value);
    }
    Ok(resp)
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
