//! Password hashing: argon2id with OWASP parameters, on dedicated low-priority threads behind a
//! semaphore, so hashing never stalls the async workers and memory stays bounded (one block
//! buffer per hash in flight, reused while hashes keep coming and released when they stop).

use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};

use tokio::sync::{Semaphore, oneshot};

use crate::error::{Error, Result};
use crate::observability as obs;

pub const MIN_LENGTH: usize = 8;
pub const MAX_LENGTH: usize = 128;

/// Hash threads drop their reusable block buffers after this long without work.
const IDLE_RELEASE: Duration = Duration::from_secs(5);

/// The argon2id cost (memory in KiB, passes; parallelism 1). OWASP's password storage cheat
/// sheet lists five equally strong rows: m = 47104/t = 1, 19456/2, 12288/3, 9216/4, 7168/5.
/// The default is the 7 MiB row: as strong as the others by OWASP's account, and the one that
/// keeps a hash pool of one slot per core within a small container's memory (two hashes in
/// flight hold 14 MiB instead of 38 MiB with the 19 MiB row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    pub memory_kib: u32,
    pub iterations: u32,
}

impl Default for Cost {
    fn default() -> Self {
        Self {
            memory_kib: 7_168,
            iterations: 5,
        }
    }
}

impl Cost {
    /// The weakest OWASP row: 7 MiB with 5 passes.
    const MIN_MEMORY_KIB: u32 = 7_168;
    const MIN_MEMORY_TIMES_PASSES: u64 = 7_168 * 5;
    const MAX_MEMORY_KIB: u32 = 1 << 20;
    const MAX_ITERATIONS: u32 = 32;

    /// Refuses a cost weaker than every OWASP row (less than 7 MiB, or less memory × passes
    /// than 7 MiB × 5), or absurdly large.
    pub fn validate(self) -> std::result::Result<Self, String> {
        let product = u64::from(self.memory_kib) * u64::from(self.iterations);
        if self.memory_kib < Self::MIN_MEMORY_KIB
            || product < Self::MIN_MEMORY_TIMES_PASSES
            || self.memory_kib > Self::MAX_MEMORY_KIB
            || self.iterations == 0
            || self.iterations > Self::MAX_ITERATIONS
        {
            return Err(format!(
                "argon2 cost m = {} KiB, t = {} is outside OWASP's recommendations: memory must be \
                 {} to {} KiB, passes 1 to {}, and memory x passes at least {} (e.g. 19456 x 2, \
                 12288 x 3, 7168 x 5)",
                self.memory_kib,
                self.iterations,
                Self::MIN_MEMORY_KIB,
                Self::MAX_MEMORY_KIB,
                Self::MAX_ITERATIONS,
                Self::MIN_MEMORY_TIMES_PASSES
            ));
        }
        Ok(self)
    }

    fn params(self) -> Result<Params> {
        Params::new(self.memory_kib, self.iterations, 1, None)
            .map_err(|e| Error::internal(anyhow::anyhow!("argon2 parameters: {e}")))
    }

    fn argon2(self) -> Result<Argon2<'static>> {
        Ok(Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            self.params()?,
        ))
    }

    /// Whether `hash` (a PHC string) was made with other parameters than this cost, so a
    /// successful sign-in should store a fresh hash.
    pub fn is_outdated(self, hash: &str) -> bool {
        if is_legacy(hash) {
            return true;
        }
        let Ok(parsed) = PasswordHash::new(hash) else {
            return false;
        };
        let Ok(params) = Params::try_from(&parsed) else {
            return false;
        };
        parsed.algorithm.as_str() != "argon2id"
            || parsed.version != Some(Version::V0x13.into())
            || params.m_cost() != self.memory_kib
            || params.t_cost() != self.iterations
            || params.p_cost() != 1
    }
}

/// Better Auth's scrypt parameters (`@better-auth/utils/password`): N = 2^14, r = 16, p = 1,
/// a 64-byte key.
const LEGACY_SCRYPT_LOG_N: u8 = 14;
const LEGACY_SCRYPT_R: u32 = 16;
const LEGACY_SCRYPT_KEY: usize = 64;
/// A well-formed legacy hash verified against when padding an argon2 verification (its value
/// matters not: the work is the same for any).
const DUMMY_LEGACY_HASH: &str = concat!(
    "00000000000000000000000000000000:",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000000"
);

