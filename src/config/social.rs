//! Social sign-in: the OAuth 2.0 / OpenID Connect providers. `APEXKIT_OAUTH_PROVIDERS` lists
//! their ids; each id's settings are the dynamic variables `APEXKIT_OAUTH_<ID>_*` (clap cannot
//! name them), read by [`SocialConfig::read_env`] when the process starts and documented in the
//! reference by [`ENV_TABLE`]. Tests set [`SocialConfig::providers`] directly.

use crate::auth::social::{
    AppleKey, ClientAuth, Endpoints, IssuerRule, Profile, ProviderSpec, SocialSettings,
};
use crate::secret::Secret;

#[derive(Debug, Clone, clap::Args)]
pub struct SocialConfig {
    /// Comma-separated ids of the social sign-in providers (e.g. corp,github); each is set up
    /// by the APEXKIT_OAUTH_<ID>_* variables below. Presets: github, google, microsoft, apple,
    /// gitlab, discord (their endpoints built in, each overridable); any other id needs an issuer
    /// or endpoints. The redirect URI to register with a provider is
    /// `<APEXKIT_BASE_URL>/callback/<id>`.
    #[arg(
        long = "oauth-providers",
        env = "APEXKIT_OAUTH_PROVIDERS",
        value_delimiter = ',',
        help_heading = "Social sign-in"
    )]
    pub provider_ids: Vec<String>,

    /// linkSocial links a provider identity whose email is not the signed-in user's own (or
    /// that the provider does not assert verified). Off by default: an identity is linked only
    /// when the provider vouches for the user's own address, so a browser left signed in at the
    /// provider as someone else cannot slip a stranger's identity into the account.
    #[arg(
        long = "oauth-allow-different-emails",
        env = "APEXKIT_OAUTH_ALLOW_DIFFERENT_EMAILS",
        help_heading = "Social sign-in"
    )]
    pub allow_different_emails: bool,

    /// The providers' settings, from `APEXKIT_OAUTH_<ID>_*` ([`SocialConfig::read_env`]).
    #[arg(skip)]
    pub providers: Vec<ProviderConfig>,
}

/// One provider's settings as configured (validated by [`SocialConfig::settings`]).
#[derive(Debug, Clone, Default)]
pub struct ProviderConfig {
    pub id: String,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    /// Space- or comma-separated.
    pub scopes: Option<String>,
    pub issuer: Option<String>,
    pub authorization_url: Option<String>,
    pub token_url: Option<String>,
    pub userinfo_url: Option<String>,
    /// `apple`: the team id, key id and `.p8` key file the client secret is signed with.
    pub team_id: Option<String>,
    pub key_id: Option<String>,
    pub private_key_file: Option<String>,
    /// `microsoft`: `common` (default), `organizations`, `consumers` or a tenant id.
    pub tenant: Option<String>,
}

/// The per-provider variables, for the configuration reference (`<ID>`: the id, upper-cased).
pub const ENV_TABLE: &[(&str, &str)] = &[
    (
        "APEXKIT_OAUTH_<ID>_CLIENT_ID",
        "The client id the provider issued. Required.",
    ),
    (
        "APEXKIT_OAUTH_<ID>_CLIENT_SECRET",
        "The client secret the provider issued. Required.",
    ),
    (
        "APEXKIT_OAUTH_<ID>_SCOPES",
        "Scopes to request, space- or comma-separated. Default for an OpenID Connect provider: \
         `openid email profile`.",
    ),
    (
        "APEXKIT_OAUTH_<ID>_ISSUER",
        "Issuer URL of a generic OpenID Connect provider: its discovery document \
         (`<issuer>/.well-known/openid-configuration`) gives the endpoints and the JWKS.",
    ),
    (
        "APEXKIT_OAUTH_<ID>_AUTHORIZATION_URL",
        "Authorization endpoint of a generic OAuth 2.0 provider (overrides discovery).",
    ),
    (
        "APEXKIT_OAUTH_<ID>_TOKEN_URL",
        "Token endpoint of a generic OAuth 2.0 provider (overrides discovery).",
    ),
    (
        "APEXKIT_OAUTH_<ID>_USERINFO_URL",
        "Userinfo endpoint (overrides discovery or the preset's user API); required for a \
         provider that is neither a preset nor OpenID Connect, where it is the only source of \
         the user's email.",
    ),
    (
        "APEXKIT_OAUTH_<ID>_TEAM_ID",
        "`apple`: your Apple Developer team id (the client secret is a JWT Apexkit signs, so \
         no `_CLIENT_SECRET`).",
    ),
    (
        "APEXKIT_OAUTH_<ID>_KEY_ID",
        "`apple`: the id of the Sign in with Apple private key.",
    ),
    (
        "APEXKIT_OAUTH_<ID>_PRIVATE_KEY_FILE",
        "`apple`: path of that key's `.p8` file (PKCS#8 PEM, ES256), read at start.",
    ),
    (
        "APEXKIT_OAUTH_<ID>_TENANT",
        "`microsoft`: `common` (default: work, school and personal accounts), `organizations`, \
         `consumers`, or your tenant id for a single-tenant app.",
    ),
];

