//! Two-factor authentication over HTTP on both databases: TOTP enrolment and the second step of
//! sign-in (codes computed by Debian's `oathtool`, a second implementation), the token's
//! rules, backup codes, trusted browsers, turning it off, the account's delay across tokens,
//! bans, the admin reset and the mailed second factor. "No session before the second factor"
//! is checked in the `session` table itself.

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use apexkit::config::Toggle;
use serde_json::{Value, json};

use crate::support::{
    Api, Backend, PASSWORD, Proc, SmtpSink, TestApp, TestDb, code, data, on_both, signed_in_token,
};

on_both!(
    enrolment_then_sign_in_stops_at_the_second_step,
    totp_skew_and_replay,
    two_factor_token_expires_is_single_use_and_dies_after_five_wrong_codes,
    backup_codes_are_single_use_and_regenerated_codes_void_the_old,
    disable_and_regenerate_need_password_and_code,
    trusted_device_skips_the_step_until_revoked,
    many_tokens_do_not_multiply_guesses,
    banned_user_with_correct_totp_stays_out,
    admin_sees_and_resets_two_factor,
    mailed_second_factor_only_when_enabled,
    second_factor_operations_are_rate_limited,
    trusted_device_ends_with_disable_password_change_and_admin_actions,
    no_secret_code_or_token_in_logs_or_audit,
);

