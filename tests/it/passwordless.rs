//! Magic links and emailed sign-in codes over HTTP on both databases, mail through the real
//! SMTP test server: the happy paths (sign-up included), single use, expiry, the scanner's GET,
//! no enumeration (same answer, same mail-queue work), redirect targets, attempts, the second
//! factor and rate limits.

use apexkit::config::Toggle;
use serde_json::json;

use crate::support::{Backend, PASSWORD, SmtpSink, TestApp, code, data, on_both};
use crate::two_factor::{Browser, SIGN_IN, VERIFY_TOTP, enrolled, set_cookies, six_digit_code};

on_both!(
    magic_link_signs_up_and_in_and_works_once,
    magic_link_scanner_get_spends_nothing_and_dead_links_redirect,
    magic_link_verify_mutation_expiry_and_reuse,
    unknown_address_gets_the_same_answer_and_queue_work,
    untrusted_redirect_targets_are_refused,
    magic_link_page_may_redirect_to_a_trusted_origin,
    email_code_right_wrong_three_times_and_expired,
    passwordless_sign_in_stops_at_the_second_factor,
    passwordless_senders_and_verifiers_are_rate_limited,
);

const MAGIC: &str = "mutation($i: SignInMagicLinkInput!) { signInMagicLink(input: $i) }";
const VERIFY_MAGIC: &str = "mutation($t: String!) { verifyMagicLink(token: $t) {
    token twoFactorRequired twoFactorToken user { email emailVerified name } session { id } } }";
const SEND_OTP: &str = "mutation($e: String!) { sendSignInOtp(input: {email: $e}) }";
const SIGN_IN_OTP: &str =
    "mutation($e: String!, $o: String!) { signInEmailOtp(input: {email: $e, otp: $o}) {
    token twoFactorRequired twoFactorToken user { email emailVerified } } }";

async fn outbox(app: &TestApp) -> i64 {
    app.db.count("SELECT COUNT(*) AS n FROM mail_outbox").await
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn magic_link_signs_up_and_in_and_works_once(backend: Backend) {
    let sink = SmtpSink::start();
    let app = TestApp::builder(backend).smtp(&sink).spawn().await;
    let email = "new@example.com";
    let body = app
        .gql(
            MAGIC,
            json!({ "i": { "email": email, "name": "Newcomer", "callbackURL": "/home", "newUserCallbackURL": "/welcome", "errorCallbackURL": "/oops" } }),
        )
        .await;
    assert_eq!(data(&body, "signInMagicLink"), true, "{body}");
    let mail = sink.latest(email, "Your sign-in link").await;
    let link = mail.link();
    assert!(link.starts_with(&app.url("/magic-link?token=")), "{link}");
    let token = mail.token();
    let stored = app
        .db
        .strings("SELECT identifier AS s FROM verification WHERE purpose = 'magic-link'")
        .await;
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], token, "only the hash is stored");
    assert_eq!(
        app.db.users().await,
        0,
        "nobody is created before the link is used"
    );

    let client = no_redirects();
    let resp = client.post(&link).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(
        resp.headers()["location"].to_str().unwrap(),
        app.url("/welcome"),
        "a new user goes to newUserCallbackURL"
    );
    let session = set_cookies(resp.headers())
        .into_iter()
        .find(|c| c.starts_with("apexkit.session_token="))
        .expect("session cookie");
    let session_token = session
        .trim_start_matches("apexkit.session_token=")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let me = app
        .gql_with(
            Some(&session_token),
            "{ me { email emailVerified name } }",
            json!({}),
        )
        .await;
    assert_eq!(data(&me, "me")["email"], email);
    assert_eq!(
        data(&me, "me")["emailVerified"],
        true,
        "the link proved the address"
    );
    assert_eq!(data(&me, "me")["name"], "Newcomer");

    // Used twice: the second POST lands on the flow's errorCallbackURL (the spent link is kept
    // until it would have expired, so its flow is still known), and signs nobody in.
    let again = client.post(&link).send().await.unwrap();
    assert_eq!(again.status(), 302);
    let to = again.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(to, app.url("/oops?error=invalid_token"));
    assert!(
        !set_cookies(again.headers())
            .iter()
            .any(|c| c.starts_with("apexkit.session_token=") && !c.contains("Max-Age=0")),
        "no session for a spent link"
    );
    // And through GraphQL, the same answer as any dead token.
    let reuse = app
        .gql(
            "mutation($t: String!) { verifyMagicLink(token: $t) { token } }",
            json!({ "t": token }),
        )
        .await;
    assert_eq!(code(&reuse), "INVALID_TOKEN", "{reuse}");

    // A returning user goes to callbackURL.
    app.gql(
        MAGIC,
        json!({ "i": { "email": email, "callbackURL": "/home" } }),
    )
    .await;
    let second = sink.wait_for(email, 2).await.into_iter().last().unwrap();
    let resp = client.post(second.link()).send().await.unwrap();
    assert_eq!(
        resp.headers()["location"].to_str().unwrap(),
        app.url("/home")
    );
    assert_eq!(
        app.db
            .count("SELECT COUNT(*) AS n FROM audit_event WHERE type = 'magic_link_sign_in' AND outcome = 'success'")
            .await,
        2
    );
}

