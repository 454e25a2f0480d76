//! The GraphQL transport. Closes what async-graphql-poem leaves open: only `application/json`
//! bodies, a body size limit, a batch size limit with sequential execution, and no mutation over
//! GET. Puts the request's facts (client address, user agent, credential) into the context.

use std::net::IpAddr;
use std::sync::Arc;

use async_graphql::http::GraphiQLSource;
use async_graphql::parser::types::OperationType;
use async_graphql::{BatchRequest, BatchResponse};
use poem::error::ReadBodyError;
use poem::http::{Method, StatusCode, header};
use poem::web::{Data, Html};
use poem::{Body, IntoResponse, Request, Response, handler};

use super::{HttpState, refusal};
use crate::auth::{ClientInfo, SessionToken, better_auth};
use crate::error::Code;
use crate::graphql::{RateTally, Refusal, RequestState, Vetted};
use crate::throttle::net::Cidr;

const MAX_USER_AGENT_BYTES: usize = 1024;

#[handler]
pub async fn endpoint(req: &Request, body: Body, Data(state): Data<&Arc<HttpState>>) -> Response {
    match *req.method() {
        Method::POST => post(req, body, state).await,
        Method::GET => get(req, state).await,
        _ => method_not_allowed("GET, POST", "Use GET for queries or POST for any operation"),
    }
}

fn method_not_allowed(allow: &'static str, message: &str) -> Response {
    let mut resp = refusal(
        StatusCode::METHOD_NOT_ALLOWED,
        Code::MethodNotAllowed,
        message,
    );
    resp.headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static(allow));
    resp
}