/// An authenticator app: the secret and the last step it gave a code for (a step is accepted
/// once, so each code comes from a later step than the last, within the ±1 window).
pub struct Authenticator {
    secret: String,
    last: Option<u64>,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The TOTP code of `secret` (base32) at unix time `at`, by `oathtool`.
pub fn oathtool(secret: &str, at: u64) -> String {
    let out = Command::new("oathtool")
        .args(["--totp", "-b", "-N", &format!("@{at}"), secret])
        .output()
        .expect("oathtool is installed (.ci/run: apt-get install oathtool)");
    assert!(out.status.success(), "oathtool: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

impl Authenticator {
    pub fn from_uri(uri: &str) -> Self {
        let url = url::Url::parse(uri).expect("otpauth URI");
        assert_eq!(url.scheme(), "otpauth");
        let secret = url
            .query_pairs()
            .find(|(k, _)| k == "secret")
            .map(|(_, v)| v.into_owned())
            .expect("secret parameter");
        Self { secret, last: None }
    }

    /// The code of step `now + offset` (no bookkeeping: for wrong-window and replay checks).
    pub fn at_offset(&self, offset: i64) -> String {
        let at = now_secs() as i64 + offset * 30;
        oathtool(&self.secret, at as u64)
    }

    /// A code the service accepts: from the earliest step after the last one used that is
    /// still within the window (waiting for the clock when the window is used up).
    pub async fn code(&mut self) -> String {
        loop {
            let now_step = now_secs() / 30;
            let step = match self.last {
                Some(last) => (last + 1).max(now_step - 1),
                None => now_step - 1,
            };
            if step <= now_step + 1 {
                self.last = Some(step);
                return oathtool(&self.secret, step * 30);
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

pub const ENABLE: &str = "mutation($p: String!) { enableTwoFactor(input: {password: $p}) { totpURI backupCodes qrCodeSvg } }";
pub const VERIFY_TOTP: &str = "mutation($c: String!, $t: String, $d: Boolean) {
    verifyTotp(input: {code: $c, twoFactorToken: $t, trustDevice: $d}) {
        token twoFactorRequired twoFactorToken user { id email twoFactorEnabled } session { id } accessToken } }";
const VERIFY_BACKUP: &str = "mutation($c: String!, $t: String) {
    verifyBackupCode(input: {code: $c, twoFactorToken: $t}) { token user { backupCodesRemaining } } }";
pub const SIGN_IN: &str = "mutation($e: String!, $p: String!) {
    signInEmail(input: {email: $e, password: $p}) {
        token twoFactorRequired twoFactorToken user { id email } session { id } accessToken } }";
const ME: &str = "{ me { twoFactorEnabled backupCodesRemaining } }";

/// Signs `email` up, enables two-factor and confirms it; returns the session token, the
/// authenticator and the backup codes.
pub async fn enrolled(app: &TestApp, email: &str) -> (String, Authenticator, Vec<String>) {
    let token = app.sign_up(email).await;
    let body = app
        .gql_with(Some(&token), ENABLE, json!({ "p": PASSWORD }))
        .await;
    let setup = data(&body, "enableTwoFactor");
    let mut auth = Authenticator::from_uri(setup["totpURI"].as_str().unwrap());
    let codes: Vec<String> = setup["backupCodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    let code = auth.code().await;
    let body = app
        .gql_with(Some(&token), VERIFY_TOTP, json!({ "c": code }))
        .await;
    assert_eq!(
        data(&body, "verifyTotp")["user"]["twoFactorEnabled"],
        true,
        "{body}"
    );
    (token, auth, codes)
}

/// A password sign-in that stops at the second step; returns its `twoFactorToken`.
pub async fn second_step(app: &TestApp, email: &str) -> String {
    let body = app.gql(SIGN_IN, json!({ "e": email, "p": PASSWORD })).await;
    let payload = data(&body, "signInEmail");
    assert_eq!(payload["twoFactorRequired"], true, "{body}");
    assert!(
        payload["token"].is_null() && payload["session"].is_null(),
        "{body}"
    );
    assert!(payload["accessToken"].is_null(), "{body}");
    payload["twoFactorToken"].as_str().unwrap().to_owned()
}

async fn sessions_of(app: &TestApp, email: &str) -> i64 {
    app.db
        .count(&format!(
            "SELECT COUNT(*) AS n FROM session s JOIN \"user\" u ON u.id = s.user_id WHERE u.email = '{email}'"
        ))
        .await
}

async fn enrolment_then_sign_in_stops_at_the_second_step(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = "ada@example.com";
    let token = app.sign_up(email).await;
    let wrong = app
        .gql_with(Some(&token), ENABLE, json!({ "p": "not the password" }))
        .await;
    assert_eq!(code(&wrong), "INVALID_PASSWORD", "{wrong}");
    let anonymous = app.gql(ENABLE, json!({ "p": PASSWORD })).await;
    assert_eq!(code(&anonymous), "UNAUTHENTICATED");

    let body = app
        .gql_with(Some(&token), ENABLE, json!({ "p": PASSWORD }))
        .await;
    let setup = data(&body, "enableTwoFactor");
    let uri = setup["totpURI"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/127.0.0.1:ada@example.com?"),
        "{uri}"
    );
    assert!(
        uri.contains("issuer=127.0.0.1") && uri.contains("digits=6") && uri.contains("period=30"),
        "{uri}"
    );
    let svg = setup["qrCodeSvg"].as_str().unwrap();
    assert!(svg.contains("<svg") && svg.contains("</svg>"), "{svg}");
    let codes = setup["backupCodes"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    let mut distinct: Vec<_> = codes.iter().map(|c| c.as_str().unwrap()).collect();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 10);
    let mut auth = Authenticator::from_uri(uri);

    // Stored sealed: neither the base32 nor anything but the sealed form.
    let stored = app.db.strings("SELECT secret AS s FROM two_factor").await;
    assert!(stored[0].starts_with("xc20p1.") && !stored[0].contains(&auth.secret));
    let hashes = app
        .db
        .strings("SELECT code_hash AS s FROM two_factor_backup_code")
        .await;
    assert_eq!(hashes.len(), 10);
    assert!(
        hashes
            .iter()
            .all(|h| !distinct.iter().any(|c| h.contains(&c.replace('-', ""))))
    );

    // Not active before the first correct code: sign-in still opens a session.
    let me = app.gql_with(Some(&token), ME, json!({})).await;
    assert_eq!(data(&me, "me")["twoFactorEnabled"], false);
    let plain = app.gql(SIGN_IN, json!({ "e": email, "p": PASSWORD })).await;
    assert_eq!(data(&plain, "signInEmail")["twoFactorRequired"], false);
    assert!(data(&plain, "signInEmail")["token"].is_string());

    let wrong = app
        .gql_with(Some(&token), VERIFY_TOTP, json!({ "c": "000000" }))
        .await;
    assert_eq!(code(&wrong), "INVALID_CODE", "{wrong}");
    let ok = app
        .gql_with(Some(&token), VERIFY_TOTP, json!({ "c": auth.code().await }))
        .await;
    let enrolled = data(&ok, "verifyTotp");
    assert!(
        enrolled["token"].is_null(),
        "enrolment keeps the session: {ok}"
    );
    assert_eq!(enrolled["user"]["twoFactorEnabled"], true);
    assert!(app.alive(&token).await);
    let me = app.gql_with(Some(&token), ME, json!({})).await;
    assert_eq!(data(&me, "me")["backupCodesRemaining"], 10);

    // The sign-in now stops at the second step, and no session row exists meanwhile.
    let before = sessions_of(&app, email).await;
    let challenge = second_step(&app, email).await;
    assert_eq!(
        sessions_of(&app, email).await,
        before,
        "no session before the second factor"
    );
    let wrong = app
        .gql(VERIFY_TOTP, json!({ "c": "123456", "t": challenge }))
        .await;
    assert_eq!(code(&wrong), "INVALID_CODE");
    assert_eq!(sessions_of(&app, email).await, before);
    let done = app
        .gql(
            VERIFY_TOTP,
            json!({ "c": auth.code().await, "t": challenge }),
        )
        .await;
    let payload = data(&done, "verifyTotp");
    let session = payload["token"].as_str().expect("a session now");
    assert!(payload["accessToken"].is_string());
    assert_eq!(sessions_of(&app, email).await, before + 1);
    assert!(app.alive(session).await);

    // Nothing secret in the audit trail.
    let details = app
        .db
        .strings("SELECT COALESCE(detail, '') AS s FROM audit_event")
        .await
        .join("\n");
    assert!(!details.contains(&auth.secret));
    assert!(!distinct.iter().any(|c| details.contains(c)));
    assert!(
        app.db
            .count("SELECT COUNT(*) AS n FROM audit_event WHERE type = 'two_factor_enable' AND outcome = 'success'")
            .await
            >= 2
    );
    assert!(
        app.db
            .count("SELECT COUNT(*) AS n FROM audit_event WHERE type = 'two_factor_verify' AND outcome = 'failure'")
            .await
            >= 1
    );
}

async fn totp_skew_and_replay(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = "skew@example.com";
    let (_, mut auth, _) = enrolled(&app, email).await;
    // Two steps off is outside the ±1 window.
    let challenge = second_step(&app, email).await;
    for offset in [-3, 3] {
        let far = app
            .gql(
                VERIFY_TOTP,
                json!({ "c": auth.at_offset(offset), "t": challenge }),
            )
            .await;
        assert_eq!(code(&far), "INVALID_CODE", "offset {offset}: {far}");
    }
    // The next step's code is accepted (clock skew), once.
    let next = auth.at_offset(1);
    let ok = app
        .gql(VERIFY_TOTP, json!({ "c": next, "t": challenge }))
        .await;
    assert!(data(&ok, "verifyTotp")["token"].is_string(), "{ok}");
    let again = second_step(&app, email).await;
    let replay = app.gql(VERIFY_TOTP, json!({ "c": next, "t": again })).await;
    assert_eq!(
        code(&replay),
        "INVALID_CODE",
        "a code is accepted once: {replay}"
    );
    // The previous step is older than the one accepted: a replay too.
    let previous = app
        .gql(VERIFY_TOTP, json!({ "c": auth.at_offset(-1), "t": again }))
        .await;
    assert_eq!(code(&previous), "INVALID_CODE");
    auth.last = Some(now_secs() / 30 + 1);
    let later = app
        .gql(VERIFY_TOTP, json!({ "c": auth.code().await, "t": again }))
        .await;
    assert!(data(&later, "verifyTotp")["token"].is_string(), "{later}");
}

async fn two_factor_token_expires_is_single_use_and_dies_after_five_wrong_codes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = "token@example.com";
    let (_, mut auth, _) = enrolled(&app, email).await;
    let sessions = sessions_of(&app, email).await;

    // Expired.
    let expired = second_step(&app, email).await;
    app.db
        .execute("UPDATE two_factor_challenge SET expires_at = '2000-01-01 00:00:00'")
        .await;
    let body = app
        .gql(VERIFY_TOTP, json!({ "c": auth.code().await, "t": expired }))
        .await;
    assert_eq!(code(&body), "TOKEN_EXPIRED", "{body}");
    auth.last = auth.last.map(|s| s - 1);

    // Single use.
    let challenge = second_step(&app, email).await;
    let ok = app
        .gql(
            VERIFY_TOTP,
            json!({ "c": auth.code().await, "t": challenge }),
        )
        .await;
    assert!(data(&ok, "verifyTotp")["token"].is_string());
    let reused = app
        .gql(
            VERIFY_TOTP,
            json!({ "c": auth.at_offset(1), "t": challenge }),
        )
        .await;
    assert_eq!(code(&reused), "INVALID_TOKEN");
    let unknown = app
        .gql(VERIFY_TOTP, json!({ "c": "123456", "t": "x".repeat(43) }))
        .await;
    assert_eq!(code(&unknown), "INVALID_TOKEN");

    // Five wrong codes (TOTP and backup together), then even the right one is refused.
    let doomed = second_step(&app, email).await;
    for i in 0..5 {
        let body = if i % 2 == 0 {
            app.gql(VERIFY_TOTP, json!({ "c": "000000", "t": doomed }))
                .await
        } else {
            app.gql(VERIFY_BACKUP, json!({ "c": "aaaaa-aaaaa", "t": doomed }))
                .await
        };
        assert_eq!(code(&body), "INVALID_CODE", "attempt {i}: {body}");
    }
    let sixth = app
        .gql(VERIFY_TOTP, json!({ "c": auth.at_offset(1), "t": doomed }))
        .await;
    assert_eq!(code(&sixth), "INVALID_TOKEN", "{sixth}");
    assert_eq!(
        app.db
            .count("SELECT COUNT(*) AS n FROM audit_event WHERE type = 'two_factor_verify' AND outcome = 'failure' AND detail LIKE '%too_many_attempts%'")
            .await,
        1
    );
    assert_eq!(sessions_of(&app, email).await, sessions + 1);
}

async fn backup_codes_are_single_use_and_regenerated_codes_void_the_old(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = "backup@example.com";
    let (token, mut auth, codes) = enrolled(&app, email).await;

    let challenge = second_step(&app, email).await;
    let body = app
        .gql(
            VERIFY_BACKUP,
            json!({ "c": codes[0].to_uppercase(), "t": challenge }),
        )
        .await;
    let payload = data(&body, "verifyBackupCode");
    assert!(payload["token"].is_string(), "{body}");
    assert_eq!(payload["user"]["backupCodesRemaining"], 9);

    let challenge = second_step(&app, email).await;
    let twice = app
        .gql(VERIFY_BACKUP, json!({ "c": codes[0], "t": challenge }))
        .await;
    assert_eq!(
        code(&twice),
        "INVALID_CODE",
        "a backup code works once: {twice}"
    );
    // A refused attempt (dead token) spends no backup code.
    let dead = app
        .gql(VERIFY_BACKUP, json!({ "c": codes[1], "t": "y".repeat(43) }))
        .await;
    assert_eq!(code(&dead), "INVALID_TOKEN");

    let regen = "mutation($p: String!, $c: String!) { generateBackupCodes(input: {password: $p, code: $c}) }";
    let body = app
        .gql_with(
            Some(&token),
            regen,
            json!({ "p": PASSWORD, "c": auth.code().await }),
        )
        .await;
    let fresh: Vec<String> = data(&body, "generateBackupCodes")
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fresh.len(), 10);
    assert!(fresh.iter().all(|c| !codes.contains(c)));
    let old = app
        .gql(VERIFY_BACKUP, json!({ "c": codes[1], "t": challenge }))
        .await;
    assert_eq!(
        code(&old),
        "INVALID_CODE",
        "regenerated codes void the old ones"
    );
    let new = app
        .gql(VERIFY_BACKUP, json!({ "c": fresh[0], "t": challenge }))
        .await;
    assert!(data(&new, "verifyBackupCode")["token"].is_string(), "{new}");
    assert_eq!(
        app.db
            .count("SELECT COUNT(*) AS n FROM audit_event WHERE type = 'backup_codes_regenerate'")
            .await,
        1
    );
}

async fn disable_and_regenerate_need_password_and_code(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let plain = app.sign_up("plain@example.com").await;
    let disable =
        "mutation($p: String!, $c: String!) { disableTwoFactor(input: {password: $p, code: $c}) }";
    let regen = "mutation($p: String!, $c: String!) { generateBackupCodes(input: {password: $p, code: $c}) }";
    for op in [disable, regen] {
        let body = app
            .gql_with(Some(&plain), op, json!({ "p": PASSWORD, "c": "123456" }))
            .await;
        assert_eq!(code(&body), "TWO_FACTOR_NOT_ENABLED", "{body}");
    }

    let email = "off@example.com";
    let (token, mut auth, codes) = enrolled(&app, email).await;
    for op in [disable, regen] {
        // A stolen session plus the password is not enough…
        let no_code = app
            .gql_with(Some(&token), op, json!({ "p": PASSWORD, "c": "000000" }))
            .await;
        assert_eq!(code(&no_code), "INVALID_CODE", "{no_code}");
        // …nor a session plus a code.
        let no_password = app
            .gql_with(
                Some(&token),
                op,
                json!({ "p": "wrong password", "c": codes[2] }),
            )
            .await;
        assert_eq!(code(&no_password), "INVALID_PASSWORD", "{no_password}");
    }
    let me = app.gql_with(Some(&token), ME, json!({})).await;
    assert_eq!(data(&me, "me")["twoFactorEnabled"], true);
    let off = app
        .gql_with(
            Some(&token),
            disable,
            json!({ "p": PASSWORD, "c": auth.code().await }),
        )
        .await;
    assert_eq!(data(&off, "disableTwoFactor"), true, "{off}");
    let me = app.gql_with(Some(&token), ME, json!({})).await;
    assert_eq!(data(&me, "me")["twoFactorEnabled"], false);
    assert_eq!(data(&me, "me")["backupCodesRemaining"], 0);
    let direct = app.gql(SIGN_IN, json!({ "e": email, "p": PASSWORD })).await;
    assert!(
        data(&direct, "signInEmail")["token"].is_string(),
        "{direct}"
    );
    assert_eq!(
        app.db
            .count("SELECT COUNT(*) AS n FROM audit_event WHERE type = 'two_factor_disable'")
            .await,
        1
    );
}

/// A browser: a cookie jar, no redirects followed, and the app's own origin on every request
/// (cookie-authenticated mutations need a trusted one).
pub struct Browser {
    pub client: reqwest::Client,
    base: String,
}

impl Browser {
    pub fn new(app: &TestApp) -> Self {
        Self {
            client: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: app.url(""),
        }
    }

    pub async fn gql(&self, query: &str, variables: Value) -> (reqwest::header::HeaderMap, Value) {
        let resp = self
            .client
            .post(format!("{}/graphql", self.base))
            .header("origin", self.base.trim_end_matches('/'))
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .unwrap();
        let headers = resp.headers().clone();
        (headers, resp.json().await.unwrap())
    }
}

pub fn set_cookies(headers: &reqwest::header::HeaderMap) -> Vec<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

async fn trusted_device_skips_the_step_until_revoked(backend: Backend) {
    let sink = SmtpSink::start();
    let app = TestApp::builder(backend).smtp(&sink).spawn().await;
    let email = "trusted@example.com";
    let (_, mut auth, _) = enrolled(&app, email).await;
    let browser = Browser::new(&app);

    // The sign-in sets the second step's cookie, which the second step uses by itself.
    let (headers, body) = browser
        .gql(SIGN_IN, json!({ "e": email, "p": PASSWORD }))
        .await;
    assert_eq!(data(&body, "signInEmail")["twoFactorRequired"], true);
    let cookies = set_cookies(&headers);
    let two_factor = cookies
        .iter()
        .find(|c| c.starts_with("apexkit.two_factor="))
        .expect("the two-factor cookie");
    assert!(
        two_factor.contains("HttpOnly") && two_factor.contains("Max-Age=300"),
        "{two_factor}"
    );
    assert!(
        !cookies
            .iter()
            .any(|c| c.starts_with("apexkit.session_token="))
    );
    let (headers, body) = browser
        .gql(VERIFY_TOTP, json!({ "c": auth.code().await, "d": true }))
        .await;
    assert!(data(&body, "verifyTotp")["token"].is_string(), "{body}");
    let cookies = set_cookies(&headers);
    let trusted = cookies
        .iter()
        .find(|c| c.starts_with("apexkit.trusted_device="))
        .expect("the trusted-device cookie");
    assert!(
        trusted.contains("HttpOnly")
            && trusted.contains("SameSite=Lax")
            && trusted.contains("Max-Age=2592000"),
        "{trusted}"
    );

    // signOut keeps it: the next sign-in skips the second step.
    let (_, out) = browser.gql("mutation { signOut }", json!({})).await;
    assert_eq!(data(&out, "signOut"), true);
    let (_, body) = browser
        .gql(SIGN_IN, json!({ "e": email, "p": PASSWORD }))
        .await;
    assert_eq!(
        data(&body, "signInEmail")["twoFactorRequired"],
        false,
        "{body}"
    );
    assert!(data(&body, "signInEmail")["token"].is_string());
    // Bound to the user: another two-factor user on the same browser is asked.
    let (_, mut other, _) = enrolled(&app, "other@example.com").await;
    let (_, body) = browser
        .gql(SIGN_IN, json!({ "e": "other@example.com", "p": PASSWORD }))
        .await;
    assert_eq!(
        data(&body, "signInEmail")["twoFactorRequired"],
        true,
        "{body}"
    );
    let _ = other.code().await;

    // revokeSessions ends it.
    let (_, body) = browser
        .gql(SIGN_IN, json!({ "e": email, "p": PASSWORD }))
        .await;
    assert!(data(&body, "signInEmail")["token"].is_string(), "{body}");
    let (_, revoked) = browser.gql("mutation { revokeSessions }", json!({})).await;
    assert_eq!(data(&revoked, "revokeSessions"), true, "{revoked}");
    let (_, body) = browser
        .gql(SIGN_IN, json!({ "e": email, "p": PASSWORD }))
        .await;
    assert_eq!(
        data(&body, "signInEmail")["twoFactorRequired"],
        true,
        "{body}"
    );

    // Trusted again; a password reset ends it.
    let (_, body) = browser
        .gql(VERIFY_TOTP, json!({ "c": auth.code().await, "d": true }))
        .await;
    assert!(data(&body, "verifyTotp")["token"].is_string(), "{body}");
    app.request_reset(email).await;
    let reset = sink.latest(email, "Reset your password").await;
    let body = app
        .reset_password(&reset.token(), "a brand new passphrase")
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let (_, body) = browser
        .gql(
            SIGN_IN,
            json!({ "e": email, "p": "a brand new passphrase" }),
        )
        .await;
    assert_eq!(
        data(&body, "signInEmail")["twoFactorRequired"],
        true,
        "{body}"
    );
}

fn with_account_delay(c: &mut apexkit::Config) {
    c.rate_limits.enabled = Some(Toggle::On);
    c.rate_limits.credential = "10000/1000000000".parse().unwrap();
    c.rate_limits.mail = "10000/1000000000".parse().unwrap();
    c.rate_limits.general = "10000/1000000000".parse().unwrap();
}

async fn many_tokens_do_not_multiply_guesses(backend: Backend) {
    let app = TestApp::builder(backend)
        .config(with_account_delay)
        .spawn()
        .await;
    let email = "guess@example.com";
    let _ = enrolled(&app, email).await;
    let first = second_step(&app, email).await;
    for _ in 0..5 {
        let body = app
            .gql(VERIFY_TOTP, json!({ "c": "000000", "t": first }))
            .await;
        assert_eq!(code(&body), "INVALID_CODE");
    }
    // A fresh token (the right password again) buys no fresh budget: the account's delay
    // counts the wrong codes of every token.
    let second = second_step(&app, email).await;
    let body = app
        .gql(VERIFY_TOTP, json!({ "c": "000000", "t": second }))
        .await;
    assert_eq!(code(&body), "INVALID_CODE");
    let body = app
        .gql(VERIFY_TOTP, json!({ "c": "000000", "t": second }))
        .await;
    assert_eq!(code(&body), "RATE_LIMITED", "{body}");
    let third = second_step(&app, email).await;
    let body = app
        .gql(VERIFY_BACKUP, json!({ "c": "aaaaa-aaaaa", "t": third }))
        .await;
    assert_eq!(code(&body), "RATE_LIMITED", "{body}");
}

async fn banned_user_with_correct_totp_stays_out(backend: Backend) {
    let (app, admin) = TestApp::builder(backend).spawn_admin().await;
    let email = "banned@example.com";
    let (_, mut auth, _) = enrolled(&app, email).await;
    let user_id = data(&app.sign_in(email, PASSWORD).await, "signInEmail")["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let challenge = second_step(&app, email).await;
    let before = sessions_of(&app, email).await;
    let ban = app
        .gql_with(
            Some(&admin),
            "mutation($id: String!) { adminBanUser(input: {userId: $id}) { banned } }",
            json!({ "id": user_id }),
        )
        .await;
    assert_eq!(data(&ban, "adminBanUser")["banned"], true, "{ban}");
    let body = app
        .gql(
            VERIFY_TOTP,
            json!({ "c": auth.code().await, "t": challenge }),
        )
        .await;
    assert_eq!(code(&body), "USER_BANNED", "{body}");
    assert_eq!(sessions_of(&app, email).await, 0.min(before));
    let body = app.gql(SIGN_IN, json!({ "e": email, "p": PASSWORD })).await;
    assert_eq!(code(&body), "USER_BANNED");
}

async fn admin_sees_and_resets_two_factor(backend: Backend) {
    let (app, admin) = TestApp::builder(backend).spawn_admin().await;
    let email = "lost@example.com";
    let _ = enrolled(&app, email).await;
    let challenge = second_step(&app, email).await;
    let user_id = app
        .db
        .strings(&format!(
            "SELECT id AS s FROM \"user\" WHERE email = '{email}'"
        ))
        .await
        .remove(0);
    let seen = app
        .gql_with(
            Some(&admin),
            "query($id: ID!) { adminUser(id: $id) { twoFactorEnabled } }",
            json!({ "id": user_id }),
        )
        .await;
    assert_eq!(data(&seen, "adminUser")["twoFactorEnabled"], true, "{seen}");
    let reset = "mutation($id: ID!) { adminDisableTwoFactor(userId: $id) { twoFactorEnabled } }";
    let by_user = app
        .gql_with(
            Some(&app.sign_up("nobody@example.com").await),
            reset,
            json!({ "id": user_id }),
        )
        .await;
    assert_eq!(code(&by_user), "FORBIDDEN");
    let body = app
        .gql_with(Some(&admin), reset, json!({ "id": user_id }))
        .await;
    assert_eq!(
        data(&body, "adminDisableTwoFactor")["twoFactorEnabled"],
        false,
        "{body}"
    );
    let missing = app
        .gql_with(Some(&admin), reset, json!({ "id": "nope" }))
        .await;
    assert_eq!(code(&missing), "NOT_FOUND");
    // Pending second steps die with it; the password alone signs in now.
    let body = app
        .gql(VERIFY_TOTP, json!({ "c": "123456", "t": challenge }))
        .await;
    assert_eq!(code(&body), "INVALID_TOKEN");
    let signed = app.sign_in(email, PASSWORD).await;
    signed_in_token(&signed);
    assert_eq!(
        app.db
            .count("SELECT COUNT(*) AS n FROM audit_event WHERE type = 'admin_disable_two_factor'")
            .await,
        1
    );
}

async fn mailed_second_factor_only_when_enabled(backend: Backend) {
    let send = "mutation($t: String) { sendTwoFactorOtp(twoFactorToken: $t) }";
    let verify = "mutation($c: String!, $t: String) { verifyTwoFactorOtp(input: {code: $c, twoFactorToken: $t}) { token } }";
    let off = TestApp::spawn(backend).await;
    let _ = enrolled(&off, "off@example.com").await;
    let challenge = second_step(&off, "off@example.com").await;
    let body = off.gql(send, json!({ "t": challenge })).await;
    assert_eq!(code(&body), "TWO_FACTOR_NOT_ENABLED", "{body}");
    drop(off);

    let sink = SmtpSink::start();
    let app = TestApp::builder(backend)
        .smtp(&sink)
        .config(|c| c.two_factor.two_factor_email = true)
        .spawn()
        .await;
    let email = "mailed@example.com";
    let _ = enrolled(&app, email).await;
    let challenge = second_step(&app, email).await;
    let body = app.gql(send, json!({ "t": challenge })).await;
    assert_eq!(data(&body, "sendTwoFactorOtp"), true, "{body}");
    let mail = sink
        .latest(email, "Your two-factor verification code")
        .await;
    let code_sent = six_digit_code(&mail.text);
    let stored = app
        .db
        .strings("SELECT COALESCE(otp_hash, '') AS s FROM two_factor_challenge")
        .await;
    assert!(stored.iter().all(|h| !h.contains(&code_sent)));
    let wrong_code = if code_sent == "000000" {
        "111111"
    } else {
        "000000"
    };
    let wrong = app
        .gql(verify, json!({ "c": wrong_code, "t": challenge }))
        .await;
    assert_eq!(code(&wrong), "INVALID_CODE");
    let ok = app
        .gql(verify, json!({ "c": code_sent, "t": challenge }))
        .await;
    assert!(data(&ok, "verifyTwoFactorOtp")["token"].is_string(), "{ok}");
    let again = app
        .gql(verify, json!({ "c": code_sent, "t": challenge }))
        .await;
    assert_eq!(code(&again), "INVALID_TOKEN");
}

/// The 6-digit code in a mail's text.
pub fn six_digit_code(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap_or_else(|| panic!("no code in {text}"))
        .to_owned()
}

async fn second_factor_operations_are_rate_limited(backend: Backend) {
    let app = TestApp::builder(backend)
        .config(|c| {
            c.rate_limits.enabled = Some(Toggle::On);
            c.rate_limits.credential = "3/1000000000".parse().unwrap();
            c.rate_limits.mail = "2/1000000000".parse().unwrap();
        })
        .spawn()
        .await;
    for op in [
        "mutation { verifyTotp(input: {code: \"1\", twoFactorToken: \"t\"}) { token } }",
        "mutation { verifyBackupCode(input: {code: \"1\", twoFactorToken: \"t\"}) { token } }",
        "mutation { verifyTwoFactorOtp(input: {code: \"1\", twoFactorToken: \"t\"}) { token } }",
    ] {
        let body = app.gql(op, json!({})).await;
        assert_ne!(code(&body), "RATE_LIMITED", "{body}");
    }
    // The credential budget is shared: the fourth credential operation is refused.
    let (status, _, body) = app
        .post_raw(
            &json!({ "query": "mutation { verifyTotp(input: {code: \"1\", twoFactorToken: \"t\"}) { token } }" }),
            &[],
        )
        .await;
    assert_eq!(status, 429, "{body}");
    for _ in 0..2 {
        let body = app
            .gql(
                "mutation { sendTwoFactorOtp(twoFactorToken: \"t\") }",
                json!({}),
            )
            .await;
        assert_ne!(code(&body), "RATE_LIMITED", "{body}");
    }
    let (status, _, _) = app
        .post_raw(
            &json!({ "query": "mutation { sendTwoFactorOtp(twoFactorToken: \"t\") }" }),
            &[],
        )
        .await;
    assert_eq!(status, 429);
}

/// Completes a password sign-in's second step with `trustDevice: true` (no cookie jar: the
/// token travels in the body); returns the `apexkit.trusted_device=…` pair it set and the
/// session token.
async fn trusted_cookie(
    app: &TestApp,
    email: &str,
    password: &str,
    auth: &mut Authenticator,
) -> (String, String) {
    let body = app.gql(SIGN_IN, json!({ "e": email, "p": password })).await;
    let payload = data(&body, "signInEmail");
    assert_eq!(payload["twoFactorRequired"], true, "{body}");
    let challenge = payload["twoFactorToken"].as_str().unwrap().to_owned();
    let (status, headers, body) = app
        .post_raw(
            &json!({ "query": VERIFY_TOTP, "variables": { "c": auth.code().await, "t": challenge, "d": true } }),
            &[],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let token = data(&body, "verifyTotp")["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned();
    let pair = set_cookies(&headers)
        .iter()
        .find(|c| c.starts_with("apexkit.trusted_device="))
        .expect("the trusted-device cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    (pair, token)
}

/// Whether a password sign-in presenting `cookie` (only that cookie, from a fresh client: a
/// cookie the server merely cleared in its own browser still counts) stops at the second step.
async fn asks_second_step(app: &TestApp, cookie: &str, email: &str, password: &str) -> bool {
    let (status, _, body) = app
        .post_raw(
            &json!({ "query": SIGN_IN, "variables": { "e": email, "p": password } }),
            &[
                ("cookie", cookie),
                ("origin", app.url("").trim_end_matches('/')),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let payload = data(&body, "signInEmail");
    let required = payload["twoFactorRequired"] == true;
    assert_eq!(payload["token"].is_string(), !required, "{body}");
    required
}

async fn trusted_device_ends_with_disable_password_change_and_admin_actions(backend: Backend) {
    let (app, admin) = TestApp::builder(backend).spawn_admin().await;
    let email = "devices@example.com";
    let (_, mut auth, _) = enrolled(&app, email).await;
    let user_id = app
        .db
        .strings(&format!(
            "SELECT id AS s FROM \"user\" WHERE email = '{email}'"
        ))
        .await
        .remove(0);

    // disableTwoFactor, then a new enrolment: the old browser is asked for the new one.
    let (cookie, token) = trusted_cookie(&app, email, PASSWORD, &mut auth).await;
    assert!(!asks_second_step(&app, &cookie, email, PASSWORD).await);
    let off = app
        .gql_with(
            Some(&token),
            "mutation($p: String!, $c: String!) { disableTwoFactor(input: {password: $p, code: $c}) }",
            json!({ "p": PASSWORD, "c": auth.code().await }),
        )
        .await;
    assert_eq!(data(&off, "disableTwoFactor"), true, "{off}");
    let body = app
        .gql_with(Some(&token), ENABLE, json!({ "p": PASSWORD }))
        .await;
    let mut auth =
        Authenticator::from_uri(data(&body, "enableTwoFactor")["totpURI"].as_str().unwrap());
    let body = app
        .gql_with(Some(&token), VERIFY_TOTP, json!({ "c": auth.code().await }))
        .await;
    assert_eq!(
        data(&body, "verifyTotp")["user"]["twoFactorEnabled"],
        true,
        "{body}"
    );
    assert!(asks_second_step(&app, &cookie, email, PASSWORD).await);

    // changePassword with revokeOtherSessions.
    let (cookie, token) = trusted_cookie(&app, email, PASSWORD, &mut auth).await;
    assert!(!asks_second_step(&app, &cookie, email, PASSWORD).await);
    let new_password = "another long passphrase";
    let changed = app
        .gql_with(
            Some(&token),
            "mutation($input: ChangePasswordInput!) { changePassword(input: $input) { token } }",
            json!({ "input": { "currentPassword": PASSWORD, "newPassword": new_password, "revokeOtherSessions": true } }),
        )
        .await;
    assert!(
        data(&changed, "changePassword")["token"].is_string(),
        "{changed}"
    );
    assert!(asks_second_step(&app, &cookie, email, new_password).await);

    // adminRevokeUserSessions.
    let (cookie, _) = trusted_cookie(&app, email, new_password, &mut auth).await;
    assert!(!asks_second_step(&app, &cookie, email, new_password).await);
    let revoked = app
        .gql_with(
            Some(&admin),
            "mutation($id: ID!) { adminRevokeUserSessions(userId: $id) }",
            json!({ "id": user_id }),
        )
        .await;
    assert_eq!(data(&revoked, "adminRevokeUserSessions"), true, "{revoked}");
    assert!(asks_second_step(&app, &cookie, email, new_password).await);

    // A ban, lifted again: the browser is not trusted after the unban.
    let (cookie, _) = trusted_cookie(&app, email, new_password, &mut auth).await;
    assert!(!asks_second_step(&app, &cookie, email, new_password).await);
    let ban = app
        .gql_with(
            Some(&admin),
            "mutation($id: ID!) { adminBanUser(input: {userId: $id}) { banned } }",
            json!({ "id": user_id }),
        )
        .await;
    assert_eq!(data(&ban, "adminBanUser")["banned"], true, "{ban}");
    let unban = app
        .gql_with(
            Some(&admin),
            "mutation($id: ID!) { adminUnbanUser(userId: $id) { banned } }",
            json!({ "id": user_id }),
        )
        .await;
    assert_eq!(data(&unban, "adminUnbanUser")["banned"], false, "{unban}");
    assert!(asks_second_step(&app, &cookie, email, new_password).await);
}

/// The real binary (its own log, at `RUST_LOG=debug`, the most an operator turns on) through a whole
/// two-factor life: enrolment, a sign-in's second step by TOTP and by backup code, new backup
/// codes, turning it off. Neither the secret, nor a code, nor a backup code, nor a
/// `twoFactorToken` appears in its log or in any audit row.
async fn no_secret_code_or_token_in_logs_or_audit(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut proc = Proc::start(&[
        ("APEXKIT_LISTEN", "127.0.0.1:0"),
        ("DATABASE_URL", db.url.as_str()),
        ("RUST_LOG", "debug"),
    ]);
    let addr = tokio::task::block_in_place(|| proc.listening(Duration::from_secs(60)));
    let api = Api::at(format!("http://{addr}"));
    let email = "quiet@example.com";
    let token = api.sign_up(email).await;
    let mut secrets: Vec<String> = Vec::new();

    let body = api
        .gql_with(Some(&token), ENABLE, json!({ "p": PASSWORD }))
        .await;
    let setup = data(&body, "enableTwoFactor");
    let mut auth = Authenticator::from_uri(setup["totpURI"].as_str().unwrap());
    secrets.push(auth.secret.clone());
    let backup: Vec<String> = setup["backupCodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    secrets.extend(backup.iter().cloned());
    secrets.extend(backup.iter().map(|c| c.replace('-', "")));
    let confirm = auth.code().await;
    let body = api
        .gql_with(Some(&token), VERIFY_TOTP, json!({ "c": confirm }))
        .await;
    assert_eq!(
        data(&body, "verifyTotp")["user"]["twoFactorEnabled"],
        true,
        "{body}"
    );
    secrets.push(confirm);

    // Second step by TOTP, then by a backup code.
    async fn second(api: &Api, email: &str) -> String {
        let body = api.gql(SIGN_IN, json!({ "e": email, "p": PASSWORD })).await;
        let payload = data(&body, "signInEmail");
        assert_eq!(payload["twoFactorRequired"], true, "{body}");
        payload["twoFactorToken"].as_str().unwrap().to_owned()
    }
    let challenge = second(&api, email).await;
    let totp = auth.code().await;
    let body = api
        .gql(VERIFY_TOTP, json!({ "c": totp, "t": challenge }))
        .await;
    let session = data(&body, "verifyTotp")["token"]
        .as_str()
        .unwrap()
        .to_owned();
    secrets.extend([challenge, totp]);
    let challenge = second(&api, email).await;
    let body = api
        .gql(VERIFY_BACKUP, json!({ "c": backup[0], "t": challenge }))
        .await;
    assert!(
        data(&body, "verifyBackupCode")["token"].is_string(),
        "{body}"
    );
    secrets.push(challenge);

    // New backup codes, then off.
    let regen_code = auth.code().await;
    let body = api
        .gql_with(
            Some(&session),
            "mutation($p: String!, $c: String!) { generateBackupCodes(input: {password: $p, code: $c}) }",
            json!({ "p": PASSWORD, "c": regen_code }),
        )
        .await;
    let fresh: Vec<String> = data(&body, "generateBackupCodes")
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fresh.len(), 10, "{body}");
    secrets.push(regen_code);
    secrets.extend(fresh.iter().cloned());
    secrets.extend(fresh.iter().map(|c| c.replace('-', "")));
    let off_code = auth.code().await;
    let body = api
        .gql_with(
            Some(&session),
            "mutation($p: String!, $c: String!) { disableTwoFactor(input: {password: $p, code: $c}) }",
            json!({ "p": PASSWORD, "c": off_code }),
        )
        .await;
    assert_eq!(data(&body, "disableTwoFactor"), true, "{body}");
    secrets.push(off_code);

    let audit = db
        .strings(
            "SELECT type || ' ' || outcome || ' ' || COALESCE(actor_user_id, '') || ' '
                || COALESCE(subject_user_id, '') || ' ' || COALESCE(ip_address, '') || ' '
                || COALESCE(user_agent, '') || ' ' || COALESCE(CAST(detail AS text), '') AS s
             FROM audit_event",
        )
        .await;
    // Not vacuous: the flow was audited.
    for kind in ["two_factor_disable", "backup_codes_regenerate"] {
        assert!(audit.iter().any(|row| row.starts_with(kind)), "{audit:?}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = proc.log_text();
    assert!(log.contains("listening on"), "{log}");
    for secret in &secrets {
        assert!(secret.len() >= 6, "{secret}");
        for row in &audit {
            assert!(
                !row.contains(secret.as_str()),
                "{secret:?} in audit row {row}"
            );
        }
        assert!(!log.contains(secret.as_str()), "{secret:?} in log:\n{log}");
    }
    drop(proc);
}
