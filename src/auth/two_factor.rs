//! Two-factor authentication: TOTP enrolment (RFC 6238, SHA-1, 6 digits, 30 s, ±1 step, each
//! step accepted once), backup codes, the second step of sign-in that every sign-in method
//! stops at ([`TwoFactor::challenge`], finished by a TOTP, a backup code or a mailed code),
//! trusted browsers, and turning it off. The TOTP secret is sealed with `APEXKIT_SECRET`; backup
//! and mailed codes are stored only as keyed hashes (HMAC-SHA256 under a key derived from the
//! secret, so a leaked table cannot be brute-forced offline); tokens only as SHA-256.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::audit::{AuditEvent, AuditKind};
use super::context::service;
use super::seal::{Sealer, random};
use super::{Admin, ClientInfo, Session, SessionToken, SignedIn, User, Viewer, now, token};
use crate::clock::after as add;
use crate::db::two_factor::NewBackupCode;
use crate::db::two_factor_challenges::{Challenge, NewChallenge};
use crate::db::{trusted_devices, two_factor, two_factor_challenges, users};
use crate::error::{Error, Result};
use crate::mail::compose;
use crate::secret::Secret;

/// A `twoFactorToken` lives this long.
pub const CHALLENGE_LIFETIME: Duration = Duration::from_secs(5 * 60);
/// Wrong codes a `twoFactorToken` survives (TOTP, backup and mailed codes together).
pub const MAX_CHALLENGE_FAILURES: i32 = 5;
/// A trusted browser skips the second factor this long.
pub const TRUSTED_DEVICE_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// The mailed second-factor code lives this long.
pub const OTP_LIFETIME: Duration = Duration::from_secs(5 * 60);
pub const BACKUP_CODE_COUNT: usize = 10;
const TOTP_STEP: u64 = 30;
const SECRET_BYTES: usize = 20;
/// Lower-case letters and digits without look-alikes (no o, 1, l, i): 32 symbols, 5 bits each,
/// so a code of 10 carries 50 bits.
const BACKUP_ALPHABET: &[u8; 32] = b"abcdefghjkmnpqrstuvwxyz023456789";
const MAX_CODE_CHARS: usize = 64;

/// Settings and keys of the two-factor and passwordless flows, built at boot.
pub struct TwoFactorSettings {
    /// The `issuer` of the `otpauth://` URI.
    pub issuer: String,
    /// Seals TOTP secrets (its own HKDF purpose).
    sealer: Sealer,
    /// Keys the hashes of backup and mailed codes.
    code_key: [u8; 32],
    /// `APEXKIT_TWO_FACTOR_EMAIL`: a mailed code may be the second factor.
    pub email_second_factor: bool,
    /// `APEXKIT_MAGIC_LINK_SIGN_UP`: magic links and sign-in codes create accounts.
    pub passwordless_sign_up: bool,
}

impl TwoFactorSettings {
    pub fn new(
        secret: &Secret,
        issuer: String,
        email_second_factor: bool,
        passwordless_sign_up: bool,
    ) -> Self {
        let code_key = {
            let hk = hkdf::Hkdf::<Sha256>::new(Some(b"apexkit-codes"), secret.expose().as_bytes());
            let mut okm = [0u8; 32];
            // 32 bytes is far below HKDF-SHA256's limit: expand cannot fail here.
            let _ = hk.expand(b"backup-and-mailed-codes-v1", &mut okm);
            okm
        };
        Self {
            issuer,
            sealer: Sealer::derive(secret, b"apexkit-totp", b"totp-secret-v1"),
            code_key,
            email_second_factor,
            passwordless_sign_up,
        }
    }

    /// The keyed hash of a code in its context (`purpose` and what it is bound to).
    pub(super) fn code_hash(&self, purpose: &str, bound_to: &str, code: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.code_key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        for part in [purpose, "\0", bound_to, "\0", code] {
            mac.update(part.as_bytes());
        }
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }
}

/// What `enableTwoFactor` hands out, once.
pub struct TwoFactorSetup {
    pub totp_uri: String,
    pub backup_codes: Vec<String>,
    pub qr_code_svg: String,
}