async fn magic_link_scanner_get_spends_nothing_and_dead_links_redirect(backend: Backend) {
    let sink = SmtpSink::start();
    let app = TestApp::builder(backend).smtp(&sink).spawn().await;
    let email = "scanned@example.com";
    app.sign_up(email).await;
    app.gql(
        MAGIC,
        json!({ "i": { "email": email, "errorCallbackURL": "/oops" } }),
    )
    .await;
    let mail = sink.latest(email, "Your sign-in link").await;
    let client = no_redirects();
    for _ in 0..3 {
        let page = client.get(mail.link()).send().await.unwrap();
        assert_eq!(page.status(), 200);
        assert!(
            page.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert!(page.headers().get("set-cookie").is_none());
        let html = page.text().await.unwrap();
        assert!(
            html.contains("<form method=\"post\">") && !html.contains(&mail.token()),
            "{html}"
        );
    }
    assert_eq!(
        app.db
            .count("SELECT COUNT(*) AS n FROM verification WHERE purpose = 'magic-link'")
            .await,
        1,
        "a GET spends nothing"
    );
    let before = app.db.count("SELECT COUNT(*) AS n FROM session").await;
    // Expired: to the flow's errorCallbackURL with token_expired, no session.
    app.db
        .execute("UPDATE verification SET expires_at = '2000-01-01 00:00:00' WHERE purpose = 'magic-link'")
        .await;
    let resp = client.post(mail.link()).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(
        resp.headers()["location"].to_str().unwrap(),
        app.url("/oops?error=token_expired")
    );
    assert_eq!(
        app.db.count("SELECT COUNT(*) AS n FROM session").await,
        before
    );
}

async fn magic_link_verify_mutation_expiry_and_reuse(backend: Backend) {
    let sink = SmtpSink::start();
    let app = TestApp::builder(backend).smtp(&sink).spawn().await;
    let email = "mutation@example.com";
    app.sign_up(email).await;
    app.gql(MAGIC, json!({ "i": { "email": email } })).await;
    let first = sink.latest(email, "Your sign-in link").await.token();
    app.db
        .execute("UPDATE verification SET expires_at = '2000-01-01 00:00:00' WHERE purpose = 'magic-link'")
        .await;
    let expired = app.gql(VERIFY_MAGIC, json!({ "t": first })).await;
    assert_eq!(code(&expired), "TOKEN_EXPIRED", "{expired}");

    app.gql(MAGIC, json!({ "i": { "email": email } })).await;
    let mails = sink.wait_for(email, 2).await;
    let token = mails.last().unwrap().token();
    let body = app.gql(VERIFY_MAGIC, json!({ "t": token })).await;
    let payload = data(&body, "verifyMagicLink");
    assert!(payload["token"].is_string(), "{body}");
    assert_eq!(
        payload["user"]["emailVerified"], true,
        "an unverified address is verified now"
    );
    let reused = app.gql(VERIFY_MAGIC, json!({ "t": token })).await;
    assert_eq!(code(&reused), "INVALID_TOKEN");
    let garbage = app.gql(VERIFY_MAGIC, json!({ "t": "not-a-token" })).await;
    assert_eq!(code(&garbage), "INVALID_TOKEN");
}

async fn unknown_address_gets_the_same_answer_and_queue_work(backend: Backend) {
    for sign_up in [true, false] {
        let sink = SmtpSink::start();
        let app = TestApp::builder(backend)
            .smtp(&sink)
            .config(move |c| c.two_factor.magic_link_sign_up = sign_up)
            .spawn()
            .await;
        app.sign_up("known@example.com").await;
        for op in [MAGIC, SEND_OTP] {
            let mut answers = Vec::new();
            for email in ["known@example.com", "unknown@example.com"] {
                let before = outbox(&app).await;
                let vars = if op == MAGIC {
                    json!({ "i": { "email": email } })
                } else {
                    json!({ "e": email })
                };
                let body = app.gql(op, vars).await;
                assert_eq!(
                    outbox(&app).await,
                    before + 1,
                    "one queued mail for {email}: {body}"
                );
                answers.push(body);
            }
            assert_eq!(
                answers[0], answers[1],
                "same answer for a known and an unknown address"
            );
        }
        let unknown = sink.wait_for("unknown@example.com", 2).await;
        if sign_up {
            assert_eq!(unknown[0].subject, "Your sign-in link");
            assert_eq!(unknown[1].subject, "Your sign-in code");
        } else {
            assert!(
                unknown.iter().all(|m| m.subject == "Sign-in request"),
                "{unknown:?}"
            );
            assert!(unknown.iter().all(|m| m.links().is_empty()));
            assert_eq!(
                app.db
                    .count("SELECT COUNT(*) AS n FROM verification WHERE purpose = 'magic-link' AND user_id IS NULL")
                    .await,
                0
            );
        }
        assert_eq!(app.db.users().await, 1, "asking creates nobody");
    }
}

async fn untrusted_redirect_targets_are_refused(backend: Backend) {
    let sink = SmtpSink::start();
    let app = TestApp::builder(backend).smtp(&sink).spawn().await;
    app.sign_up("victim@example.com").await;
    for (field, value) in [
        ("callbackURL", "https://evil.example/steal"),
        ("callbackURL", "//evil.example/steal"),
        ("newUserCallbackURL", "https://evil.example/"),
        ("errorCallbackURL", "javascript:alert(1)"),
    ] {
        let before = outbox(&app).await;
        let body = app
            .gql(
                MAGIC,
                json!({ "i": { "email": "victim@example.com", field: value } }),
            )
            .await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{field}={value}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field);
        assert_eq!(
            outbox(&app).await,
            before,
            "nothing queued for a refused target"
        );
    }
}

