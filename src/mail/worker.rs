//! The outbox worker: claims due rows one at a time (a conditional update, so replicas never
//! send a row twice), delivers them, and on failure schedules a retry with exponential backoff.
//! It wakes on a timer and whenever a request queues mail.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use super::{Outgoing, Transport};
use crate::clock::{after as add, before as sub, now};
use crate::db::{Pool, outbox};

/// Rows looked at per round.
const BATCH: i64 = 20;
/// Failure descriptions kept on the row are cut to this many characters.
const MAX_ERROR_CHARS: usize = 500;

#[derive(Debug, Clone, Copy)]
pub struct OutboxSettings {
    /// How often the outbox is polled when nothing wakes the worker.
    pub poll_interval: Duration,
    /// Delay before the first retry; doubled after every further failure…
    pub retry_base: Duration,
    /// …up to this.
    pub retry_max: Duration,
    /// Attempts before a message is given up on (and removed).
    pub max_attempts: u32,
    /// How long a claim lasts: a worker that dies mid-send releases its row after this.
    pub claim_for: Duration,
    /// Delivered rows are kept this long (the per-address send-limit window), then purged.
    pub keep_sent_for: Duration,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(5),
            retry_base: Duration::from_secs(10),
            retry_max: Duration::from_secs(3600),
            max_attempts: 12,
            claim_for: Duration::from_secs(120),
            keep_sent_for: Duration::from_secs(900),
        }
    }
}

/// The delay before the next attempt after `failures` failed ones (1-based).
pub fn backoff(settings: &OutboxSettings, failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1));
    settings
        .retry_base
        .checked_mul(factor)
        .unwrap_or(settings.retry_max)
        .min(settings.retry_max)
}

#[derive(Clone)]
pub struct Worker {
    pool: Pool,
    transport: Arc<Transport>,
    settings: OutboxSettings,
    wake: Arc<Notify>,
}

impl Worker {
    pub fn new(
        pool: Pool,
        transport: Transport,
        settings: OutboxSettings,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            pool,
            transport: Arc::new(transport),
            settings,
            wake,
        }
    }

    /// Delivers until `stop` turns true; a send in progress is finished first.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut last_purge = now();
        loop {
            if *stop.borrow() {
                return;
            }
            if let Err(e) = self.run_once().await {
                tracing::warn!(error = %e, "mail outbox: round failed");
            }
            if now() - last_purge > chrono::Duration::seconds(60) {
                last_purge = now();
                self.purge().await;
            }
            tokio::select! {
                () = tokio::time::sleep(self.settings.poll_interval) => {}
                () = self.wake.notified() => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// One round: every due row this worker manages to claim is attempted once. No database
    /// connection is held while talking to the mail server.
    pub async fn run_once(&self) -> Result<usize, crate::db::DbError> {
        let ids = outbox::due(&mut self.pool.get().await?, now(), BATCH).await?;
        let mut delivered = 0;
        for id in ids {
            let start = now();
            let claimed = outbox::claim(
                &mut self.pool.get().await?,
                &id,
                start,
                add(start, self.settings.claim_for),
            )
            .await?;
            let Some(mail) = claimed else {
                continue; // another replica has it
            };
            let outgoing = Outgoing {
                to: mail.recipient.clone(),
                subject: mail.subject.clone(),
                text: mail.text_body.clone(),
                html: mail.html_body.clone(),
            };
            let result = self.transport.deliver(&outgoing).await;
            let mut conn = self.pool.get().await?;
            match result {
                Ok(()) => {
                    outbox::mark_sent(&mut conn, &id, now()).await?;
                    delivered += 1;
                }
                Err(error) => self.failed(&mut conn, &mail, &error).await?,
            }
        }
        Ok(delivered)
    }

    async fn failed(
        &self,
        conn: &mut crate::db::Conn,
        mail: &outbox::Mail,
        error: &str,
    ) -> Result<(), crate::db::DbError> {
        let attempts = u32::try_from(mail.attempts).unwrap_or(0).saturating_add(1);
        if attempts >= self.settings.max_attempts {
            tracing::error!(
                outbox_id = %mail.id,
                attempts,
                error,
                "mail outbox: giving up on a message"
            );
            return outbox::delete(conn, &mail.id).await;
        }
        let delay = backoff(&self.settings, attempts);
        tracing::warn!(
            outbox_id = %mail.id,
            attempts,
            retry_in_ms = delay.as_millis() as u64,
            error,
            "mail outbox: delivery failed, will retry"
        );
        let error: String = error.chars().take(MAX_ERROR_CHARS).collect();
        outbox::mark_failed(
            conn,
            &mail.id,
            i32::try_from(attempts).unwrap_or(i32::MAX),
            add(now(), delay),
            &error,
        )
        .await
    }

    async fn purge(&self) {
        let before = sub(now(), self.settings.keep_sent_for);
        let result = match self.pool.get().await {
            Ok(mut conn) => outbox::purge_sent(&mut conn, before).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "mail outbox: purge failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let s = OutboxSettings {
            retry_base: Duration::from_secs(10),
            retry_max: Duration::from_secs(60),
            ..OutboxSettings::default()
        };
        assert_eq!(backoff(&s, 1), Duration::from_secs(10));
        assert_eq!(backoff(&s, 2), Duration::from_secs(20));
        assert_eq!(backoff(&s, 3), Duration::from_secs(40));
        assert_eq!(backoff(&s, 4), Duration::from_secs(60));
        assert_eq!(backoff(&s, 40), Duration::from_secs(60));
    }
}
