//! The GraphQL API: `build_schema` is the one place the schema is assembled; resolvers are thin
//! and call the domain (`auth`). Request facts arrive from `http` as [`RequestState`].

mod account;
mod admin;
mod auth;
mod cache;
pub mod document;
pub mod errors;
mod hooks;
pub mod inputs;
mod limits;
mod passkeys;
mod sessions;
pub mod social;
mod two_factor;
pub mod types;

use async_graphql::{
    Context, EmptySubscription, MergedObject, ObjectType, Request, Response, Schema,
};
use std::sync::Arc;

use tokio::sync::OnceCell;

use crate::auth::{Admin, Auth, ClientInfo, SessionToken, Viewer};
use crate::error::{Error, Result};
use crate::graphql::document::DocumentLimits;
pub use crate::graphql::document::Refusal;
pub use crate::graphql::limits::RateTally;
use crate::throttle::RateLimiter;

#[derive(MergedObject, Default)]
pub struct Query(
    auth::SessionQuery,
    sessions::SessionsQuery,
    admin::AdminQuery,
    social::SocialQuery,
    passkeys::PasskeysQuery,
);

/// Declares the two mutation roots from ONE list of parts: `Mutation` (production) and
/// `DevMutation` (development: the same parts plus the developer tools, `pushSchema`). Both are
/// named `Mutation` in GraphQL and never meet in one schema; production's lacks the developer
/// fields entirely (not merely refused). Add new mutation parts to the list below.
macro_rules! mutation_roots {
    ($($part:ty),* $(,)?) => {
        #[derive(MergedObject, Default)]
        pub struct Mutation($($part),*);

        #[derive(MergedObject, Default)]
        #[graphql(name = "Mutation")]
        pub struct DevMutation($($part,)* admin::DevToolsMutation);
    };
}

mutation_roots!(
    auth::SessionMutation,
    sessions::SessionsMutation,
    admin::AdminMutation,
    account::AccountMutation,
    social::SocialMutation,
    two_factor::TwoFactorMutation,
    two_factor::PasswordlessMutation,
    passkeys::PasskeysMutation,
);

/// The executable schema (with or without the developer tools) and the gate every document
/// passes before async-graphql sees it ([`document`]).
#[derive(Clone)]
pub struct ApiSchema {
    inner: Inner,
    document: DocumentLimits,
    cache: Arc<cache::DocumentCache>,
}

/// A request whose document passed [`ApiSchema::vet`] (and is parsed, in the request): the
/// only kind [`ApiSchema::execute_vetted`] runs.
pub struct Vetted(Request);

impl Vetted {
    /// The request, to read its parsed document.
    pub fn request_mut(&mut self) -> &mut Request {
        &mut self.0
    }

    /// Adds request data (see [`Request::data`]).
    pub fn data<D: std::any::Any + Send + Sync>(self, data: D) -> Self {
        Self(self.0.data(data))
    }
}

#[derive(Clone)]
enum Inner {
    Development(Schema<Query, DevMutation, EmptySubscription>),
    Production(Schema<Query, Mutation, EmptySubscription>),
}

impl ApiSchema {
    /// Checks a request's document ([`document::vet`]): its text nests boundedly, it parses
    /// (the parsed document stays cached in the request), and its expanded cost is within the
    /// limits. A refused document must not run; [`Refusal::into_response`] is its answer.
    /// A document seen before comes from the [`cache`] already parsed and vetted.
    pub fn vet(&self, mut request: Request) -> std::result::Result<Vetted, Refusal> {
        if let cache::Lookup::Miss = self.cache.lookup(&mut request) {
            document::vet(&mut request, &self.document)?;
            self.cache.insert(&mut request);
        }
        Ok(Vetted(request))
    }

    /// Vets, then executes.
    pub async fn execute(&self, request: impl Into<Request>) -> Response {
        match self.vet(request.into()) {
            Ok(vetted) => self.execute_vetted(vetted).await,
            Err(refused) => refused.into_response(),
        }
    }

    pub async fn execute_vetted(&self, Vetted(request): Vetted) -> Response {
        match &self.inner {
            Inner::Development(s) => s.execute(request).await,
            Inner::Production(s) => s.execute(request).await,
        }
    }

    pub fn sdl(&self) -> String {
        match &self.inner {
            Inner::Development(s) => s.sdl(),
            Inner::Production(s) => s.sdl(),
        }
    }
}

/// Limits applied to every document, and which fields exist.
#[derive(Clone)]
pub struct Limits {
    pub max_depth: usize,
    pub max_complexity: usize,
    pub max_directives: usize,
    pub introspection: bool,
    /// Development-only fields (`pushSchema`) are part of the schema.
    pub dev_tools: bool,
    /// "Did you mean …?" hints in validation errors (they leak the schema like introspection).
    pub suggestions: bool,
    /// Per-client budgets per executed root field; `None`: rate limiting off.
    pub rate_limiter: Option<RateLimiter>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: 10,
            max_complexity: 200,
            max_directives: 20,
            introspection: true,
            dev_tools: true,
            suggestions: true,
            rate_limiter: None,
        }
    }
}

