//! Passkeys (WebAuthn): registering one, signing in with one (discoverable, or email first),
//! listing, renaming and removing them. A ceremony's state lives in a `verification` row keyed
//! by the SHA-256 of its challenge — the challenge comes back inside the client's signed
//! `clientDataJSON` — so any replica finishes a ceremony another began; single use, 5 minutes.
//! The checks themselves (signature, origin, RP id, flags, counter) are webauthn-rs-core's.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use hkdf::Hkdf;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use webauthn_rs_core::WebauthnCore;
use webauthn_rs_core::error::WebauthnError;
use webauthn_rs_core::internals::AuthenticatorData;
use webauthn_rs_core::proto::{
    AttestationConveyancePreference, AuthenticationState, AuthenticatorAttachment, Credential,
    PublicKeyCredential, RegisterPublicKeyCredential, Registration, RegistrationState,
    UserVerificationPolicy,
};

use super::audit::{AuditEvent, AuditKind};
use super::context::service;
use super::two_factor::SignInOutcome;
use super::{ClientInfo, Viewer, email, now, token};
use crate::clock::after as add;
use crate::db::passkeys::{self, NewPasskey};
use crate::db::verifications::{self, Consumed, NewVerification, purpose};
use crate::db::{DbError, users};
use crate::error::{Error, Result};
use crate::secret::Secret;

pub use crate::db::passkeys::Passkey;

service! {
    /// Passkeys: the WebAuthn ceremonies (sign-in ends in `Sessions::issue`) and the user's list.
    Passkeys
}

/// How long a ceremony may take, from its options to its response.
pub const CEREMONY_LIFETIME: Duration = Duration::from_secs(5 * 60);
/// Registering a passkey needs a sign-in this recent.
pub const FRESH_SIGN_IN: Duration = Duration::from_secs(5 * 60);
/// A passkey's name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// `deviceType` of a passkey that can be synced (backup eligible), and of one that cannot.
pub const MULTI_DEVICE: &str = "multiDevice";
pub const SINGLE_DEVICE: &str = "singleDevice";

/// Which kind of authenticator a registration asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attachment {
    Platform,
    CrossPlatform,
}

/// The relying party: its id, name and allowed origins (the trusted origins), built at boot.
pub struct RelyingParty {
    core: WebauthnCore,
    rp_id: String,
    /// Keys the decoy credential ids of email-first sign-ins for addresses without passkeys.
    decoy_key: [u8; 32],
}

