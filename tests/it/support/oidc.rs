//! A real OpenID provider on loopback (`tests/oidc/provider.mjs`, oidc-provider 8.8.1), started
//! per test and stopped when dropped, and [`Browser`]: a cookie-keeping HTTP client that does
//! not follow redirects, so a test walks every hop of a sign-in as a browser would.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use reqwest::header::LOCATION;
use serde_json::{Value, json};

/// The client the provider knows Apexkit as.
pub const CLIENT_ID: &str = "apexkit";
pub const CLIENT_SECRET: &str = "apexkit-secret";
/// A redirect URI where nothing listens: the native-app tests read the code from `Location`.
pub const NATIVE_REDIRECT: &str = "http://127.0.0.1:9/native";

/// A running provider; killed on drop.
pub struct OidcProvider {
    child: Child,
    pub issuer: String,
    _dir: tempfile::TempDir,
}

impl OidcProvider {
    /// Starts the provider with `config` (see `tests/oidc/README.md`) on `port` (0: any
    /// free port).
    pub fn start_on(config: &Value, port: u16) -> Self {
        super::npm_ci("tests/oidc", "oidc-provider");
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("oidc.json");
        std::fs::write(&path, config.to_string()).expect("write provider config");
        let mut child = Command::new("node")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/oidc/provider.mjs"
            ))
            .arg(&path)
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs tests/oidc/provider.mjs (npm ci --prefix tests/oidc first)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("provider ready line");
        let ready: Value = serde_json::from_str(&line)
            .unwrap_or_else(|_| {
                panic!(
                    "provider did not start: {line:?} (is tests/oidc installed? npm ci --prefix tests/oidc)"
                )
            });
        Self {
            child,
            issuer: ready["issuer"].as_str().expect("issuer").to_owned(),
            _dir: dir,
        }
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The provider's configuration for a client with these redirect URIs: `alice` (verified
/// email), `bob` (unverified), `nomail` (no email at all).
pub fn provider_config(redirect_uris: &[String]) -> Value {
    json!({
        "clients": [client(CLIENT_ID, redirect_uris)],
        "accounts": {
            "alice": { "sub": "alice-sub", "email": "alice@example.test", "email_verified": true,
                       "name": "Alice Example", "picture": "https://example.test/alice.png" },
            "bob": { "sub": "bob-sub", "email": "bob@example.test", "email_verified": false,
                     "name": "Bob Unverified" },
            "nomail": { "sub": "nomail-sub", "name": "No Mail" }
        },
        "issueRefreshToken": "always"
    })
}

/// Client metadata for `client_id` (its secret is [`CLIENT_SECRET`]).
pub fn client(client_id: &str, redirect_uris: &[String]) -> Value {
    let mut uris: Vec<String> = redirect_uris.to_vec();
    uris.push(NATIVE_REDIRECT.to_owned());
    json!({
        "client_id": client_id,
        "client_secret": CLIENT_SECRET,
        "redirect_uris": uris,
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic"
    })
}

/// A port free right now (for an app whose base URL the provider must know first).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A stand-in's authorization answer: a 302 to `redirect` with `code` and `state`.
pub fn back_with_code(redirect: &str, code: &str, state: &str) -> poem::Response {
    let mut url = reqwest::Url::parse(redirect).expect("redirect_uri");
    url.query_pairs_mut()
        .append_pair("code", code)
        .append_pair("state", state);
    poem::Response::builder()
        .status(poem::http::StatusCode::FOUND)
        .header("location", url.as_str())
        .finish()
}

/// A token request's form, when the client authenticated with HTTP Basic as `id`/`secret`.
pub async fn basic_client_form(
    req: &poem::Request,
    body: poem::Body,
    id: &str,
    secret: &str,
) -> Option<Vec<(String, String)>> {
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    if req.header("authorization") != Some(&format!("Basic {basic}")) {
        return None;
    }
    serde_urlencoded::from_bytes(&body.into_vec().await.unwrap_or_default()).ok()
}