/// Whether `hash` is a Better Auth password hash, `hex(salt):hex(key)` (16-byte salt, 64-byte
/// key), as an adopted database holds them until each account's next sign-in.
pub fn is_legacy(hash: &str) -> bool {
    hash.split_once(':').is_some_and(|(salt, key)| {
        salt.len() == 32
            && key.len() == 2 * LEGACY_SCRYPT_KEY
            && salt
                .bytes()
                .chain(key.bytes())
                .all(|b| b.is_ascii_hexdigit())
    })
}

/// Verifies `password` against a Better Auth hash: scrypt of the NFKC-normalised password with
/// the salt's hex text (not its bytes) as salt, as Better Auth computes it; compared in constant
/// time. Always does the full work for a well-formed hash.
fn verify_legacy(password: &str, hash: &str) -> bool {
    use unicode_normalization::UnicodeNormalization as _;
    let Some((salt, key)) = hash.split_once(':') else {
        return false;
    };
    let Ok(params) =
        scrypt::Params::new(LEGACY_SCRYPT_LOG_N, LEGACY_SCRYPT_R, 1, LEGACY_SCRYPT_KEY)
    else {
        return false;
    };
    let normalized: String = password.nfkc().collect();
    let mut out = [0u8; LEGACY_SCRYPT_KEY];
    if scrypt::scrypt(normalized.as_bytes(), salt.as_bytes(), &params, &mut out).is_err() {
        return false;
    }
    let expected = key.as_bytes();
    let computed: Vec<u8> = out
        .iter()
        .flat_map(|b| {
            let hex = b"0123456789abcdef";
            [hex[usize::from(b >> 4)], hex[usize::from(b & 0x0f)]]
        })
        .collect();
    computed.len() == expected.len()
        && computed
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b.to_ascii_lowercase()))
            == 0
}

/// A hash thread's reusable argon2 memory: filling the blocks of a buffer that is already
/// mapped costs no page faults and no zeroing, a sizeable share of a fresh allocation's hash.
#[derive(Default)]
struct Scratch {
    blocks: Vec<Block>,
}

impl Scratch {
    /// Hashes `password` with a fresh salt, as a PHC string.
    fn hash(&mut self, cost: Cost, password: &[u8]) -> Result<String> {
        let salt = argon2::password_hash::phc::Salt::generate();
        let argon2 = cost.argon2()?;
        let params = argon2.params();
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        self.compute(&argon2, params, password, &salt, &mut out)?;
        let output = argon2::password_hash::phc::Output::new(&out)
            .map_err(|e| Error::internal(anyhow::anyhow!("argon2 output: {e}")))?;
        let phc = PasswordHash {
            algorithm: argon2::ARGON2ID_IDENT,
            version: Some(Version::V0x13.into()),
            params: params
                .try_into()
                .map_err(|e| Error::internal(anyhow::anyhow!("argon2 parameters: {e}")))?,
            salt: Some(salt),
            hash: Some(output),
        };
        Ok(phc.to_string())
    }

    /// Whether `password` matches the PHC string `hash` (compared in constant time), with the
    /// parameters the hash records.
    fn verify(&mut self, password: &[u8], hash: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(hash) else {
            return false;
        };
        let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
            return false;
        };
        let (Ok(algorithm), Ok(params)) = (
            Algorithm::try_from(parsed.algorithm.as_str()),
            Params::try_from(&parsed),
        ) else {
            return false;
        };
        let version = match parsed.version.map(Version::try_from).transpose() {
            Ok(v) => v.unwrap_or_default(),
            Err(_) => return false,
        };
        let mut out = [0u8; 64];
        let Some(out) = out.get_mut(..expected.len()) else {
            return false;
        };
        let argon2 = Argon2::new(algorithm, version, params.clone());
        if self.compute(&argon2, &params, password, salt, out).is_err() {
            return false;
        }
        argon2::password_hash::phc::Output::new(out).is_ok_and(|computed| computed == *expected)
    }

    fn compute(
        &mut self,
        argon2: &Argon2<'_>,
        params: &Params,
        password: &[u8],
        salt: &[u8],
        out: &mut [u8],
    ) -> Result<()> {
        let count = params.block_count();
        if self.blocks.len() < count {
            self.blocks = vec![Block::default(); count];
        }
        let blocks = self.blocks.get_mut(..count).unwrap_or_default();
        argon2
            .hash_password_into_with_memory(password, salt, out, blocks)
            .map_err(|e| Error::internal(anyhow::anyhow!("argon2 failed: {e}")))
    }

    fn release(&mut self) {
        self.blocks = Vec::new();
    }
}

