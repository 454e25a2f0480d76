//! Opaque secrets: session tokens (256 bits from the OS CSPRNG, stored only as SHA-256) and ids.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

const TOKEN_BYTES: usize = 32;
/// Length of a base64url (unpadded) encoding of 32 bytes.
const TOKEN_CHARS: usize = 43;
/// Better Auth's session tokens (`generateId(32)`: 32 letters and digits), valid in an adopted
/// database (stored there as the same SHA-256 hash).
const BETTER_AUTH_TOKEN_CHARS: usize = 32;

fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf)
        .map_err(|e| Error::internal(anyhow::anyhow!("OS RNG failed: {e}")))?;
    Ok(buf)
}

/// A session token as handed to the client. Only its hash goes to the database.
#[derive(Clone)]
pub struct SessionToken(String);

impl SessionToken {
    pub fn generate() -> Result<Self> {
        Ok(Self(URL_SAFE_NO_PAD.encode(random_bytes::<TOKEN_BYTES>()?)))
    }

    /// Accepts only strings of the exact shape we issue. Anything else (a JWT, a made-up value,
    /// an oversized header) is no token at all and costs no database lookup.
    /// Better Auth's shape is accepted too (see [`BETTER_AUTH_TOKEN_CHARS`]).
    pub fn parse(raw: &str) -> Option<Self> {
        let ours = raw.len() == TOKEN_CHARS
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        let better_auth =
            raw.len() == BETTER_AUTH_TOKEN_CHARS && raw.bytes().all(|b| b.is_ascii_alphanumeric());
        let ok = ours || better_auth;
        ok.then(|| Self(raw.to_owned()))
    }

    pub fn hash(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.0.as_bytes()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionToken(…)")
    }
}

/// A new random identifier (128 bits, 32 lowercase hex characters).
pub fn new_id() -> Result<String> {
    let bytes = random_bytes::<16>()?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_parse_and_hash_stably() {
        let t = SessionToken::generate().unwrap();
        assert_eq!(t.expose().len(), TOKEN_CHARS);
        let parsed = SessionToken::parse(t.expose()).unwrap();
        assert_eq!(parsed.hash(), t.hash());
        assert_ne!(t.hash(), t.expose());
    }

    #[test]
    fn foreign_shapes_are_not_tokens() {
        assert!(SessionToken::parse("eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxIn0.c2ln").is_none());
        assert!(SessionToken::parse("short").is_none());
        assert!(SessionToken::parse(&"a".repeat(44)).is_none());
        assert!(SessionToken::parse(&format!("{}=", "a".repeat(42))).is_none());
        // Better Auth's tokens (adopted sessions): 32 letters and digits, nothing else.
        assert!(SessionToken::parse("bpKwAhXwBu7Qyt6fbCeqY732ecSvawOZ").is_some());
        assert!(SessionToken::parse("bpKwAhXwBu7Qyt6fbCeqY732ecSvawO-").is_none());
    }
}