/// A sign-in stopped at the second step.
#[derive(Debug)]
pub struct SecondFactorRequired {
    /// The `twoFactorToken` (shown once; stored as its SHA-256).
    pub token: SessionToken,
    pub user: User,
}

/// The end of a sign-in: a session, or the second step first.
#[derive(Debug)]
pub enum SignInOutcome {
    SignedIn(SignedIn),
    SecondFactor(SecondFactorRequired),
}

/// A second step finished: the new session and, with `trustDevice`, the browser's new
/// trusted-device token.
pub struct Completed {
    pub signed: SignedIn,
    /// As the sign-in asked (the session cookie's lifetime follows it).
    pub remember_me: bool,
    pub trusted_device: Option<SessionToken>,
}

/// What `verifyTotp` did.
pub enum TotpVerified {
    /// Enrolment (or a check) by a signed-in user: the session stays.
    Enrolled {
        user: User,
        session: Session,
    },
    SignedIn(Completed),
}

/// The second-factor methods, for the audit trail.
#[derive(Clone, Copy)]
enum Method {
    Totp,
    BackupCode,
    EmailOtp,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::BackupCode => "backup_code",
            Self::EmailOtp => "email_otp",
        }
    }
}

service! {
    /// Two-factor authentication: enrolment, the second step of sign-in, backup codes,
    /// trusted browsers, turning it off.
    TwoFactor
}

/// The failed-attempt delay of the second factor is the account's own, keyed by user id (not
/// by email, so the right password, which clears the email's count, buys no new guesses).
fn throttle_key(user_id: &str) -> String {
    format!("two-factor:{user_id}")
}

fn parse_token(raw: &str) -> Result<SessionToken> {
    SessionToken::parse(raw.trim()).ok_or(Error::InvalidToken)
}

/// A code as typed: spaces and dashes dropped, lower-cased, bounded.
fn normalize_code(code: &str) -> Option<String> {
    if code.chars().count() > MAX_CODE_CHARS {
        return None;
    }
    let code: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    (!code.is_empty()).then_some(code)
}

/// A uniformly random 6-digit code.
pub(super) fn six_digits() -> Result<String> {
    loop {
        let n = u32::from_le_bytes(random::<4>()?);
        // Rejection sampling: 4_294_000_000 is the largest multiple of 10^6 below 2^32.
        if n < 4_294_000_000 {
            return Ok(format!("{:06}", n % 1_000_000));
        }
    }
}

fn backup_code() -> Result<String> {
    let bytes = random::<10>()?;
    let chars: String = bytes
        .iter()
        .map(|b| char::from(BACKUP_ALPHABET[usize::from(b % 32)]))
        .collect();
    Ok(format!("{}-{}", &chars[..5], &chars[5..]))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn totp(secret: Vec<u8>) -> Result<totp_rs::Totp> {
    totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(TOTP_STEP)
        .with_secret(secret)
        .build()
        .map_err(|e| Error::internal(anyhow::anyhow!("TOTP setup failed: {e:?}")))
}

/// RFC 3986 percent-encoding of everything but unreserved characters (and `@`).
fn encode_uri_part(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'@') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn qr_svg(uri: &str) -> Result<String> {
    let code = qrcode::QrCode::new(uri.as_bytes())
        .map_err(|e| Error::internal(anyhow::anyhow!("QR code: {e}")))?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build())
}