/// Checks a new password against the policy with the default minimum and no context (see
/// [`Policy::check_for`] for what a password-setting path uses), before any hashing.
pub fn check_policy(password: &str) -> Result<()> {
    Policy::default().check(password)
}

/// The rules for a new password, after NIST SP 800-63B (5.1.1.2): a length in Unicode code
/// points (the password is used exactly as given: no trimming, no composition rules) and not
/// guessable — not a common or breached password, not repetitive or sequential characters, not
/// derived from context words (the service's name, the user's email and name). The guessability
/// checks compare a trimmed, case-folded copy only.
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

/// The service's own name: a context word for every password.
pub const SERVICE_WORD: &str = "apexkit";

impl Policy {
    /// The checks without user context (the service's name still counts).
    pub fn check(&self, password: &str) -> Result<()> {
        self.check_for(password, &Context::default())
    }

    /// The checks for a password of the user described by `context`.
    pub fn check_for(&self, password: &str, context: &Context<'_>) -> Result<()> {
        check_not_too_long(password)?;
        let min = self.min_length.max(MIN_LENGTH);
        if password.chars().count() < min {
            return Err(Error::PasswordTooShort { min });
        }
        if is_guessable(password, context) {
            return Err(Error::PasswordCompromised);
        }
        Ok(())
    }
}

/// Who a new password is for: their email and name give context words (NIST's "username and
/// derivatives").
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    pub email: Option<&'a str>,
    pub name: Option<&'a str>,
}

impl Context<'_> {
    /// The context words, lower-case, longest first: the service's name, the email's local part
    /// and its pieces, the domain's first label, the name and its pieces (pieces of 3+ letters).
    fn words(&self) -> Vec<String> {
        let mut words = vec![SERVICE_WORD.to_owned()];
        let mut add = |text: &str, whole_min: usize| {
            let text = text.trim().to_lowercase();
            let squeezed: String = text.chars().filter(|c| c.is_alphanumeric()).collect();
            if squeezed.chars().count() >= whole_min {
                words.push(squeezed);
            }
            for piece in text.split(|c: char| !c.is_alphanumeric()) {
                if piece.chars().count() >= 3 {
                    words.push(piece.to_owned());
                }
            }
        };
        if let Some(email) = self.email {
            let (local, domain) = email.rsplit_once('@').unwrap_or((email, ""));
            add(local, 3);
            if let Some(label) = domain.split('.').next().filter(|l| l.chars().count() >= 4) {
                add(label, 4);
            }
        }
        if let Some(name) = self.name {
            add(name, 3);
        }
        words.sort_by_key(|w| std::cmp::Reverse(w.chars().count()));
        words.dedup();
        words
    }
}

/// Whether `password` is guessable (see [`Policy`]); compares a trimmed, case-folded copy.
pub fn is_guessable(password: &str, context: &Context<'_>) -> bool {
    let folded = password.trim().to_lowercase();
    if is_weak(&folded) {
        return true;
    }
    // Derived from context words: what is left without them is next to nothing, or weak.
    let mut rest = folded.clone();
    let mut derived = false;
    for word in context.words() {
        if rest.contains(word.as_str()) {
            rest = rest.replace(word.as_str(), " ");
            derived = true;
        }
    }
    derived && {
        let stem = stem(&rest).0;
        stem.chars().filter(|c| c.is_alphanumeric()).count() < 4 || is_weak(stem)
    }
}

