//! Passkeys: the WebAuthn ceremonies (`passkeyRegistrationOptions`/`registerPasskey`,
//! `passkeyAuthenticationOptions`/`signInPasskey`) and the signed-in user's list
//! (`passkeys`, `renamePasskey`, `deletePasskey`).

use async_graphql::{Context, Enum, ID, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::types::{AuthPayload, utc};
use super::{domain, require_viewer, state};
use crate::auth::passkey::{self, Attachment};
use crate::observability::record_passkey;

/// A passkey of the signed-in user (never its public key or credential id).
#[derive(SimpleObject)]
pub struct Passkey {
    pub id: ID,
    pub name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// `singleDevice`, or `multiDevice` for a passkey that can be synced.
    pub device_type: String,
    /// Whether it is backed up (synced) now.
    pub backed_up: bool,
    /// The authenticator model's AAGUID from its registration (a UUID, as in the FIDO
    /// metadata; all zeros when the authenticator does not say). Null for a passkey registered
    /// before Apexkit recorded it.
    pub aaguid: Option<String>,
}

impl From<passkey::Passkey> for Passkey {
    fn from(p: passkey::Passkey) -> Self {
        Self {
            id: ID(p.id),
            name: p.name,
            created_at: utc(p.created_at),
            last_used_at: p.last_used_at.map(utc),
            device_type: p.device_type,
            backed_up: p.backed_up,
            aaguid: p.aaguid,
        }
    }
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum AuthenticatorAttachment {
    /// Built into the device (Touch ID, Windows Hello, Android).
    Platform,
    /// A roaming authenticator (a security key, a phone over hybrid transport).
    CrossPlatform,
}

#[derive(InputObject, Default)]
pub struct PasskeyRegistrationOptionsInput {
    pub authenticator_attachment: Option<AuthenticatorAttachment>,
}

#[derive(InputObject)]
pub struct RegisterPasskeyInput {
    /// The `PublicKeyCredential` from `navigator.credentials.create()`, as its `toJSON()`.
    pub response: Json<serde_json::Value>,
    /// A name for it (1 to 64 characters).
    pub name: Option<String>,
}

#[derive(InputObject, Default)]
pub struct PasskeyAuthenticationOptionsInput {
    /// Email first: offer this user's passkeys. Without it: any discoverable passkey.
    pub email: Option<String>,
}

#[derive(InputObject)]
pub struct SignInPasskeyInput {
    /// The `PublicKeyCredential` from `navigator.credentials.get()`, as its `toJSON()`.
    pub response: Json<serde_json::Value>,
}

#[derive(InputObject)]
pub struct RenamePasskeyInput {
    pub id: ID,
    pub name: String,
}

#[derive(Default)]
pub struct PasskeysQuery;

#[Object]
impl PasskeysQuery {
    /// The signed-in user's passkeys, oldest first.
    async fn passkeys(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Passkey>> {
        let viewer = require_viewer(ctx).await?;
        let list = domain(ctx)?.passkeys().list(&viewer).await?;
        Ok(list.into_iter().map(Passkey::from).collect())
    }
}

#[derive(Default)]
pub struct PasskeysMutation;

#[Object]
impl PasskeysMutation {
    /// Starts registering a passkey: a bare `PublicKeyCredentialCreationOptionsJSON` for
    /// `navigator.credentials.create({ publicKey })` (after decoding its base64url fields, or
    /// `PublicKeyCredential.parseCreationOptionsFromJSON`). Needs a sign-in within the last 5
    /// minutes (`UNAUTHENTICATED` otherwise: sign in again). Valid 5 minutes, once.
    async fn passkey_registration_options(
        &self,
        ctx: &Context<'_>,
        input: Option<PasskeyRegistrationOptionsInput>,
    ) -> async_graphql::Result<Json<serde_json::Value>> {
        let viewer = require_viewer(ctx).await?;
        let attachment = input
            .unwrap_or_default()
            .authenticator_attachment
            .map(|a| match a {
                AuthenticatorAttachment::Platform => Attachment::Platform,
                AuthenticatorAttachment::CrossPlatform => Attachment::CrossPlatform,
            });
        let options = domain(ctx)?
            .passkeys()
            .registration_options(&viewer, attachment)
            .await?;
        Ok(Json(options))
    }

    /// Finishes registering: verifies the authenticator's response and stores the passkey.
    /// An unknown, spent or another user's ceremony, or a response that fails verification →
    /// `INVALID_TOKEN`; an expired one → `TOKEN_EXPIRED`; an untrusted origin → `FORBIDDEN`.
    async fn register_passkey(
        &self,
        ctx: &Context<'_>,
        input: RegisterPasskeyInput,
    ) -> async_graphql::Result<Passkey> {
        let viewer = require_viewer(ctx).await?;
        let registered = domain(ctx)?
            .passkeys()
            .register(
                &viewer,
                input.response.0,
                input.name.as_deref(),
                &state(ctx)?.client,
            )
            .await;
        record_passkey("register", outcome(&registered));
        Ok(registered?.into())
    }

    /// Starts a passkey sign-in: a bare `PublicKeyCredentialRequestOptionsJSON`. Without
    /// `email`, for a discoverable passkey; with it, that user's passkeys (an unknown address
    /// gets an answer of the same shape). Valid 5 minutes, once.
    async fn passkey_authentication_options(
        &self,
        ctx: &Context<'_>,
        input: Option<PasskeyAuthenticationOptionsInput>,
    ) -> async_graphql::Result<Json<serde_json::Value>> {
        let email = input.unwrap_or_default().email;
        let options = domain(ctx)?
            .passkeys()
            .authentication_options(email.as_deref())
            .await?;
        Ok(Json(options))
    }

    /// Signs in with a passkey's assertion: a new session (and the cookie). Failures as for
    /// `registerPasskey`; no session in any of them.
    async fn sign_in_passkey(
        &self,
        ctx: &Context<'_>,
        input: SignInPasskeyInput,
    ) -> async_graphql::Result<AuthPayload> {
        let signed = domain(ctx)?
            .passkeys()
            .sign_in(input.response.0, &state(ctx)?.client)
            .await;
        record_passkey("sign_in", outcome(&signed));
        super::auth::outcome(ctx, signed?, true)
    }

    /// Renames one of the caller's passkeys; another user's or a missing one → `NOT_FOUND`.
    async fn rename_passkey(
        &self,
        ctx: &Context<'_>,
        input: RenamePasskeyInput,
    ) -> async_graphql::Result<Passkey> {
        let viewer = require_viewer(ctx).await?;
        let renamed = domain(ctx)?
            .passkeys()
            .rename(&viewer, &input.id, &input.name, &state(ctx)?.client)
            .await?;
        Ok(renamed.into())
    }

    /// Removes one of the caller's passkeys; refused for the last way to sign in
    /// (`FAILED_TO_UNLINK_LAST_ACCOUNT`); another user's or a missing one → `NOT_FOUND`.
    async fn delete_passkey(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<bool> {
        let viewer = require_viewer(ctx).await?;
        domain(ctx)?
            .passkeys()
            .delete(&viewer, &id, &state(ctx)?.client)
            .await?;
        Ok(true)
    }
}

fn outcome<T>(result: &crate::error::Result<T>) -> &'static str {
    match result {
        Ok(_) => "success",
        Err(e) => e.code().as_str(),
    }
}