fn is_json(req: &Request) -> bool {
    req.header(header::CONTENT_TYPE)
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

async fn post(req: &Request, body: Body, state: &HttpState) -> Response {
    if !is_json(req) {
        return refusal(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Code::UnsupportedMediaType,
            "Content-Type must be application/json",
        );
    }
    let bytes = match body.into_bytes_limit(state.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(ReadBodyError::PayloadTooLarge) => {
            // The rest of the body is never read: the connection cannot carry another request,
            // so say so (a client that reused it would write into a closed socket).
            let mut resp = refusal(
                StatusCode::PAYLOAD_TOO_LARGE,
                Code::PayloadTooLarge,
                &format!("Request body exceeds {} bytes", state.max_body_bytes),
            );
            resp.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
            return resp;
        }
        Err(_) => {
            return refusal(
                StatusCode::BAD_REQUEST,
                Code::GraphqlParseFailed,
                "Unreadable request body",
            );
        }
    };
    let batch: BatchRequest = match serde_json::from_slice(&bytes) {
        Ok(batch) => batch,
        Err(_) => {
            return refusal(
                StatusCode::BAD_REQUEST,
                Code::GraphqlParseFailed,
                "Body must be a GraphQL request object (or an array of them) in JSON",
            );
        }
    };
    execute(req, batch, state).await
}

async fn get(req: &Request, state: &HttpState) -> Response {
    let query_string = req.uri().query().unwrap_or_default();
    let wants_html = req
        .header(header::ACCEPT)
        .is_some_and(|a| a.contains("text/html"));
    if state.graphiql && wants_html && !query_string.contains("query=") {
        return Html(GraphiQLSource::build().endpoint("/graphql").finish()).into_response();
    }
    let Some(request) = parse_query_string(query_string) else {
        return refusal(
            StatusCode::BAD_REQUEST,
            Code::GraphqlParseFailed,
            "Malformed GraphQL query string",
        );
    };
    if let Some(refused) = query_too_long(&request, state) {
        return refused;
    }
    // Decide on the operation type before anything runs; a document that is refused (too
    // deep, too costly) or does not parse is answered with why.
    let vetted = state.schema.vet(request).map(|mut vetted| {
        let op = operation_type(vetted.request_mut());
        (vetted, op)
    });
    match vetted {
        Ok((_, Some(op))) if op != OperationType::Query => {
            method_not_allowed("POST", "Mutations must be sent with POST")
        }
        Ok((vetted, _)) => execute_vetted(req, vec![Ok(vetted)], false, state).await,
        Err(refused) => execute_vetted(req, vec![Err(refused)], false, state).await,
    }
}

/// GraphQL over HTTP GET parameters. async-graphql's own parser expects `operation_name`
/// instead of the spec's `operationName`; accept both.
#[derive(serde::Deserialize)]
struct GetParams {
    #[serde(default)]
    query: String,
    #[serde(rename = "operationName", alias = "operation_name")]
    operation_name: Option<String>,
    variables: Option<String>,
}

fn parse_query_string(query_string: &str) -> Option<async_graphql::Request> {
    let params: GetParams = serde_urlencoded::from_str(query_string).ok()?;
    let mut request = async_graphql::Request::new(params.query);
    if let Some(name) = params.operation_name {
        request = request.operation_name(name);
    }
    if let Some(vars) = params.variables {
        let vars: serde_json::Value = serde_json::from_str(&vars).ok()?;
        request = request.variables(async_graphql::Variables::from_json(vars));
    }
    Some(request)
}

/// The type of the operation a request would run, when its document parses.
fn operation_type(request: &mut async_graphql::Request) -> Option<OperationType> {
    let name = request.operation_name.clone();
    let doc = request.parsed_query().ok()?;
    let mut ops = doc.operations.iter();
    let op = match name {
        Some(name) => ops.find(|(n, _)| n.is_some_and(|n| n.as_str() == name))?.1,
        None => ops.next()?.1,
    };
    Some(op.node.ty)
}

/// Whether any operation of the document is a mutation (an unparseable document runs nothing).
/// The parsed document stays cached in the request for the executor.
fn has_mutation(request: &mut async_graphql::Request) -> bool {
    request.parsed_query().is_ok_and(|doc| {
        doc.operations
            .iter()
            .any(|(_, op)| op.node.ty == OperationType::Mutation)
    })
}

/// The query text is bounded before anything parses it (a long document is the cheapest way
/// to make a parser work).
fn query_too_long(request: &async_graphql::Request, state: &HttpState) -> Option<Response> {
    (request.query.len() > state.max_query_bytes).then(|| {
        refusal(
            StatusCode::PAYLOAD_TOO_LARGE,
            Code::PayloadTooLarge,
            &format!("The query exceeds {} bytes", state.max_query_bytes),
        )
    })
}

/// Cross-site request forgery: a mutation carrying an `Origin` must come from a trusted origin,
/// and a mutation authenticated by the cookie (no `Authorization` header) must prove a trusted
/// `Origin` or, lacking one, `Referer`. Server-side clients (no cookie, no Origin) pass.
fn cross_site_refusal(req: &Request, state: &HttpState) -> Option<Response> {
    let forbidden = |message: &str| Some(refusal(StatusCode::FORBIDDEN, Code::Forbidden, message));
    let origin = req.header(header::ORIGIN);
    if let Some(origin) = origin
        && !state.origins.allows(origin)
    {
        return forbidden("Cross-origin mutations are allowed from trusted origins only");
    }
    let cookie_authenticated = req.header(header::AUTHORIZATION).is_none()
        && (cookie(req, state.cookie.name).is_some()
            || cookie(
                req,
                &state.cookie.name_of(crate::graphql::TWO_FACTOR_COOKIE),
            )
            .is_some()
            || (state.better_auth_secret.is_some()
                && better_auth::COOKIE_NAMES
                    .iter()
                    .any(|name| cookie(req, name).is_some())));
    if cookie_authenticated
        && origin.is_none()
        && !req
            .header(header::REFERER)
            .is_some_and(|r| state.origins.allows(r))
    {
        return forbidden(
            "A mutation authenticated by cookie needs a trusted Origin or Referer header",
        );
    }
    None
}

/// The client address: the socket peer, unless the peer is a trusted proxy; then
/// `X-Forwarded-For` is walked from the right through trusted hops only, and the first untrusted
/// hop is the client. Forwarded headers from anyone else are ignored.
fn client_ip(req: &Request, proxies: &[Cidr]) -> Option<IpAddr> {
    let peer = req.remote_addr().as_socket_addr()?.ip().to_canonical();
    let trusted = |ip: IpAddr| proxies.iter().any(|c| c.contains(ip));
    if !trusted(peer) {
        return Some(peer);
    }
    let hops: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        // A hop that is no address (garbage, `unknown`) ends the walk at the last trusted one.
        let Some(ip) = parse_hop(hop.trim()) else {
            break;
        };
        client = ip;
        if !trusted(ip) {
            break;
        }
    }
    Some(client)
}

/// `1.2.3.4`, `2001:db8::1`, `[2001:db8::1]:443` or `1.2.3.4:80`, canonical (`::ffff:` mapped
/// addresses become IPv4).
pub fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<std::net::SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

