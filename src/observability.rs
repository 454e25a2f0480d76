//! Observability: the process-wide Prometheus recorder behind `GET /metrics`, the metric names
//! every layer records under, and the request id that tags each request's logs and response.
//!
//! The recorder of the `metrics` facade is global to the process, so it is installed once (the
//! first `App` to boot installs it; later apps in the same process share it). Counters only
//! grow: read them as deltas.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// HTTP requests being handled right now.
pub const HTTP_IN_FLIGHT: &str = "apexkit_http_requests_in_flight";
/// Root GraphQL fields executed, labelled `field` and `outcome` (`ok` or the error code).
pub const GRAPHQL_REQUESTS: &str = "apexkit_graphql_requests_total";
/// Latency of each root GraphQL field, labelled `field`.
pub const GRAPHQL_DURATION: &str = "apexkit_graphql_request_duration_seconds";
/// `signInEmail` outcomes, labelled `outcome` (`success` or the error code).
pub const SIGN_IN: &str = "apexkit_sign_in_total";
/// Social sign-in outcomes, labelled `provider` and `outcome` (`success` or the `?error=` value).
/// Record with [`record_social_sign_in`].
pub const SOCIAL_SIGN_IN: &str = "apexkit_social_sign_in_total";
/// Passkey ceremonies by `ceremony` (`register`, `sign_in`) and `outcome` (`success` or the
/// error code). Record with [`record_passkey`].
pub const PASSKEY: &str = "apexkit_passkey_ceremonies_total";
/// Password hashes waiting for a slot of the argon2 semaphore.
pub const HASH_QUEUE_DEPTH: &str = "apexkit_hash_queue_depth";
/// Time a password hash waited for a slot.
pub const HASH_WAIT: &str = "apexkit_hash_wait_seconds";
/// Time one argon2 hash or verification took on the blocking pool.
pub const HASH_DURATION: &str = "apexkit_hash_duration_seconds";
/// Requests refused by the rate limiter, labelled `field`. Record with [`record_rate_limited`].
pub const RATE_LIMITED: &str = "apexkit_rate_limited_total";
/// 1 while the rate limiter counts in this replica's memory because Redis is unreachable
/// (`APEXKIT_RATE_LIMIT_STORAGE=redis`), 0 while Redis counts. Record with
/// [`record_redis_fallback`].
pub const RATE_LIMIT_REDIS_FALLBACK: &str = "apexkit_rate_limit_redis_fallback";
/// Times the rate limiter fell back from Redis to memory.
pub const RATE_LIMIT_REDIS_FALLBACKS: &str = "apexkit_rate_limit_redis_fallbacks_total";
/// Pool gauges and counters, refreshed at every scrape from bb8's own statistics.
pub const POOL_CONNECTIONS: &str = "apexkit_db_pool_connections";
pub const POOL_IDLE: &str = "apexkit_db_pool_idle_connections";
pub const POOL_MAX: &str = "apexkit_db_pool_max_connections";
pub const POOL_WAITS: &str = "apexkit_db_pool_waits_total";
pub const POOL_TIMEOUTS: &str = "apexkit_db_pool_timeouts_total";
pub const POOL_WAIT_SECONDS: &str = "apexkit_db_pool_wait_seconds_total";
pub const POOL_BROKEN: &str = "apexkit_db_pool_broken_connections_total";

/// Latency buckets (seconds) for every `*_seconds` histogram: from a cached session check to
/// a queued argon2 hash.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's Prometheus handle, installing the recorder on first use. `None` when another
/// recorder was installed first (an embedding program's own): `/metrics` then answers 404.
pub fn prometheus() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), BUCKETS)
                .ok()?;
            match builder.install_recorder() {
                Ok(handle) => {
                    describe();
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed; /metrics disabled");
                    None
                }
            }
        })
        .clone()
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        GRAPHQL_REQUESTS,
        "Root GraphQL fields executed, by field and outcome"
    );
    describe_histogram!(
        GRAPHQL_DURATION,
        Unit::Seconds,
        "Latency of root GraphQL fields"
    );
    describe_counter!(SIGN_IN, "signInEmail outcomes");
    describe_counter!(SOCIAL_SIGN_IN, "Social sign-in outcomes by provider");
    describe_counter!(PASSKEY, "Passkey registrations and sign-ins by outcome");
    describe_gauge!(
        HASH_QUEUE_DEPTH,
        "Password hashes waiting for an argon2 slot"
    );
    describe_histogram!(HASH_WAIT, Unit::Seconds, "Wait for an argon2 slot");
    describe_histogram!(
        HASH_DURATION,
        Unit::Seconds,
        "One argon2 hash or verification"
    );
    describe_counter!(RATE_LIMITED, "Requests refused by the rate limiter");
    describe_gauge!(
        RATE_LIMIT_REDIS_FALLBACK,
        "1 while rate-limit counters fall back to this replica's memory because Redis is unreachable"
    );
    describe_counter!(
        RATE_LIMIT_REDIS_FALLBACKS,
        "Times rate-limit counters fell back from Redis to memory"
    );
    describe_gauge!(POOL_CONNECTIONS, "Open database connections");
    describe_gauge!(POOL_IDLE, "Idle database connections");
    describe_gauge!(POOL_MAX, "Configured maximum of database connections");
    describe_counter!(POOL_WAITS, "Connection checkouts that had to wait");
    describe_counter!(
        POOL_TIMEOUTS,
        "Connection checkouts that timed out (SERVICE_UNAVAILABLE)"
    );
    describe_counter!(
        POOL_WAIT_SECONDS,
        "Total time spent waiting for a connection"
    );
    describe_counter!(POOL_BROKEN, "Connections discarded as broken");
}