/// The `/magic-link` button's POST redirects to a frontend on another trusted origin: the
/// page's CSP `form-action` must allow it, or browsers stop at the redirect (Chromium does; the
/// browser test in `browser.rs` goes through it).
async fn magic_link_page_may_redirect_to_a_trusted_origin(backend: Backend) {
    const APP: &str = "http://localhost:5173";
    let sink = SmtpSink::start();
    let app = TestApp::builder(backend)
        .smtp(&sink)
        .config(|c| c.server.trusted_origins = vec![APP.to_owned()])
        .spawn()
        .await;
    let email = "spa@example.com";
    let body = app
        .gql(
            MAGIC,
            json!({ "i": { "email": email, "callbackURL": format!("{APP}/"), "newUserCallbackURL": format!("{APP}/") } }),
        )
        .await;
    assert_eq!(data(&body, "signInMagicLink"), true, "{body}");
    let link = sink.latest(email, "Your sign-in link").await.link();
    let client = no_redirects();
    let page = client.get(&link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let form_action = csp
        .split(';')
        .map(str::trim)
        .find_map(|d| d.strip_prefix("form-action "))
        .unwrap_or_else(|| panic!("form-action in {csp}"));
    let allowed: Vec<&str> = form_action.split(' ').collect();
    assert!(allowed.contains(&"'self'"), "{csp}");
    assert!(allowed.contains(&APP), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let resp = client.post(&link).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(resp.headers()["location"], format!("{APP}/"));
}

async fn email_code_right_wrong_three_times_and_expired(backend: Backend) {
    let sink = SmtpSink::start();
    let app = TestApp::builder(backend).smtp(&sink).spawn().await;
    let email = "coder@example.com";

    // Three wrong codes, then even the right one is dead.
    app.gql(SEND_OTP, json!({ "e": email })).await;
    let sent = six_digit_code(&sink.latest(email, "Your sign-in code").await.text);
    let stored = app
        .db
        .strings("SELECT code_hash AS s FROM email_code")
        .await;
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].contains(&sent));
    let wrong = if sent == "000000" { "111111" } else { "000000" };
    for _ in 0..3 {
        let body = app
            .gql(SIGN_IN_OTP, json!({ "e": email, "o": wrong }))
            .await;
        assert_eq!(code(&body), "INVALID_CODE", "{body}");
    }
    let dead = app.gql(SIGN_IN_OTP, json!({ "e": email, "o": sent })).await;
    assert_eq!(
        code(&dead),
        "INVALID_CODE",
        "void after three wrong codes: {dead}"
    );
    assert_eq!(app.db.users().await, 0);

    // A new code: right the first time; signs the address up, verified; single use.
    app.gql(SEND_OTP, json!({ "e": email })).await;
    let mails = sink.wait_for(email, 2).await;
    let sent = six_digit_code(&mails.last().unwrap().text);
    let body = app.gql(SIGN_IN_OTP, json!({ "e": email, "o": sent })).await;
    let payload = data(&body, "signInEmailOtp");
    assert!(payload["token"].is_string(), "{body}");
    assert_eq!(payload["user"]["emailVerified"], true);
    let reused = app.gql(SIGN_IN_OTP, json!({ "e": email, "o": sent })).await;
    assert_eq!(code(&reused), "INVALID_CODE");

    // A new code voids the old one; an expired one is dead.
    app.gql(SEND_OTP, json!({ "e": email })).await;
    let older = six_digit_code(&sink.wait_for(email, 3).await.last().unwrap().text);
    app.gql(SEND_OTP, json!({ "e": email })).await;
    let newer = six_digit_code(&sink.wait_for(email, 4).await.last().unwrap().text);
    if older != newer {
        let body = app
            .gql(SIGN_IN_OTP, json!({ "e": email, "o": older }))
            .await;
        assert_eq!(code(&body), "INVALID_CODE", "a new code voids the old");
    }
    app.db
        .execute("UPDATE email_code SET expires_at = '2000-01-01 00:00:00'")
        .await;
    let expired = app
        .gql(SIGN_IN_OTP, json!({ "e": email, "o": newer }))
        .await;
    assert_eq!(code(&expired), "INVALID_CODE", "{expired}");
    assert_eq!(
        app.db
            .count("SELECT COUNT(*) AS n FROM audit_event WHERE type = 'email_otp_sign_in' AND outcome = 'success'")
            .await,
        1
    );
}