impl RelyingParty {
    pub fn new(
        rp_id: &str,
        rp_name: &str,
        origins: &[String],
        secret: &Secret,
    ) -> Result<Self, String> {
        let allowed = origins
            .iter()
            .map(|o| url::Url::parse(o).map_err(|e| format!("origin {o:?}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        // Exact origins only: no subdomain or port wildcards.
        let core = WebauthnCore::new_unsafe_experts_only(
            rp_name,
            rp_id,
            allowed,
            CEREMONY_LIFETIME,
            Some(false),
            Some(false),
        );
        let mut decoy_key = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's limit: expand cannot fail.
        let _ = Hkdf::<Sha256>::new(Some(b"apexkit passkeys"), secret.expose().as_bytes())
            .expand(b"apexkit:passkey-decoy:v1", &mut decoy_key);
        Ok(Self {
            core,
            rp_id: rp_id.to_owned(),
            decoy_key,
        })
    }

    pub fn rp_id(&self) -> &str {
        &self.rp_id
    }

    /// Whether a browser on `origin` may use passkeys of this RP id (its host is the id or a
    /// subdomain of it) — for the boot-time warning about trusted origins that cannot.
    pub fn serves(&self, origin: &str) -> bool {
        url::Url::parse(origin)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .is_some_and(|host| {
                host == self.rp_id
                    || host
                        .strip_suffix(&self.rp_id)
                        .is_some_and(|p| p.ends_with('.'))
            })
    }

    /// A stable, secret-keyed credential id for an address with no passkey, so the email-first
    /// options of an unknown address look like a known one's.
    fn decoy_credential(&self, email: &str) -> String {
        let mut id = [0u8; 32];
        let _ = Hkdf::<Sha256>::new(Some(&self.decoy_key), email.as_bytes())
            .expand(b"credential-id", &mut id);
        URL_SAFE_NO_PAD.encode(id)
    }
}

/// A refusal from the verifier: a response from an untrusted origin is `FORBIDDEN`, anything
/// else that fails verification `INVALID_TOKEN`.
fn refusal(error: &WebauthnError) -> Error {
    match error {
        WebauthnError::InvalidRPOrigin => Error::Forbidden,
        _ => Error::InvalidToken,
    }
}

/// A short, non-secret name for a refusal in the audit trail.
fn refusal_reason(error: &WebauthnError) -> &'static str {
    match error {
        WebauthnError::InvalidRPOrigin => "origin",
        WebauthnError::CredentialPossibleCompromise => "counter",
        WebauthnError::UserNotVerified => "user_verification",
        _ => "verification",
    }
}

/// The identifier of a ceremony's row: SHA-256 of its challenge's bytes (base64url, padded or
/// not, as the client echoes it). `None` for anything that is no challenge.
fn ceremony_id(challenge: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(challenge.trim_end_matches('='))
        .or_else(|_| URL_SAFE.decode(challenge))
        .ok()?;
    (bytes.len() >= 16).then(|| URL_SAFE_NO_PAD.encode(Sha256::digest(&bytes)))
}

/// The challenge the client signed, from its `clientDataJSON`.
fn challenge_of(client_data_json: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct ClientData {
        challenge: String,
    }
    serde_json::from_slice::<ClientData>(client_data_json)
        .ok()
        .map(|c| c.challenge)
}

/// The authenticator's AAGUID (its make and model; all zeros when it does not say) from the
/// attested credential data of a registration response, as a hyphenated lower-case UUID — the
/// form Better Auth stores. Read after the verifier accepted the response, from the same bytes:
/// webauthn-rs-core keeps the AAGUID only for attestation formats it verifies, and registration
/// asks for `none`. `None` if the data has none (the verifier would have refused that).
fn aaguid(response: &RegisterPublicKeyCredential) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct AttestationObject<'a> {
        #[serde(rename = "authData", borrow)]
        auth_data: &'a [u8],
    }
    let object: AttestationObject<'_> =
        serde_cbor_2::from_slice(&response.response.attestation_object).ok()?;
    let data = AuthenticatorData::<Registration>::try_from(object.auth_data).ok()?;
    Some(uuid_text(&data.acd?.aaguid))
}

/// 16 bytes as `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
fn uuid_text(bytes: &[u8; 16]) -> String {
    let mut out = String::with_capacity(36);
    for (i, byte) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// A passkey's name: trimmed, 1 to [`MAX_NAME_CHARS`] characters.
fn checked_name(name: &str) -> Result<&str> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(Error::BadUserInput {
            field: "name",
            message: "must be 1 to 64 characters, no control characters",
        });
    }
    Ok(name)
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::internal(anyhow::anyhow!("passkey: {e}"))
}

