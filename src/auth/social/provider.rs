//! One configured provider at run time: its endpoints (from discovery, or configured), its
//! signing keys (the JWKS, cached and fetched again on an unknown `kid`), and the calls the
//! flow makes to it — the code exchange, a refresh, userinfo — plus `id_token` verification.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::{Mutex, RwLock};

use super::{ClientAuth, IssuerRule, Profile, ProviderSpec};

/// Clock skew allowed on `exp` (contract: 60 s).
const LEEWAY_SECS: u64 = 60;
/// An unknown `kid` fetches the JWKS again at most this often.
const JWKS_REFETCH_AFTER: Duration = Duration::from_secs(10);
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Asymmetric algorithms only: never `none`, never HMAC (whose key would be the client secret
/// or, worse, a public key taken as one).
const ALLOWED: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Why a call to the provider failed (the reason is logged; the flow answers with a code).
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("provider unreachable: {0}")]
    Unreachable(String),
    #[error("provider answered with an error: {0}")]
    Rejected(String),
    #[error("invalid id_token: {0}")]
    InvalidIdToken(String),
}

/// The endpoints in use.
#[derive(Debug)]
pub struct Metadata {
    /// The issuer discovery names (Microsoft's multi-tenant one holds `{tenantid}`).
    pub issuer: Option<String>,
    pub authorization: String,
    pub token: String,
    pub userinfo: Option<String>,
    pub jwks_uri: Option<String>,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    userinfo_endpoint: Option<String>,
    jwks_uri: Option<String>,
}

/// A token endpoint's answer.
#[derive(Debug, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub expires_in: Option<i64>,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
    pub scope: Option<String>,
}

/// What an `id_token` or userinfo says about the user.
#[derive(Debug, Default, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub email: Option<String>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub email_verified: bool,
    pub name: Option<String>,
    pub picture: Option<String>,
    pub nonce: Option<String>,
    pub azp: Option<String>,
    /// Microsoft: the tenant that issued the token (its `iss` names it too).
    #[serde(default)]
    pub tid: Option<String>,
    #[serde(default)]
    pub iss: Option<String>,
    /// Microsoft: the sign-in name, an address nobody verified.
    #[serde(default)]
    pub preferred_username: Option<String>,
    // Apple's `is_private_email` (`true` or `"true"`) is not read: a Hide My Email relay
    // address is one Apple verified, and `email_verified` says so like for any other.
}

impl Profile {
    /// What the provider's claims mean here: Microsoft's addresses are never verified by it
    /// (a tenant admin sets any `email`), so none counts as verified — no linking by email.
    fn adjust(self, mut claims: Claims) -> Claims {
        if self == Profile::Microsoft {
            claims.email_verified = false;
            if claims.email.is_none() {
                claims.email = claims.preferred_username.take().filter(|u| u.contains('@'));
            }
        }
        claims
    }
}

/// Microsoft: a tenant id is a GUID.
fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()
        .map(|u| u.origin().ascii_serialization())
}

/// `true` or `"true"` (some providers send a string).
fn lenient_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Bool(b) => b,
        serde_json::Value::String(s) => s == "true",
        _ => false,
    })
}

struct KeyCache {
    keys: Option<JwkSet>,
    fetched: Option<Instant>,
}

pub struct Provider {
    pub spec: ProviderSpec,
    http: reqwest::Client,
    metadata: RwLock<Option<Arc<Metadata>>>,
    keys: Mutex<KeyCache>,
}

impl Provider {
    pub fn new(spec: ProviderSpec) -> Result<Self, ProviderError> {
        let http = reqwest::Client::builder()
            // GitHub's API refuses requests without one.
            .user_agent(concat!("apexkit/", env!("CARGO_PKG_VERSION")))
            .timeout(HTTP_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ProviderError::Unreachable(e.to_string()))?;
        Ok(Self {
            spec,
            http,
            metadata: RwLock::new(None),
            keys: Mutex::new(KeyCache {
                keys: None,
                fetched: None,
            }),
        })
    }

    pub fn is_oidc(&self) -> bool {
        self.spec.issuer.is_some()
    }

