//! Outgoing mail: what the messages say ([`compose`]), how they leave ([`Transport`]: SMTP via
//! lettre, or the log in development) and the outbox [`worker`] that delivers queued rows with
//! retries, so a mail outage never changes a GraphQL answer.

pub mod compose;
pub mod worker;

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor};

pub use worker::{OutboxSettings, Worker};

/// How long one SMTP conversation may take before it counts as a failed attempt.
const SMTP_TIMEOUT: Duration = Duration::from_secs(15);

/// A message as queued in the outbox.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Where mail goes.
pub enum Transport {
    Smtp {
        inner: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
    },
    /// Writes each message to the log. In development with its bodies (links included), so a
    /// developer can follow them; otherwise only recipient and subject, since links carry tokens.
    Log { from: Mailbox, with_bodies: bool },
}

impl Transport {
    /// `smtp://user:pass@host:port` (STARTTLS whenever the server offers it; add `?tls=required`
    /// to insist) or `smtps://…` (implicit TLS). Without a URL: the log.
    pub fn from_config(
        smtp_url: Option<&str>,
        from: &str,
        development: bool,
    ) -> Result<Self, String> {
        let from: Mailbox = from
            .parse()
            .map_err(|e| format!("APEXKIT_MAIL_FROM {from:?} is not a mailbox: {e}"))?;
        let Some(url) = smtp_url.map(str::trim).filter(|u| !u.is_empty()) else {
            return Ok(Self::Log {
                from,
                with_bodies: development,
            });
        };
        // Parse errors may echo the URL; never show its password.
        let bad = |what: &str| format!("APEXKIT_SMTP_URL is invalid: {what}");
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|_| bad("use smtp://user:pass@host:port or smtps://user:pass@host:port"))?;
        let parsed = url::Url::parse(url).map_err(|_| bad("not a URL"))?;
        let explicit_tls = parsed.query_pairs().any(|(k, _)| k == "tls");
        if parsed.scheme() == "smtp" && !explicit_tls {
            // lettre's plain `smtp://` never upgrades; we use STARTTLS whenever it is offered.
            let host = parsed.host_str().ok_or_else(|| bad("no host"))?;
            let params =
                TlsParameters::new(host.to_owned()).map_err(|_| bad("cannot set up TLS"))?;
            builder = builder.tls(Tls::Opportunistic(params));
        }
        Ok(Self::Smtp {
            inner: builder.timeout(Some(SMTP_TIMEOUT)).build(),
            from,
        })
    }

    /// Delivers one message. The error is a short description fit for the log (no bodies).
    pub async fn deliver(&self, mail: &Outgoing) -> Result<(), String> {
        match self {
            Self::Smtp { inner, from } => {
                let message = build_message(from, mail)?;
                inner.send(message).await.map(drop).map_err(|e| {
                    // lettre's errors name the server's answer, never our credentials or bodies.
                    e.to_string()
                })
            }
            Self::Log { from, with_bodies } => {
                if *with_bodies {
                    tracing::info!(
                        from = %from,
                        to = %mail.to,
                        subject = %mail.subject,
                        "mail (development transport, not sent):\n{}",
                        mail.text
                    );
                } else {
                    tracing::warn!(
                        to = %mail.to,
                        subject = %mail.subject,
                        "mail not sent: no APEXKIT_SMTP_URL configured"
                    );
                }
                Ok(())
            }
        }
    }
}

fn build_message(from: &Mailbox, mail: &Outgoing) -> Result<lettre::Message, String> {
    let to: Mailbox = mail
        .to
        .parse()
        .map_err(|e| format!("bad recipient address: {e}"))?;
    lettre::Message::builder()
        .from(from.clone())
        .to(to)
        .subject(mail.subject.clone())
        .multipart(MultiPart::alternative_plain_html(
            mail.text.clone(),
            mail.html.clone(),
        ))
        .map_err(|e| format!("cannot build message: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports_from_config() {
        assert!(matches!(
            Transport::from_config(None, "Apexkit <a@example.com>", true),
            Ok(Transport::Log {
                with_bodies: true,
                ..
            })
        ));
        assert!(matches!(
            Transport::from_config(None, "a@example.com", false),
            Ok(Transport::Log {
                with_bodies: false,
                ..
            })
        ));
        for url in [
            "smtp://user:pass@mail.example.com:587",
            "smtp://mail.example.com:25?tls=required",
            "smtps://user:pass@mail.example.com:465",
        ] {
            assert!(
                matches!(
                    Transport::from_config(Some(url), "a@example.com", false),
                    Ok(Transport::Smtp { .. })
                ),
                "{url}"
            );
        }
    }

    #[test]
    fn bad_settings_are_named_without_secrets() {
        let err = Transport::from_config(Some("mysql://user:hunter2@x"), "a@example.com", false)
            .err()
            .unwrap();
        assert!(
            err.contains("APEXKIT_SMTP_URL") && !err.contains("hunter2"),
            "{err}"
        );
        let err = Transport::from_config(None, "not a mailbox", true)
            .err()
            .unwrap();
        assert!(err.contains("APEXKIT_MAIL_FROM"), "{err}");
    }
}
