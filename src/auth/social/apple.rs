//! Sign in with Apple's two quirks on our side: the client secret is not a static string but
//! an ES256 JWT signed with the developer's private key (team id as `iss`, the services id as
//! `sub`, `aud` Apple's), kept and signed anew before it expires; and the user's name, which
//! never appears in the `id_token`, arrives once, in the `user` field of the first
//! `form_post` callback (Apple: "Incorporating Sign in with Apple into other platforms",
//! "Creating a client secret").

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// The `aud` Apple requires in the client secret.
const AUDIENCE: &str = "https://appleid.apple.com";
/// How long a signed client secret lives (Apple accepts up to six months).
const LIFETIME: Duration = Duration::from_secs(3600);
/// A client secret this close to its expiry is signed anew.
const RENEW_BEFORE: Duration = Duration::from_secs(300);
const MAX_NAME_CHARS: usize = 256;

/// The key Apple's client secrets are signed with.
#[derive(Clone)]
pub struct AppleKey(Arc<Inner>);

struct Inner {
    team_id: String,
    key_id: String,
    key: EncodingKey,
    /// The current client secret and its expiry (seconds since the epoch).
    current: Mutex<Option<(String, i64)>>,
}

impl std::fmt::Debug for AppleKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppleKey")
            .field("team_id", &self.0.team_id)
            .field("key_id", &self.0.key_id)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct SecretClaims<'a> {
    iss: &'a str,
    iat: i64,
    exp: i64,
    aud: &'a str,
    sub: &'a str,
}

impl AppleKey {
    /// `pem`: the `.p8` file Apple lets you download once (a PKCS#8 P-256 key).
    pub fn new(team_id: String, key_id: String, pem: Secret) -> Result<Self, String> {
        let key = EncodingKey::from_ec_pem(pem.expose().as_bytes())
            .map_err(|e| format!("not a P-256 private key in PEM: {e}"))?;
        let apple = Self(Arc::new(Inner {
            team_id,
            key_id,
            key,
            current: Mutex::new(None),
        }));
        // A key that cannot sign is a configuration error now, not at the first sign-in.
        apple.sign("check", 0)?;
        Ok(apple)
    }

    fn sign(&self, client_id: &str, now: i64) -> Result<(String, i64), String> {
        let exp = now + LIFETIME.as_secs() as i64;
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.0.key_id.clone());
        let claims = SecretClaims {
            iss: &self.0.team_id,
            iat: now,
            exp,
            aud: AUDIENCE,
            sub: client_id,
        };
        jsonwebtoken::encode(&header, &claims, &self.0.key)
            .map(|jwt| (jwt, exp))
            .map_err(|e| format!("cannot sign the client secret: {e}"))
    }

    /// The client secret for `client_id`: the current one, or a new one when it is about to
    /// expire.
    pub fn client_secret(&self, client_id: &str) -> Result<String, String> {
        let now = chrono::Utc::now().timestamp();
        let mut current = self.0.current.lock().map_err(|_| "poisoned".to_owned())?;
        if let Some((jwt, exp)) = current.as_ref()
            && *exp - now > RENEW_BEFORE.as_secs() as i64
        {
            return Ok(jwt.clone());
        }
        let (jwt, exp) = self.sign(client_id, now)?;
        *current = Some((jwt.clone(), exp));
        Ok(jwt)
    }
}

/// The `user` field of Apple's first `form_post`: `{"name": {"firstName", "lastName"},
/// "email"}`. Only the name is taken (the email comes from the signed `id_token`); it is not
/// signed, so it only ever names a user created by this sign-in.
pub fn name_from_user_field(user: &str) -> Option<String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Name {
        first_name: Option<String>,
        last_name: Option<String>,
    }
    #[derive(Deserialize)]
    struct User {
        name: Option<Name>,
    }
    let name = serde_json::from_str::<User>(user).ok()?.name?;
    let full = [name.first_name, name.last_name]
        .into_iter()
        .flatten()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    (!full.is_empty()).then(|| full.chars().take(MAX_NAME_CHARS).collect())
}

#[cfg(test)]
mod tests {
    use super::name_from_user_field;

    #[test]
    fn the_name_comes_from_the_user_field() {
        let user = r#"{"name":{"firstName":"Jane","lastName":"Appleseed"},"email":"x@privaterelay.appleid.com"}"#;
        assert_eq!(
            name_from_user_field(user).as_deref(),
            Some("Jane Appleseed")
        );
        assert_eq!(name_from_user_field(r#"{"email":"a@b"}"#), None);
        assert_eq!(name_from_user_field("not json"), None);
    }
}
