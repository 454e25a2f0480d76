//! Stand-ins for the two presets whose identity providers cannot run here, built from their
//! published documentation: Microsoft's identity platform v2.0 (multi-tenant `common` discovery
//! naming the issuer `…/{tenantid}/v2.0`, `client_secret_post`, id_tokens whose `iss` carries
//! their `tid`; "OpenID Connect on the Microsoft identity platform", "ID token claims
//! reference") and Sign in with Apple (`response_mode=form_post` with the name in the first
//! answer's `user` field, a client secret that must be an ES256 JWT signed with the
//! developer's key, id_tokens with `email_verified`/`is_private_email` as strings; "Request an
//! authorization to the Sign in with Apple server", "Generate and validate tokens"). Each
//! serves discovery, authorize, token and JWKS; the authorization page approves at once as the
//! user named by `login_hint`, and every check the real server makes on the token request
//! (client authentication, code, redirect URI, PKCE) is made here too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use poem::http::StatusCode;
use poem::web::Data;
use poem::{Body, EndpointExt, Request, Response, Route, get, handler, post};
use serde_json::{Value, json};

/// The stand-in's id_token signing key (RS256, generated for these tests).
const SIGNING_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQCo+uIikHx0Zr47
AC4AQv5g1mcBJLQAg7L5AVI17ngkeVJZ+K+tid/5zeZ36TSS7h4NLk1S6Z7ieT1H
9CETmkifJAgXHLpFeNz3A1OqeNX7/asMSlbOT76PfaMHPX9MOra9mdJ4BflpboKF
IT+Nz/cvFq3AoqSYff+HVtK5S6k0ytM8GL/w/ter/o5MK1F6xUQvT0ovmyEU6+FW
LrSxnJbdgomkCdijBHq3Ex/aDRoAMGgvwwwtNvVzVv2AuFfXGBhuJR+KW9A0hkuS
Us0+Xptz7XrMXTU/YTL2gqH1VW9jRh3pa5oXCFagHT0QS71iKp2gbxx63u3IkTcZ
e9k8ANvlAgMBAAECggEAAd7E90eiGP0KHfJij/ODMo8s6gD9/QN4IklhdOIEHQ3l
W27lLYaDyWqoolXHvy3jfJcxQ+RSCIT5qKeLC4HUS+6aKFH+aHEYq6MzHy/h2RLK
/IKAyMfD1CgP0ISzDqTtC4F9qCu+FuyiL9cDsmNwLj/nVw/LF+T3xF0G+AYJBAyL
UDZIpoJqwC6mIwVM1A9QmFLE6pq0IxLX7cd1mgg0/u2pvmIshYaiYKd6AM7REk2j
YtbeM2wLaARdFvBoxheT2w5uTWrb34KDJOeNt1WLqLJEXSPnw700GZhSEM8TYQDZ
CdZ0BhM2LOGk4zKyDyUkbKIhkZFoDD3ll1guZpUCAQKBgQDsnOJuuXFZycoJuFdt
4fNRbL7HQI2ensDDnWT0eogpkFGu+Jw2Qc9st4mmLuf8gsun2miPQHYBs8/T2Wn9
IrRwbTD9DnHn00wavEPXBgP6n4w01ZwRO3Xwp3mceynoCzIynrMVVOWtz0mCNiHC
m4Bq/VMRrFOhF6OutvMfULz8uwKBgQC201q3/vDPyi6F3tmW4bXz1DNeNrddmVoO
cXl/sFLjQPVSpzjYIfnLbQARGPkoY376hI7TpV97ufZNMZm/8IAlMRZ6iZ8ZbRdf
KN76YJ1WJ+98wuUOfmacJQEkIy3QulnJZyKvZTqSMdT86G3Fa6cOPunacUJCOh+1
mAay03lP3wKBgQCyNiOxw8ilGQAsPATVxVYvYNl8V5mS+/0yGI0eOl/t9j4frC50
CzNArihl23RtUtIzVaRlKOb4t0b0SA+1UftXplY8czHFqvbqOBxcirJahOrkLHNE
42UcYfeNrZJNrIkdaTx295+aPsMd6MmauuaJLs3vRL0kWxq0kCUj0/rT2wKBgQCA
F7Me6PsVysUvvERdR0TxUgKvhsyQQqprJiwHP6XDXTbEsy7Ll3ppgbQjRokDODq2
EPv044/zowYjbZYYect+w1bJgfS7nshaPsuDRv/VZmOP2QkdT4ha7D5RcGhgLsBL
sPwHQXh5B3r/u2V1hYhlHcVA7EuNFSY0WBCRaEM9pwKBgHqX/ViPC1LVQZSuwjLR
Tr/a4tkm29Onp+sJLmjCtAyCNY9hIVQ3AyxFPq6VpaYkMCPJ1g+tjmbaYEHSmuOB
nXZwR6xKAdJ1RzmT0wK+WmBuG5+KCwZ5CvGyBKBjxB5XVC2u1/4H7kaVAJ6zndtk
qoW1PymGYcG8wpx7aEv7mqIE
-----END PRIVATE KEY-----";
const SIGNING_N: &str = "qPriIpB8dGa-OwAuAEL-YNZnASS0AIOy-QFSNe54JHlSWfivrYnf-c3md-k0ku4eDS5NUume4nk9R_QhE5pInyQIFxy6RXjc9wNTqnjV-_2rDEpWzk--j32jBz1_TDq2vZnSeAX5aW6ChSE_jc_3LxatwKKkmH3_h1bSuUupNMrTPBi_8P7Xq_6OTCtResVEL09KL5shFOvhVi60sZyW3YKJpAnYowR6txMf2g0aADBoL8MMLTb1c1b9gLhX1xgYbiUfilvQNIZLklLNPl6bc-16zF01P2Ey9oKh9VVvY0Yd6WuaFwhWoB09EEu9YiqdoG8cet7tyJE3GXvZPADb5Q";
const SIGNING_KID: &str = "standin-rs256";