/// Facts about the client and its credential. `Authorization` wins over the cookie, even when it
/// holds no valid token.
/// The client as the service sees it: address (through trusted proxies only) and user agent.
pub(super) fn client_info(req: &Request, state: &HttpState) -> ClientInfo {
    let ip = client_ip(req, &state.trusted_proxies);
    let user_agent = req
        .header(header::USER_AGENT)
        .filter(|ua| ua.len() <= MAX_USER_AGENT_BYTES)
        .map(str::to_owned);
    let trusted_device = cookie(
        req,
        &state.cookie.name_of(crate::graphql::TRUSTED_DEVICE_COOKIE),
    )
    .and_then(SessionToken::parse);
    ClientInfo {
        ip,
        user_agent,
        trusted_device,
    }
}

/// `exchanged`: the session token that replaced a Better Auth cookie in this request.
fn request_state(req: &Request, state: &HttpState, exchanged: Option<&str>) -> RequestState {
    let token = match req.header(header::AUTHORIZATION) {
        Some(value) => bearer(value).and_then(|raw| bearer_token(raw, state)),
        None => exchanged
            .or_else(|| cookie(req, state.cookie.name))
            .and_then(SessionToken::parse),
    };
    let two_factor = cookie(
        req,
        &state.cookie.name_of(crate::graphql::TWO_FACTOR_COOKIE),
    )
    .filter(|v| !v.is_empty())
    .map(str::to_owned);
    RequestState::new(client_info(req, state), token, state.cookie.clone())
        .with_two_factor_token(two_factor)
}

/// A bearer token: ours (or Better Auth's plain one), or Better Auth's signed form
/// (`token.signature`, what its bearer plugin hands out) when its secret is configured.
fn bearer_token(raw: &str, state: &HttpState) -> Option<SessionToken> {
    if raw.contains('.') || raw.contains('%') {
        let secret = state.better_auth_secret.as_ref()?;
        return better_auth::unsign(raw, secret);
    }
    SessionToken::parse(raw)
}

/// A browser still holding Better Auth's signed session cookie (and no cookie of ours): with
/// Better Auth's secret configured, the session it names gets a fresh token, set as Apexkit's
/// cookie in this response, and Better Auth's cookie is cleared. Returns the new token and the
/// `Set-Cookie` values.
async fn exchange_better_auth_cookie(
    req: &Request,
    state: &HttpState,
) -> Option<(String, Vec<String>)> {
    let secret = state.better_auth_secret.as_ref()?;
    if req.header(header::AUTHORIZATION).is_some() || cookie(req, state.cookie.name).is_some() {
        return None;
    }
    let (name, value) = better_auth::COOKIE_NAMES
        .iter()
        .find_map(|name| cookie(req, name).map(|v| (*name, v)))?;
    let token = better_auth::unsign(value, secret)?;
    let (fresh, expires_at) = match state.auth.sessions().exchange_better_auth(&token).await {
        Ok(found) => found?,
        Err(e) => {
            tracing::warn!(error = %e, "cannot exchange a Better Auth session cookie");
            return None;
        }
    };
    let max_age = (expires_at - crate::auth::now()).num_seconds().max(0);
    let secure = if name.starts_with("__Secure-") {
        "; Secure"
    } else {
        ""
    };
    let cookies = vec![
        state.cookie.set(fresh.expose(), Some(max_age)),
        format!("{name}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}"),
    ];
    Some((fresh.expose().to_owned(), cookies))
}

fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

pub(super) fn cookie<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    find_cookie(
        req.headers()
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()),
        name,
    )
}

/// The value of the cookie `name` in `Cookie` header values (the first one wins).
pub fn find_cookie<'a>(values: impl Iterator<Item = &'a str>, name: &str) -> Option<&'a str> {
    values
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim())
}

async fn execute(req: &Request, batch: BatchRequest, state: &HttpState) -> Response {
    let (requests, is_batch) = match batch {
        BatchRequest::Single(r) => (vec![r], false),
        BatchRequest::Batch(rs) if rs.is_empty() || rs.len() > state.max_batch => {
            return refusal(
                StatusCode::BAD_REQUEST,
                Code::BadUserInput,
                &format!("A batch must hold 1 to {} operations", state.max_batch),
            );
        }
        BatchRequest::Batch(rs) => (rs, true),
    };
    if let Some(refused) = requests.iter().find_map(|r| query_too_long(r, state)) {
        return refused;
    }
    // Every document is vetted (bounded nesting and cost) before anything parses it
    // recursively; a refused one gets its error and runs nothing.
    let vetted = requests.into_iter().map(|r| state.schema.vet(r)).collect();
    execute_vetted(req, vetted, is_batch, state).await
}

