//! Two-factor authentication and passwordless sign-in (magic link, email code).

#[derive(Debug, Clone, clap::Args)]
pub struct TwoFactorConfig {
    /// The issuer shown by authenticator apps for TOTP enrolments (the `issuer` of the
    /// `otpauth://` URI). Default: the host of APEXKIT_BASE_URL.
    #[arg(
        long,
        env = "APEXKIT_TOTP_ISSUER",
        value_name = "TOTP_ISSUER",
        help_heading = "Two-factor and passwordless sign-in"
    )]
    pub totp_issuer: Option<String>,

    /// Offer a 6-digit code by mail as a second factor (sendTwoFactorOtp / verifyTwoFactorOtp).
    /// Off by default: NIST SP 800-63B does not accept email as an authenticator.
    #[arg(
        long,
        env = "APEXKIT_TWO_FACTOR_EMAIL",
        value_name = "TWO_FACTOR_EMAIL",
        default_value_t = false,
        action = clap::ArgAction::Set,
        help_heading = "Two-factor and passwordless sign-in"
    )]
    pub two_factor_email: bool,

    /// A magic link or an emailed sign-in code for an address without an account creates the
    /// account (its address verified by the link or code). false: such an address gets a note
    /// that no account uses it, and no account is created.
    #[arg(
        long,
        env = "APEXKIT_MAGIC_LINK_SIGN_UP",
        value_name = "MAGIC_LINK_SIGN_UP",
        default_value_t = true,
        action = clap::ArgAction::Set,
        help_heading = "Two-factor and passwordless sign-in"
    )]
    pub magic_link_sign_up: bool,
}

/// The validated settings; the issuer's default (the base URL's host) is applied at boot.
#[derive(Debug, Clone)]
pub struct TwoFactorOptions {
    pub totp_issuer: Option<String>,
    pub email_second_factor: bool,
    pub passwordless_sign_up: bool,
}

impl TwoFactorConfig {
    pub fn settings(&self) -> Result<TwoFactorOptions, String> {
        let issuer = self
            .totp_issuer
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        if let Some(issuer) = issuer
            && (issuer.chars().count() > 128 || issuer.chars().any(|c| c.is_control() || c == ':'))
        {
            return Err(
                "APEXKIT_TOTP_ISSUER must be at most 128 characters, without ':' or control characters"
                    .to_owned(),
            );
        }
        Ok(TwoFactorOptions {
            totp_issuer: issuer.map(str::to_owned),
            email_second_factor: self.two_factor_email,
            passwordless_sign_up: self.magic_link_sign_up,
        })
    }
}