impl SocialConfig {
    /// Fills [`Self::providers`] for every id of `APEXKIT_OAUTH_PROVIDERS` from `vars` (the
    /// process environment at start).
    pub fn read_env(&mut self, vars: impl IntoIterator<Item = (String, String)>) {
        let vars: Vec<(String, String)> = vars.into_iter().collect();
        let get = |id: &str, name: &str| {
            let key = format!("APEXKIT_OAUTH_{}_{name}", env_id(id));
            vars.iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        for id in self.provider_ids.iter().map(|s| s.trim()) {
            if id.is_empty() || self.providers.iter().any(|p| p.id == id) {
                continue;
            }
            self.providers.push(ProviderConfig {
                id: id.to_owned(),
                client_id: get(id, "CLIENT_ID"),
                client_secret: get(id, "CLIENT_SECRET").map(Secret::new),
                scopes: get(id, "SCOPES"),
                issuer: get(id, "ISSUER"),
                authorization_url: get(id, "AUTHORIZATION_URL"),
                token_url: get(id, "TOKEN_URL"),
                userinfo_url: get(id, "USERINFO_URL"),
                team_id: get(id, "TEAM_ID"),
                key_id: get(id, "KEY_ID"),
                private_key_file: get(id, "PRIVATE_KEY_FILE"),
                tenant: get(id, "TENANT"),
            });
        }
    }

    /// Every provider checked; the error names each misconfigured one.
    pub fn settings(&self) -> Result<SocialSettings, String> {
        let mut problems = Vec::new();
        let mut specs = Vec::new();
        for id in self.provider_ids.iter().map(|s| s.trim()) {
            if !id.is_empty() && !self.providers.iter().any(|p| p.id == id) {
                problems.push(format!(
                    "social provider {id:?}: APEXKIT_OAUTH_{}_CLIENT_ID is not set",
                    env_id(id)
                ));
            }
        }
        for p in &self.providers {
            match p.spec() {
                Ok(spec) if specs.iter().any(|s: &ProviderSpec| s.id == spec.id) => {
                    problems.push(format!("social provider {:?} is configured twice", p.id))
                }
                Ok(spec) => specs.push(spec),
                Err(e) => problems.push(e),
            }
        }
        super::checked(
            Ok(SocialSettings {
                providers: specs,
                allow_different_emails: self.allow_different_emails,
            }),
            problems,
        )
    }
}

impl ProviderConfig {
    fn spec(&self) -> Result<ProviderSpec, String> {
        let id = self.id.trim();
        let var = |name: &str| format!("APEXKIT_OAUTH_{}_{name}", env_id(id));
        let mut problems = Vec::new();
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "social provider id {id:?}: use letters, digits, '-' and '_' only"
            ));
        }
        let client_id = self.client_id.clone().filter(|s| !s.is_empty());
        if client_id.is_none() {
            problems.push(format!(
                "social provider {id:?}: {} is not set",
                var("CLIENT_ID")
            ));
        }
        let preset = preset(id);
        let client_auth = match preset.map(|p| p.secret) {
            Some(SecretKind::AppleKey) => self.apple_key(id, &var, &mut problems),
            _ => {
                let secret = self
                    .client_secret
                    .clone()
                    .filter(|s| !s.expose().is_empty());
                if secret.is_none() {
                    problems.push(format!(
                        "social provider {id:?}: {} is not set",
                        var("CLIENT_SECRET")
                    ));
                }
                secret.map(|s| match preset.map(|p| p.secret) {
                    Some(SecretKind::Post) => ClientAuth::Post(s),
                    _ => ClientAuth::Basic(s),
                })
            }
        };
        let url = |value: &Option<String>, name: &str, problems: &mut Vec<String>| {
            let value = value.as_deref()?.trim_end_matches('/');
            match url::Url::parse(value) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => Some(value.to_owned()),
                _ => {
                    problems.push(format!(
                        "social provider {id:?}: {} is not an http(s) URL",
                        var(name)
                    ));
                    None
                }
            }
        };
        let or_preset = |configured: Option<String>, preset: Option<&str>| {
            configured.or_else(|| preset.map(str::to_owned))
        };
        let tenant = self.tenant.as_deref().unwrap_or("common");
        if !tenant
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
        {
            problems.push(format!(
                "social provider {id:?}: {} is not a tenant id or name",
                var("TENANT")
            ));
        }
        let issuer = url(&self.issuer, "ISSUER", &mut problems).or_else(|| {
            preset
                .and_then(|p| p.issuer)
                .map(|i| i.replace("{tenant}", tenant))
        });
        let endpoints = Endpoints {
            authorization: or_preset(
                url(&self.authorization_url, "AUTHORIZATION_URL", &mut problems),
                preset.and_then(|p| p.authorization),
            ),
            token: or_preset(
                url(&self.token_url, "TOKEN_URL", &mut problems),
                preset.and_then(|p| p.token),
            ),
            userinfo: or_preset(
                url(&self.userinfo_url, "USERINFO_URL", &mut problems),
                preset.and_then(|p| p.userinfo),
            ),
        };
        if issuer.is_none()
            && (endpoints.authorization.is_none()
                || endpoints.token.is_none()
                || endpoints.userinfo.is_none())
        {
            problems.push(format!(
                "social provider {id:?}: not a known preset: set {} (OpenID Connect discovery), \
                 or {}, {} and {}",
                var("ISSUER"),
                var("AUTHORIZATION_URL"),
                var("TOKEN_URL"),
                var("USERINFO_URL")
            ));
        }
        let scopes: Vec<String> = match &self.scopes {
            Some(s) => s
                .split([' ', ','])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            None => match preset {
                Some(p) => p.scopes.iter().map(|s| s.to_string()).collect(),
                None if issuer.is_some() => ["openid", "email", "profile"].map(String::from).into(),
                None => Vec::new(),
            },
        };
        match (client_id, client_auth) {
            (Some(client_id), Some(client_auth)) if problems.is_empty() => Ok(ProviderSpec {
                id: id.to_owned(),
                name: preset.map_or_else(|| display_name(id), |p| p.name.to_owned()),
                profile: preset.map_or(Profile::Standard, |p| p.profile),
                issuer_rule: preset.map_or(IssuerRule::Exact, |p| p.issuer_rule),
                form_post: preset.is_some_and(|p| p.form_post),
                client_id,
                client_auth,
                scopes,
                issuer,
                endpoints,
            }),
            _ => Err(problems.join("; ")),
        }
    }

    /// `apple`: the key the client secret is signed with, read and checked now.
    fn apple_key(
        &self,
        id: &str,
        var: &dyn Fn(&str) -> String,
        problems: &mut Vec<String>,
    ) -> Option<ClientAuth> {
        let mut need = |value: &Option<String>, name: &str| {
            let v = value.clone().filter(|v| !v.is_empty());
            if v.is_none() {
                problems.push(format!("social provider {id:?}: {} is not set", var(name)));
            }
            v
        };
        let team_id = need(&self.team_id, "TEAM_ID");
        let key_id = need(&self.key_id, "KEY_ID");
        let file = need(&self.private_key_file, "PRIVATE_KEY_FILE");
        let pem = match std::fs::read_to_string(file.as_deref()?) {
            Ok(pem) => Secret::new(pem),
            Err(e) => {
                problems.push(format!(
                    "social provider {id:?}: {} cannot be read: {e}",
                    var("PRIVATE_KEY_FILE")
                ));
                return None;
            }
        };
        match AppleKey::new(team_id?, key_id?, pem) {
            Ok(key) => Some(ClientAuth::AppleKey(key)),
            Err(e) => {
                problems.push(format!(
                    "social provider {id:?}: {}: {e}",
                    var("PRIVATE_KEY_FILE")
                ));
                None
            }
        }
    }
}

