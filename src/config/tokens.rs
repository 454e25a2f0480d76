//! Access tokens and signing keys: token lifetime, key rotation, audience.

use std::time::Duration;

use crate::auth::keys::KeyPolicy;

#[derive(Debug, Clone, clap::Args)]
pub struct TokensConfig {
    /// Lifetime of an access token (JWT) in seconds.
    #[arg(
        id = "access_token_expires_in",
        long = "access-token-expires-in",
        value_name = "ACCESS_TOKEN_EXPIRES_IN",
        env = "APEXKIT_ACCESS_TOKEN_EXPIRES_IN",
        default_value_t = 900,
        help_heading = "Access tokens and signing keys"
    )]
    pub expires_in: u64,

    /// Seconds after which the signing key is replaced (default 30 days); a retired key stays
    /// in the JWKS until the tokens it signed have expired.
    #[arg(long, env = "APEXKIT_KEY_ROTATION_INTERVAL", default_value_t = 30 * 24 * 3600, help_heading = "Access tokens and signing keys")]
    pub key_rotation_interval: u64,

    /// `aud` claim of access tokens; default: the issuer (APEXKIT_BASE_URL without a trailing slash).
    #[arg(
        id = "jwt_audience",
        long = "jwt-audience",
        value_name = "JWT_AUDIENCE",
        env = "APEXKIT_JWT_AUDIENCE",
        help_heading = "Access tokens and signing keys"
    )]
    pub audience: Option<String>,
}

/// The token settings, validated.
pub struct Tokens {
    /// Token lifetime and key rotation interval.
    pub keys: KeyPolicy,
    /// APEXKIT_JWT_AUDIENCE, trimmed.
    audience: Option<String>,
}

impl TokensConfig {
    pub fn settings(&self) -> Result<Tokens, String> {
        let mut problems = Vec::new();
        if self.expires_in == 0 || self.key_rotation_interval == 0 {
            problems.push(
                "APEXKIT_ACCESS_TOKEN_EXPIRES_IN and APEXKIT_KEY_ROTATION_INTERVAL must be positive"
                    .to_owned(),
            );
        }
        if self
            .audience
            .as_deref()
            .is_some_and(|a| a.trim().is_empty())
        {
            problems.push("APEXKIT_JWT_AUDIENCE must not be empty".to_owned());
        }
        super::problems(problems)?;
        Ok(Tokens {
            keys: KeyPolicy {
                token_lifetime: Duration::from_secs(self.expires_in),
                rotation_interval: Duration::from_secs(self.key_rotation_interval),
            },
            audience: self.audience.as_deref().map(|a| a.trim().to_owned()),
        })
    }
}

impl Tokens {
    /// The `aud` of access tokens: APEXKIT_JWT_AUDIENCE, else the issuer.
    pub fn audience(&self, issuer: &str) -> String {
        self.audience.clone().unwrap_or_else(|| issuer.to_owned())
    }
}