async fn passwordless_sign_in_stops_at_the_second_factor(backend: Backend) {
    let sink = SmtpSink::start();
    let app = TestApp::builder(backend).smtp(&sink).spawn().await;
    let email = "both@example.com";
    let (_, mut auth, _) = enrolled(&app, email).await;
    let sessions = app.db.count("SELECT COUNT(*) AS n FROM session").await;

    // Email code: the second step, no session.
    app.gql(SEND_OTP, json!({ "e": email })).await;
    let sent = six_digit_code(&sink.latest(email, "Your sign-in code").await.text);
    let body = app.gql(SIGN_IN_OTP, json!({ "e": email, "o": sent })).await;
    let payload = data(&body, "signInEmailOtp");
    assert_eq!(payload["twoFactorRequired"], true, "{body}");
    assert!(payload["token"].is_null());
    assert_eq!(
        app.db.count("SELECT COUNT(*) AS n FROM session").await,
        sessions
    );
    let done = app
        .gql(
            VERIFY_TOTP,
            json!({ "c": auth.code().await, "t": payload["twoFactorToken"] }),
        )
        .await;
    assert!(data(&done, "verifyTotp")["token"].is_string(), "{done}");

    // Magic link in a browser: back to the callback with twoFactorRequired=true and the
    // second step's cookie, which verifyTotp then uses by itself.
    app.gql(
        MAGIC,
        json!({ "i": { "email": email, "callbackURL": "/app" } }),
    )
    .await;
    let mail = sink.latest(email, "Your sign-in link").await;
    let browser = Browser::new(&app);
    let resp = browser.client.post(mail.link()).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(
        resp.headers()["location"].to_str().unwrap(),
        app.url("/app?twoFactorRequired=true")
    );
    let cookies = set_cookies(resp.headers());
    assert!(
        cookies.iter().any(|c| c.starts_with("apexkit.two_factor=")),
        "{cookies:?}"
    );
    assert!(
        !cookies
            .iter()
            .any(|c| c.starts_with("apexkit.session_token="))
    );
    let (_, body) = browser
        .gql(VERIFY_TOTP, json!({ "c": auth.code().await }))
        .await;
    assert!(data(&body, "verifyTotp")["token"].is_string(), "{body}");
    // The password path too, for completeness of "every method stops".
    let body = app.gql(SIGN_IN, json!({ "e": email, "p": PASSWORD })).await;
    assert_eq!(data(&body, "signInEmail")["twoFactorRequired"], true);
}

