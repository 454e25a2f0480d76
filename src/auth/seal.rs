//! Sealing values at rest with a key derived from `APEXKIT_SECRET`: HKDF-SHA256 (a distinct
//! salt and info per use, so a value sealed for one purpose never opens for another) →
//! XChaCha20-Poly1305 with a random 192-bit nonce. The caller binds each value to its place
//! (a key id, a row and column) as associated data, so a sealed value moved elsewhere does not
//! open. Used by the signing keys (`keys.rs`) and the provider tokens of social sign-in.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use sha2::Sha256;

use crate::error::{Error, Result};
use crate::secret::Secret;

const SEALED_PREFIX: &str = "xc20p1.";
const NONCE_BYTES: usize = 24;

/// A symmetric key for one use of the deployment secret.
pub struct Sealer(XChaCha20Poly1305);

impl Sealer {
    /// The key for one use: `salt` and `info` name it (HKDF-SHA256).
    pub fn derive(secret: &Secret, salt: &[u8], info: &[u8]) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(salt), secret.expose().as_bytes());
        let mut okm = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's 8160-byte limit: expand cannot fail here.
        let _ = hk.expand(info, &mut okm);
        Self(XChaCha20Poly1305::new(&okm.into()))
    }

    /// `xc20p1.` + base64url(nonce ‖ ciphertext), bound to `aad`.
    pub fn seal(&self, msg: &[u8], aad: &[u8]) -> Result<String> {
        let nonce = random::<NONCE_BYTES>()?;
        let sealed = self
            .0
            .encrypt(&XNonce::from(nonce), Payload { msg, aad })
            .map_err(|_| Error::internal(anyhow::anyhow!("sealing a value failed")))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{SEALED_PREFIX}{}", URL_SAFE_NO_PAD.encode(out)))
    }

    /// The plain value, or `None` when it was sealed with another key or `aad`, or altered.
    pub fn open(&self, sealed: &str, aad: &[u8]) -> Option<Vec<u8>> {
        let bytes = URL_SAFE_NO_PAD
            .decode(sealed.strip_prefix(SEALED_PREFIX)?)
            .ok()?;
        if bytes.len() <= NONCE_BYTES {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().ok()?;
        self.0
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .ok()
    }
}

/// `N` bytes from the OS CSPRNG.
pub fn random<const N: usize>() -> Result<[u8; N]> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf)
        .map_err(|e| Error::internal(anyhow::anyhow!("OS RNG failed: {e}")))?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_opens_only_with_its_key_purpose_and_place() {
        let secret = Secret::new("s".repeat(32));
        let a = Sealer::derive(&secret, b"salt", b"use-a");
        let b = Sealer::derive(&secret, b"salt", b"use-b");
        let sealed = a.seal(b"value", b"row-1").unwrap();
        assert_eq!(a.open(&sealed, b"row-1").as_deref(), Some(&b"value"[..]));
        assert_eq!(a.open(&sealed, b"row-2"), None, "bound to its place");
        assert_eq!(b.open(&sealed, b"row-1"), None, "bound to its purpose");
        assert_ne!(a.seal(b"value", b"row-1").unwrap(), sealed, "fresh nonce");
    }
}