    /// The endpoints: discovered once (then kept), configured values winning.
    pub async fn metadata(&self) -> Result<Arc<Metadata>, ProviderError> {
        if let Some(m) = self.metadata.read().await.as_ref() {
            return Ok(m.clone());
        }
        let mut slot = self.metadata.write().await;
        if let Some(m) = slot.as_ref() {
            return Ok(m.clone());
        }
        let configured = &self.spec.endpoints;
        let metadata = match &self.spec.issuer {
            Some(issuer) => {
                let url = format!("{issuer}/.well-known/openid-configuration");
                let doc: Discovery = self.get_json(&url, None).await?;
                let named = doc.issuer.trim_end_matches('/');
                let fits = match self.spec.issuer_rule {
                    IssuerRule::Exact => named == issuer,
                    // `common` names `…/{tenantid}/v2.0`, `consumers` the personal accounts'
                    // tenant: on the same host, always.
                    IssuerRule::MicrosoftTenant => {
                        named == issuer
                            || (origin(named).is_some() && origin(named) == origin(issuer))
                    }
                };
                if !fits {
                    return Err(ProviderError::Rejected(format!(
                        "discovery names issuer {:?}, expected {issuer:?}",
                        doc.issuer
                    )));
                }
                Metadata {
                    issuer: Some(named.to_owned()),
                    authorization: configured
                        .authorization
                        .clone()
                        .unwrap_or(doc.authorization_endpoint),
                    token: configured.token.clone().unwrap_or(doc.token_endpoint),
                    userinfo: configured.userinfo.clone().or(doc.userinfo_endpoint),
                    jwks_uri: doc.jwks_uri,
                }
            }
            None => Metadata {
                issuer: None,
                authorization: configured.authorization.clone().unwrap_or_default(),
                token: configured.token.clone().unwrap_or_default(),
                userinfo: configured.userinfo.clone(),
                jwks_uri: None,
            },
        };
        let metadata = Arc::new(metadata);
        *slot = Some(metadata.clone());
        Ok(metadata)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        bearer: Option<&str>,
    ) -> Result<T, ProviderError> {
        let mut req = self.http.get(url).header("accept", "application/json");
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| ProviderError::Unreachable(e.without_url().to_string()))?;
        if !resp.status().is_success() {
            return Err(ProviderError::Rejected(format!("HTTP {}", resp.status())));
        }
        resp.json()
            .await
            .map_err(|e| ProviderError::Rejected(e.without_url().to_string()))
    }

    /// POST to the token endpoint, the client authenticated with client_secret_basic (RFC 6749
    /// §2.3.1: each half form-urlencoded first) or in the form (client_secret_post, Apple's
    /// signed secret).
    async fn token_request(&self, form: &[(&str, &str)]) -> Result<TokenResponse, ProviderError> {
        let metadata = self.metadata().await?;
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let mut req = self
            .http
            .post(&metadata.token)
            .header("accept", "application/json");
        let signed;
        let posted = match &self.spec.client_auth {
            ClientAuth::Basic(secret) => {
                req = req.basic_auth(enc(&self.spec.client_id), Some(enc(secret.expose())));
                None
            }
            ClientAuth::Post(secret) => Some(secret.expose()),
            ClientAuth::AppleKey(key) => {
                signed = key
                    .client_secret(&self.spec.client_id)
                    .map_err(ProviderError::Rejected)?;
                Some(signed.as_str())
            }
        };
        let mut fields: Vec<(&str, &str)> = form.to_vec();
        if let Some(secret) = posted {
            fields.push(("client_id", &self.spec.client_id));
            fields.push(("client_secret", secret));
        }
        let resp = req
            .form(&fields)
            .send()
            .await
            .map_err(|e| ProviderError::Unreachable(e.without_url().to_string()))?;
        let status = resp.status();
        if !status.is_success() {
            let body: serde_json::Value = resp.json().await.unwrap_or_default();
            let error = body["error"].as_str().unwrap_or("unknown").to_owned();
            return Err(ProviderError::Rejected(format!("HTTP {status}: {error}")));
        }
        resp.json()
            .await
            .map_err(|e| ProviderError::Rejected(e.without_url().to_string()))
    }

    pub async fn exchange_code(
        &self,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
    ) -> Result<TokenResponse, ProviderError> {
        self.token_request(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ])
        .await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenResponse, ProviderError> {
        self.token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .await
    }

    /// The userinfo endpoint's claims (`None` when the provider has none).
    pub async fn userinfo(&self, access_token: &str) -> Result<Option<Claims>, ProviderError> {
        let metadata = self.metadata().await?;
        let Some(url) = &metadata.userinfo else {
            return Ok(None);
        };
        let claims: Claims = self.get_json(url, Some(access_token)).await?;
        Ok(Some(self.spec.profile.adjust(claims)))
    }

    /// GitHub (no OpenID Connect): the user from its REST API (`GET /user`: numeric `id`,
    /// `login`, `name`, `avatar_url`) and the address from `GET /user/emails`: the primary one
    /// when verified, else any verified one, else `/user`'s public email as unverified.
    pub async fn github_user(&self, access_token: &str) -> Result<Claims, ProviderError> {
        #[derive(Deserialize)]
        struct GitHubUser {
            id: serde_json::Value,
            login: Option<String>,
            name: Option<String>,
            avatar_url: Option<String>,
            email: Option<String>,
        }
        #[derive(Deserialize)]
        struct GitHubEmail {
            email: String,
            #[serde(default)]
            primary: bool,
            #[serde(default)]
            verified: bool,
        }
        let metadata = self.metadata().await?;
        let Some(url) = &metadata.userinfo else {
            return Err(ProviderError::Rejected("no user API".into()));
        };
        let user: GitHubUser = self.get_json(url, Some(access_token)).await?;
        let sub = match &user.id {
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::String(s) if !s.is_empty() => s.clone(),
            _ => return Err(ProviderError::Rejected("user without id".into())),
        };
        let emails: Vec<GitHubEmail> = self
            .get_json(&format!("{url}/emails"), Some(access_token))
            .await
            .unwrap_or_default();
        let verified = emails
            .iter()
            .find(|e| e.primary && e.verified)
            .or_else(|| emails.iter().find(|e| e.verified));
        let (email, email_verified) = match verified {
            Some(e) => (Some(e.email.clone()), true),
            None => (user.email, false),
        };
        Ok(Claims {
            sub,
            email,
            email_verified,
            name: user.name.or(user.login),
            picture: user.avatar_url,
            ..Claims::default()
        })
    }

    /// Discord (no OpenID Connect): `GET /users/@me`; the avatar URL is built from its hash
    /// as Discord's CDN documents it.
    pub async fn discord_user(&self, access_token: &str) -> Result<Claims, ProviderError> {
        #[derive(Deserialize)]
        struct DiscordUser {
            id: String,
            username: Option<String>,
            global_name: Option<String>,
            avatar: Option<String>,
            email: Option<String>,
            #[serde(default)]
            verified: bool,
        }
        let metadata = self.metadata().await?;
        let Some(url) = &metadata.userinfo else {
            return Err(ProviderError::Rejected("no user API".into()));
        };
        let user: DiscordUser = self.get_json(url, Some(access_token)).await?;
        if user.id.is_empty() {
            return Err(ProviderError::Rejected("user without id".into()));
        }
        let picture = user
            .avatar
            .filter(|hash| hash.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            .map(|hash| format!("https://cdn.discordapp.com/avatars/{}/{hash}.png", user.id));
        Ok(Claims {
            email_verified: user.verified && user.email.is_some(),
            email: user.email,
            name: user.global_name.or(user.username),
            picture,
            sub: user.id,
            ..Claims::default()
        })
    }

    /// The JWKS, fetched when missing or (`refresh`) when a `kid` was not found and the last
    /// fetch is not too recent.
    async fn keys(&self, refresh: bool) -> Result<JwkSet, ProviderError> {
        let mut cache = self.keys.lock().await;
        let stale = cache
            .fetched
            .is_none_or(|t| t.elapsed() >= JWKS_REFETCH_AFTER);
        if let Some(keys) = &cache.keys
            && !(refresh && stale)
        {
            return Ok(keys.clone());
        }
        let metadata = self.metadata().await?;
        let Some(uri) = &metadata.jwks_uri else {
            return Err(ProviderError::InvalidIdToken(
                "the provider has no jwks_uri".into(),
            ));
        };
        let keys: JwkSet = self.get_json(uri, None).await?;
        cache.keys = Some(keys.clone());
        cache.fetched = Some(Instant::now());
        Ok(keys)
    }

    /// Verifies an `id_token`: an asymmetric `alg` that the provider's key (by `kid`) is for,
    /// the signature, `iss`, `aud`, `azp` when present, `exp` (60 s leeway), `nonce` when
    /// expected.
    pub async fn verify_id_token(
        &self,
        token: &str,
        nonce: Option<&str>,
    ) -> Result<Claims, ProviderError> {
        let bad = |m: &str| ProviderError::InvalidIdToken(m.to_owned());
        let Some(issuer) = &self.spec.issuer else {
            return Err(bad("not an OpenID Connect provider"));
        };
        // `none` is no algorithm jsonwebtoken knows: the header does not parse.
        let header = jsonwebtoken::decode_header(token).map_err(|_| bad("malformed header"))?;
        if !ALLOWED.contains(&header.alg) {
            return Err(bad("algorithm not allowed"));
        }
        let mut found = find_key(&self.keys(false).await?, header.kid.as_deref(), header.alg);
        if found.is_none() {
            found = find_key(&self.keys(true).await?, header.kid.as_deref(), header.alg);
        }
        let key = found.ok_or_else(|| bad("no matching key in the provider's JWKS"))?;
        let mut validation = Validation::new(header.alg);
        let rule = self.spec.issuer_rule;
        if rule == IssuerRule::Exact {
            validation.set_issuer(&[issuer]);
        }
        validation.set_audience(&[&self.spec.client_id]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|e| ProviderError::InvalidIdToken(e.to_string()))?
            .claims;
        if claims
            .azp
            .as_deref()
            .is_some_and(|azp| azp != self.spec.client_id)
        {
            return Err(bad("azp is another client"));
        }
        if rule == IssuerRule::MicrosoftTenant && !self.tenant_issuer(&claims).await? {
            return Err(bad("iss is not the token's tenant's"));
        }
        if let Some(expected) = nonce
            && claims.nonce.as_deref() != Some(expected)
        {
            return Err(bad("nonce mismatch"));
        }
        Ok(self.spec.profile.adjust(claims))
    }

    /// Microsoft: the token's `iss` is the issuer discovery names with `{tenantid}` replaced by
    /// the token's `tid`, a GUID (a single-tenant issuer has no placeholder: equal).
    async fn tenant_issuer(&self, claims: &Claims) -> Result<bool, ProviderError> {
        let metadata = self.metadata().await?;
        let (Some(named), Some(iss)) = (&metadata.issuer, &claims.iss) else {
            return Ok(false);
        };
        if !named.contains("{tenantid}") {
            return Ok(iss == named);
        }
        Ok(claims
            .tid
            .as_deref()
            .is_some_and(|tid| is_guid(tid) && *iss == named.replace("{tenantid}", tid)))
    }

    /// Whether an RFC 9207 `iss` parameter of an authorization response is this provider's
    /// issuer (for Microsoft's multi-tenant issuer: that with some tenant's GUID).
    pub async fn is_own_issuer(&self, iss: &str) -> bool {
        let iss = iss.trim_end_matches('/');
        let Some(issuer) = &self.spec.issuer else {
            // A plain OAuth 2.0 provider has no issuer we could compare with.
            return true;
        };
        if iss == issuer {
            return true;
        }
        if self.spec.issuer_rule != IssuerRule::MicrosoftTenant {
            return false;
        }
        let Ok(metadata) = self.metadata().await else {
            return false;
        };
        let Some((before, after)) = metadata
            .issuer
            .as_deref()
            .and_then(|n| n.split_once("{tenantid}"))
        else {
            return metadata.issuer.as_deref() == Some(iss);
        };
        iss.strip_prefix(before)
            .and_then(|rest| rest.strip_suffix(after))
            .is_some_and(is_guid)
    }
}

/// The key for `kid` (or, without a `kid`, the only key fit for `alg`) — only if it is for
/// `alg`: its declared `alg` when it has one, and its key type always.
fn find_key(set: &JwkSet, kid: Option<&str>, alg: Algorithm) -> Option<DecodingKey> {
    let fits = |jwk: &&jsonwebtoken::jwk::Jwk| {
        let family = matches!(
            (&jwk.algorithm, alg),
            (
                AlgorithmParameters::RSA(_),
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512
            ) | (
                AlgorithmParameters::EllipticCurve(_),
                Algorithm::ES256 | Algorithm::ES384
            ) | (AlgorithmParameters::OctetKeyPair(_), Algorithm::EdDSA)
        );
        let declared = jwk
            .common
            .key_algorithm
            .is_none_or(|k| serde_json::to_value(k).ok() == serde_json::to_value(alg).ok());
        family && declared
    };
    let mut candidates = set.keys.iter().filter(fits).filter(|jwk| match kid {
        Some(kid) => jwk.common.key_id.as_deref() == Some(kid),
        None => true,
    });
    let first = candidates.next()?;
    if kid.is_none() && candidates.next().is_some() {
        return None;
    }
    DecodingKey::from_jwk(first).ok()
}
