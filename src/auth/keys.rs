//! Signing keys for access tokens: Ed25519 key pairs kept in the database so every replica signs
//! and publishes the same keys, the private half sealed with XChaCha20-Poly1305 under a key
//! derived (HKDF-SHA256) from `APEXKIT_SECRET`. Rotation, the JWKS document and retention live here.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::NaiveDateTime;
use jsonwebtoken::EncodingKey;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::now;
use super::seal::{self, random};
use crate::clock::before as ago;
use crate::db::signing_keys::{self, SigningKeyRow};
use crate::db::{Conn, Pool};
use crate::error::{Error, Result};
use crate::secret::Secret;

/// The only algorithm we sign with (RFC 8037 name).
pub const ALGORITHM: &str = "EdDSA";
/// Clock skew verifiers are told to allow (README); a retired key stays published this long
/// after the last token it signed has expired.
pub const VERIFIER_LEEWAY: Duration = Duration::from_secs(60);

/// PKCS#8 v1 DER header of an Ed25519 private key; the 32-byte seed follows.
const PKCS8_V1_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// How often a caller retries after losing a race to another replica.
const MAX_RACES: usize = 5;

/// Timing rules for keys, from configuration.
#[derive(Debug, Clone, Copy)]
pub struct KeyPolicy {
    /// Lifetime of the access tokens the keys sign.
    pub token_lifetime: Duration,
    /// Age at which the active key is replaced.
    pub rotation_interval: Duration,
}

impl KeyPolicy {
    /// How long a key stays published after it stops signing.
    pub fn retention(&self) -> Duration {
        self.token_lifetime + VERIFIER_LEEWAY
    }
}

/// What boot does when the active key cannot be unsealed (the secret changed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnUnreadableKey {
    /// Development: warn and replace it with a fresh key.
    Replace,
    /// Production: refuse to start.
    Refuse,
}

/// Public facts about a key (never the private half).
#[derive(Debug, Clone)]
pub struct KeyInfo {
    pub kid: String,
    pub algorithm: String,
    pub created_at: NaiveDateTime,
    pub retired_at: Option<NaiveDateTime>,
}

impl From<&SigningKeyRow> for KeyInfo {
    fn from(row: &SigningKeyRow) -> Self {
        Self {
            kid: row.id.clone(),
            algorithm: row.algorithm.clone(),
            created_at: row.created_at,
            retired_at: row.retired_at,
        }
    }
}

/// One public key as a JWK (RFC 8037 OKP). Only public members exist on this type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Jwk {
    pub kty: &'static str,
    pub crv: &'static str,
    pub x: String,
    pub kid: String,
    pub alg: &'static str,
    #[serde(rename = "use")]
    pub use_: &'static str,
}

/// The JWK Set served at `/.well-known/jwks.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// The active key, unsealed, ready to sign.
pub struct Signer {
    kid: String,
    /// The sealed private key it was opened from (safe to keep: sealed).
    sealed: String,
    key: EncodingKey,
}

impl Signer {
    pub fn kid(&self) -> &str {
        &self.kid
    }
    pub fn encoding_key(&self) -> &EncodingKey {
        &self.key
    }
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("kid", &self.kid).finish()
    }
}

/// The symmetric key that seals private keys at rest (see [`seal`](super::seal)).
struct Sealer(seal::Sealer);

impl Sealer {
    fn derive(secret: &Secret) -> Self {
        Self(seal::Sealer::derive(
            secret,
            b"apexkit signing keys",
            b"apexkit:signing-key-seal:v1",
        ))
    }

    /// Seals a seed; the key id is bound as associated data, so a sealed key moved to another
    /// row does not open.
    fn seal(&self, seed: &[u8; 32], kid: &str) -> Result<String> {
        self.0.seal(seed, kid.as_bytes())
    }

    fn open(&self, sealed: &str, kid: &str) -> Option<[u8; 32]> {
        self.0.open(sealed, kid.as_bytes())?.try_into().ok()
    }
}

fn public_key(seed: &[u8; 32]) -> [u8; 32] {
    ed25519_dalek::SigningKey::from_bytes(seed)
        .verifying_key()
        .to_bytes()
}

