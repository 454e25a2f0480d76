//! Passkeys (WebAuthn): the relying party's id and name. The allowed origins are the trusted
//! origins (`APEXKIT_TRUSTED_ORIGINS` plus the base URL's).

#[derive(Debug, Clone, clap::Args)]
pub struct WebauthnConfig {
    /// WebAuthn relying party id: the registrable domain passkeys are bound to (e.g.
    /// `example.com` for a frontend on `app.example.com`). Default: the host of
    /// APEXKIT_BASE_URL. Every trusted origin that offers passkeys must be on it or a subdomain.
    #[arg(
        id = "webauthn_rp_id",
        long = "webauthn-rp-id",
        value_name = "WEBAUTHN_RP_ID",
        env = "APEXKIT_WEBAUTHN_RP_ID",
        help_heading = "Passkeys"
    )]
    pub rp_id: Option<String>,
    /// WebAuthn relying party name, shown by the browser when a passkey is created.
    #[arg(
        id = "webauthn_rp_name",
        long = "webauthn-rp-name",
        value_name = "WEBAUTHN_RP_NAME",
        env = "APEXKIT_WEBAUTHN_RP_NAME",
        default_value = "Apexkit",
        help_heading = "Passkeys"
    )]
    pub rp_name: String,
}

/// The relying party as configured; its id defaults to the base URL's host once it is known.
#[derive(Debug, Clone)]
pub struct Webauthn {
    pub rp_id: Option<String>,
    pub rp_name: String,
}

impl WebauthnConfig {
    pub fn settings(&self) -> Result<Webauthn, String> {
        let mut problems = Vec::new();
        let rp_id = self
            .rp_id
            .as_deref()
            .map(|id| id.trim().to_ascii_lowercase())
            .filter(|id| !id.is_empty());
        if let Some(id) = &rp_id
            && crate::auth::origin::origin_of(&format!("https://{id}")).as_deref()
                != Some(format!("https://{id}").as_str())
        {
            problems.push(format!(
                "APEXKIT_WEBAUTHN_RP_ID: {id:?} is not a domain (no scheme, port or path)"
            ));
        }
        let rp_name = self.rp_name.trim().to_owned();
        if rp_name.is_empty() || rp_name.chars().count() > 64 {
            problems.push("APEXKIT_WEBAUTHN_RP_NAME must be 1 to 64 characters".to_owned());
        }
        super::problems(problems)?;
        Ok(Webauthn { rp_id, rp_name })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(rp_id: Option<&str>, rp_name: &str) -> WebauthnConfig {
        WebauthnConfig {
            rp_id: rp_id.map(str::to_owned),
            rp_name: rp_name.to_owned(),
        }
    }

    #[test]
    fn rp_id_is_a_bare_domain() {
        let ok = config(Some("Example.COM"), "Apexkit").settings().unwrap();
        assert_eq!(ok.rp_id.as_deref(), Some("example.com"));
        assert_eq!(config(None, "Apexkit").settings().unwrap().rp_id, None);
        for bad in [
            "https://example.com",
            "example.com:443",
            "example.com/x",
            "a b",
        ] {
            assert!(config(Some(bad), "Apexkit").settings().is_err(), "{bad}");
        }
        assert!(config(None, " ").settings().is_err());
    }
}