/// Builds the schema. `auth` is absent when only the SDL is wanted.
pub fn build_schema(auth: Option<Auth>, limits: Limits) -> ApiSchema {
    let document = DocumentLimits {
        max_depth: limits.max_depth,
        max_complexity: limits.max_complexity,
        introspection: limits.introspection,
    };
    let inner = if limits.dev_tools {
        Inner::Development(finish(DevMutation::default(), auth, limits))
    } else {
        Inner::Production(finish(Mutation::default(), auth, limits))
    };
    ApiSchema {
        inner,
        document,
        cache: Arc::default(),
    }
}

fn finish<M: ObjectType + 'static>(
    mutation: M,
    auth: Option<Auth>,
    limits: Limits,
) -> Schema<Query, M, EmptySubscription> {
    let mut builder = Schema::build(Query::default(), mutation, EmptySubscription)
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        .limit_directives(limits.max_directives)
        // One extension for every hook (error codes, NUL-free inputs, the document cache, spans,
        // metrics, the rate limit): async-graphql calls each extension once per field.
        .extension(hooks::Hooks(limits.rate_limiter.map(limits::RateLimit)));
    if !limits.introspection {
        // `__schema`/`__type` are refused outright by `document::vet` (async-graphql's switch
        // alone answers them with a silent null).
        builder = builder.disable_introspection();
    }
    if !limits.suggestions {
        builder = builder.disable_suggestions();
    }
    if let Some(auth) = auth {
        builder = builder.data(auth);
    }
    builder.finish()
}

/// The development schema in SDL: what `schema.graphql` holds (`apexkit print-schema`).
/// Production serves the same minus the developer tools (`pushSchema`).
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
/// The second step's token for browser flows (HttpOnly, 5 minutes).
pub const TWO_FACTOR_COOKIE: &str = "apexkit.two_factor";
/// A browser that skips the second factor (30 days, bound to the user).
pub const TRUSTED_DEVICE_COOKIE: &str = "apexkit.trusted_device";
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

    /// The name another cookie of ours gets here (`__Secure-` prefixed over https, like the
    /// session cookie).
    pub fn name_of(&self, base: &str) -> String {
        if self.secure {
            format!("__Secure-{base}")
        } else {
            base.to_owned()
        }
    }

    /// Another cookie of ours (`TWO_FACTOR_COOKIE`, `TRUSTED_DEVICE_COOKIE`) with the session
    /// cookie's attributes.
    pub fn set_named(&self, base: &str, value: &str, max_age: Option<i64>) -> String {
        let mut cookie = format!(
            "{}={value}; Path=/; HttpOnly; SameSite=Lax",
            self.name_of(base)
        );
        if let Some(age) = max_age {
            cookie.push_str(&format!("; Max-Age={age}"));
        }
        if self.secure {
            cookie.push_str("; Secure");
        }
        cookie
    }
}

/// What the HTTP layer knows about one request.
pub struct RequestState {
    pub client: ClientInfo,
    /// The session token presented (the `Authorization` header wins over the cookie).
    pub token: Option<SessionToken>,
    pub cookie: CookiePolicy,
    /// What the rate limiter did, shared by the operations of one HTTP request.
    pub rate: std::sync::Arc<RateTally>,
    /// The `apexkit.two_factor` cookie: the second step's token of a browser flow.
    pub two_factor_token: Option<String>,
    viewer: OnceCell<Option<Viewer>>,
}

impl RequestState {
    pub fn new(client: ClientInfo, token: Option<SessionToken>, cookie: CookiePolicy) -> Self {
        Self {
            client,
            token,
            cookie,
            rate: std::sync::Arc::default(),
            two_factor_token: None,
            viewer: OnceCell::new(),
        }
    }

    /// The second step's token from the `apexkit.two_factor` cookie.
    pub fn with_two_factor_token(mut self, token: Option<String>) -> Self {
        self.two_factor_token = token;
        self
    }

    /// Shares one tally among the operations of a batch.
    pub fn with_tally(mut self, rate: std::sync::Arc<RateTally>) -> Self {
        self.rate = rate;
        self
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
                Some(token) => auth.sessions().authenticate(token).await,
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

/// An admin viewer: `UNAUTHENTICATED` when anonymous, `FORBIDDEN` when not an admin. The one
/// authorization check of every admin field (the admin use cases take the [`Admin`] it returns;
/// `tests/it/admin.rs` walks every field of the schema to prove it).
pub(crate) async fn require_admin(ctx: &Context<'_>) -> Result<Admin> {
    Admin::try_from(require_viewer(ctx).await?)
}
