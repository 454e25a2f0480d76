//! Resolvers for the caller's sessions (list, revoke), access tokens and signing-key rotation.

use async_graphql::{Context, ID, Object};

use super::types::{AccessToken, Session, SigningKey};
use super::{domain, require_admin, require_viewer, state};

#[derive(Default)]
pub struct SessionsQuery;

#[Object]
impl SessionsQuery {
    /// The caller's live sessions, newest first; `current` marks the one making this request.
    async fn sessions(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Session>> {
        let viewer = require_viewer(ctx).await?;
        let sessions = domain(ctx)?.sessions().list(&viewer).await?;
        Ok(sessions
            .into_iter()
            .map(|s| Session {
                inner: s.session,
                current: s.current,
            })
            .collect())
    }
}

#[derive(Default)]
pub struct SessionsMutation;

#[Object]
impl SessionsMutation {
    /// Ends one of the caller's sessions (`NOT_FOUND` for any other id). Ending the current
    /// one also clears the cookie.
    async fn revoke_session(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<bool> {
        let viewer = require_viewer(ctx).await?;
        if domain(ctx)?
            .sessions()
            .revoke(&viewer, &id, &state(ctx)?.client)
            .await?
        {
            ctx.append_http_header("set-cookie", state(ctx)?.cookie.clear());
        }
        Ok(true)
    }

    /// Ends every session of the caller, this one included, and clears the cookie.
    async fn revoke_sessions(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        let viewer = require_viewer(ctx).await?;
        domain(ctx)?
            .sessions()
            .revoke_all(&viewer, &state(ctx)?.client)
            .await?;
        ctx.append_http_header("set-cookie", state(ctx)?.cookie.clear());
        Ok(true)
    }

    /// Ends every session of the caller except this one.
    async fn revoke_other_sessions(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        let viewer = require_viewer(ctx).await?;
        domain(ctx)?
            .sessions()
            .revoke_others(&viewer, &state(ctx)?.client)
            .await?;
        Ok(true)
    }

    /// A new access token for the current session.
    async fn refresh_access_token(&self, ctx: &Context<'_>) -> async_graphql::Result<AccessToken> {
        let viewer = require_viewer(ctx).await?;
        Ok(domain(ctx)?.tokens().refresh(&viewer).await?.into())
    }

    /// Admin: retires the active signing key and starts signing with a new one. Tokens signed
    /// by the old key stay verifiable until they expire. Returns the new key.
    async fn admin_rotate_signing_keys(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<SigningKey> {
        let admin = require_admin(ctx).await?;
        let key = domain(ctx)?
            .admin()
            .rotate_signing_keys(&admin, &state(ctx)?.client)
            .await?;
        Ok(SigningKey(key))
    }
}