/// Common, breached-list, repetitive or sequential (on a folded password, or what remains of
/// it around context words).
fn is_weak(folded: &str) -> bool {
    if is_common(folded) || is_common(&unleet(folded)) || is_monotonous(folded) {
        return true;
    }
    // A common word dressed with a few leading/trailing digits, symbols or spaces.
    let (stem, dressing) = stem(folded);
    if stem.len() == folded.len() || dressing > 6 {
        return false;
    }
    let plain = unleet(stem);
    stem.is_empty()
        || is_common(stem)
        || is_common(&plain)
        || is_stem(stem)
        || is_stem(&plain)
        || is_monotonous(stem)
}

/// `text` without leading and trailing characters other than letters, and how many went.
fn stem(text: &str) -> (&str, usize) {
    let stem = text.trim_matches(|c: char| !c.is_alphabetic());
    let dressing = text.chars().count() - stem.chars().count();
    (stem, dressing)
}

/// Common substitutions undone (`p@ssw0rd` → `password`).
fn unleet(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '@' | '4' => 'a',
            '0' => 'o',
            '1' | '!' => 'i',
            '3' => 'e',
            '$' | '5' => 's',
            '7' => 't',
            c => c,
        })
        .collect()
}

/// Repetitive or sequential: at most two distinct characters, a unit of up to four characters
/// repeated (`abcabcab`), one step throughout (`abcdefgh`, `86420`, `acegik`), or a run along a
/// keyboard row (`qwertyui`, `asdfghjkl`).
fn is_monotonous(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() < 3 {
        return chars.is_empty();
    }
    let mut distinct = chars.clone();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() <= 2 {
        return true;
    }
    let repeated =
        (1..=4).any(|p| chars.len() >= 2 * p && (p..chars.len()).all(|i| chars[i] == chars[i - p]));
    let step = chars[1] as i64 - chars[0] as i64;
    let stepped = (1..=3).contains(&step.abs())
        && chars.windows(2).all(|w| w[1] as i64 - w[0] as i64 == step);
    const ROWS: [&str; 6] = [
        "`1234567890-=",
        "qwertyuiop[]\\",
        "asdfghjkl;'",
        "zxcvbnm,./",
        "~!@#$%^&*()_+",
        "qazwsxedcrfvtgbyhnujmikolp",
    ];
    let keyboard = chars.len() >= 4
        && ROWS.iter().any(|row| {
            let reversed: String = row.chars().rev().collect();
            row.contains(text) || reversed.contains(text)
        });
    repeated || stepped || keyboard
}

/// The bundled list (`common_passwords.txt`, provenance in its header and the README): the
/// 11,611 most common passwords of 8 or more characters, lower-case, one per line.
const COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");
/// The same list's entries of 4 to 7 letters, for stems (`monkey` in `monkey123!`).
const COMMON_STEMS: &str = include_str!("common_password_stems.txt");

fn word_set(
    cell: &'static std::sync::OnceLock<std::collections::HashSet<&'static str>>,
    text: &'static str,
) -> &'static std::collections::HashSet<&'static str> {
    cell.get_or_init(|| {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    })
}

fn common_set() -> &'static std::collections::HashSet<&'static str> {
    static SET: std::sync::OnceLock<std::collections::HashSet<&'static str>> =
        std::sync::OnceLock::new();
    word_set(&SET, COMMON_PASSWORDS)
}

fn stem_set() -> &'static std::collections::HashSet<&'static str> {
    static SET: std::sync::OnceLock<std::collections::HashSet<&'static str>> =
        std::sync::OnceLock::new();
    word_set(&SET, COMMON_STEMS)
}

/// Whether `password` is on the common list, compared trimmed and case-insensitively.
pub fn is_common(password: &str) -> bool {
    common_set().contains(password.trim().to_lowercase().as_str())
}

fn is_stem(text: &str) -> bool {
    stem_set().contains(text)
}

