//! The minimal pages mailed links land on when the client named no target of its own:
//! `/verify-email` and `/reset-password`. A GET only shows a form (mail scanners that prefetch
//! links must not consume tokens); the POST does the work. Nothing from the request is echoed
//! into the HTML, and the token never leaves via `Referer`.

use std::sync::Arc;

use poem::http::{HeaderValue, StatusCode, header};
use poem::web::Data;
use poem::{Body, Request, Response, handler};

use super::HttpState;
use crate::error::Error;
use crate::mail::compose::escape_html;

const MAX_FORM_BYTES: usize = 4096;

pub(super) fn page(status: StatusCode, title: &str, body_html: &str) -> Response {
    page_with_form_action(status, title, body_html, "'self'")
}

/// [`page`] whose form may end on other origins: `form-action` also governs the redirects
/// that answer a form's POST, so a form redirecting to a trusted origin must list it.
fn page_with_form_action(
    status: StatusCode,
    title: &str,
    body_html: &str,
    form_action: &str,
) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{title}</title></head>\
         <body style=\"font-family:sans-serif;max-width:32rem;margin:3rem auto\">\
         <h1>{title}</h1>{body_html}</body></html>"
    );
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::REFERRER_POLICY, "no-referrer")
        .header(header::X_FRAME_OPTIONS, "DENY")
        .header(
            header::CONTENT_SECURITY_POLICY,
            format!(
                "default-src 'none'; style-src 'unsafe-inline'; form-action {form_action}; frame-ancestors 'none'"
            ),
        )
        .body(html)
}

/// The `token` query parameter, if present.
fn token(req: &Request) -> Option<String> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(req.uri().query().unwrap_or_default()).ok()?;
    pairs
        .into_iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v)
}

fn no_token() -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "Incomplete link",
        "<p>This link is incomplete. Open the link from the email exactly as it was sent.</p>",
    )
}

fn failure(e: &Error) -> Response {
    match e {
        Error::InvalidToken => page(
            StatusCode::BAD_REQUEST,
            "Link not valid",
            "<p>This link is not valid or has already been used. Request a new one.</p>",
        ),
        Error::TokenExpired => page(
            StatusCode::BAD_REQUEST,
            "Link expired",
            "<p>This link has expired. Request a new one.</p>",
        ),
        Error::PasswordTooShort { .. }
        | Error::PasswordTooLong { .. }
        | Error::PasswordCompromised => page(
            StatusCode::BAD_REQUEST,
            "Choose another password",
            // Our own message (no user input in it), escaped all the same.
            &format!(
                "<p>{}</p><form method=\"post\"><label>New password \
                 <input type=\"password\" name=\"password\" autocomplete=\"new-password\" required>\
                 </label> <button type=\"submit\">Set password</button></form>",
                escape_html(&e.to_string())
            ),
        ),
        other => {
            if matches!(other, Error::Internal(_) | Error::ServiceUnavailable(_)) {
                tracing::error!(error = ?other, "account page failed");
            }
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again later",
                "<p>Something went wrong on our side. Please try again in a moment.</p>",
            )
        }
    }
}