impl Passkeys<'_> {
    fn rp(&self) -> Result<&RelyingParty> {
        self.relying_party
            .as_deref()
            .ok_or_else(|| internal("relying party not configured"))
    }

    /// Registering needs a recent sign-in (a stolen, old session cannot add a key of its own).
    fn require_fresh_sign_in(&self, viewer: &Viewer) -> Result<()> {
        if now() > add(viewer.session.created_at, FRESH_SIGN_IN) {
            return Err(Error::Unauthenticated);
        }
        // Two-factor users: every session of theirs completed the second factor (no sign-in
        // method issues one before it: `Sessions::issue`), or passed a trusted browser's check,
        // or was the one that proved a TOTP code at enrolment — so a recent sign-in is enough.
        Ok(())
    }

    /// Stores a ceremony's state under its challenge.
    async fn begin(
        &self,
        options: &serde_json::Value,
        state: &impl Serialize,
        user_id: Option<&str>,
        ceremony: &str,
    ) -> Result<()> {
        let challenge = options
            .get("challenge")
            .and_then(|c| c.as_str())
            .and_then(ceremony_id)
            .ok_or_else(|| internal("options without a challenge"))?;
        let value = serde_json::to_string(state).map_err(internal)?;
        let now = now();
        let row = NewVerification {
            id: &token::new_id()?,
            identifier: &challenge,
            value: &value,
            expires_at: add(now, CEREMONY_LIFETIME),
            created_at: now,
            updated_at: now,
            user_id,
            purpose: ceremony,
        };
        verifications::insert(&mut self.conn().await?, &row).await?;
        Ok(())
    }

    /// Consumes the ceremony a response answers (single use, whatever happens next): unknown,
    /// spent or of the other kind → `INVALID_TOKEN`; expired → `TOKEN_EXPIRED`. Returns its
    /// state and the user it is bound to.
    async fn finish<T: DeserializeOwned>(
        &self,
        client_data_json: &[u8],
        ceremony: &str,
    ) -> Result<(T, Option<String>)> {
        let id = challenge_of(client_data_json)
            .as_deref()
            .and_then(ceremony_id)
            .ok_or(Error::InvalidToken)?;
        match verifications::take(&mut self.conn().await?, &id, ceremony, now()).await? {
            Consumed::Missing => Err(Error::InvalidToken),
            Consumed::Expired => Err(Error::TokenExpired),
            Consumed::Done(row) => {
                let state = serde_json::from_str(&row.value).map_err(internal)?;
                Ok((state, row.user_id))
            }
        }
    }

    /// `passkeyRegistrationOptions`: a `PublicKeyCredentialCreationOptionsJSON` (resident key
    /// required, user verification preferred, the user's passkeys excluded).
    pub async fn registration_options(
        &self,
        viewer: &Viewer,
        attachment: Option<Attachment>,
    ) -> Result<serde_json::Value> {
        self.require_fresh_sign_in(viewer)?;
        let rp = self.rp()?;
        let existing = passkeys::list_for_user(&mut self.conn().await?, &viewer.user.id).await?;
        let exclude = existing
            .iter()
            .filter_map(|p| URL_SAFE_NO_PAD.decode(&p.credential_id).ok())
            .collect();
        let user = &viewer.user;
        let display = match user.name.trim() {
            "" => user.email.as_str(),
            name => name,
        };
        let builder = rp
            .core
            .new_challenge_register_builder(user.id.as_bytes(), &user.email, display)
            .map_err(internal)?
            .attestation(AttestationConveyancePreference::None)
            .user_verification_policy(UserVerificationPolicy::Preferred)
            .require_resident_key(true)
            .exclude_credentials(Some(exclude))
            .authenticator_attachment(attachment.map(|a| match a {
                Attachment::Platform => AuthenticatorAttachment::Platform,
                Attachment::CrossPlatform => AuthenticatorAttachment::CrossPlatform,
            }));
        let (options, state) = rp
            .core
            .generate_challenge_register(builder)
            .map_err(internal)?;
        let options = serde_json::to_value(&options.public_key).map_err(internal)?;
        self.begin(
            &options,
            &state,
            Some(&user.id),
            purpose::PASSKEY_REGISTRATION,
        )
        .await?;
        Ok(options)
    }

    /// `registerPasskey`: verifies the authenticator's response to the viewer's own ceremony
    /// and stores the passkey.
    pub async fn register(
        &self,
        viewer: &Viewer,
        response: serde_json::Value,
        name: Option<&str>,
        client: &ClientInfo,
    ) -> Result<Passkey> {
        let name = name.map(checked_name).transpose()?;
        self.require_fresh_sign_in(viewer)?;
        let rp = self.rp()?;
        let response: RegisterPublicKeyCredential =
            serde_json::from_value(response).map_err(|_| Error::InvalidToken)?;
        let (state, owner): (RegistrationState, _) = self
            .finish(
                &response.response.client_data_json,
                purpose::PASSKEY_REGISTRATION,
            )
            .await?;
        if owner.as_deref() != Some(viewer.user.id.as_str()) {
            return Err(Error::InvalidToken);
        }
        let credential = rp
            .core
            .register_credential(&response, &state, None)
            .map_err(|e| {
                tracing::info!(error = %e, "passkey registration refused");
                refusal(&e)
            })?;
        let public_key = serde_json::to_string(&credential).map_err(internal)?;
        let transports = credential
            .transports
            .as_ref()
            .and_then(|t| serde_json::to_value(t).ok())
            .and_then(|v| {
                v.as_array().map(|a| {
                    a.iter()
                        .filter_map(|t| t.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                })
            });
        let aaguid = aaguid(&response);
        let id = token::new_id()?;
        let row = NewPasskey {
            id: &id,
            name,
            public_key: &public_key,
            user_id: &viewer.user.id,
            credential_id: &URL_SAFE_NO_PAD.encode(&credential.cred_id),
            counter: i64::from(credential.counter),
            device_type: if credential.backup_eligible {
                MULTI_DEVICE
            } else {
                SINGLE_DEVICE
            },
            backed_up: credential.backup_state,
            transports: transports.as_deref(),
            created_at: now(),
            last_used_at: None,
            aaguid: aaguid.as_deref(),
        };
        let passkey = match passkeys::insert(&mut self.conn().await?, &row).await {
            Ok(passkey) => passkey,
            // The authenticator's credential is already registered (to this user or another).
            Err(DbError::UniqueViolation(_)) => return Err(Error::InvalidToken),
            Err(e) => return Err(e.into()),
        };
        self.record(
            AuditEvent::by_self(AuditKind::PasskeyRegister, &viewer.user.id).detail(
                serde_json::json!({
                    "passkey_id": passkey.id,
                    "user_verified": credential.user_verified,
                }),
            ),
            client,
        )
        .await;
        Ok(passkey)
    }

    /// `passkeyAuthenticationOptions`: a `PublicKeyCredentialRequestOptionsJSON`. Without an
    /// email, for a discoverable credential (empty `allowCredentials`); with one, the user's
    /// passkeys — or, for an address with none (or no user), a stable decoy id, so the answer
    /// does not tell whether the address is registered.
    pub async fn authentication_options(&self, email: Option<&str>) -> Result<serde_json::Value> {
        let rp = self.rp()?;
        let builder = rp
            .core
            .new_challenge_authenticate_builder(Vec::new(), Some(UserVerificationPolicy::Preferred))
            .map_err(internal)?;
        let (options, state) = rp
            .core
            .generate_challenge_authenticate(builder)
            .map_err(internal)?;
        let mut options = serde_json::to_value(&options.public_key).map_err(internal)?;
        let mut bound_user = None;
        if let Some(raw) = email {
            let email = email::normalize(raw)?;
            let mut conn = self.conn().await?;
            let mut allow = Vec::new();
            if let Some(user) = users::find_by_email(&mut conn, &email).await? {
                for passkey in passkeys::list_for_user(&mut conn, &user.id).await? {
                    let mut descriptor = serde_json::json!({
                        "type": "public-key",
                        "id": passkey.credential_id,
                    });
                    if let Some(t) = passkey.transports.as_deref().filter(|t| !t.is_empty()) {
                        descriptor["transports"] = t.split(',').collect::<Vec<_>>().into();
                    }
                    allow.push(descriptor);
                }
                bound_user = Some(user.id);
            }
            if allow.is_empty() {
                allow.push(serde_json::json!({
                    "type": "public-key",
                    "id": rp.decoy_credential(&email),
                }));
            }
            options["allowCredentials"] = allow.into();
        }
        self.begin(
            &options,
            &state,
            bound_user.as_deref(),
            purpose::PASSKEY_AUTHENTICATION,
        )
        .await?;
        Ok(options)
    }

    /// `signInPasskey`: verifies an assertion against the stored passkey (signature, origin,
    /// RP id, user presence, counter) and issues a session through `Sessions::issue`.
    pub async fn sign_in(
        &self,
        response: serde_json::Value,
        client: &ClientInfo,
    ) -> Result<SignInOutcome> {
        let rp = self.rp()?;
        let response: PublicKeyCredential =
            serde_json::from_value(response).map_err(|_| Error::InvalidToken)?;
        let (state, bound_user): (AuthenticationState, _) = self
            .finish(
                &response.response.client_data_json,
                purpose::PASSKEY_AUTHENTICATION,
            )
            .await?;
        let credential_id = URL_SAFE_NO_PAD.encode(&response.raw_id);
        let found =
            passkeys::find_by_credential_id(&mut self.conn().await?, &credential_id).await?;
        let Some((stored, user)) = found else {
            return Err(Error::InvalidToken);
        };
        // Email first: the passkey must be that user's. Discoverable: the authenticator's user
        // handle must name the passkey's owner (WebAuthn §7.2 step 6).
        let owner_ok = match (&bound_user, &response.response.user_handle) {
            (Some(bound), handle) => {
                *bound == stored.user_id
                    && handle
                        .as_deref()
                        .is_none_or(|h| h == stored.user_id.as_bytes())
            }
            (None, Some(handle)) => handle.as_slice() == stored.user_id.as_bytes(),
            (None, None) => false,
        };
        if !owner_ok {
            return Err(Error::InvalidToken);
        }
        let mut credential: Credential =
            serde_json::from_str(&stored.public_key).map_err(internal)?;
        let result = match rp
            .core
            .authenticate_single_credential(&response, &state, &credential)
        {
            Ok(result) => result,
            Err(e) => {
                tracing::info!(error = %e, "passkey sign-in refused");
                self.refused(&user.id, &stored.id, refusal_reason(&e), client)
                    .await;
                return Err(refusal(&e));
            }
        };
        credential.counter = result.counter();
        credential.backup_state = result.backup_state();
        credential.backup_eligible = result.backup_eligible();
        let public_key = serde_json::to_string(&credential).map_err(internal)?;
        let recorded = passkeys::record_use(
            &mut self.conn().await?,
            &stored.id,
            stored.counter,
            i64::from(result.counter()),
            result.backup_state(),
            &public_key,
            now(),
        )
        .await?;
        if !recorded {
            // Another sign-in with this passkey moved its counter meanwhile.
            self.refused(&user.id, &stored.id, "counter", client).await;
            return Err(Error::InvalidToken);
        }
        let user_verified = result.user_verified();
        let passkey_id = stored.id.clone();
        let refused = |reason: &str| {
            AuditEvent::failure(AuditKind::PasskeySignIn).detail(serde_json::json!({
                "passkey_id": passkey_id,
                "reason": reason,
            }))
        };
        // With user verification the passkey is two factors in one (possession and a PIN or
        // biometric): the sign-in is complete. Without it, a user with two-factor on stops at
        // the second step like every other sign-in method.
        let outcome = if user_verified {
            SignInOutcome::SignedIn(
                self.sessions()
                    .open_after_second_factor(user, true, client, refused)
                    .await?,
            )
        } else {
            self.sessions().issue(user, true, client, refused).await?
        };
        let user_id = match &outcome {
            SignInOutcome::SignedIn(signed) => &signed.user.id,
            SignInOutcome::SecondFactor(pending) => &pending.user.id,
        };
        self.record(
            AuditEvent::by_self(AuditKind::PasskeySignIn, user_id).detail(serde_json::json!({
                "passkey_id": stored.id,
                "user_verified": user_verified,
                "stage": match &outcome {
                    SignInOutcome::SignedIn(_) => "signed_in",
                    SignInOutcome::SecondFactor(_) => "second_factor_required",
                },
            })),
            client,
        )
        .await;
        Ok(outcome)
    }

    async fn refused(&self, user_id: &str, passkey_id: &str, reason: &str, client: &ClientInfo) {
        self.record(
            AuditEvent::failure(AuditKind::PasskeySignIn)
                .subject(user_id)
                .detail(serde_json::json!({ "passkey_id": passkey_id, "reason": reason })),
            client,
        )
        .await;
    }

    /// The viewer's passkeys, oldest first.
    pub async fn list(&self, viewer: &Viewer) -> Result<Vec<Passkey>> {
        Ok(passkeys::list_for_user(&mut self.conn().await?, &viewer.user.id).await?)
    }

    /// Renames one of the viewer's passkeys; another user's or a missing one → `NOT_FOUND`.
    pub async fn rename(
        &self,
        viewer: &Viewer,
        id: &str,
        name: &str,
        client: &ClientInfo,
    ) -> Result<Passkey> {
        let name = checked_name(name)?;
        let renamed = passkeys::rename(&mut self.conn().await?, id, &viewer.user.id, name)
            .await?
            .ok_or(Error::NotFound)?;
        self.record(
            AuditEvent::by_self(AuditKind::PasskeyRename, &viewer.user.id)
                .detail(serde_json::json!({ "passkey_id": renamed.id })),
            client,
        )
        .await;
        Ok(renamed)
    }

    /// Removes one of the viewer's passkeys, unless it is their last way to sign in
    /// (`FAILED_TO_UNLINK_LAST_ACCOUNT`); another user's or a missing one → `NOT_FOUND`.
    pub async fn delete(&self, viewer: &Viewer, id: &str, client: &ClientInfo) -> Result<()> {
        match passkeys::delete_unless_last(&mut self.conn().await?, id, &viewer.user.id).await? {
            None => Err(Error::NotFound),
            Some(false) => Err(Error::FailedToUnlinkLastAccount),
            Some(true) => {
                self.record(
                    AuditEvent::by_self(AuditKind::PasskeyDelete, &viewer.user.id)
                        .detail(serde_json::json!({ "passkey_id": id })),
                    client,
                )
                .await;
                Ok(())
            }
        }
    }

    /// Deletes ceremonies begun and never finished, once expired; run periodically.
    pub async fn purge_expired_ceremonies(&self) -> Result<usize> {
        let mut conn = self.conn().await?;
        let now = now();
        let mut purged = 0;
        for ceremony in [
            purpose::PASSKEY_REGISTRATION,
            purpose::PASSKEY_AUTHENTICATION,
        ] {
            purged += verifications::delete_expired(&mut conn, ceremony, now).await?;
        }
        Ok(purged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceremony_ids_ignore_padding_and_refuse_non_challenges() {
        let challenge = URL_SAFE_NO_PAD.encode([7u8; 32]);
        let padded = URL_SAFE.encode([7u8; 32]);
        assert_eq!(ceremony_id(&challenge), ceremony_id(&padded));
        assert!(ceremony_id(&challenge).is_some());
        assert_eq!(ceremony_id("not base64!"), None);
        assert_eq!(ceremony_id("AAAA"), None, "too short to be one of ours");
    }

    #[test]
    fn aaguids_read_as_uuids() {
        let bytes = [
            0xad, 0xce, 0x00, 0x02, 0x35, 0xbc, 0xc6, 0x0a, 0x64, 0x8b, 0x0b, 0x25, 0xf1, 0xf0,
            0x55, 0x03,
        ];
        assert_eq!(uuid_text(&bytes), "adce0002-35bc-c60a-648b-0b25f1f05503");
        assert_eq!(uuid_text(&[0; 16]), "00000000-0000-0000-0000-000000000000");
    }

    #[test]
    fn names_are_bounded() {
        assert_eq!(checked_name("  Laptop ").unwrap(), "Laptop");
        assert!(checked_name("").is_err());
        assert!(checked_name(&"x".repeat(65)).is_err());
        assert!(checked_name("a\u{7}b").is_err());
    }

    #[test]
    fn rp_serves_its_domain_and_subdomains_only() {
        let rp = RelyingParty::new(
            "example.com",
            "Apexkit",
            &["https://app.example.com".into()],
            &Secret::new("s".repeat(32)),
        )
        .unwrap();
        assert!(rp.serves("https://example.com"));
        assert!(rp.serves("https://app.example.com:8443"));
        assert!(!rp.serves("https://badexample.com"));
        assert!(!rp.serves("https://example.com.evil.io"));
        assert_eq!(rp.decoy_credential("a@b.c"), rp.decoy_credential("a@b.c"));
        assert_ne!(rp.decoy_credential("a@b.c"), rp.decoy_credential("x@b.c"));
    }
}