/// Refuses an over-long password before it reaches the hasher (sign-in included).
pub fn check_not_too_long(password: &str) -> Result<()> {
    // Bytes bound the code points from above: a huge input is refused without counting it.
    if password.len() > 4 * MAX_LENGTH || password.chars().count() > MAX_LENGTH {
        return Err(Error::PasswordTooLong { max: MAX_LENGTH });
    }
    Ok(())
}

/// Times `iterations` sequential hashes at `cost` the way a hash thread computes them (for
/// `apexkit bench-hash`): one core's cost per sign-in, which bounds sign-in throughput.
pub fn time_hashes(cost: Cost, iterations: u32) -> anyhow::Result<Vec<Duration>> {
    let mut scratch = Scratch::default();
    (0..iterations.max(1))
        .map(|_| {
            let started = Instant::now();
            scratch
                .hash(cost, b"apexkit-benchmark-password")
                .map_err(|e| anyhow::anyhow!("argon2 hash failed: {e}"))?;
            Ok(started.elapsed())
        })
        .collect()
}

/// Hashes per second when `threads` threads hash at once, each `iterations` times (for `apexkit
/// bench-hash --threads`): what the cores really deliver when every one of them hashes.
pub fn parallel_hash_rate(cost: Cost, iterations: u32, threads: usize) -> anyhow::Result<f64> {
    let started = Instant::now();
    let workers: Vec<_> = (0..threads.max(1))
        .map(|_| std::thread::spawn(move || time_hashes(cost, iterations)))
        .collect();
    let mut hashes = 0usize;
    for worker in workers {
        let times = worker
            .join()
            .map_err(|_| anyhow::anyhow!("a hashing thread panicked"))??;
        hashes += times.len();
    }
    Ok(hashes as f64 / started.elapsed().as_secs_f64())
}

/// Work for a hashing thread, given a block buffer.
type Job = Box<dyn FnOnce(&mut Scratch) + Send>;

/// Starts `count` dedicated argon2 threads at a lower CPU priority (nice 10 on Linux): when
/// hashes saturate the cores, the scheduler still runs the async workers first, so the session
/// path keeps its latency; with no other work, hashes get all the CPU. Fixed threads also keep
/// the argon2 blocks out of the shared blocking pool. Block buffers are shared among the threads
/// and reused; after [`IDLE_RELEASE`] without work they are freed and returned to the OS. The
/// threads end when the last sender is dropped (the last clone of the `Hasher`).
fn spawn_hash_threads(count: usize) -> anyhow::Result<mpsc::Sender<Job>> {
    let (tx, rx) = mpsc::channel::<Job>();
    let rx = Arc::new(Mutex::new(rx));
    let buffers: Arc<Mutex<Vec<Scratch>>> = Arc::default();
    for i in 0..count {
        let rx = rx.clone();
        let buffers = buffers.clone();
        std::thread::Builder::new()
            .name(format!("apexkit-argon2-{i}"))
            .spawn(move || {
                lower_thread_priority();
                loop {
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv_timeout(IDLE_RELEASE),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => {
                            let mut scratch = take_buffer(&buffers);
                            // A panicking job must not take the thread (and a slot) with it.
                            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                job(&mut scratch)
                            }));
                            if let Ok(mut idle) = buffers.lock() {
                                idle.push(scratch);
                            }
                        }
                        Err(mpsc::RecvTimeoutError::Timeout) => release_buffers(&buffers),
                        Err(mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                }
            })?;
    }
    Ok(tx)
}

fn take_buffer(buffers: &Mutex<Vec<Scratch>>) -> Scratch {
    buffers
        .lock()
        .ok()
        .and_then(|mut idle| idle.pop())
        .unwrap_or_default()
}

/// Frees the idle block buffers; they are mmapped (see `main.rs`), so the memory goes straight
/// back to the OS.
fn release_buffers(buffers: &Mutex<Vec<Scratch>>) {
    let released = match buffers.lock() {
        Ok(mut idle) if !idle.is_empty() => std::mem::take(&mut *idle),
        _ => return,
    };
    for mut scratch in released {
        scratch.release();
    }
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
    cost: Cost,
    /// Verified against when an email is unknown, so that case costs the same time.
    dummy_hash: Arc<str>,
    /// While legacy (Better Auth scrypt) hashes may remain: every verification computes both
    /// an argon2 and a scrypt hash (the one that is not the account's against a dummy), so
    /// unknown emails, legacy and argon2 accounts all take the same time.
    legacy_padding: bool,
}