impl TwoFactor<'_> {
    pub(super) fn settings(&self) -> Result<&TwoFactorSettings> {
        self.ctx
            .two_factor
            .as_deref()
            .ok_or_else(|| Error::internal(anyhow::anyhow!("two-factor not configured")))
    }

    /// Whether the user has two-factor on.
    pub async fn is_enabled(&self, user_id: &str) -> Result<bool> {
        Ok(two_factor::is_enabled(&mut self.conn().await?, user_id).await?)
    }

    /// The user's unused backup codes.
    pub async fn backup_codes_remaining(&self, user_id: &str) -> Result<i64> {
        Ok(two_factor::count_backup_codes(&mut self.conn().await?, user_id).await?)
    }

    /// Whether this sign-in of `user` must stop at the second step: two-factor on, and the
    /// browser not trusted by this user.
    pub(super) async fn required(&self, user: &User, client: &ClientInfo) -> Result<bool> {
        let mut conn = self.conn().await?;
        if !two_factor::is_enabled(&mut conn, &user.id).await? {
            return Ok(false);
        }
        let Some(device) = &client.trusted_device else {
            return Ok(true);
        };
        Ok(!trusted_devices::is_trusted(&mut conn, &device.hash(), &user.id, now()).await?)
    }

    /// Starts the second step: a fresh `twoFactorToken` (single use, 5 minutes).
    pub(super) async fn challenge(
        &self,
        user: User,
        remember_me: bool,
    ) -> Result<SecondFactorRequired> {
        let token = SessionToken::generate()?;
        let now = now();
        two_factor_challenges::insert(
            &mut self.conn().await?,
            &NewChallenge {
                token_hash: &token.hash(),
                user_id: &user.id,
                remember_me,
                failures: 0,
                expires_at: add(now, CHALLENGE_LIFETIME),
                created_at: now,
            },
        )
        .await?;
        Ok(SecondFactorRequired { token, user })
    }

    /// `enableTwoFactor`: after the password, a new TOTP secret and 10 backup codes. Two-factor
    /// is on only after the first correct `verifyTotp`; enabling again before that starts over.
    pub async fn enable(
        &self,
        viewer: &Viewer,
        password: &str,
        client: &ClientInfo,
    ) -> Result<TwoFactorSetup> {
        let settings = self.settings()?;
        self.account()
            .check_current_password(viewer, password, "enableTwoFactor")
            .await
            .inspect_err(|_| {
                tracing::debug!("enableTwoFactor: password refused");
            })?;
        let secret = random::<SECRET_BYTES>()?;
        let sealed = settings.sealer.seal(&secret, viewer.user.id.as_bytes())?;
        let (codes, rows) = self.new_backup_codes(&viewer.user.id)?;
        let code_rows = backup_code_rows(&viewer.user.id, &rows);
        let started = two_factor::enrol(
            &mut self.conn().await?,
            &viewer.user.id,
            &sealed,
            &code_rows,
            now(),
        )
        .await?;
        if !started {
            return Err(Error::BadUserInput {
                field: "password",
                message: "two-factor authentication is already enabled; disable it first",
            });
        }
        let b32 = totp_rs::Secret::from(secret.to_vec()).to_base32();
        let issuer = encode_uri_part(&settings.issuer);
        let totp_uri = format!(
            "otpauth://totp/{issuer}:{}?secret={b32}&issuer={issuer}&algorithm=SHA1&digits=6&period=30",
            encode_uri_part(&viewer.user.email)
        );
        let qr_code_svg = qr_svg(&totp_uri)?;
        self.record(
            AuditEvent::by_self(AuditKind::TwoFactorEnable, &viewer.user.id)
                .detail(serde_json::json!({ "stage": "started" })),
            client,
        )
        .await;
        Ok(TwoFactorSetup {
            totp_uri,
            backup_codes: codes,
            qr_code_svg,
        })
    }

    /// Ten fresh codes and (id, keyed hash) rows for them.
    #[expect(clippy::type_complexity, reason = "a local pair of lists")]
    fn new_backup_codes(&self, user_id: &str) -> Result<(Vec<String>, Vec<(String, String)>)> {
        let settings = self.settings()?;
        let mut codes = Vec::with_capacity(BACKUP_CODE_COUNT);
        let mut rows = Vec::with_capacity(BACKUP_CODE_COUNT);
        while codes.len() < BACKUP_CODE_COUNT {
            let code = backup_code()?;
            if codes.contains(&code) {
                continue;
            }
            let hash = settings.code_hash("backup", user_id, &code.replace('-', ""));
            rows.push((token::new_id()?, hash));
            codes.push(code);
        }
        Ok((codes, rows))
    }

    /// Checks a TOTP code of the user and spends its step. `enable` turns two-factor on
    /// (enrolment). False: wrong, or a step already used (replay).
    async fn check_totp(&self, user_id: &str, code: &str, enable: bool) -> Result<bool> {
        let settings = self.settings()?;
        let Some(code) = normalize_code(code).filter(|c| c.len() == 6) else {
            return Ok(false);
        };
        let Some(row) = two_factor::find(&mut self.conn().await?, user_id).await? else {
            return Ok(false);
        };
        if !enable && !row.enabled {
            return Ok(false);
        }
        let secret = settings
            .sealer
            .open(&row.secret, user_id.as_bytes())
            .ok_or_else(|| Error::internal(anyhow::anyhow!("TOTP secret does not open")))?;
        let Some(step) = totp(secret)?.check(&code, unix_now()) else {
            return Ok(false);
        };
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        Ok(two_factor::accept_step(&mut self.conn().await?, user_id, step, enable, now()).await?)
    }

    /// Spends one of the user's backup codes, if `code` is one.
    async fn spend_backup_code(&self, user_id: &str, code: &str) -> Result<bool> {
        let Some(code) = normalize_code(code) else {
            return Ok(false);
        };
        let hash = self.settings()?.code_hash("backup", user_id, &code);
        Ok(two_factor::spend_backup_code(&mut self.conn().await?, user_id, &hash).await?)
    }

    /// Counts a second-factor attempt of the user toward their failed-attempt delay (before
    /// the code is checked); refused with `RATE_LIMITED` while the delay runs.
    async fn take_attempt(&self, user_id: &str, field: &str) -> Result<()> {
        self.sign_in_throttle
            .begin(&throttle_key(user_id))
            .await
            .inspect_err(|e| {
                if matches!(e, Error::RateLimited { .. }) {
                    crate::observability::record_rate_limited(field);
                }
            })
    }

    /// The live challenge a `twoFactorToken` stands for, its turn taken: unknown, spent or dead
    /// → `INVALID_TOKEN`, expired → `TOKEN_EXPIRED`.
    async fn take_turn(&self, raw: &str, field: &str) -> Result<Challenge> {
        let token = parse_token(raw)?;
        let hash = token.hash();
        let mut conn = self.conn().await?;
        let Some(found) = two_factor_challenges::find(&mut conn, &hash).await? else {
            return Err(Error::InvalidToken);
        };
        let now = now();
        if found.expires_at <= now {
            two_factor_challenges::consume(&mut conn, &hash).await?;
            return Err(Error::TokenExpired);
        }
        if found.failures >= MAX_CHALLENGE_FAILURES {
            return Err(Error::InvalidToken);
        }
        drop(conn);
        // The account's delay first: a refused attempt spends no turn of the token.
        self.take_attempt(&found.user_id, field).await?;
        two_factor_challenges::take_turn(
            &mut self.conn().await?,
            &hash,
            MAX_CHALLENGE_FAILURES,
            now,
        )
        .await?
        .ok_or(Error::InvalidToken)
    }

    /// The end of an attempt on a challenge: a wrong code is audited (and kills the token at
    /// the limit); a right one spends the token and opens the session.
    async fn conclude(
        &self,
        challenge: Challenge,
        right: bool,
        method: Method,
        trust_device: bool,
        client: &ClientInfo,
    ) -> Result<Completed> {
        let user_id = challenge.user_id.as_str();
        if !right {
            let dead = challenge.failures >= MAX_CHALLENGE_FAILURES;
            if dead {
                two_factor_challenges::consume(&mut self.conn().await?, &challenge.token_hash)
                    .await?;
            }
            let reason = if dead {
                "too_many_attempts"
            } else {
                "invalid_code"
            };
            self.record(
                AuditEvent::failure(AuditKind::TwoFactorVerify)
                    .subject(user_id)
                    .detail(serde_json::json!({ "method": method.as_str(), "reason": reason })),
                client,
            )
            .await;
            return Err(Error::InvalidCode);
        }
        if !two_factor_challenges::consume(&mut self.conn().await?, &challenge.token_hash).await? {
            return Err(Error::InvalidToken);
        }
        self.sign_in_throttle
            .succeeded(&throttle_key(user_id))
            .await?;
        let user = users::find_by_id(&mut self.conn().await?, user_id)
            .await?
            .ok_or(Error::InvalidToken)?;
        let mut detail = serde_json::json!({ "method": method.as_str() });
        if matches!(method, Method::BackupCode) {
            detail["backup_codes_remaining"] =
                serde_json::json!(self.backup_codes_remaining(user_id).await?);
        }
        self.record(
            AuditEvent::by_self(AuditKind::TwoFactorVerify, user_id).detail(detail),
            client,
        )
        .await;
        let id = user.id.clone();
        let signed = self
            .sessions()
            .open_after_second_factor(user, challenge.remember_me, client, move |reason| {
                AuditEvent::failure(AuditKind::SignIn)
                    .subject(&id)
                    .detail(serde_json::json!({ "reason": reason, "stage": "second_factor" }))
            })
            .await?;
        let trusted_device = if trust_device {
            Some(self.trust_device(&signed.user.id).await?)
        } else {
            None
        };
        Ok(Completed {
            signed,
            remember_me: challenge.remember_me,
            trusted_device,
        })
    }

    async fn trust_device(&self, user_id: &str) -> Result<SessionToken> {
        let token = SessionToken::generate()?;
        let now = now();
        trusted_devices::insert(
            &mut self.conn().await?,
            &token.hash(),
            user_id,
            add(now, TRUSTED_DEVICE_LIFETIME),
            now,
        )
        .await?;
        Ok(token)
    }

    /// `verifyTotp`: with a `twoFactorToken`, finishes a sign-in; without one, a signed-in
    /// user's enrolment (turns two-factor on) or check — their session stays.
    pub async fn verify_totp(
        &self,
        code: &str,
        two_factor_token: Option<&str>,
        viewer: Option<&Viewer>,
        trust_device: bool,
        client: &ClientInfo,
    ) -> Result<TotpVerified> {
        if let Some(raw) = two_factor_token {
            let challenge = self.take_turn(raw, "verifyTotp").await?;
            let right = self.check_totp(&challenge.user_id, code, false).await?;
            let completed = self
                .conclude(challenge, right, Method::Totp, trust_device, client)
                .await?;
            return Ok(TotpVerified::SignedIn(completed));
        }
        let viewer = viewer.ok_or(Error::Unauthenticated)?;
        let user_id = viewer.user.id.as_str();
        let Some(row) = two_factor::find(&mut self.conn().await?, user_id).await? else {
            return Err(Error::TwoFactorNotEnabled);
        };
        self.take_attempt(user_id, "verifyTotp").await?;
        if !self.check_totp(user_id, code, !row.enabled).await? {
            self.record(
                AuditEvent::failure(AuditKind::TwoFactorVerify)
                    .actor(user_id)
                    .subject(user_id)
                    .detail(serde_json::json!({ "method": "totp", "reason": "invalid_code" })),
                client,
            )
            .await;
            return Err(Error::InvalidCode);
        }
        self.sign_in_throttle
            .succeeded(&throttle_key(user_id))
            .await?;
        let kind = if row.enabled {
            AuditKind::TwoFactorVerify
        } else {
            AuditKind::TwoFactorEnable
        };
        self.record(
            AuditEvent::by_self(kind, user_id).detail(serde_json::json!({ "method": "totp" })),
            client,
        )
        .await;
        Ok(TotpVerified::Enrolled {
            user: viewer.user.clone(),
            session: viewer.session.clone(),
        })
    }

    /// `verifyBackupCode`: finishes a sign-in with one of the user's backup codes (spent).
    pub async fn verify_backup_code(
        &self,
        code: &str,
        two_factor_token: &str,
        trust_device: bool,
        client: &ClientInfo,
    ) -> Result<Completed> {
        let token = parse_token(two_factor_token)?;
        // A user without two-factor has no challenge: only a stale token gets here.
        if let Some(found) =
            two_factor_challenges::find(&mut self.conn().await?, &token.hash()).await?
            && !self.is_enabled(&found.user_id).await?
        {
            return Err(Error::TwoFactorNotEnabled);
        }
        let challenge = self.take_turn(two_factor_token, "verifyBackupCode").await?;
        let right = self.spend_backup_code(&challenge.user_id, code).await?;
        self.conclude(challenge, right, Method::BackupCode, trust_device, client)
            .await
    }

    /// `sendTwoFactorOtp`: mails a 6-digit code as the second factor (only with
    /// `APEXKIT_TWO_FACTOR_EMAIL=true`). Mail send limits apply; the answer is the same.
    pub async fn send_otp(&self, two_factor_token: &str) -> Result<()> {
        let settings = self.settings()?;
        if !settings.email_second_factor {
            return Err(Error::TwoFactorNotEnabled);
        }
        let token = parse_token(two_factor_token)?;
        let hash = token.hash();
        let mut conn = self.conn().await?;
        let Some(challenge) = two_factor_challenges::find(&mut conn, &hash).await? else {
            return Err(Error::InvalidToken);
        };
        let now = now();
        if challenge.expires_at <= now {
            return Err(Error::TokenExpired);
        }
        if challenge.failures >= MAX_CHALLENGE_FAILURES {
            return Err(Error::InvalidToken);
        }
        if !two_factor::is_enabled(&mut conn, &challenge.user_id).await? {
            return Err(Error::TwoFactorNotEnabled);
        }
        let user = users::find_by_id(&mut conn, &challenge.user_id)
            .await?
            .ok_or(Error::InvalidToken)?;
        drop(conn);
        let code = six_digits()?;
        let mail = compose::two_factor_code(&user.email, &user.name, &code, OTP_LIFETIME.as_secs());
        if self.mail_flows().queue_row(mail, None, None).await? {
            let otp_hash = settings.code_hash("two-factor-otp", &hash, &code);
            two_factor_challenges::set_otp(
                &mut self.conn().await?,
                &hash,
                &otp_hash,
                add(now, OTP_LIFETIME),
                now,
            )
            .await?;
        }
        Ok(())
    }

    /// `verifyTwoFactorOtp`: finishes a sign-in with the mailed code (6 digits, 5 minutes,
    /// single use — the token it is bound to is).
    pub async fn verify_otp(
        &self,
        code: &str,
        two_factor_token: &str,
        trust_device: bool,
        client: &ClientInfo,
    ) -> Result<Completed> {
        let settings = self.settings()?;
        if !settings.email_second_factor {
            return Err(Error::TwoFactorNotEnabled);
        }
        let challenge = self
            .take_turn(two_factor_token, "verifyTwoFactorOtp")
            .await?;
        let right = match (&challenge.otp_hash, challenge.otp_expires_at) {
            (Some(stored), Some(until)) if until > now() => {
                let given = normalize_code(code).unwrap_or_default();
                let hash = settings.code_hash("two-factor-otp", &challenge.token_hash, &given);
                constant_time_eq(stored.as_bytes(), hash.as_bytes())
            }
            _ => false,
        };
        self.conclude(challenge, right, Method::EmailOtp, trust_device, client)
            .await
    }

    /// The password and a current code (TOTP or an unused backup code, spent) of a user with
    /// two-factor on: what turning it off or replacing the backup codes needs.
    async fn reauthenticate(
        &self,
        viewer: &Viewer,
        password: &str,
        code: &str,
        field: &'static str,
        client: &ClientInfo,
    ) -> Result<()> {
        let user_id = viewer.user.id.as_str();
        if !self.is_enabled(user_id).await? {
            return Err(Error::TwoFactorNotEnabled);
        }
        self.account()
            .check_current_password(viewer, password, field)
            .await?;
        self.take_attempt(user_id, field).await?;
        let right = self.check_totp(user_id, code, false).await?
            || self.spend_backup_code(user_id, code).await?;
        if !right {
            self.record(
                AuditEvent::failure(AuditKind::TwoFactorVerify)
                    .actor(user_id)
                    .subject(user_id)
                    .detail(serde_json::json!({ "operation": field, "reason": "invalid_code" })),
                client,
            )
            .await;
            return Err(Error::InvalidCode);
        }
        self.sign_in_throttle
            .succeeded(&throttle_key(user_id))
            .await?;
        Ok(())
    }

    /// `generateBackupCodes`: ten new codes; the old ones are void.
    pub async fn generate_backup_codes(
        &self,
        viewer: &Viewer,
        password: &str,
        code: &str,
        client: &ClientInfo,
    ) -> Result<Vec<String>> {
        self.reauthenticate(viewer, password, code, "generateBackupCodes", client)
            .await?;
        let (codes, rows) = self.new_backup_codes(&viewer.user.id)?;
        let code_rows = backup_code_rows(&viewer.user.id, &rows);
        two_factor::replace_backup_codes(&mut self.conn().await?, &viewer.user.id, &code_rows)
            .await?;
        self.record(
            AuditEvent::by_self(AuditKind::BackupCodesRegenerate, &viewer.user.id),
            client,
        )
        .await;
        Ok(codes)
    }

    /// `disableTwoFactor`: the enrolment, backup codes, pending second steps and trusted
    /// browsers go.
    pub async fn disable(
        &self,
        viewer: &Viewer,
        password: &str,
        code: &str,
        client: &ClientInfo,
    ) -> Result<()> {
        self.reauthenticate(viewer, password, code, "disableTwoFactor", client)
            .await?;
        two_factor::remove(&mut self.conn().await?, &viewer.user.id).await?;
        self.record(
            AuditEvent::by_self(AuditKind::TwoFactorDisable, &viewer.user.id),
            client,
        )
        .await;
        Ok(())
    }

    /// `adminDisableTwoFactor`: an admin resets a user's two-factor (lost phone and codes).
    pub async fn admin_disable(
        &self,
        admin: &Admin,
        user_id: &str,
        client: &ClientInfo,
    ) -> Result<User> {
        let mut conn = self.conn().await?;
        let user = users::find_by_id(&mut conn, user_id)
            .await?
            .ok_or(Error::NotFound)?;
        let removed = two_factor::remove(&mut conn, user_id).await?;
        drop(conn);
        self.record(
            AuditEvent::success(AuditKind::AdminDisableTwoFactor)
                .actor(&admin.user.id)
                .subject(user_id)
                .detail(serde_json::json!({ "was_enabled": removed })),
            client,
        )
        .await;
        Ok(user)
    }

    /// Forgets every trusted browser of the user (sessions revoked, password reset or changed
    /// with `revokeOtherSessions`, admin revocation or ban). Best effort after the fact.
    pub(super) async fn forget_devices(&self, user_id: &str) -> Result<()> {
        trusted_devices::delete_for_user(&mut self.conn().await?, user_id).await?;
        Ok(())
    }

    /// Deletes expired challenges and trusted browsers; run periodically.
    pub async fn purge_expired(&self) -> Result<usize> {
        let now = now();
        let mut conn = self.conn().await?;
        let a = two_factor_challenges::delete_expired(&mut conn, now).await?;
        let b = trusted_devices::delete_expired(&mut conn, now).await?;
        let c = crate::db::email_codes::delete_expired(&mut conn, now).await?;
        Ok(a + b + c)
    }
}

