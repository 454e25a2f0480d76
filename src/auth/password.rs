//! Password hashing: argon2id with OWASP parameters, on dedicated low-priority threads behind a
//! semaphore, so hashing never stalls the async workers and memory stays bounded (19 MiB per
//! hash in flight).

use std::sync::{Arc, Mutex, mpsc};
use std::time::Instant;

use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use tokio::sync::{Semaphore, oneshot};

use crate::error::{Error, Result};
use crate::observability as obs;

pub const MIN_LENGTH: usize = 8;
pub const MAX_LENGTH: usize = 128;

/// OWASP: m = 19456 KiB, t = 2, p = 1.
fn argon2() -> Argon2<'static> {
    let params = Params::new(19_456, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Checks a new password against the policy with the default minimum (see
/// [`Policy::check`] for the configured one), before any hashing.
pub fn check_policy(password: &str) -> Result<()> {
    Policy::default().check(password)
}

/// The rules for a new password: a length in Unicode code points (the password is used exactly
/// as given, no trimming, no composition rules) and not one of the most common passwords.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// At least [`MIN_LENGTH`]; configuration validates it.
    pub min_length: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            min_length: MIN_LENGTH,
        }
    }
}

impl Policy {
    pub fn check(&self, password: &str) -> Result<()> {
        check_not_too_long(password)?;
        let min = self.min_length.max(MIN_LENGTH);
        if password.chars().count() < min {
            return Err(Error::PasswordTooShort { min });
        }
        if is_common(password) {
            return Err(Error::PasswordCompromised);
        }
        Ok(())
    }
}

/// The bundled list (`common_passwords.txt`, provenance in its header and the README): the
/// 11,611 most common passwords of 8 or more characters, lower-case, one per line.
const COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");

fn common_set() -> &'static std::collections::HashSet<&'static str> {
    static SET: std::sync::OnceLock<std::collections::HashSet<&'static str>> =
        std::sync::OnceLock::new();
    SET.get_or_init(|| {
        COMMON_PASSWORDS
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    })
}

/// Whether `password` is on the common list, compared case-insensitively.
pub fn is_common(password: &str) -> bool {
    common_set().contains(password.to_lowercase().as_str())
}

/// Refuses an over-long password before it reaches the hasher (sign-in included).
pub fn check_not_too_long(password: &str) -> Result<()> {
    // Bytes bound the code points from above: a huge input is refused without counting it.
    if password.len() > 4 * MAX_LENGTH || password.chars().count() > MAX_LENGTH {
        return Err(Error::PasswordTooLong { max: MAX_LENGTH });
    }
    Ok(())
}

/// Times `iterations` sequential hashes with the production parameters (for `apexkit
/// bench-hash`): one core's cost per sign-in, which bounds sign-in throughput.
pub fn time_hashes(iterations: u32) -> anyhow::Result<Vec<std::time::Duration>> {
    (0..iterations.max(1))
        .map(|_| {
            let started = Instant::now();
            argon2()
                .hash_password(b"apexkit-benchmark-password")
                .map_err(|e| anyhow::anyhow!("argon2 hash failed: {e}"))?;
            Ok(started.elapsed())
        })
        .collect()
}

/// Work for a hashing thread.
type Job = Box<dyn FnOnce() + Send>;