/// How a preset's client authenticates at the token endpoint.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SecretKind {
    /// `client_secret_basic`.
    Basic,
    /// `client_secret_post`.
    Post,
    /// Apple: a JWT signed with the developer's key, sent as `client_secret` in the body.
    AppleKey,
}

/// What a preset knows about a well-known provider; every endpoint can be overridden.
#[derive(Clone, Copy)]
struct Preset {
    name: &'static str,
    issuer: Option<&'static str>,
    authorization: Option<&'static str>,
    token: Option<&'static str>,
    userinfo: Option<&'static str>,
    scopes: &'static [&'static str],
    profile: Profile,
    secret: SecretKind,
    issuer_rule: IssuerRule,
    /// The authorization response comes back as a POSTed form.
    form_post: bool,
}

const OIDC_SCOPES: &[&str] = &["openid", "email", "profile"];

/// The presets, by provider id.
fn preset(id: &str) -> Option<Preset> {
    let oidc = |name, issuer| Preset {
        name,
        issuer: Some(issuer),
        authorization: None,
        token: None,
        userinfo: None,
        scopes: OIDC_SCOPES,
        profile: Profile::Standard,
        secret: SecretKind::Basic,
        issuer_rule: IssuerRule::Exact,
        form_post: false,
    };
    match id {
        // No OpenID Connect: the user from its REST API, the verified primary email from
        // `<user API>/emails`.
        "github" => Some(Preset {
            name: "GitHub",
            issuer: None,
            authorization: Some("https://github.com/login/oauth/authorize"),
            token: Some("https://github.com/login/oauth/access_token"),
            userinfo: Some("https://api.github.com/user"),
            scopes: &["read:user", "user:email"],
            profile: Profile::GitHub,
            secret: SecretKind::Basic,
            issuer_rule: IssuerRule::Exact,
            form_post: false,
        }),
        // No OpenID Connect: the user (and whether Discord verified the address) from
        // `GET /users/@me`.
        "discord" => Some(Preset {
            name: "Discord",
            issuer: None,
            authorization: Some("https://discord.com/oauth2/authorize"),
            token: Some("https://discord.com/api/oauth2/token"),
            userinfo: Some("https://discord.com/api/users/@me"),
            scopes: &["identify", "email"],
            profile: Profile::Discord,
            secret: SecretKind::Basic,
            issuer_rule: IssuerRule::Exact,
            form_post: false,
        }),
        "google" => Some(oidc("Google", "https://accounts.google.com")),
        // Microsoft identity platform v2.0. `{tenant}` is APEXKIT_OAUTH_MICROSOFT_TENANT; the
        // multi-tenant endpoints' discovery names the issuer `…/{tenantid}/v2.0`, which each
        // id_token's `tid` fills in. Its email is not verified by Microsoft.
        "microsoft" => Some(Preset {
            name: "Microsoft",
            secret: SecretKind::Post,
            issuer_rule: IssuerRule::MicrosoftTenant,
            profile: Profile::Microsoft,
            ..oidc(
                "Microsoft",
                "https://login.microsoftonline.com/{tenant}/v2.0",
            )
        }),
        // Sign in with Apple: the client secret is a JWT signed with the developer's key; the
        // answer comes as a form_post (required with the name and email scopes), the name only
        // in the first one's `user` field.
        "apple" => Some(Preset {
            name: "Apple",
            issuer: Some("https://appleid.apple.com"),
            authorization: None,
            token: None,
            userinfo: None,
            scopes: &["name", "email"],
            profile: Profile::Apple,
            secret: SecretKind::AppleKey,
            issuer_rule: IssuerRule::Exact,
            form_post: true,
        }),
        "gitlab" => Some(oidc("GitLab", "https://gitlab.com")),
        _ => None,
    }
}

