//! Adopting an existing Better Auth database: whether to, and Better Auth's secret (for the
//! signed session cookies of browsers signed in before the switch).

use crate::secret::Secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AdoptFrom {
    /// Better Auth's tables (its camelCase schema, or the snake_case Drizzle one).
    BetterAuth,
}

#[derive(Debug, Clone, clap::Args)]
pub struct AdoptConfig {
    /// Adopt the database of another auth system at `--migrate-only` and boot: `better-auth`
    /// recognises Better Auth's tables (either naming), transforms them additively into
    /// Apexkit's layout keeping every row, and lets its users sign in with their old passwords
    /// and sessions. Without it, a database holding such tables is refused, never changed.
    /// Keep it set while legacy password hashes remain (sign-ins then cost the same whichever
    /// hash an account has).
    #[arg(
        id = "adopt",
        long = "adopt",
        value_name = "ADOPT",
        env = "APEXKIT_ADOPT",
        value_enum,
        help_heading = "Adopting a Better Auth database"
    )]
    pub from: Option<AdoptFrom>,

    /// Better Auth's secret (its BETTER_AUTH_SECRET): a browser's signed
    /// `better-auth.session_token` cookie, and a bearer token in Better Auth's signed form
    /// (`token.signature`), are checked with it and accepted; the cookie once, replaced by
    /// Apexkit's cookie in the same response.
    #[arg(
        id = "better_auth_secret",
        long = "better-auth-secret",
        value_name = "BETTER_AUTH_SECRET",
        env = "APEXKIT_BETTER_AUTH_SECRET",
        hide_env_values = true,
        help_heading = "Adopting a Better Auth database"
    )]
    pub better_auth_secret: Option<Secret>,
}

/// The adoption settings, validated.
#[derive(Debug, Clone, Default)]
pub struct Adopt {
    /// APEXKIT_ADOPT=better-auth.
    pub better_auth: bool,
    pub better_auth_secret: Option<Secret>,
}

impl AdoptConfig {
    pub fn settings(&self) -> Result<Adopt, String> {
        let secret = self
            .better_auth_secret
            .clone()
            .filter(|s| !s.expose().is_empty());
        if self.better_auth_secret.is_some() && secret.is_none() {
            return Err("APEXKIT_BETTER_AUTH_SECRET is empty".to_owned());
        }
        Ok(Adopt {
            better_auth: self.from == Some(AdoptFrom::BetterAuth),
            better_auth_secret: secret,
        })
    }
}
