//! The GraphQL API: `build_schema` is the one place the schema is assembled; resolvers are thin
//! and call the domain (`auth`). Request facts arrive from `http` as [`RequestState`].

mod account;
mod auth;
pub mod errors;
mod limits;
mod sessions;
pub mod types;

use async_graphql::{Context, EmptySubscription, MergedObject, Schema};
use tokio::sync::OnceCell;

use crate::auth::{Auth, ClientInfo, SessionToken, Viewer};
use crate::error::{Error, Result};

#[derive(MergedObject, Default)]
pub struct Query(auth::SessionQuery, sessions::SessionsQuery);

#[derive(MergedObject, Default)]
pub struct Mutation(
    auth::SessionMutation,
    sessions::SessionsMutation,
    account::AccountMutation,
);

pub type ApiSchema = Schema<Query, Mutation, EmptySubscription>;

/// Limits applied to every document.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_depth: usize,
    pub max_complexity: usize,
    pub max_directives: usize,
    pub introspection: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: 10,
            max_complexity: 200,
            max_directives: 20,
            introspection: true,
        }
    }
}

/// Builds the schema. `auth` is absent when only the SDL is wanted.
pub fn build_schema(auth: Option<Auth>, limits: Limits) -> ApiSchema {
    let mut builder = Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        .limit_directives(limits.max_directives)
        .extension(errors::ErrorCodes);
    if !limits.introspection {
        builder = builder
            .disable_introspection()
            .disable_suggestions()
            .extension(limits::NoIntrospection);
    }
    if let Some(auth) = auth {
        builder = builder.data(auth);
    }
    builder.finish()
}

/// The schema in SDL: what `schema.graphql` holds (`apexkit print-schema`).
pub fn sdl() -> String {
    build_schema(None, Limits::default()).sdl()
}

/// How the session cookie is written for this deployment.
#[derive(Debug, Clone)]
pub struct CookiePolicy {
    pub name: &'static str,
    pub secure: bool,
}

pub const COOKIE_NAME: &str = "apexkit.session_token";
pub const SECURE_COOKIE_NAME: &str = "__Secure-apexkit.session_token";

impl CookiePolicy {
    pub fn for_base_url(base_url: &str) -> Self {
        let secure = base_url.starts_with("https://");
        Self {
            name: if secure {
                SECURE_COOKIE_NAME
            } else {
                COOKIE_NAME
            },
            secure,
        }
    }

    pub fn set(&self, token: &str, max_age: Option<i64>) -> String {
        let mut cookie = format!("{}={token}; Path=/; HttpOnly; SameSite=Lax", self.name);
        if let Some(age) = max_age {
            cookie.push_str(&format!("; Max-Age={age}"));
        }
        if self.secure {
            cookie.push_str("; Secure");
        }
        cookie
    }

    pub fn clear(&self) -> String {
        self.set("", Some(0))
    }
}

/// What the HTTP layer knows about one request.
pub struct RequestState {
    pub client: ClientInfo,
    /// The session token presented (the `Authorization` header wins over the cookie).
    pub token: Option<SessionToken>,
    pub cookie: CookiePolicy,
    viewer: OnceCell<Option<Viewer>>,
}

impl RequestState {
    pub fn new(client: ClientInfo, token: Option<SessionToken>, cookie: CookiePolicy) -> Self {
        Self {
            client,
            token,
            cookie,
            viewer: OnceCell::new(),
        }
    }
}

pub(crate) fn state<'a>(ctx: &Context<'a>) -> Result<&'a RequestState> {
    ctx.data::<RequestState>()
        .map_err(|_| Error::internal(anyhow::anyhow!("request state missing")))
}

pub(crate) fn domain<'a>(ctx: &Context<'a>) -> Result<&'a Auth> {
    ctx.data::<Auth>()
        .map_err(|_| Error::internal(anyhow::anyhow!("auth service missing")))
}

/// The signed-in viewer of this request, looked up at most once per request.
pub(crate) async fn viewer(ctx: &Context<'_>) -> Result<Option<Viewer>> {
    let state = state(ctx)?;
    let auth = domain(ctx)?;
    let viewer = state
        .viewer
        .get_or_try_init(|| async {
            match &state.token {
                Some(token) => auth.authenticate(token).await,
                None => Ok(None),
            }
        })
        .await?;
    Ok(viewer.clone())
}

/// The viewer, or `UNAUTHENTICATED`.
pub(crate) async fn require_viewer(ctx: &Context<'_>) -> Result<Viewer> {
    viewer(ctx).await?.ok_or(Error::Unauthenticated)
}

/// An admin viewer: `UNAUTHENTICATED` when anonymous, `FORBIDDEN` when not an admin.
pub(crate) async fn require_admin(ctx: &Context<'_>) -> Result<Viewer> {
    let viewer = require_viewer(ctx).await?;
    if viewer.is_admin() {
        Ok(viewer)
    } else {
        Err(Error::Forbidden)
    }
}