/// RFC 7638 thumbprint of an Ed25519 public key: a stable, collision-free `kid`.
fn thumbprint(x: &str) -> String {
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

fn pkcs8_v1(seed: &[u8; 32]) -> Vec<u8> {
    let mut der = PKCS8_V1_ED25519_PREFIX.to_vec();
    der.extend_from_slice(seed);
    der
}

/// The signing keys of this deployment, shared by every replica through the database.
#[derive(Clone)]
pub struct KeyStore {
    pool: Pool,
    sealer: Arc<Sealer>,
    policy: KeyPolicy,
    /// The last key unsealed: while the active row stays the same, signing skips the
    /// decryption and key derivation.
    unsealed: Arc<Mutex<Option<Arc<Signer>>>>,
}

impl KeyStore {
    pub fn new(pool: Pool, secret: &Secret, policy: KeyPolicy) -> Self {
        Self {
            pool,
            sealer: Arc::new(Sealer::derive(secret)),
            policy,
            unsealed: Arc::default(),
        }
    }

    pub fn policy(&self) -> KeyPolicy {
        self.policy
    }

    async fn conn(&self) -> Result<Conn> {
        Ok(self.pool.get().await?)
    }

    fn new_row(&self, now: NaiveDateTime) -> Result<SigningKeyRow> {
        let seed = random::<32>()?;
        let x = URL_SAFE_NO_PAD.encode(public_key(&seed));
        let kid = thumbprint(&x);
        Ok(SigningKeyRow {
            private_key: self.sealer.seal(&seed, &kid)?,
            id: kid,
            algorithm: ALGORITHM.to_owned(),
            public_key: x,
            created_at: now,
            retired_at: None,
        })
    }

    fn unseal(&self, row: &SigningKeyRow) -> Option<Signer> {
        let seed = self.sealer.open(&row.private_key, &row.id)?;
        // A seed that does not match its stored public key is as unusable as a wrong secret.
        if URL_SAFE_NO_PAD.encode(public_key(&seed)) != row.public_key {
            return None;
        }
        Some(Signer {
            kid: row.id.clone(),
            sealed: row.private_key.clone(),
            key: EncodingKey::from_ed_der(&pkcs8_v1(&seed)),
        })
    }

    fn is_due(&self, row: &SigningKeyRow, now: NaiveDateTime) -> bool {
        row.created_at <= ago(now, self.policy.rotation_interval)
    }

    /// Replaces the active key when `replace(active)` says so (always when there is none),
    /// converging when replicas race: the loser re-reads the winner's key. Returns the active
    /// key and whether this call created it.
    async fn replace_when(
        &self,
        replace: impl Fn(&SigningKeyRow) -> bool,
    ) -> Result<(SigningKeyRow, bool)> {
        let mut conn = self.conn().await?;
        for _ in 0..MAX_RACES {
            let active = signing_keys::find_active(&mut conn).await?;
            if let Some(row) = &active
                && !replace(row)
            {
                return Ok((row.clone(), false));
            }
            let now = now();
            let new = self.new_row(now)?;
            let expected = active.as_ref().map(|r| r.id.as_str());
            if signing_keys::replace_active(&mut conn, expected, &new, now).await? {
                match &active {
                    Some(old) => {
                        tracing::info!(kid = %new.id, retired = %old.id, "signing key rotated")
                    }
                    None => tracing::info!(kid = %new.id, "signing key created"),
                }
                return Ok((new, true));
            }
            // Another replica replaced it first: look again.
        }
        Err(Error::internal(anyhow::anyhow!(
            "signing key kept changing under us ({MAX_RACES} attempts)"
        )))
    }

    /// Boot: makes sure an active key exists, is readable with this secret, and is not overdue
    /// for rotation. Three replicas booting on an empty database create exactly one key.
    pub async fn ensure_active(&self, on_unreadable: OnUnreadableKey) -> anyhow::Result<KeyInfo> {
        let (row, _) = self
            .replace_when(|row| self.is_due(row, now()))
            .await
            .map_err(|e| anyhow::anyhow!("cannot prepare the signing key: {e:?}"))?;
        if self.unseal(&row).is_some() {
            return Ok(KeyInfo::from(&row));
        }
        match on_unreadable {
            OnUnreadableKey::Refuse => anyhow::bail!(
                "the active signing key {} cannot be decrypted with APEXKIT_SECRET \
                 (was the secret changed?): restore the previous secret, or run \
                 `apexkit keys rotate` to replace the key",
                row.id
            ),
            OnUnreadableKey::Replace => {
                tracing::warn!(
                    kid = %row.id,
                    "the active signing key cannot be decrypted with this secret \
                     (development secrets change on every start): replacing it"
                );
                let stale = row.id.clone();
                let (row, _) = self
                    .replace_when(|r| r.id == stale)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot replace the signing key: {e:?}"))?;
                Ok(KeyInfo::from(&row))
            }
        }
    }

    /// On demand: retires the active key and creates a new one. Tokens signed by the old key stay
    /// verifiable (it stays published until they have expired). If another replica rotates at
    /// the same moment, its new key is the answer.
    pub async fn rotate(&self) -> Result<KeyInfo> {
        let mut conn = self.conn().await?;
        let before = signing_keys::find_active(&mut conn).await?.map(|r| r.id);
        drop(conn);
        let (row, _) = self
            .replace_when(|r| before.as_deref().is_none_or(|b| b == r.id))
            .await?;
        Ok(KeyInfo::from(&row))
    }

    /// Interval rotation, run periodically by every replica; only one of them rotates.
    pub async fn rotate_if_due(&self) -> Result<Option<KeyInfo>> {
        let (row, created) = self.replace_when(|row| self.is_due(row, now())).await?;
        Ok(created.then(|| KeyInfo::from(&row)))
    }

    /// The active key, ready to sign. Read on every use (one indexed row), so a rotation by any
    /// replica or the CLI takes effect at once and a retired key never signs again.
    pub async fn signer(&self) -> Result<Arc<Signer>> {
        let (row, _) = self.replace_when(|_| false).await?;
        self.signer_of(&row)
    }

    /// The signer for `active`, the active row the caller read itself (together with other
    /// statements, see `db::users::find_with_password_and_signing_key`); with none, as
    /// [`Self::signer`] (which creates the first key).
    pub async fn signer_from(&self, active: Option<SigningKeyRow>) -> Result<Arc<Signer>> {
        match active {
            Some(row) => self.signer_of(&row),
            None => self.signer().await,
        }
    }

    fn signer_of(&self, row: &SigningKeyRow) -> Result<Arc<Signer>> {
        let mut unsealed = self.unsealed.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(signer) = unsealed.as_ref()
            && signer.kid == row.id
            && signer.sealed == row.private_key
        {
            return Ok(Arc::clone(signer));
        }
        let signer = Arc::new(self.unseal(row).ok_or_else(|| {
            Error::internal(anyhow::anyhow!(
                "signing key {} cannot be decrypted with APEXKIT_SECRET",
                row.id
            ))
        })?);
        *unsealed = Some(Arc::clone(&signer));
        Ok(signer)
    }

    /// The public keys verifiers need: the active key and every retired key whose tokens may
    /// still be valid (retired less than token lifetime + leeway ago), newest first.
    pub async fn jwks(&self) -> Result<Jwks> {
        let cutoff = ago(now(), self.policy.retention());
        let rows = signing_keys::list_published(&mut self.conn().await?, cutoff).await?;
        Ok(Jwks {
            keys: rows
                .into_iter()
                .filter(|r| r.algorithm == ALGORITHM)
                .map(|r| Jwk {
                    kty: "OKP",
                    crv: "Ed25519",
                    x: r.public_key,
                    kid: r.id,
                    alg: ALGORITHM,
                    use_: "sig",
                })
                .collect(),
        })
    }

    /// Deletes keys no longer published; run periodically.
    pub async fn purge_retired(&self) -> Result<usize> {
        let cutoff = ago(now(), self.policy.retention());
        Ok(signing_keys::delete_retired_before(&mut self.conn().await?, cutoff).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_the_same_secret_and_kid() {
        let a = Sealer::derive(&Secret::new("a".repeat(32)));
        let b = Sealer::derive(&Secret::new("b".repeat(32)));
        let seed = [7u8; 32];
        let sealed = a.seal(&seed, "kid-1").unwrap();
        assert!(!sealed.contains(&URL_SAFE_NO_PAD.encode(seed)));
        assert_eq!(a.open(&sealed, "kid-1"), Some(seed));
        assert_eq!(a.open(&sealed, "kid-2"), None, "bound to its kid");
        assert_eq!(b.open(&sealed, "kid-1"), None, "bound to the secret");
        assert_ne!(sealed, a.seal(&seed, "kid-1").unwrap(), "fresh nonce");
    }

    #[test]
    fn thumbprint_matches_rfc_8037_example() {
        // RFC 8037, appendix A.3.
        assert_eq!(
            thumbprint("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn pkcs8_key_signs() {
        let der = pkcs8_v1(&[9u8; 32]);
        let key = EncodingKey::from_ed_der(&der);
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        assert!(jsonwebtoken::encode(&header, &serde_json::json!({"a": 1}), &key).is_ok());
    }
}