/// The id as it appears in variable names: upper-cased, `-` as `_`.
fn env_id(id: &str) -> String {
    id.to_ascii_uppercase().replace('-', "_")
}

/// `corp` → `Corp`, for buttons.
fn display_name(id: &str) -> String {
    let mut chars = id.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn providers_come_from_their_variables_and_name_what_is_missing() {
        let mut config = SocialConfig {
            provider_ids: vec!["corp".into(), "my-idp".into()],
            allow_different_emails: false,
            providers: Vec::new(),
        };
        config.read_env(vars(&[
            ("APEXKIT_OAUTH_CORP_CLIENT_ID", "id"),
            ("APEXKIT_OAUTH_CORP_CLIENT_SECRET", "secret"),
            ("APEXKIT_OAUTH_CORP_ISSUER", "https://login.example.com/"),
            ("APEXKIT_OAUTH_MY_IDP_CLIENT_ID", "id2"),
            ("APEXKIT_OAUTH_MY_IDP_SCOPES", "read:user, user:email"),
        ]));
        let err = config.settings().unwrap_err();
        assert!(err.contains("APEXKIT_OAUTH_MY_IDP_CLIENT_SECRET"), "{err}");
        assert!(err.contains("APEXKIT_OAUTH_MY_IDP_ISSUER"), "{err}");
        assert!(!err.contains("CORP"), "{err}");
        config.providers.retain(|p| p.id == "corp");
        config.provider_ids.truncate(1);
        let specs = config.settings().unwrap().providers;
        assert_eq!(
            specs[0].issuer.as_deref(),
            Some("https://login.example.com")
        );
        assert_eq!(specs[0].scopes, ["openid", "email", "profile"]);
        assert_eq!(specs[0].name, "Corp");
    }

    #[test]
    fn presets_know_their_endpoints_and_each_can_be_overridden() {
        let github = ProviderConfig {
            id: "github".into(),
            client_id: Some("id".into()),
            client_secret: Some(Secret::new("secret")),
            userinfo_url: Some("http://127.0.0.1:9/user".into()),
            ..Default::default()
        };
        let spec = github.spec().unwrap();
        assert_eq!(spec.name, "GitHub");
        assert_eq!(spec.issuer, None);
        assert_eq!(
            spec.endpoints.token.as_deref(),
            Some("https://github.com/login/oauth/access_token")
        );
        assert_eq!(
            spec.endpoints.userinfo.as_deref(),
            Some("http://127.0.0.1:9/user")
        );
        assert_eq!(spec.scopes, ["read:user", "user:email"]);
        assert_eq!(spec.profile, Profile::GitHub);
        let google = ProviderConfig {
            id: "google".into(),
            ..github.clone()
        };
        let spec = google.spec().unwrap();
        assert_eq!(spec.issuer.as_deref(), Some("https://accounts.google.com"));
        assert_eq!(spec.scopes, ["openid", "email", "profile"]);
        let microsoft = ProviderConfig {
            id: "microsoft".into(),
            tenant: Some("organizations".into()),
            ..github.clone()
        };
        let spec = microsoft.spec().unwrap();
        assert_eq!(
            spec.issuer.as_deref(),
            Some("https://login.microsoftonline.com/organizations/v2.0")
        );
        assert!(matches!(spec.client_auth, ClientAuth::Post(_)));
        let apple = ProviderConfig {
            id: "apple".into(),
            client_secret: None,
            team_id: Some("TEAM123456".into()),
            key_id: Some("KEY1234567".into()),
            private_key_file: Some("/nonexistent/AuthKey.p8".into()),
            ..github
        };
        let err = apple.spec().unwrap_err();
        assert!(
            err.contains("APEXKIT_OAUTH_APPLE_PRIVATE_KEY_FILE cannot be read"),
            "{err}"
        );
        assert!(!err.contains("CLIENT_SECRET"), "{err}");
    }
}
