//! Talking to a running app over HTTP: a GraphQL client that reads like the domain, and
//! helpers for reading what comes back.

use std::time::Duration;

use serde_json::{Value, json};

use super::PASSWORD;

/// A client for the app at `base` (`http://host:port`), in-process or a real process.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub client: reqwest::Client,
}

impl Api {
    pub fn at(base: impl Into<String>) -> Self {
        Self {
            base: base.into(),
            client: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("client"),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `host:port`, for raw TCP.
    pub fn addr(&self) -> String {
        self.base.trim_start_matches("http://").to_owned()
    }

    /// POSTs a GraphQL operation, optionally as a bearer, and returns the JSON body.
    pub async fn gql_with(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut req = self
            .client
            .post(self.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.expect("request");
        assert_eq!(resp.status(), 200, "GraphQL responses are HTTP 200");
        resp.json().await.expect("json body")
    }

    pub async fn gql(&self, query: &str, variables: Value) -> Value {
        self.gql_with(None, query, variables).await
    }

    /// A raw POST to `/graphql` with extra headers: status, headers and JSON body (`null` when
    /// not JSON), whatever the status.
    pub async fn post_raw(
        &self,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> (reqwest::StatusCode, reqwest::header::HeaderMap, Value) {
        let mut req = self.client.post(self.url("/graphql")).json(body);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.json().await.unwrap_or(Value::Null);
        (status, headers, body)
    }

    pub async fn sign_up_as(&self, name: &str, email: &str, password: &str) -> Value {
        self.gql(
            "mutation($input: SignUpEmailInput!) { signUpEmail(input: $input) {
                token user { id name email emailVerified image createdAt updatedAt }
                session { id userId expiresAt createdAt updatedAt ipAddress userAgent current } } }",
            json!({ "input": { "name": name, "email": email, "password": password } }),
        )
        .await
    }

    /// Signs up and returns the session token.
    pub async fn sign_up(&self, email: &str) -> String {
        let body = self.sign_up_as("Ada", email, PASSWORD).await;
        body["data"]["signUpEmail"]["token"]
            .as_str()
            .unwrap_or_else(|| panic!("sign-up failed: {body}"))
            .to_owned()
    }

    /// Signs up `email` and returns the whole `signUpEmail` payload, access token included.
    pub async fn sign_up_payload(&self, email: &str) -> Value {
        let body = self
            .gql(
                "mutation($input: SignUpEmailInput!) { signUpEmail(input: $input) {
                    token accessToken accessTokenExpiresAt user { id email role } session { id } } }",
                json!({ "input": { "name": "Ada", "email": email, "password": PASSWORD } }),
            )
            .await;
        assert!(body["errors"].is_null(), "sign-up failed: {body}");
        body["data"]["signUpEmail"].clone()
    }

    pub async fn sign_in(&self, email: &str, password: &str) -> Value {
        self.gql(
            "mutation($input: SignInEmailInput!) { signInEmail(input: $input) { token user { id email } session { id } } }",
            json!({ "input": { "email": email, "password": password } }),
        )
        .await
    }

    /// The `session` query as the holder of `token`.
    pub async fn session(&self, token: &str) -> Value {
        self.gql_with(
            Some(token),
            "{ session { session { id userId expiresAt updatedAt current } user { id email } } }",
            json!({}),
        )
        .await
    }

    /// Whether `token` still has a session.
    pub async fn alive(&self, token: &str) -> bool {
        !self.session(token).await["data"]["session"].is_null()
    }

    pub async fn request_reset(&self, email: &str) -> Value {
        self.gql(
            "mutation($input: RequestPasswordResetInput!) { requestPasswordReset(input: $input) }",
            json!({ "input": { "email": email } }),
        )
        .await
    }

    pub async fn reset_password(&self, token: &str, password: &str) -> Value {
        self.gql(
            "mutation($input: ResetPasswordInput!) { resetPassword(input: $input) }",
            json!({ "input": { "token": token, "newPassword": password } }),
        )
        .await
    }

    pub async fn verify_email(&self, token: &str) -> Value {
        self.gql(
            "mutation($t: String!) { verifyEmail(token: $t) { id email emailVerified } }",
            json!({ "t": token }),
        )
        .await
    }

    pub async fn send_verification(&self, email: &str) -> Value {
        self.gql(
            "mutation($input: SendVerificationEmailInput!) { sendVerificationEmail(input: $input) }",
            json!({ "input": { "email": email } }),
        )
        .await
    }

    /// `changeEmail` to `new_email` as the holder of `token`, confirmed with `password`.
    pub async fn change_email(
        &self,
        token: &str,
        new_email: &str,
        password: Option<&str>,
    ) -> Value {
        self.gql_with(
            Some(token),
            "mutation($input: ChangeEmailInput!) { changeEmail(input: $input) }",
            json!({ "input": { "newEmail": new_email, "password": password } }),
        )
        .await
    }

    /// `GET /.well-known/jwks.json` as a verifier would fetch it.
    pub async fn jwks(&self) -> Value {
        let resp = self
            .client
            .get(self.url("/.well-known/jwks.json"))
            .send()
            .await
            .expect("jwks request");
        assert_eq!(resp.status(), 200);
        resp.json().await.expect("jwks json")
    }

    /// `GET /metrics`: Prometheus text.
    pub async fn metrics_text(&self) -> String {
        let resp = self.client.get(self.url("/metrics")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("text/plain"), "{ct}");
        resp.text().await.unwrap()
    }
}

/// The status of a GET of `url` (given 5 s), or `None` when nothing answers.
pub async fn get_status(url: &str) -> Option<u16> {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

/// The `extensions.code` of the first error.
pub fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"))
}

/// The `extensions.code` of every error, in order.
pub fn codes(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["extensions"]["code"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// `data.<field>` of a successful response (panics with the body otherwise).
pub fn data<'a>(body: &'a Value, field: &str) -> &'a Value {
    assert!(body.get("errors").is_none(), "unexpected errors: {body}");
    &body["data"][field]
}

/// The session token of a `signInEmail` answer (panics with the body when there is none).
pub fn signed_in_token(body: &Value) -> String {
    body["data"]["signInEmail"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("sign-in failed: {body}"))
        .to_owned()
}

/// Sum of the samples of a Prometheus metric whose labels include every `labels` pair
/// (0 when absent), read from a `/metrics` text body.
pub fn metric_value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, label_text) = match series.split_once('{') {
                Some((m, rest)) => (m, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if metric != name {
                return None;
            }
            let all = labels
                .iter()
                .all(|(k, v)| label_text.contains(&format!("{k}=\"{v}\"")));
            all.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}