/// Serves a stand-in on 127.0.0.1:`port` until the test ends; returns once it accepts.
pub async fn serve_on_loopback(port: u16, app: poem::endpoint::BoxEndpoint<'static>) {
    let listener = poem::listener::TcpListener::bind(format!("127.0.0.1:{port}"));
    tokio::spawn(poem::Server::new(listener).run(app));
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A browser: its own cookie jar, redirects followed by hand.
pub struct Browser {
    pub http: reqwest::Client,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
        }
    }

    /// A GraphQL request from a page of `app` (so with its `Origin`), cookies included.
    pub async fn gql(&self, app: &str, query: &str, variables: Value) -> Value {
        self.http
            .post(format!("{app}/graphql"))
            .header("origin", app)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("graphql")
            .json()
            .await
            .expect("json")
    }

    /// `signInSocial` with `input`; the authorization URL.
    pub async fn start(&self, app: &str, input: Value) -> String {
        let body = self
            .gql(
                app,
                "mutation($i: SignInSocialInput!) { signInSocial(input: $i) { url redirect token } }",
                json!({ "i": input }),
            )
            .await;
        let payload = &body["data"]["signInSocial"];
        assert_eq!(payload["redirect"], true, "{body}");
        payload["url"].as_str().expect("url").to_owned()
    }

    /// GET `url`; the status and the absolute `Location`, if any.
    pub async fn get(&self, url: &str) -> (u16, Option<String>) {
        let resp = self.http.get(url).send().await.expect("get");
        (resp.status().as_u16(), location(&resp))
    }

    /// Walks the provider's pages from the authorization URL: signs in as `login` (which also
    /// grants consent), or cancels with `None`. Returns the URL the provider sends the browser
    /// back to (the callback, with `code`/`error`, `state` and `iss`). A browser still signed
    /// in at the provider goes straight back.
    pub async fn authorize(&self, url: &str, login: Option<&str>) -> String {
        let (status, interaction) = self.get(url).await;
        let interaction = interaction.unwrap_or_else(|| panic!("no interaction ({status})"));
        if !interaction.contains("/interaction/") {
            return interaction;
        }
        let action = match login {
            Some(_) => format!("{interaction}/login"),
            None => format!("{interaction}/abort"),
        };
        let form = login.map(|l| vec![("login", l)]).unwrap_or_default();
        let resp = self
            .http
            .post(&action)
            .form(&form)
            .send()
            .await
            .expect("login");
        let resume = location(&resp).expect("resume");
        let (_, back) = self.get(&resume).await;
        back.expect("redirect to the client")
    }
}

/// A response's `Location`, resolved against its URL.
pub fn location(resp: &reqwest::Response) -> Option<String> {
    let value = resp.headers().get(LOCATION)?.to_str().ok()?;
    resp.url().join(value).ok().map(String::from)
}