/// Apple: the developer's Sign in with Apple key (a `.p8`, generated for these tests), and
/// the public half Apple keeps.
pub const APPLE_P8: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgUQ31HMb9Wqb1HGPJ
cHn6Tnp/MzkJLnvcz+IOKsiAcSihRANCAATUBjHfbbf5NukTep7v5WwLa5K0X2/L
SGvigDcNKkn1PAoR2Uh0cjpAhkdyhgyrnO0kNKcwSpAlphySCY06Y7Bh
-----END PRIVATE KEY-----";
const APPLE_P8_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE1AYx3223+TbpE3qe7+VsC2uStF9v
y0hr4oA3DSpJ9TwKEdlIdHI6QIZHcoYMq5ztJDSnMEqQJaYckgmNOmOwYQ==
-----END PUBLIC KEY-----";
pub const APPLE_TEAM_ID: &str = "TEAM123456";
pub const APPLE_KEY_ID: &str = "KEY7654321";
pub const APPLE_CLIENT_ID: &str = "com.example.web";

pub const MS_CLIENT_ID: &str = "00001111-aaaa-2222-bbbb-3333cccc4444";
pub const MS_CLIENT_SECRET: &str = "ms-secret";
/// Two customers' tenants, and the personal accounts' one.
pub const TENANT_A: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const TENANT_B: &str = "8eaef023-2b34-4da1-9baa-8bc8c9d6a490";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Microsoft,
    Apple,
}

/// A code the authorization page issued, and what the token request must match.
struct Grant {
    login: String,
    client_id: String,
    redirect_uri: String,
    challenge: Option<String>,
    nonce: Option<String>,
}

struct State {
    kind: Kind,
    base: String,
    users: HashMap<String, Value>,
    codes: Mutex<HashMap<String, Grant>>,
    /// Apple sends the name only the first time a user authorizes the app.
    named: Mutex<Vec<String>>,
    /// Client secrets the token endpoint accepted (Apple: the JWTs).
    secrets: Mutex<Vec<String>>,
}

/// A running stand-in.
pub struct StandIn {
    pub base: String,
    state: Arc<State>,
}

impl StandIn {
    /// The client secrets its token endpoint accepted, in order.
    pub fn accepted_secrets(&self) -> Vec<String> {
        self.state.secrets.lock().expect("lock").clone()
    }
}