/// Counts one refusal by the rate limiter for a root field (e.g. `signInEmail`). The limiter
/// calls this wherever it answers `RATE_LIMITED`.
/// Records a transition of the Redis rate-limit counters: `true` when they fall back to memory
/// (Redis unreachable), `false` when Redis counts again.
pub fn record_redis_fallback(active: bool) {
    metrics::gauge!(RATE_LIMIT_REDIS_FALLBACK).set(if active { 1.0 } else { 0.0 });
    if active {
        metrics::counter!(RATE_LIMIT_REDIS_FALLBACKS).increment(1);
    }
}

/// Counts one social sign-in outcome.
pub fn record_social_sign_in(provider: &str, outcome: &str) {
    metrics::counter!(
        SOCIAL_SIGN_IN,
        "provider" => provider.to_owned(),
        "outcome" => outcome.to_owned()
    )
    .increment(1);
}

pub fn record_passkey(ceremony: &'static str, outcome: &'static str) {
    metrics::counter!(PASSKEY, "ceremony" => ceremony, "outcome" => outcome).increment(1);
}

pub fn record_rate_limited(field: &str) {
    metrics::counter!(RATE_LIMITED, "field" => field.to_owned()).increment(1);
}

/// Copies the pool's statistics into the registry (called at each scrape).
pub fn record_pool(stats: crate::db::PoolStats, max_size: u32) {
    metrics::gauge!(POOL_CONNECTIONS).set(f64::from(stats.connections));
    metrics::gauge!(POOL_IDLE).set(f64::from(stats.idle));
    metrics::gauge!(POOL_MAX).set(f64::from(max_size));
    metrics::counter!(POOL_WAITS).absolute(stats.gets_waited);
    metrics::counter!(POOL_TIMEOUTS).absolute(stats.gets_timed_out);
    metrics::counter!(POOL_WAIT_SECONDS).absolute(stats.wait_time.as_secs());
    metrics::counter!(POOL_BROKEN).absolute(stats.closed_broken);
}

/// Counts a request in the in-flight gauge for as long as it lives (dropped requests too).
pub struct InFlight(());

impl InFlight {
    pub fn enter() -> Self {
        metrics::gauge!(HTTP_IN_FLIGHT).increment(1.0);
        Self(())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!(HTTP_IN_FLIGHT).decrement(1.0);
    }
}

/// How often histograms are drained when nobody scrapes (bounds their memory).
pub const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Longest incoming `x-request-id` that is kept as is.
const MAX_REQUEST_ID: usize = 64;

/// The request id to use: the client's `x-request-id` when it is sane (1–64 characters of
/// `[A-Za-z0-9_-]`, so it cannot forge log lines), otherwise a fresh random one.
pub fn request_id(incoming: Option<&str>) -> String {
    match incoming {
        Some(id)
            if !id.is_empty()
                && id.len() <= MAX_REQUEST_ID
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            id.to_owned()
        }
        _ => new_request_id(),
    }
}

fn new_request_id() -> String {
    let mut bytes = [0u8; 12];
    if getrandom::fill(&mut bytes).is_err() {
        // Ids only correlate logs; a clock-derived one is acceptable if the OS RNG fails.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes.copy_from_slice(&nanos.to_le_bytes()[..12]);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::request_id;

    #[test]
    fn keeps_sane_ids_and_replaces_others() {
        assert_eq!(request_id(Some("abc-DEF_123")), "abc-DEF_123");
        for bad in ["", "a b", "x\ny", "é", &"a".repeat(65)] {
            let id = request_id(Some(bad));
            assert_ne!(id, bad);
            assert_eq!(id.len(), 24);
        }
        assert_ne!(request_id(None), request_id(None));
    }
}