async fn execute_vetted(
    req: &Request,
    mut vetted: Vec<Result<Vetted, Refusal>>,
    is_batch: bool,
    state: &HttpState,
) -> Response {
    // Every operation of a batch is looked at before any runs.
    if vetted
        .iter_mut()
        .any(|r| r.as_mut().is_ok_and(|v| has_mutation(v.request_mut())))
        && let Some(refused) = cross_site_refusal(req, state)
    {
        return refused;
    }
    let exchanged = exchange_better_auth_cookie(req, state).await;
    let tally = Arc::new(RateTally::default());
    let mut responses = Vec::with_capacity(vetted.len());
    // Sequentially: a batch must not multiply the server's concurrency.
    for request in vetted {
        match request {
            Ok(request) => {
                let adopted = exchanged.as_ref().map(|(token, _)| token.as_str());
                let request =
                    request.data(request_state(req, state, adopted).with_tally(tally.clone()));
                responses.push(state.schema.execute_vetted(request).await);
            }
            Err(refused) => responses.push(refused.into_response()),
        }
    }
    if let Some(retry_after) = tally.refused_whole_request() {
        return too_many_requests(retry_after);
    }
    let mut http = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store");
    if let Some((_, cookies)) = &exchanged {
        for value in cookies {
            http = http.header(header::SET_COOKIE, value.as_str());
        }
    }
    for response in &responses {
        for (name, value) in &response.http_headers {
            http = http.header(name.clone(), value.clone());
        }
    }
    let body = match responses.pop() {
        Some(only) if !is_batch => BatchResponse::Single(only),
        Some(last) => {
            responses.push(last);
            BatchResponse::Batch(responses)
        }
        None => BatchResponse::Batch(responses),
    };
    match serde_json::to_vec(&body) {
        Ok(bytes) => http.body(bytes),
        Err(e) => {
            tracing::error!(error = %e, "cannot serialize GraphQL response");
            refusal(
                StatusCode::INTERNAL_SERVER_ERROR,
                Code::InternalServerError,
                "Internal server error",
            )
        }
    }
}

/// 429 when the limiter refused everything a request asked for.
pub(super) fn too_many_requests(retry_after: u64) -> Response {
    let body = serde_json::json!({
        "errors": [{
            "message": format!("Too many requests, retry in {retry_after} seconds"),
            "extensions": { "code": Code::RateLimited.as_str(), "retryAfter": retry_after }
        }]
    });
    Response::builder()
        .status(StatusCode::TOO_MANY_REQUESTS)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::RETRY_AFTER, retry_after.to_string())
        .body(body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(query: &str, name: Option<&str>) -> Option<OperationType> {
        let mut req = async_graphql::Request::new(query);
        if let Some(name) = name {
            req = req.operation_name(name);
        }
        operation_type(&mut req)
    }

    #[test]
    fn finds_the_selected_operation() {
        assert_eq!(op("{ me { id } }", None), Some(OperationType::Query));
        assert_eq!(
            op("mutation { signOut }", None),
            Some(OperationType::Mutation)
        );
        let both = "query Q { me { id } } mutation M { signOut }";
        assert_eq!(op(both, Some("M")), Some(OperationType::Mutation));
        assert_eq!(op(both, Some("Q")), Some(OperationType::Query));
        assert_eq!(op("{ me { ", None), None);
    }

    #[test]
    fn get_parameters_follow_the_spec() {
        let req = parse_query_string(
            "query=%7Bme%7Bid%7D%7D&operationName=Q&variables=%7B%22a%22%3A1%7D",
        )
        .expect("parses");
        assert_eq!(req.query, "{me{id}}");
        assert_eq!(req.operation_name.as_deref(), Some("Q"));
        assert!(parse_query_string("variables=not-json").is_none());
    }

    #[test]
    fn forwarded_hops_parse_canonically() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(parse_hop("::FFFF:192.0.2.1"), Some(ip("192.0.2.1")));
        assert_eq!(parse_hop("[2001:db8::1]:443"), Some(ip("2001:db8::1")));
        assert_eq!(parse_hop("192.0.2.1:80"), Some(ip("192.0.2.1")));
        assert_eq!(parse_hop("unknown"), None);
        let mut req = async_graphql::Request::new("query Q { me { id } } mutation M { signOut }");
        assert!(has_mutation(&mut req));
        assert!(!has_mutation(&mut async_graphql::Request::new(
            "{ me { id } }"
        )));
        assert!(!has_mutation(&mut async_graphql::Request::new(
            "mutation {"
        )));
    }
}