fn query(req: &Request) -> HashMap<String, String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(req.uri().query().unwrap_or(""))
        .unwrap_or_default()
        .into_iter()
        .collect()
}

fn json_response(status: StatusCode, value: Value) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json")
        .body(value.to_string())
}

fn oauth_error(error: &str) -> Response {
    json_response(StatusCode::BAD_REQUEST, json!({ "error": error }))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[handler]
fn discovery(Data(state): Data<&Arc<State>>, req: &Request) -> Response {
    let base = &state.base;
    let doc = match state.kind {
        Kind::Microsoft => {
            // `/{tenant}/v2.0/.well-known/openid-configuration`
            let tenant = req.uri().path().split('/').nth(1).unwrap_or("common");
            let issuer = match tenant {
                "common" | "organizations" => format!("{base}/{{tenantid}}/v2.0"),
                other => format!("{base}/{other}/v2.0"),
            };
            json!({
                "issuer": issuer,
                "authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/authorize"),
                "token_endpoint": format!("{base}/{tenant}/oauth2/v2.0/token"),
                "jwks_uri": format!("{base}/{tenant}/discovery/v2.0/keys"),
                "userinfo_endpoint": format!("{base}/oidc/userinfo"),
                "response_modes_supported": ["query", "fragment", "form_post"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            })
        }
        Kind::Apple => json!({
            "issuer": base,
            "authorization_endpoint": format!("{base}/auth/authorize"),
            "token_endpoint": format!("{base}/auth/token"),
            "jwks_uri": format!("{base}/auth/keys"),
            "response_modes_supported": ["query", "fragment", "form_post"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "name"],
            "token_endpoint_auth_methods_supported": ["client_secret_post"],
        }),
    };
    json_response(StatusCode::OK, doc)
}

#[handler]
fn keys() -> Response {
    json_response(
        StatusCode::OK,
        json!({ "keys": [{ "kty": "RSA", "kid": SIGNING_KID, "use": "sig", "alg": "RS256",
                           "n": SIGNING_N, "e": "AQAB" }] }),
    )
}

#[handler]
fn authorize(Data(state): Data<&Arc<State>>, req: &Request) -> Response {
    let q = query(req);
    let (Some(redirect), Some(st), Some(client_id)) =
        (q.get("redirect_uri"), q.get("state"), q.get("client_id"))
    else {
        return StatusCode::BAD_REQUEST.into();
    };
    let login = q.get("login_hint").cloned().unwrap_or_default();
    if !state.users.contains_key(&login)
        || q.get("response_type").map(String::as_str) != Some("code")
    {
        return StatusCode::BAD_REQUEST.into();
    }
    let form_post = q.get("response_mode").map(String::as_str) == Some("form_post");
    // Apple: "If you requested any scopes, the value must be form_post."
    if state.kind == Kind::Apple && !form_post {
        return StatusCode::BAD_REQUEST.into();
    }
    let code = URL_SAFE_NO_PAD.encode(rand_bytes());
    state.codes.lock().expect("lock").insert(
        code.clone(),
        Grant {
            login: login.clone(),
            client_id: client_id.clone(),
            redirect_uri: redirect.clone(),
            challenge: q.get("code_challenge").cloned(),
            nonce: q.get("nonce").cloned(),
        },
    );
    let mut fields = vec![("code".to_owned(), code), ("state".to_owned(), st.clone())];
    if state.kind == Kind::Apple {
        let mut named = state.named.lock().expect("lock");
        if !named.contains(&login) {
            named.push(login.clone());
            let user = &state.users[&login];
            fields.push((
                "user".to_owned(),
                json!({ "name": user["_name"], "email": user["email"] }).to_string(),
            ));
        }
    }
    if form_post {
        let inputs: String = fields
            .iter()
            .map(|(k, v)| {
                format!(
                    "<input type=\"hidden\" name=\"{k}\" value=\"{}\"/>",
                    html_escape(v)
                )
            })
            .collect();
        return Response::builder().content_type("text/html").body(format!(
            "<html><body onload=\"document.forms[0].submit()\"><form method=\"post\" action=\"{}\">{inputs}</form></body></html>",
            html_escape(redirect)
        ));
    }
    let mut url = reqwest::Url::parse(redirect).expect("redirect_uri");
    url.query_pairs_mut().extend_pairs(&fields);
    Response::builder()
        .status(StatusCode::FOUND)
        .header("location", url.as_str())
        .finish()
}

fn rand_bytes() -> [u8; 24] {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let mut out = [0u8; 24];
    let seed = format!(
        "{:?}{}",
        std::time::SystemTime::now(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let digest = <sha2::Sha256 as sha2::Digest>::digest(seed.as_bytes());
    out.copy_from_slice(&digest[..24]);
    out
}

/// Apple: the client secret must be an ES256 JWT by the developer's key: `kid` the key id,
/// `iss` the team id, `sub` the client id, `aud` Apple, not expired.
fn apple_secret_ok(secret: &str, client_id: &str) -> bool {
    let Ok(header) = jsonwebtoken::decode_header(secret) else {
        return false;
    };
    if header.alg != Algorithm::ES256 || header.kid.as_deref() != Some(APPLE_KEY_ID) {
        return false;
    }
    let key = DecodingKey::from_ec_pem(APPLE_P8_PUBLIC.as_bytes()).expect("public key");
    let mut v = Validation::new(Algorithm::ES256);
    v.set_issuer(&[APPLE_TEAM_ID]);
    v.set_audience(&["https://appleid.apple.com"]);
    v.sub = Some(client_id.to_owned());
    v.leeway = 0;
    jsonwebtoken::decode::<Value>(secret, &key, &v).is_ok()
}

#[handler]
async fn token(Data(state): Data<&Arc<State>>, body: Body) -> Response {
    let form: HashMap<String, String> = serde_urlencoded::from_bytes::<Vec<(String, String)>>(
        &body.into_vec().await.unwrap_or_default(),
    )
    .unwrap_or_default()
    .into_iter()
    .collect();
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    let client_ok = match state.kind {
        Kind::Microsoft => {
            field("client_id") == MS_CLIENT_ID && field("client_secret") == MS_CLIENT_SECRET
        }
        Kind::Apple => {
            field("client_id") == APPLE_CLIENT_ID
                && apple_secret_ok(field("client_secret"), APPLE_CLIENT_ID)
        }
    };
    if !client_ok {
        return oauth_error("invalid_client");
    }
    state
        .secrets
        .lock()
        .expect("lock")
        .push(field("client_secret").to_owned());
    if field("grant_type") != "authorization_code" {
        return oauth_error("unsupported_grant_type");
    }
    // Single use: taken whatever happens next.
    let Some(grant) = state.codes.lock().expect("lock").remove(field("code")) else {
        return oauth_error("invalid_grant");
    };
    let pkce_ok = grant.challenge.as_deref().is_none_or(|c| {
        URL_SAFE_NO_PAD.encode(<sha2::Sha256 as sha2::Digest>::digest(
            field("code_verifier").as_bytes(),
        )) == c
    });
    if grant.client_id != field("client_id")
        || grant.redirect_uri != field("redirect_uri")
        || !pkce_ok
    {
        return oauth_error("invalid_grant");
    }
    let user = &state.users[&grant.login];
    let now = chrono::Utc::now().timestamp();
    let mut claims = json!({ "aud": grant.client_id, "iat": now, "exp": now + 600 });
    if let (Some(c), Some(u)) = (claims.as_object_mut(), user.as_object()) {
        c.extend(
            u.iter()
                .filter(|(k, _)| !k.starts_with('_'))
                .map(|(k, v)| (k.clone(), v.clone())),
        );
    }
    claims["iss"] = match state.kind {
        // The token's own tenant, unless the test forges another one (`_iss_tid`).
        Kind::Microsoft => json!(format!(
            "{}/{}/v2.0",
            state.base,
            user.get("_iss_tid")
                .unwrap_or(&user["tid"])
                .as_str()
                .unwrap_or_default()
        )),
        Kind::Apple => json!(state.base),
    };
    if let Some(nonce) = grant.nonce {
        claims["nonce"] = json!(nonce);
    }
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(SIGNING_KID.into());
    let key = EncodingKey::from_rsa_pem(SIGNING_KEY.as_bytes()).expect("signing key");
    let id_token = jsonwebtoken::encode(&header, &claims, &key).expect("sign");
    json_response(
        StatusCode::OK,
        json!({ "access_token": URL_SAFE_NO_PAD.encode(rand_bytes()), "token_type": "Bearer",
                "expires_in": 3600, "id_token": id_token,
                "refresh_token": URL_SAFE_NO_PAD.encode(rand_bytes()) }),
    )
}

async fn serve(kind: Kind, users: Value) -> StandIn {
    let port = super::oidc::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let state = Arc::new(State {
        kind,
        base: base.clone(),
        users: serde_json::from_value(users).expect("users"),
        codes: Mutex::new(HashMap::new()),
        named: Mutex::new(Vec::new()),
        secrets: Mutex::new(Vec::new()),
    });
    let app = match kind {
        Kind::Microsoft => Route::new()
            .at(
                "/:tenant/v2.0/.well-known/openid-configuration",
                get(discovery),
            )
            .at("/:tenant/oauth2/v2.0/authorize", get(authorize))
            .at("/:tenant/oauth2/v2.0/token", post(token))
            .at("/:tenant/discovery/v2.0/keys", get(keys)),
        Kind::Apple => Route::new()
            .at("/.well-known/openid-configuration", get(discovery))
            .at("/auth/authorize", get(authorize))
            .at("/auth/token", post(token))
            .at("/auth/keys", get(keys)),
    };
    super::oidc::serve_on_loopback(port, app.data(state.clone()).boxed()).await;
    StandIn { base, state }
}

/// Microsoft's identity platform: `adele` of tenant A, `megan` of tenant B (whose address
/// an existing user may own), and `forger`, whose token names tenant A in `iss` while its
/// `tid` is B's.
pub async fn microsoft() -> StandIn {
    serve(
        Kind::Microsoft,
        json!({
            "adele": { "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ", "tid": TENANT_A,
                       "oid": "00000000-0000-0000-66f3-3332eca7ea81", "name": "Adele Vance",
                       "preferred_username": "adele@contoso.example", "email": "adele@contoso.example" },
            "megan": { "sub": "BBBBBBBBBBBBBBBBBBBBBIkzqFVrSaSaFHy782bbtaQ", "tid": TENANT_B,
                       "name": "Megan Bowen", "preferred_username": "megan@fabrikam.example",
                       "email_verified": true },
            "forger": { "sub": "CCCCCCCCCCCCCCCCCCCCCIkzqFVrSaSaFHy782bbtaQ", "tid": TENANT_B,
                        "_iss_tid": TENANT_A, "name": "Forger", "email": "forger@fabrikam.example" }
        }),
    )
    .await
}

/// Sign in with Apple: `jane`, with a private relay address.
pub async fn apple() -> StandIn {
    serve(
        Kind::Apple,
        json!({
            "jane": { "sub": "001234.5f0c3e0d1b8a4b6f9a1c2d3e4f5a6b7c.1234",
                      "email": "x7k2p9q4rt@privaterelay.appleid.com",
                      "email_verified": "true", "is_private_email": "true",
                      "auth_time": 1700000000, "nonce_supported": true,
                      "_name": { "firstName": "Jane", "lastName": "Appleseed" } }
        }),
    )
    .await
}

/// The hidden fields and target of a `form_post` page.
pub fn form_post_fields(html: &str) -> (String, Vec<(String, String)>) {
    let unescape = |s: &str| {
        s.replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&#39;", "'")
            .replace("&amp;", "&")
    };
    let attr = |tag: &str, name: &str| {
        let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
        let end = tag[start..].find('"')? + start;
        Some(unescape(&tag[start..end]))
    };
    let action = html
        .split("<form")
        .nth(1)
        .and_then(|t| attr(t, "action"))
        .expect("form action");
    let fields = html
        .split("<input")
        .skip(1)
        .filter_map(|t| Some((attr(t, "name")?, attr(t, "value")?)))
        .collect();
    (action, fields)
}
