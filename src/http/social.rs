//! Social sign-in's browser side: `GET`/`POST /callback/{provider}` finishes a flow (the
//! session cookie, then a 302 to the flow's target, or to its error target with `?error=`),
//! and `/error`, the page failures land on when the flow named no target of its own. The
//! callback's code and state never reach a log: the request span logs the path only.

use std::sync::Arc;

use poem::http::{StatusCode, header};
use poem::web::{Data, Path};
use poem::{Body, Request, Response, handler};

use super::HttpState;
use crate::auth::SignInOutcome;
use crate::auth::social::{CallbackParams, Failure, STATE_COOKIE};
use crate::mail::compose::escape_html;
use crate::observability::record_social_sign_in;

const MAX_FORM_BYTES: usize = 16 * 1024;

pub(super) fn redirect(to: &str) -> Response {
    Response::builder()
        .status(StatusCode::FOUND)
        .header(header::LOCATION, to)
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::REFERRER_POLICY, "no-referrer")
        .finish()
}

/// Clears the flow's browser-binding cookie (it is single use like the flow).
fn clear_binding(state: &HttpState) -> String {
    crate::graphql::social::binding_cookie(&state.cookie, "", 0)
}

async fn finish(
    req: &Request,
    state: &HttpState,
    provider: &str,
    params: CallbackParams,
) -> Response {
    let client = super::graphql::client_info(req, state);
    let browser = super::graphql::cookie(req, STATE_COOKIE).filter(|v| !v.is_empty());
    let finished = state
        .auth
        .social()
        .finish(provider, params, browser, &client)
        .await;
    let outcome = match &finished.outcome {
        Ok(_) => "success",
        Err(failure) => failure.reason(),
    };
    // An unknown provider is not a label worth keeping (anyone can make up ids).
    let label = if matches!(finished.outcome, Err(Failure::ProviderNotFound)) {
        "unknown"
    } else {
        provider
    };
    record_social_sign_in(label, outcome);
    let mut resp = redirect(&finished.redirect);
    if finished.spent
        && let Ok(value) = clear_binding(state).parse()
    {
        resp.headers_mut().append(header::SET_COOKIE, value);
    }
    if let Ok(Some(outcome)) = finished.outcome {
        set_outcome_cookies(&mut resp, state, outcome);
    }
    resp
}

/// The cookies of a browser sign-in's end: the session cookie, or (the second step) the
/// `apexkit.two_factor` cookie.
pub(super) fn set_outcome_cookies(resp: &mut Response, state: &HttpState, outcome: SignInOutcome) {
    let cookie = match outcome {
        SignInOutcome::SignedIn(signed) => {
            let max_age = (signed.session.expires_at - signed.session.created_at).num_seconds();
            state.cookie.set(signed.token.expose(), Some(max_age))
        }
        SignInOutcome::SecondFactor(pending) => state.cookie.set_named(
            crate::graphql::TWO_FACTOR_COOKIE,
            pending.token.expose(),
            i64::try_from(crate::auth::two_factor::CHALLENGE_LIFETIME.as_secs()).ok(),
        ),
    };
    if let Ok(value) = cookie.parse() {
        resp.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// The authorization response in the query (`response_mode=query`).
#[handler]
pub async fn callback_get(
    req: &Request,
    Path(provider): Path<String>,
    Data(state): Data<&Arc<HttpState>>,
) -> Response {
    let params = serde_urlencoded::from_str::<CallbackParams>(req.uri().query().unwrap_or(""))
        .unwrap_or_default();
    finish(req, state, &provider, params).await
}

/// The authorization response as a form (`response_mode=form_post`).
#[handler]
pub async fn callback_post(
    req: &Request,
    body: Body,
    Path(provider): Path<String>,
    Data(state): Data<&Arc<HttpState>>,
) -> Response {
    let params = match body.into_bytes_limit(MAX_FORM_BYTES).await {
        Ok(bytes) => serde_urlencoded::from_bytes::<CallbackParams>(&bytes).unwrap_or_default(),
        Err(_) => CallbackParams::default(),
    };
    finish(req, state, &provider, params).await
}

/// The page failures land on without an `errorCallbackURL`: says what went wrong (the
/// `error` code, escaped), nothing else.
#[handler]
pub async fn error_page(req: &Request) -> Response {
    let code = serde_urlencoded::from_str::<Vec<(String, String)>>(req.uri().query().unwrap_or(""))
        .ok()
        .and_then(|pairs| {
            pairs
                .into_iter()
                .find(|(k, _)| k == "error")
                .map(|(_, v)| v)
        })
        .unwrap_or_else(|| "unknown_error".to_owned());
    let code: String = code.chars().take(64).collect();
    super::pages::page(
        StatusCode::OK,
        "Sign-in failed",
        &format!(
            "<p>Signing in did not work. Go back and try again.</p><p><code id=\"error\">{}</code></p>",
            escape_html(&code)
        ),
    )
}
