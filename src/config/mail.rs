//! Mail and account flows: the SMTP transport, the outbox, verification and reset links.

use std::time::Duration;

use crate::mail::{OutboxSettings, Transport};
use crate::secret::Secret;

#[derive(Debug, Clone, clap::Args)]
pub struct MailConfig {
    /// Outgoing mail server: smtp://user:pass@host:port (STARTTLS whenever offered;
    /// ?tls=required to insist) or smtps://user:pass@host:port (implicit TLS). Unset: development
    /// logs each message with its links to stderr; production logs only that it was not sent.
    #[arg(
        long,
        env = "APEXKIT_SMTP_URL",
        hide_env_values = true,
        help_heading = "Mail and account flows"
    )]
    pub smtp_url: Option<Secret>,

    /// Sender of outgoing mail, e.g. "Apexkit <no-reply@example.com>". Required in production
    /// when APEXKIT_SMTP_URL is set; otherwise "Apexkit <no-reply@localhost>".
    #[arg(
        id = "mail_from",
        long = "mail-from",
        value_name = "MAIL_FROM",
        env = "APEXKIT_MAIL_FROM",
        help_heading = "Mail and account flows"
    )]
    pub from: Option<String>,

    /// Sign-up gives no session until the address is verified, and unverified users cannot
    /// sign in (EMAIL_NOT_VERIFIED, only after a correct password).
    #[arg(
        long,
        env = "APEXKIT_REQUIRE_EMAIL_VERIFICATION",
        help_heading = "Mail and account flows"
    )]
    pub require_email_verification: bool,

    /// Lifetime of a password-reset link, in seconds.
    #[arg(
        long,
        env = "APEXKIT_RESET_TOKEN_EXPIRES_IN",
        default_value_t = 3600,
        help_heading = "Mail and account flows"
    )]
    pub reset_token_expires_in: u64,

    /// Lifetime of an email verification or email change link, in seconds.
    #[arg(long, env = "APEXKIT_VERIFICATION_TOKEN_EXPIRES_IN", default_value_t = 24 * 3600, help_heading = "Mail and account flows")]
    pub verification_token_expires_in: u64,

    /// Messages sent to one address per APEXKIT_MAIL_LIMIT_WINDOW; more are dropped silently.
    #[arg(
        id = "mail_limit",
        long = "mail-limit",
        value_name = "MAIL_LIMIT",
        env = "APEXKIT_MAIL_LIMIT",
        default_value_t = 5,
        help_heading = "Mail and account flows"
    )]
    pub limit: u32,

    /// The per-address send-limit window, in seconds.
    #[arg(
        id = "mail_limit_window",
        long = "mail-limit-window",
        value_name = "MAIL_LIMIT_WINDOW",
        env = "APEXKIT_MAIL_LIMIT_WINDOW",
        default_value_t = 900,
        help_heading = "Mail and account flows"
    )]
    pub limit_window: u64,

    /// How often the mail outbox is polled, in milliseconds (queuing mail also wakes it).
    #[arg(
        id = "mail_poll_interval_ms",
        long = "mail-poll-interval-ms",
        value_name = "MAIL_POLL_INTERVAL_MS",
        env = "APEXKIT_MAIL_POLL_INTERVAL_MS",
        default_value_t = 5000,
        help_heading = "Mail and account flows"
    )]
    pub poll_interval_ms: u64,

    /// Delay before retrying a failed delivery, in milliseconds; doubled per further failure.
    #[arg(
        id = "mail_retry_base_ms",
        long = "mail-retry-base-ms",
        value_name = "MAIL_RETRY_BASE_MS",
        env = "APEXKIT_MAIL_RETRY_BASE_MS",
        default_value_t = 10_000,
        help_heading = "Mail and account flows"
    )]
    pub retry_base_ms: u64,

    /// Longest delay between delivery attempts, in milliseconds.
    #[arg(
        id = "mail_retry_max_ms",
        long = "mail-retry-max-ms",
        value_name = "MAIL_RETRY_MAX_MS",
        env = "APEXKIT_MAIL_RETRY_MAX_MS",
        default_value_t = 3_600_000,
        help_heading = "Mail and account flows"
    )]
    pub retry_max_ms: u64,

    /// Delivery attempts before a message is given up on.
    #[arg(
        id = "mail_max_attempts",
        long = "mail-max-attempts",
        value_name = "MAIL_MAX_ATTEMPTS",
        env = "APEXKIT_MAIL_MAX_ATTEMPTS",
        default_value_t = 12,
        help_heading = "Mail and account flows"
    )]
    pub max_attempts: u32,
}

/// The mail settings, validated.
pub struct Mail {
    pub transport: Transport,
    /// Whether an SMTP server is configured (otherwise mail is only logged).
    pub smtp: bool,
    pub outbox: OutboxSettings,
    pub flows: Flows,
}

/// The account flows' share of the mail settings.
pub struct Flows {
    pub require_email_verification: bool,
    pub reset_expires_in: Duration,
    pub verification_expires_in: Duration,
    /// At most `send_limit` messages per address per `send_window`.
    pub send_limit: u32,
    pub send_window: Duration,
}

impl MailConfig {
    pub fn settings(&self, production: bool) -> Result<Mail, String> {
        let mut problems = Vec::new();
        if self.reset_token_expires_in == 0
            || self.verification_token_expires_in == 0
            || self.limit == 0
            || self.limit_window == 0
            || self.poll_interval_ms == 0
            || self.max_attempts == 0
        {
            problems.push(
                "token lifetimes, APEXKIT_MAIL_LIMIT, APEXKIT_MAIL_LIMIT_WINDOW, \
                 APEXKIT_MAIL_POLL_INTERVAL_MS and APEXKIT_MAIL_MAX_ATTEMPTS must be positive"
                    .to_owned(),
            );
        }
        if production && self.smtp_url.is_some() && self.from.is_none() {
            problems.push(
                "APEXKIT_MAIL_FROM is required with APEXKIT_SMTP_URL in production".to_owned(),
            );
        }
        let transport = Transport::from_config(
            self.smtp_url.as_ref().map(Secret::expose),
            self.from
                .as_deref()
                .unwrap_or("Apexkit <no-reply@localhost>"),
            !production,
        );
        let transport = super::checked(transport, problems)?;
        Ok(Mail {
            transport,
            smtp: self.smtp_url.is_some(),
            outbox: OutboxSettings {
                poll_interval: Duration::from_millis(self.poll_interval_ms),
                retry_base: Duration::from_millis(self.retry_base_ms),
                retry_max: Duration::from_millis(self.retry_max_ms),
                max_attempts: self.max_attempts,
                keep_sent_for: Duration::from_secs(self.limit_window),
                ..OutboxSettings::default()
            },
            flows: Flows {
                require_email_verification: self.require_email_verification,
                reset_expires_in: Duration::from_secs(self.reset_token_expires_in),
                verification_expires_in: Duration::from_secs(self.verification_token_expires_in),
                send_limit: self.limit,
                send_window: Duration::from_secs(self.limit_window),
            },
        })
    }
}