impl Hasher {
    pub fn new(concurrency: usize, cost: Cost) -> anyhow::Result<Self> {
        let cost = cost.validate().map_err(|e| anyhow::anyhow!(e))?;
        let dummy = Scratch::default()
            .hash(cost, b"apexkit-dummy-password-for-timing")
            .map_err(|e| anyhow::anyhow!("argon2 self-test failed: {e}"))?;
        let concurrency = concurrency.max(1);
        Ok(Self {
            computed: Arc::default(),
            jobs: spawn_hash_threads(concurrency)?,
            permits: Arc::new(Semaphore::new(concurrency)),
            cost,
            dummy_hash: dummy.into(),
            legacy_padding: false,
        })
    }

    /// Turns on the legacy padding (see the field): on an adopted database.
    pub fn with_legacy_padding(mut self, on: bool) -> Self {
        self.legacy_padding = on;
        self
    }

    /// The configured cost.
    pub fn cost(&self) -> Cost {
        self.cost
    }

    pub async fn hash(&self, password: &str) -> Result<String> {
        let password = password.to_owned();
        let cost = self.cost;
        self.blocking(move |scratch| scratch.hash(cost, password.as_bytes()))
            .await
    }

    /// Verifies `password` against `hash`; with no hash, verifies against a dummy and fails,
    /// taking the same time as a wrong password.
    /// A Better Auth hash (see [`is_legacy`]) is verified with scrypt, on the same threads.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool> {
        let known = hash.is_some();
        let hash = hash.map_or_else(|| self.dummy_hash.to_string(), str::to_owned);
        let password = password.to_owned();
        let pad = self.legacy_padding;
        let dummy = self.dummy_hash.clone();
        let matches = self
            .blocking(move |scratch| {
                Ok(if is_legacy(&hash) {
                    let ok = verify_legacy(&password, &hash);
                    if pad {
                        scratch.verify(password.as_bytes(), &dummy);
                    }
                    ok
                } else {
                    let ok = scratch.verify(password.as_bytes(), &hash);
                    if pad {
                        verify_legacy(&password, DUMMY_LEGACY_HASH);
                    }
                    ok
                })
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
        work: impl FnOnce(&mut Scratch) -> Result<T> + Send + 'static,
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
            .send(Box::new(move |scratch: &mut Scratch| {
                // The permit lives with the computation, not with the request: a request
                // dropped mid-hash must not free the slot while its hash still runs.
                let _permit = permit;
                let started = Instant::now();
                let outcome = work(scratch);
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
    use argon2::PasswordHasher as _;

    const OTHER: Cost = Cost {
        memory_kib: 9_216,
        iterations: 4,
    };

    #[test]
    fn reused_buffers_hash_and_verify_like_the_reference() {
        let mut scratch = Scratch::default();
        let ours = scratch.hash(OTHER, b"correct horse").unwrap();
        assert!(ours.starts_with("$argon2id$v=19$m=9216,t=4,p=1$"), "{ours}");
        assert!(scratch.verify(b"correct horse", &ours));
        assert!(!scratch.verify(b"correct horsf", &ours));
        // The reference implementation accepts our hash, and we accept its hashes, including
        // ones at another (larger) cost than the buffer was sized for.
        use argon2::PasswordVerifier as _;
        assert!(
            OTHER
                .argon2()
                .unwrap()
                .verify_password(b"correct horse", ours.as_str())
                .is_ok()
        );
        for cost in [Cost::default(), OTHER] {
            let reference = cost
                .argon2()
                .unwrap()
                .hash_password(b"battery staple")
                .unwrap()
                .to_string();
            assert!(scratch.verify(b"battery staple", &reference));
            assert!(!scratch.verify(b"battery stapler", &reference));
        }
        assert!(!scratch.verify(b"x", "not a phc string"));
        assert!(!scratch.verify(b"x", "$argon2id$v=19$m=7168,t=5,p=1$c2FsdHNhbHQ"));
    }

    #[test]
    fn better_auth_hashes_verify() {
        // Made by better-auth 1.7.25 (`hashPassword("Better-Auth pw 1 ünïcode")`, tests/better-auth).
        let hash = "ae74bc752abc32b4a63012137d391082:ca56df8975f02ec5479f5bc0f4a915096c4e7d1c1a21b58\
                    53bf95ef1a6bab2dcca3a4102c86d94a877e062154cc77083891ccd54f4612062da17b924b9d2e437";
        assert!(is_legacy(hash));
        assert!(verify_legacy("Better-Auth pw 1 ünïcode", hash));
        assert!(!verify_legacy("Better-Auth pw 1 unicode", hash));
        // NFKC: the decomposed form of the same text verifies too.
        assert!(verify_legacy(
            "Better-Auth pw 1 u\u{308}ni\u{308}code",
            hash
        ));
        assert!(Cost::default().is_outdated(hash));
        assert!(!is_legacy("$argon2id$v=19$m=7168,t=5,p=1$c2FsdA$aGFzaA"));
        assert!(!is_legacy("zz74bc752abc32b4a63012137d391082:00"));
        assert!(is_legacy(DUMMY_LEGACY_HASH));
    }

    #[test]
    fn costs_follow_owasp_and_stale_hashes_are_spotted() {
        for (m, t) in [
            (47_104, 1),
            (19_456, 2),
            (12_288, 3),
            (9_216, 4),
            (7_168, 5),
        ] {
            let cost = Cost {
                memory_kib: m,
                iterations: t,
            };
            assert!(cost.validate().is_ok(), "{m} x {t}");
        }
        for (m, t) in [(19_456, 1), (4_096, 10), (7_168, 4), (12_288, 0)] {
            let cost = Cost {
                memory_kib: m,
                iterations: t,
            };
            assert!(cost.validate().is_err(), "{m} x {t}");
        }
        let mut scratch = Scratch::default();
        let other = scratch.hash(OTHER, b"pw").unwrap();
        assert!(!OTHER.is_outdated(&other));
        assert!(Cost::default().is_outdated(&other));
        assert!(!Cost::default().is_outdated("garbage"));
    }

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

    #[test]
    fn guessable_passwords_of_the_issue_are_refused() {
        let p = Policy::default();
        for weak in [
            "apexkit123",
            "aaaaaaaa",
            " password123",
            "password1!",
            "ApexKit2024!",
            "Password123 ",
            "abcdefgh",
            "87654321",
            "abcabcabc",
            "12121212",
            "qwertyui",
            "asdfghjkl;",
            "monkey123!",
            "p@ssw0rd99",
        ] {
            assert!(
                matches!(p.check(weak), Err(Error::PasswordCompromised)),
                "{weak:?}"
            );
        }
        for fine in [
            "correct horse battery staple",
            "Tr0ub4dor&3 is not it",
            "my apexkit account, well guarded",
            "ÄÖÜäöüßé",
            "zq8#Lm2!vR",
            "glacier-tandem-orbit",
        ] {
            assert!(p.check(fine).is_ok(), "{fine:?}");
        }
    }

    #[test]
    fn context_words_come_from_the_email_and_the_name() {
        let p = Policy::default();
        let ada = Context {
            email: Some("ada.lovelace@analytical.org"),
            name: Some("Ada Lovelace"),
        };
        for weak in [
            "lovelace1815",
            "Ada.Lovelace!",
            "adalovelace",
            "analytical2024",
            "LOVELACE lovelace",
            "ada@analytical.org",
        ] {
            assert!(
                matches!(p.check_for(weak, &ada), Err(Error::PasswordCompromised)),
                "{weak:?}"
            );
            // Without the context these are fine (or at least not refused for it).
            if weak == "lovelace1815" {
                assert!(p.check(weak).is_ok());
            }
        }
        // A context word inside a real passphrase is fine.
        assert!(
            p.check_for("lovelace wrote the first program", &ada)
                .is_ok()
        );
        assert!(p.check_for("correct horse battery staple", &ada).is_ok());
    }
}