async fn passwordless_senders_and_verifiers_are_rate_limited(backend: Backend) {
    let sink = SmtpSink::start();
    let app = TestApp::builder(backend)
        .smtp(&sink)
        .config(|c| {
            c.rate_limits.enabled = Some(Toggle::On);
            c.rate_limits.credential = "2/1000000000".parse().unwrap();
            c.rate_limits.mail = "2/1000000000".parse().unwrap();
        })
        .spawn()
        .await;
    // Mail bucket: signInMagicLink and sendSignInOtp together.
    let body = app
        .gql(MAGIC, json!({ "i": { "email": "a@example.com" } }))
        .await;
    assert_eq!(data(&body, "signInMagicLink"), true);
    let body = app.gql(SEND_OTP, json!({ "e": "a@example.com" })).await;
    assert_eq!(data(&body, "sendSignInOtp"), true);
    let (status, _, body) = app
        .post_raw(
            &json!({ "query": MAGIC, "variables": { "i": { "email": "b@example.com" } } }),
            &[],
        )
        .await;
    assert_eq!(status, 429, "{body}");
    // Credential bucket: verifyMagicLink and signInEmailOtp together.
    let body = app.gql(VERIFY_MAGIC, json!({ "t": "x" })).await;
    assert_eq!(code(&body), "INVALID_TOKEN");
    let body = app
        .gql(SIGN_IN_OTP, json!({ "e": "a@example.com", "o": "1" }))
        .await;
    assert_eq!(code(&body), "INVALID_CODE");
    let (status, _, _) = app
        .post_raw(
            &json!({ "query": SIGN_IN_OTP, "variables": { "e": "a@example.com", "o": "1" } }),
            &[],
        )
        .await;
    assert_eq!(status, 429);
    // The /magic-link form shares verifyMagicLink's budget.
    let resp = no_redirects()
        .post(app.url("/magic-link?token=abc"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
}