/// Compares two hashes without an early exit.
pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `issuer` default: the base URL's host.
pub fn default_issuer(base_url: &str) -> String {
    url::Url::parse(base_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "Apexkit".to_owned())
}

/// The rows of freshly made backup codes (`(id, hash)` pairs of [`TwoFactor::new_backup_codes`]).
fn backup_code_rows<'a>(user_id: &'a str, rows: &'a [(String, String)]) -> Vec<NewBackupCode<'a>> {
    let created_at = now();
    rows.iter()
        .map(|(id, hash)| NewBackupCode {
            id,
            user_id,
            code_hash: hash,
            created_at,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_their_shape() {
        for _ in 0..50 {
            let c = six_digits().unwrap();
            assert_eq!(c.len(), 6);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
            let b = backup_code().unwrap();
            assert_eq!(b.len(), 11);
            assert_eq!(&b[5..6], "-");
        }
        assert_eq!(normalize_code(" AB-cd 12 ").as_deref(), Some("abcd12"));
        assert_eq!(normalize_code(&"1".repeat(65)), None);
    }

    #[test]
    fn code_hashes_are_keyed_and_bound() {
        let s = TwoFactorSettings::new(&Secret::new("s".repeat(32)), "x".into(), false, true);
        let t = TwoFactorSettings::new(&Secret::new("t".repeat(32)), "x".into(), false, true);
        assert_ne!(
            s.code_hash("backup", "u1", "abc"),
            t.code_hash("backup", "u1", "abc")
        );
        assert_ne!(
            s.code_hash("backup", "u1", "abc"),
            s.code_hash("backup", "u2", "abc")
        );
        assert_eq!(
            s.code_hash("backup", "u1", "abc"),
            s.code_hash("backup", "u1", "abc")
        );
    }
}
