//! Typed configuration: every setting is a flag and an environment variable (the flag wins),
//! validated once at start and then passed down by value. No globals.

use std::net::SocketAddr;

use clap::{Parser, Subcommand, ValueEnum};

pub use crate::secret::Secret;

mod admin;
mod adopt;
mod database;
mod graphql;
mod mail;
mod observability;
mod passwords;
mod rate_limits;
pub mod reference;
mod server;
mod sessions;
pub mod social;
mod tokens;
pub mod two_factor;
mod webauthn;

pub use admin::AdminConfig;
pub use adopt::{Adopt, AdoptConfig, AdoptFrom};
pub use database::{Database, DatabaseConfig};
pub use graphql::{Graphql, GraphqlConfig};
pub use mail::{Flows, Mail, MailConfig};
pub use observability::ObservabilityConfig;
pub use passwords::{Passwords, PasswordsConfig};
pub use rate_limits::{RateLimits, RateLimitsConfig};
pub use server::{Server, ServerConfig, Site};
pub use sessions::{Sessions, SessionsConfig};
pub use social::{ProviderConfig, SocialConfig};
pub use tokens::{Tokens, TokensConfig};
pub use webauthn::{Webauthn, WebauthnConfig};

/// Apexkit Auth: a self-hosted authentication service speaking GraphQL.
#[derive(Debug, Parser)]
#[command(name = "apexkit", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Apply pending database migrations and exit (a container init step).
    #[arg(long, env = "APEXKIT_MIGRATE_ONLY")]
    pub migrate_only: bool,

    #[command(flatten)]
    pub config: Config,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the GraphQL schema (SDL) to stdout; `schema.graphql` is this output.
    PrintSchema,
    /// Print the configuration reference (Markdown) to stdout; `docs/src/configuration.md` is
    /// this output.
    PrintConfigReference,
    /// Time argon2 password hashes (this build, this machine) and print the sign-in ceiling.
    BenchHash {
        /// Hashes to time (sequentially, one core).
        #[arg(long, default_value_t = 20)]
        iterations: u32,
        /// Also time this many threads hashing at once (0: skip).
        #[arg(long, default_value_t = 0)]
        threads: usize,
    },
    /// Manage the keys that sign access tokens.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Migration tooling: `migrate status` and `migrate new <name>`.
    Migrate {
        #[command(subcommand)]
        action: MigrateCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Retire the active signing key and create a new one (migrates first; needs
    /// APEXKIT_SECRET). Tokens signed by the old key stay verifiable until they expire.
    Rotate,
}

#[derive(Debug, Subcommand)]
pub enum MigrateCommand {
    /// List every migration (applied or pending, and when), flag applied migrations whose SQL
    /// changed since they ran, and those only the database knows (a rollback deploy). Exits 1
    /// when something needs attention.
    Status,
    /// Create a paired migration: <APEXKIT_MIGRATIONS_DIR>/postgres/<version>_<name>/{up,down}.sql
    /// and the same under sqlite/.
    New {
        /// snake_case description, e.g. add_user_phone
        name: String,
    },
    /// Adopt a Better Auth database (needs APEXKIT_ADOPT=better-auth unless --dry-run): print
    /// what was found and the SQL of each step; with --dry-run, change nothing.
    Adopt {
        /// Print the SQL it would run, and run nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Environment {
    Development,
    Production,
}

/// Every setting, in sections that each validate themselves and produce the runtime settings
/// of their area ([`Config::resolve`]). Flags keep their names: a section's fields are flattened.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    #[command(flatten)]
    pub database: DatabaseConfig,
    #[command(flatten)]
    pub server: ServerConfig,
    #[command(flatten)]
    pub sessions: SessionsConfig,
    #[command(flatten)]
    pub passwords: PasswordsConfig,
    #[command(flatten)]
    pub graphql: GraphqlConfig,
    #[command(flatten)]
    pub tokens: TokensConfig,
    #[command(flatten)]
    pub admin: AdminConfig,
    #[command(flatten)]
    pub rate_limits: RateLimitsConfig,
    #[command(flatten)]
    pub mail: MailConfig,
    #[command(flatten)]
    pub observability: ObservabilityConfig,
    #[command(flatten)]
    pub social: SocialConfig,
    #[command(flatten)]
    pub two_factor: two_factor::TwoFactorConfig,
    #[command(flatten)]
    pub adopt: AdoptConfig,
    #[command(flatten)]
    pub webauthn: WebauthnConfig,
}

/// An on/off switch whose default depends on the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Toggle {
    On,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RateLimitStorage {
    Memory,
    Database,
    Redis,
}

/// Every setting validated, as the runtime values each area uses: built once, by
/// [`Config::resolve`], and consumed by the boot.
pub struct Settings {
    pub environment: Environment,
    pub server: Server,
    pub database: Database,
    pub sessions: Sessions,
    pub passwords: Passwords,
    pub graphql: Graphql,
    pub tokens: Tokens,
    /// APEXKIT_ADMIN_EMAILS, each an address.
    pub admin_emails: Vec<String>,
    /// `None`: rate limiting and the failed sign-in delay are off.
    pub rate_limits: Option<RateLimits>,
    pub mail: Mail,
    pub metrics_listen: Option<SocketAddr>,
    /// The social sign-in providers, checked (their discovery happens at boot).
    pub social: crate::auth::social::SocialSettings,
    /// Two-factor and passwordless sign-in (issue 16).
    pub two_factor: two_factor::TwoFactorOptions,
    /// APEXKIT_ADOPT and Better Auth's secret.
    pub adopt: Adopt,
    /// The passkeys' relying party.
    pub webauthn: Webauthn,
}

impl Settings {
    pub fn is_production(&self) -> bool {
        self.environment == Environment::Production
    }
}

impl Config {
    /// Validates every section once and returns the runtime settings; the error names
    /// everything wrong, `; `-separated.
    pub fn resolve(&self) -> Result<Settings, String> {
        let production = self.is_production();
        let mut problems = self.server.production_problems();
        let database = ok(&mut problems, self.database.settings(production));
        let server = ok(&mut problems, self.server.settings());
        let sessions = ok(&mut problems, self.sessions.settings());
        let passwords = ok(&mut problems, self.passwords.settings());
        let graphql = ok(&mut problems, self.graphql.settings(production));
        let tokens = ok(&mut problems, self.tokens.settings());
        let admin_emails = ok(&mut problems, self.admin.settings());
        let rate_limits = ok(&mut problems, self.rate_limits.settings(production));
        let mail = ok(&mut problems, self.mail.settings(production));
        let social = ok(&mut problems, self.social.settings());
        let two_factor = ok(&mut problems, self.two_factor.settings());
        let adopt = ok(&mut problems, self.adopt.settings()).unwrap_or_default();
        let webauthn = ok(&mut problems, self.webauthn.settings());
        match (
            database,
            server,
            sessions,
            passwords,
            graphql,
            tokens,
            admin_emails,
            rate_limits,
            mail,
            social,
            two_factor,
            webauthn,
        ) {
            (
                Some(database),
                Some(server),
                Some(sessions),
                Some(passwords),
                Some(graphql),
                Some(tokens),
                Some(admin_emails),
                Some(rate_limits),
                Some(mail),
                Some(social),
                Some(two_factor),
                Some(webauthn),
            ) if problems.is_empty() => Ok(Settings {
                environment: self.server.environment,
                server,
                database,
                sessions,
                passwords,
                graphql,
                tokens,
                admin_emails,
                rate_limits,
                mail,
                metrics_listen: self.observability.settings(),
                social,
                two_factor,
                adopt,
                webauthn,
            }),
            _ => Err(problems.join("; ")),
        }
    }

    /// Checks the settings against each other and the environment; names everything missing.
    pub fn validate(&self) -> Result<(), String> {
        self.resolve().map(drop)
    }

    pub fn is_production(&self) -> bool {
        self.server.environment == Environment::Production
    }
}

/// A section's settings, its problems added to `problems`.
fn ok<T>(problems: &mut Vec<String>, settings: Result<T, String>) -> Option<T> {
    settings.map_err(|e| problems.push(e)).ok()
}

/// A section's problems, joined.
fn problems(problems: Vec<String>) -> Result<(), String> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// `value` when there is no problem besides its own.
fn checked<T>(value: Result<T, String>, mut problems: Vec<String>) -> Result<T, String> {
    match value {
        Ok(value) if problems.is_empty() => Ok(value),
        Ok(_) => Err(problems.join("; ")),
        Err(e) => {
            problems.insert(0, e);
            Err(problems.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Config {
        let mut all = vec!["apexkit"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).expect("parses").config
    }

    #[test]
    fn abuse_settings_default_by_environment_and_validate() {
        let enabled = |config: Config| {
            let settings = config.resolve().expect("valid");
            (
                settings.rate_limits.is_some(),
                settings.graphql.limits.introspection,
            )
        };
        let dev = parse(&[]);
        assert_eq!(enabled(dev), (false, true));
        let mut prod = parse(&["--env", "production"]);
        prod.server.secret = Some(Secret::new("p".repeat(32)));
        prod.server.base_url = Some("https://auth.example.com".to_owned());
        assert_eq!(enabled(prod.clone()), (true, false));
        let mut over = parse(&["--rate-limit", "off", "--introspection", "on"]);
        over.server = prod.server;
        assert_eq!(enabled(over), (false, true));

        assert!(parse(&["--password-min-length", "7"]).validate().is_err());
        assert!(parse(&["--password-min-length", "12"]).validate().is_ok());
        assert!(
            parse(&["--trusted-proxies", "10.0.0.0/8,::1"])
                .validate()
                .is_ok()
        );
        assert!(
            parse(&["--trusted-proxies", "10.0.0.0/99"])
                .validate()
                .is_err()
        );
        let rules = parse(&["--rate-limit-credential", "5/30"]);
        assert_eq!(rules.rate_limits.credential.max, 5);
        let bad = vec!["apexkit", "--rate-limit-mail", "0/60"];
        assert!(Cli::try_parse_from(bad).is_err());
    }

    #[test]
    fn session_max_age_defaults_to_30_days_and_covers_the_lifetimes() {
        let default = parse(&[]);
        assert_eq!(default.sessions.max_age, 2_592_000);
        assert!(default.validate().is_ok());
        let short = parse(&["--session-max-age", "3600"]);
        let err = short.validate().unwrap_err();
        assert!(err.contains("APEXKIT_SESSION_MAX_AGE"), "{err}");
        let fits = parse(&[
            "--session-max-age",
            "3600",
            "--session-expires-in",
            "3600",
            "--session-short-expires-in",
            "600",
        ]);
        assert!(fits.validate().is_ok());
    }
}