/// Counts this form post against the client's budget for its GraphQL twin `field` (the same
/// rule table and counters): `Some(refusal)` once the budget is spent — 429 with `Retry-After`,
/// a page for a browser (`Accept: text/html`), else the JSON body of every HTTP-level refusal.
async fn admit(req: &Request, state: &HttpState, field: &str) -> Option<Response> {
    let limiter = state.rate_limiter.as_ref()?;
    let ip = super::graphql::client_info(req, state).ip;
    match limiter.hit(field, ip).await {
        Ok(()) => None,
        Err(Error::RateLimited { retry_after }) => {
            crate::observability::record_rate_limited(field);
            let wants_html = req
                .header(header::ACCEPT)
                .is_some_and(|a| a.contains("text/html"));
            if !wants_html {
                return Some(super::graphql::too_many_requests(retry_after));
            }
            let mut resp = page(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts",
                &format!(
                    "<p>Too many attempts from your network. Try again in {retry_after} seconds.</p>"
                ),
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            Some(resp)
        }
        Err(e) => Some(failure(&e)),
    }
}

#[handler]
pub async fn verify_email_page(req: &Request) -> Response {
    if token(req).is_none() {
        return no_token();
    }
    // The form posts to this very URL, token included; nothing is echoed.
    page(
        StatusCode::OK,
        "Confirm your email address",
        "<form method=\"post\"><button type=\"submit\">Confirm my email address</button></form>",
    )
}

#[handler]
pub async fn verify_email(req: &Request, Data(state): Data<&Arc<HttpState>>) -> Response {
    let Some(token) = token(req) else {
        return no_token();
    };
    if let Some(refused) = admit(req, state, "verifyEmail").await {
        return refused;
    }
    match state.auth.mail_flows().verify_email(&token).await {
        Ok(_) => page(
            StatusCode::OK,
            "Email address confirmed",
            "<p>Your email address is confirmed. You can close this page.</p>",
        ),
        Err(e) => failure(&e),
    }
}

#[handler]
pub async fn reset_password_page(req: &Request) -> Response {
    if token(req).is_none() {
        return no_token();
    }
    page(
        StatusCode::OK,
        "Choose a new password",
        "<form method=\"post\"><label>New password \
         <input type=\"password\" name=\"password\" autocomplete=\"new-password\" required>\
         </label> <button type=\"submit\">Set password</button></form>\
         <p>Setting a new password signs you out everywhere.</p>",
    )
}

#[derive(serde::Deserialize)]
struct ResetForm {
    password: String,
}

#[handler]
pub async fn reset_password(
    req: &Request,
    body: Body,
    Data(state): Data<&Arc<HttpState>>,
) -> Response {
    let Some(token) = token(req) else {
        return no_token();
    };
    // The same credential budget as GraphQL `resetPassword`, before anything is read or hashed.
    if let Some(refused) = admit(req, state, "resetPassword").await {
        return refused;
    }
    let form = match body.into_bytes_limit(MAX_FORM_BYTES).await {
        Ok(bytes) => serde_urlencoded::from_bytes::<ResetForm>(&bytes).ok(),
        Err(_) => None,
    };
    let Some(form) = form else {
        return page(
            StatusCode::BAD_REQUEST,
            "Choose a new password",
            "<p>Enter a new password.</p>",
        );
    };
    let client = super::graphql::client_info(req, state);
    match state
        .auth
        .mail_flows()
        .reset_password(&token, &form.password, &client)
        .await
    {
        Ok(()) => page(
            StatusCode::OK,
            "Password changed",
            "<p>Your password has been changed and every session signed out. You can sign in with the new password.</p>",
        ),
        Err(e) => failure(&e),
    }
}

/// `GET /magic-link`: only a button (a mail scanner's prefetch spends nothing). Its POST
/// redirects to the flow's `callbackURL`, which may be on any trusted origin (a frontend's):
/// the page's `form-action` lists them, or the browser would stop at the redirect.
#[handler]
pub async fn magic_link_page(req: &Request, Data(state): Data<&Arc<HttpState>>) -> Response {
    if token(req).is_none() {
        return no_token();
    }
    // Origins are validated `scheme://host[:port]` (no spaces or semicolons).
    let form_action = std::iter::once("'self'")
        .chain(state.origins.all().iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ");
    page_with_form_action(
        StatusCode::OK,
        "Sign in",
        "<form method=\"post\"><button type=\"submit\">Sign in</button></form>",
        &form_action,
    )
}

/// `POST /magic-link`: spends the link, sets the session cookie (or, with two-factor on, the
/// second step's cookie) and sends the browser on: to the flow's `callbackURL`
/// (`newUserCallbackURL` for a new user; `?twoFactorRequired=true` for the second step), or
/// for a dead link to its `errorCallbackURL` (else `/error`) with `?error=`.
#[handler]
pub async fn magic_link(req: &Request, Data(state): Data<&Arc<HttpState>>) -> Response {
    let Some(token) = token(req) else {
        return no_token();
    };
    if let Some(refused) = admit(req, state, "verifyMagicLink").await {
        return refused;
    }
    let client = super::graphql::client_info(req, state);
    match state
        .auth
        .passwordless()
        .verify_magic_link(&token, &client)
        .await
    {
        Ok(signed) => {
            let to = match (&signed.outcome, signed.new_user) {
                (crate::auth::SignInOutcome::SecondFactor(_), _) => {
                    crate::auth::social::with_query(&signed.callback, "twoFactorRequired=true")
                }
                (_, true) => signed.new_user_callback.clone(),
                (_, false) => signed.callback.clone(),
            };
            let mut resp = super::social::redirect(&to);
            super::social::set_outcome_cookies(&mut resp, state, signed.outcome);
            resp
        }
        Err(dead) => {
            let code = match &dead.error {
                Error::InvalidToken => "invalid_token",
                Error::TokenExpired => "token_expired",
                Error::UserBanned => "user_banned",
                Error::EmailNotVerified => "email_not_verified",
                other => {
                    tracing::error!(error = ?other, "magic link sign-in failed");
                    "server_error"
                }
            };
            let target = dead.error_callback.unwrap_or_else(|| "/error".to_owned());
            super::social::redirect(&crate::auth::social::with_query(
                &target,
                &format!("error={code}"),
            ))
        }
    }
}