/// A query parameter of `url`.
pub fn param(url: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// An id_token for [`CLIENT_ID`] the way a native app gets one: the code flow to
/// [`NATIVE_REDIRECT`] with `nonce`, then the token request.
pub async fn native_id_token(issuer: &str, login: &str, nonce: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let verifier = "native-verifier-native-verifier-native-verifier";
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    let mut url = reqwest::Url::parse(&format!("{issuer}/auth")).expect("url");
    url.query_pairs_mut()
        .append_pair("client_id", CLIENT_ID)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", NATIVE_REDIRECT)
        .append_pair("scope", "openid email profile")
        .append_pair("state", "native-state")
        .append_pair("nonce", nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let browser = Browser::new();
    let back = browser.authorize(url.as_str(), Some(login)).await;
    let code = param(&back, "code").expect("code");
    let tokens: Value = browser
        .http
        .post(format!("{issuer}/token"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", NATIVE_REDIRECT),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    tokens["id_token"].as_str().expect("id_token").to_owned()
}

/// A stand-in for GitHub's OAuth and REST endpoints, as GitHub documents them ("Authorizing
/// OAuth apps", "Get the authenticated user", "List email addresses for the authenticated
/// user"): the authorization page approves at once; the token endpoint wants the client's
/// HTTP Basic credentials and the code, and answers a bad code with 200 and an `error`, as
/// GitHub does; `/user` and `/user/emails` want the token and a `User-Agent`.
pub mod github {
    use poem::http::StatusCode;
    use poem::{Body, EndpointExt, Request, Response, Route, get, handler, post};
    use serde_json::json;

    pub const CLIENT_ID: &str = "gh-client";
    pub const CLIENT_SECRET: &str = "gh-secret";
    const CODE: &str = "gh-code";
    const TOKEN: &str = "gho_standin_token";

    fn query(req: &Request, name: &str) -> Option<String> {
        serde_urlencoded::from_str::<Vec<(String, String)>>(req.uri().query().unwrap_or(""))
            .ok()?
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    fn json_response(value: serde_json::Value) -> Response {
        Response::builder()
            .content_type("application/json")
            .body(value.to_string())
    }

    #[handler]
    fn authorize(req: &Request) -> Response {
        let (Some(redirect), Some(state)) = (query(req, "redirect_uri"), query(req, "state"))
        else {
            return StatusCode::BAD_REQUEST.into();
        };
        if query(req, "client_id").as_deref() != Some(CLIENT_ID) {
            return StatusCode::BAD_REQUEST.into();
        }
        super::back_with_code(&redirect, CODE, &state)
    }

    #[handler]
    async fn token(req: &Request, body: Body) -> Response {
        let form = super::basic_client_form(req, body, CLIENT_ID, CLIENT_SECRET).await;
        let has = |k: &str, v: &str| form.iter().flatten().any(|(fk, fv)| fk == k && fv == v);
        if form.is_none() || !has("code", CODE) || !has("grant_type", "authorization_code") {
            return json_response(json!({ "error": "bad_verification_code" }));
        }
        json_response(json!({
            "access_token": TOKEN, "token_type": "bearer", "scope": "read:user,user:email"
        }))
    }

    fn authorized(req: &Request) -> bool {
        req.header("authorization") == Some(&format!("Bearer {TOKEN}"))
            && req.header("user-agent").is_some()
    }

    #[handler]
    fn user(req: &Request) -> Response {
        if !authorized(req) {
            return StatusCode::UNAUTHORIZED.into();
        }
        json_response(json!({
            "id": 583231, "login": "octocat", "name": "The Octocat",
            "avatar_url": "https://avatars.example.test/u/583231", "email": null
        }))
    }

    #[handler]
    fn emails(req: &Request) -> Response {
        if !authorized(req) {
            return StatusCode::UNAUTHORIZED.into();
        }
        json_response(json!([
            { "email": "octo-old@example.test", "primary": false, "verified": true, "visibility": null },
            { "email": "octocat@example.test", "primary": true, "verified": true, "visibility": "private" },
            { "email": "octo-new@example.test", "primary": false, "verified": false, "visibility": null }
        ]))
    }

    /// Serves the stand-in on loopback until the test ends; its base URL.
    pub async fn serve() -> String {
        let port = super::free_port();
        let app = Route::new()
            .at("/login/oauth/authorize", get(authorize))
            .at("/login/oauth/access_token", post(token))
            .at("/user", get(user))
            .at("/user/emails", get(emails))
            .boxed();
        super::serve_on_loopback(port, app).await;
        format!("http://127.0.0.1:{port}")
    }
}

/// A stand-in for Discord's OAuth2 and `GET /users/@me` endpoints, as Discord documents them
/// ("OAuth2", "Get Current User"): the authorization page approves at once; the token endpoint
/// wants the client's credentials and the code; `/users/@me` wants the token.
pub mod discord {
    use poem::http::StatusCode;
    use poem::{Body, EndpointExt, Request, Response, Route, get, handler, post};
    use serde_json::json;

    pub const CLIENT_ID: &str = "discord-client";
    pub const CLIENT_SECRET: &str = "discord-secret";
    const CODE: &str = "discord-code";
    const TOKEN: &str = "discord-token";

    #[handler]
    fn authorize(req: &Request) -> Response {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(req.uri().query().unwrap_or("")).unwrap_or_default();
        let get = |k: &str| pairs.iter().find(|(pk, _)| pk == k).map(|(_, v)| v.clone());
        let (Some(redirect), Some(state)) = (get("redirect_uri"), get("state")) else {
            return StatusCode::BAD_REQUEST.into();
        };
        super::back_with_code(&redirect, CODE, &state)
    }

    #[handler]
    async fn token(req: &Request, body: Body) -> Response {
        let form = super::basic_client_form(req, body, CLIENT_ID, CLIENT_SECRET).await;
        if !form.iter().flatten().any(|(k, v)| k == "code" && v == CODE) {
            return Response::builder()
                .status(StatusCode::BAD_REQUEST)
                .content_type("application/json")
                .body(json!({ "error": "invalid_grant" }).to_string());
        }
        Response::builder().content_type("application/json").body(
            json!({ "access_token": TOKEN, "token_type": "Bearer", "expires_in": 604800,
                    "refresh_token": "discord-refresh", "scope": "identify email" })
            .to_string(),
        )
    }

    #[handler]
    fn me(req: &Request) -> Response {
        if req.header("authorization") != Some(&format!("Bearer {TOKEN}")) {
            return StatusCode::UNAUTHORIZED.into();
        }
        Response::builder().content_type("application/json").body(
            json!({ "id": "80351110224678912", "username": "nelly", "global_name": "Nelly",
                    "discriminator": "0", "avatar": "8342729096ea3675442027381ff50dfe",
                    "email": "nelly@example.test", "verified": true })
            .to_string(),
        )
    }

    /// Serves the stand-in on loopback until the test ends; its base URL.
    pub async fn serve() -> String {
        let port = super::free_port();
        let app = Route::new()
            .at("/oauth2/authorize", get(authorize))
            .at("/api/oauth2/token", post(token))
            .at("/api/users/@me", get(me))
            .boxed();
        super::serve_on_loopback(port, app).await;
        format!("http://127.0.0.1:{port}")
    }
}
