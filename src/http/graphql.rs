//! The GraphQL transport. Closes what async-graphql-poem leaves open: only `application/json`
//! bodies, a body size limit, a batch size limit with sequential execution, and no mutation over
//! GET. Puts the request's facts (client address, user agent, credential) into the context.

use std::sync::Arc;

use async_graphql::http::GraphiQLSource;
use async_graphql::parser::types::OperationType;
use async_graphql::{BatchRequest, BatchResponse};
use poem::error::ReadBodyError;
use poem::http::{Method, StatusCode, header};
use poem::web::{Data, Html};
use poem::{Body, IntoResponse, Request, Response, handler};

use super::{HttpState, refusal};
use crate::auth::{ClientInfo, SessionToken};
use crate::error::Code;
use crate::graphql::RequestState;

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
            return refusal(
                StatusCode::PAYLOAD_TOO_LARGE,
                Code::PayloadTooLarge,
                &format!("Request body exceeds {} bytes", state.max_body_bytes),
            );
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
    let Some(mut request) = parse_query_string(query_string) else {
        return refusal(
            StatusCode::BAD_REQUEST,
            Code::GraphqlParseFailed,
            "Malformed GraphQL query string",
        );
    };
    // Decide on the operation type before anything runs; a document that does not parse is
    // left to the executor, which reports the syntax error.
    if let Some(op) = operation_type(&mut request)
        && op != OperationType::Query
    {
        return method_not_allowed("POST", "Mutations must be sent with POST");
    }
    execute(req, BatchRequest::Single(request), state).await
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

/// Facts about the client and its credential. `Authorization` wins over the cookie, even when it
/// holds no valid token.
fn request_state(req: &Request, state: &HttpState) -> RequestState {
    let ip = req
        .remote_addr()
        .as_socket_addr()
        .map(|addr| addr.ip().to_canonical());
    let user_agent = req
        .header(header::USER_AGENT)
        .filter(|ua| ua.len() <= MAX_USER_AGENT_BYTES)
        .map(str::to_owned);
    let token = match req.header(header::AUTHORIZATION) {
        Some(value) => bearer(value).and_then(SessionToken::parse),
        None => cookie(req, state.cookie.name).and_then(SessionToken::parse),
    };
    RequestState::new(ClientInfo { ip, user_agent }, token, state.cookie.clone())
}

fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn cookie<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
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
    let mut responses = Vec::with_capacity(requests.len());
    // Sequentially: a batch must not multiply the server's concurrency.
    for request in requests {
        let request = request.data(request_state(req, state));
        responses.push(state.schema.execute(request).await);
    }
    let mut http = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store");
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
}