/// Starts `count` dedicated argon2 threads at a lower CPU priority (nice 10 on Linux): when
/// hashes saturate the cores, the scheduler still runs the async workers first, so the session
/// path keeps its latency; with no other work, hashes get all the CPU. Fixed threads also keep
/// the 19 MiB blocks out of the shared blocking pool. The threads end when the last sender is
/// dropped (the last clone of the `Hasher`).
fn spawn_hash_threads(count: usize) -> anyhow::Result<mpsc::Sender<Job>> {
    let (tx, rx) = mpsc::channel::<Job>();
    let rx = Arc::new(Mutex::new(rx));
    for i in 0..count {
        let rx = rx.clone();
        std::thread::Builder::new()
            .name(format!("apexkit-argon2-{i}"))
            .spawn(move || {
                lower_thread_priority();
                loop {
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok(job) = job else { return };
                    // A panicking job must not take the thread (and a slot) with it.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                }
            })?;
    }
    Ok(tx)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn lower_thread_priority() {
    // SAFETY: setpriority only changes the scheduling weight; on Linux, PRIO_PROCESS with
    // who = 0 applies to the calling thread alone.
    let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 10) };
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn lower_thread_priority() {}

#[derive(Clone)]
pub struct Hasher {
    /// Hashes and verifications computed so far (tests prove refusals happen before hashing).
    computed: Arc<std::sync::atomic::AtomicU64>,
    jobs: mpsc::Sender<Job>,
    permits: Arc<Semaphore>,
    /// Verified against when an email is unknown, so that case costs the same time.
    dummy_hash: Arc<str>,
}

impl Hasher {
    pub fn new(concurrency: usize) -> anyhow::Result<Self> {
        let dummy = argon2()
            .hash_password(b"apexkit-dummy-password-for-timing")
            .map_err(|e| anyhow::anyhow!("argon2 self-test failed: {e}"))?
            .to_string();
        let concurrency = concurrency.max(1);
        Ok(Self {
            computed: Arc::default(),
            jobs: spawn_hash_threads(concurrency)?,
            permits: Arc::new(Semaphore::new(concurrency)),
            dummy_hash: dummy.into(),
        })
    }

    pub async fn hash(&self, password: &str) -> Result<String> {
        let password = password.to_owned();
        self.blocking(move || {
            argon2()
                .hash_password(password.as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| Error::internal(anyhow::anyhow!("argon2 hash failed: {e}")))
        })
        .await
    }

    /// Verifies `password` against `hash`; with no hash, verifies against a dummy and fails,
    /// taking the same time as a wrong password.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool> {
        let known = hash.is_some();
        let hash = hash.map_or_else(|| self.dummy_hash.to_string(), str::to_owned);
        let password = password.to_owned();
        let matches = self
            .blocking(move || {
                Ok(argon2()
                    .verify_password(password.as_bytes(), hash.as_str())
                    .is_ok())
            })
            .await?;
        Ok(known && matches)
    }

    /// How many hashes and verifications this hasher has computed.
    pub fn computed(&self) -> Arc<std::sync::atomic::AtomicU64> {
        self.computed.clone()
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let queued = Instant::now();
        let permit = {
            // A guard, so a request dropped while queued (client gone) still leaves the queue.
            let _waiting = QueueGuard::enter();
            self.permits
                .clone()
                .acquire_owned()
                .await
                .map_err(|e| Error::internal(anyhow::anyhow!("hash semaphore closed: {e}")))?
        };
        metrics::histogram!(obs::HASH_WAIT).record(queued.elapsed());
        self.computed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (done, result) = oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                // The permit lives with the computation, not with the request: a request
                // dropped mid-hash must not free the slot while its 19 MiB hash still runs.
                let _permit = permit;
                let started = Instant::now();
                let outcome = work();
                metrics::histogram!(obs::HASH_DURATION).record(started.elapsed());
                let _ = done.send(outcome);
            }))
            .map_err(|_| Error::internal(anyhow::anyhow!("hash threads stopped")))?;
        result
            .await
            .map_err(|e| Error::internal(anyhow::anyhow!("hash task failed: {e}")))?
    }
}

/// Counts a hash waiting for a slot in the queue-depth gauge for as long as it lives.
struct QueueGuard;

impl QueueGuard {
    fn enter() -> Self {
        metrics::gauge!(obs::HASH_QUEUE_DEPTH).increment(1.0);
        Self
    }
}

impl Drop for QueueGuard {
    fn drop(&mut self) {
        metrics::gauge!(obs::HASH_QUEUE_DEPTH).decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_counts_code_points_and_refuses_common_passwords() {
        let p = Policy::default();
        assert!(p.check("correct horse battery staple").is_ok());
        assert!(matches!(
            p.check("short"),
            Err(Error::PasswordTooShort { min: 8 })
        ));
        // 8 code points, 16 bytes: long enough.
        assert!(p.check("ÄÖÜäöüßé").is_ok());
        for common in [
            "password",
            "PASSWORD1",
            "Iloveyou",
            "12345678",
            "qwertyuiop",
        ] {
            assert!(
                matches!(p.check(common), Err(Error::PasswordCompromised)),
                "{common}"
            );
        }
        let strict = Policy { min_length: 12 };
        assert!(matches!(
            strict.check("abcdefgh-1x"),
            Err(Error::PasswordTooShort { min: 12 })
        ));
        assert!(matches!(
            p.check(&"a".repeat(129)),
            Err(Error::PasswordTooLong { max: 128 })
        ));
        assert!(common_set().len() > 11_000);
    }
}
