//! Account management and the mail flows, end to end against a real SMTP server on loopback:
//! verification, password reset, email and password change, deletion, link safety, delivery
//! through outages, send limits and replicas.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{
    Api, Backend, PASSWORD, Proc, SmtpSink, TestApp, code, on_both, signed_in_token,
};

on_both!(
    required_verification_end_to_end,
    sign_up_with_a_registered_email_looks_fresh,
    send_verification_email_and_verify_over_graphql,
    password_reset_end_to_end,
    reset_for_an_unknown_email_answers_the_same,
    tokens_are_single_use_purpose_bound_and_expiring,
    a_new_reset_request_voids_older_links,
    concurrent_double_reset_exactly_one_succeeds,
    smtp_outage_loses_no_mail_and_changes_no_answer,
    hostile_redirect_targets_are_refused,
    trusted_targets_and_relative_paths_shape_the_link,
    host_headers_never_change_links,
    change_email_end_to_end,
    change_email_to_a_taken_address_answers_the_same,
    change_email_needs_a_fresh_session,
    change_email_needs_the_password_or_a_recent_sign_in,
    change_password_keeps_or_rotates_sessions,
    update_user_changes_name_and_image_only,
    delete_user_removes_everything_in_one_go,
    per_address_send_limit_drops_mail_silently,
    two_replicas_never_send_a_row_twice,
);

const NEW_PASSWORD: &str = "a brand new passphrase";

async fn required_verification_end_to_end(backend: Backend) {
    let smtp = SmtpSink::start();
    let app = TestApp::builder(backend)
        .smtp(&smtp)
        .config(|c| {
            c.mail.require_email_verification = true;
        })
        .spawn()
        .await;

    let body = app.sign_up_as("Ada", "ada@example.com", PASSWORD).await;
    assert!(body["errors"].is_null(), "{body}");
    let payload = &body["data"]["signUpEmail"];
    assert!(
        payload["token"].is_null() && payload["session"].is_null(),
        "{body}"
    );
    assert_eq!(payload["user"]["emailVerified"], false);
    assert_eq!(app.db.count("SELECT COUNT(*) AS n FROM session").await, 0);

    let mail = smtp
        .latest("ada@example.com", "Verify your email address")
        .await;
    assert_eq!(mail.from, "auth@example.com");
    let link = mail.link();
    assert!(
        link.starts_with(&format!("{}/verify-email?token=", app.base)),
        "{link}"
    );
    let token = mail.token();
    assert!(token.len() >= 22, "at least 128 bits");
    assert!(
        mail.html.contains(&format!("href=\"{link}\"")),
        "HTML part links too"
    );
    assert_eq!(
        app.db
            .count(&format!(
                "SELECT COUNT(*) AS n FROM verification WHERE identifier = '{token}' OR value = '{token}'"
            ))
            .await,
        0,
        "the token is stored only hashed"
    );

    // Unverified: a wrong password says nothing more than usual, a right one says why.
    let wrong = app.sign_in("ada@example.com", "not the password").await;
    assert_eq!(code(&wrong), "INVALID_EMAIL_OR_PASSWORD");
    let right = app.sign_in("ada@example.com", PASSWORD).await;
    assert_eq!(code(&right), "EMAIL_NOT_VERIFIED");
    assert_eq!(app.db.count("SELECT COUNT(*) AS n FROM session").await, 0);

    // Following the link: GET shows a form and consumes nothing; POST verifies.
    let page = app.client.get(&link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    let html = page.text().await.unwrap();
    assert!(!html.contains(&token), "the page does not echo the token");
    assert_eq!(
        app.db.count("SELECT COUNT(*) AS n FROM verification").await,
        1
    );
    let done = app.client.post(&link).send().await.unwrap();
    assert_eq!(done.status(), 200);
    assert!(done.text().await.unwrap().contains("confirmed"));

    let signed = app.sign_in("ada@example.com", PASSWORD).await;
    signed_in_token(&signed);
    let again = app.client.post(&link).send().await.unwrap();
    assert_eq!(again.status(), 400, "single use");
    assert_eq!(code(&app.verify_email(&token).await), "INVALID_TOKEN");
}

async fn sign_up_with_a_registered_email_looks_fresh(backend: Backend) {
    let smtp = SmtpSink::start();
    let app = TestApp::builder(backend)
        .smtp(&smtp)
        .config(|c| {
            c.mail.require_email_verification = true;
        })
        .spawn()
        .await;
    let first = app.sign_up_as("Ada", "ada@example.com", PASSWORD).await;
    let second = app
        .sign_up_as("Eve", " ADA@example.com", "another long password")
        .await;
    let fresh = app.sign_up_as("Bob", "bob@example.com", PASSWORD).await;
    for body in [&first, &second, &fresh] {
        assert!(body["errors"].is_null(), "{body}");
    }
    // Same shape, same nulls, same values where they do not name the user.
    let shape = |b: &Value| {
        let p = &b["data"]["signUpEmail"];
        (
            p["token"].is_null(),
            p["session"].is_null(),
            p["user"]["emailVerified"].clone(),
            p["user"]["image"].clone(),
            p["user"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect::<Vec<_>>(),
            p["user"]["id"].as_str().unwrap().len(),
        )
    };
    assert_eq!(shape(&second), shape(&fresh));
    assert_eq!(shape(&first), shape(&fresh));
    assert_eq!(
        second["data"]["signUpEmail"]["user"]["email"],
        "ada@example.com"
    );
    assert_eq!(second["data"]["signUpEmail"]["user"]["name"], "Eve");
    assert_ne!(
        second["data"]["signUpEmail"]["user"]["id"],
        first["data"]["signUpEmail"]["user"]["id"]
    );
    assert_eq!(
        app.db
            .count("SELECT COUNT(*) AS n FROM \"user\" WHERE email = 'ada@example.com'")
            .await,
        1
    );
    // The owner of the address hears about the attempt; the original password still works
    // once verified.
    let notice = smtp
        .latest("ada@example.com", "Sign-up attempt with your email address")
        .await;
    assert!(notice.links().is_empty());
    let verification = smtp
        .latest("ada@example.com", "Verify your email address")
        .await;
    assert_eq!(
        app.verify_email(&verification.token()).await["data"]["verifyEmail"]["emailVerified"],
        true
    );
    signed_in_token(&app.sign_in("ada@example.com", PASSWORD).await);
    assert_eq!(
        code(
            &app.sign_in("ada@example.com", "another long password")
                .await
        ),
        "INVALID_EMAIL_OR_PASSWORD"
    );
}

async fn send_verification_email_and_verify_over_graphql(backend: Backend) {
    let smtp = SmtpSink::start();
    let app = TestApp::builder(backend).smtp(&smtp).spawn().await;
    let token = app.sign_up("ada@example.com").await;
    let renamed = app
        .gql_with(
            Some(&token),
            "mutation { updateUser(input: {name: \"<img src=x onerror=alert(1)> Ada\"}) { name } }",
            json!({}),
        )
        .await;
    assert!(renamed["errors"].is_null(), "{renamed}");

    let sent = app
        .gql(
            "mutation($input: SendVerificationEmailInput!) { sendVerificationEmail(input: $input) }",
            json!({ "input": { "email": "Ada@Example.com", "callbackURL": "/welcome?from=mail" } }),
        )
        .await;
    assert_eq!(sent["data"]["sendVerificationEmail"], true, "{sent}");
    let mail = smtp
        .latest("ada@example.com", "Verify your email address")
        .await;
    assert!(
        mail.link()
            .starts_with(&format!("{}/welcome?from=mail&token=", app.base)),
        "{}",
        mail.link()
    );
    assert!(
        mail.html
            .contains("Hello &lt;img src=x onerror=alert(1)&gt; Ada,"),
        "{}",
        mail.html
    );
    assert!(!mail.html.contains("<img"), "user data is escaped in HTML");
    assert!(
        mail.text
            .contains("Hello <img src=x onerror=alert(1)> Ada,")
    );
    let verified = app.verify_email(&mail.token()).await;
    assert_eq!(
        verified["data"]["verifyEmail"]["emailVerified"], true,
        "{verified}"
    );
    assert_eq!(verified["data"]["verifyEmail"]["email"], "ada@example.com");
    let me = app
        .gql_with(Some(&token), "{ me { emailVerified } }", json!({}))
        .await;
    assert_eq!(me["data"]["me"]["emailVerified"], true);
    assert_eq!(
        code(&app.verify_email(&mail.token()).await),
        "INVALID_TOKEN"
    );

    // Verified and unknown addresses: the same answer, no token, no mail.
    let before = app.db.count("SELECT COUNT(*) AS n FROM mail_outbox").await;
    for email in ["ada@example.com", "nobody@example.com"] {
        assert_eq!(
            app.send_verification(email).await["data"]["sendVerificationEmail"],
            true
        );
    }
    assert_eq!(
        app.db.count("SELECT COUNT(*) AS n FROM mail_outbox").await,
        before
    );
    assert_eq!(
        app.db.count("SELECT COUNT(*) AS n FROM verification").await,
        0
    );
}

async fn password_reset_end_to_end(backend: Backend) {
    let smtp = SmtpSink::start();
    let app = TestApp::builder(backend).smtp(&smtp).spawn().await;
    let first = app.sign_up("ada@example.com").await;
    let second = signed_in_token(&app.sign_in("ada@example.com", PASSWORD).await);

    let asked = app.request_reset("ADA@example.com ").await;
    assert_eq!(asked, json!({ "data": { "requestPasswordReset": true } }));
    let mail = smtp.latest("ada@example.com", "Reset your password").await;
    let link = mail.link();
    assert!(
        link.starts_with(&format!("{}/reset-password?token=", app.base)),
        "{link}"
    );
    assert!(mail.text.contains("1 hour"), "{}", mail.text);

    // The page: GET shows a form; a refused password keeps the token usable.
    let page = app.client.get(&link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("type=\"password\""));
    let short = app
        .client
        .post(&link)
        .form(&[("password", "short")])
        .send()
        .await
        .unwrap();
    assert_eq!(short.status(), 400);
    let done = app
        .client
        .post(&link)
        .form(&[("password", NEW_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);

    for token in [&first, &second] {
        assert!(
            app.session(token).await["data"]["session"].is_null(),
            "every session ends"
        );
    }
    assert_eq!(
        code(&app.sign_in("ada@example.com", PASSWORD).await),
        "INVALID_EMAIL_OR_PASSWORD"
    );
    signed_in_token(&app.sign_in("ada@example.com", NEW_PASSWORD).await);
    assert_eq!(
        code(
            &app.reset_password(&mail.token(), "yet another passphrase")
                .await
        ),
        "INVALID_TOKEN"
    );
}

async fn reset_for_an_unknown_email_answers_the_same(backend: Backend) {
    let smtp = SmtpSink::start();
    let app = TestApp::builder(backend).smtp(&smtp).spawn().await;
    app.sign_up("ada@example.com").await;

    let known = app.request_reset("ada@example.com").await;
    let unknown = app.request_reset("nobody@example.com").await;
    assert_eq!(known, unknown);
    assert_eq!(unknown, json!({ "data": { "requestPasswordReset": true } }));
    // The same work either way: one queued message each.
    assert_eq!(
        app.db
            .count("SELECT COUNT(*) AS n FROM mail_outbox WHERE recipient IN ('ada@example.com', 'nobody@example.com')")
            .await,
        2
    );
    let note = smtp
        .latest("nobody@example.com", "Password reset request")
        .await;
    assert!(
        note.links().is_empty(),
        "no link for an address without account"
    );
    assert!(note.text.contains("no account"));

    let malformed = app.request_reset("not an address").await;
    assert_eq!(code(&malformed), "INVALID_EMAIL");
}

async fn tokens_are_single_use_purpose_bound_and_expiring(backend: Backend) {
    let smtp = SmtpSink::start();
    let app = TestApp::builder(backend).smtp(&smtp).spawn().await;
    app.sign_up("ada@example.com").await;
    app.send_verification("ada@example.com").await;
    app.request_reset("ada@example.com").await;
    let verify_token = smtp
        .latest("ada@example.com", "Verify your email address")
        .await
        .token();
    let reset_token = smtp
        .latest("ada@example.com", "Reset your password")
        .await
        .token();
    assert_ne!(verify_token, reset_token);

    // Wrong purpose: refused, and the token survives for its own purpose.
    assert_eq!(
        code(&app.reset_password(&verify_token, NEW_PASSWORD).await),
        "INVALID_TOKEN"
    );
    assert_eq!(code(&app.verify_email(&reset_token).await), "INVALID_TOKEN");
    // Garbage and near-misses.
    for bad in [
        "",
        "nope",
        &reset_token[..reset_token.len() - 1],
        &format!("{reset_token}x"),
    ] {
        assert_eq!(
            code(&app.reset_password(bad, NEW_PASSWORD).await),
            "INVALID_TOKEN",
            "{bad:?}"
        );
    }
    // The policy applies before the token is spent.
    assert_eq!(
        code(&app.reset_password(&reset_token, "short").await),
        "PASSWORD_TOO_SHORT"
    );
    assert_eq!(
        code(&app.reset_password(&reset_token, &"x".repeat(129)).await),
        "PASSWORD_TOO_LONG"
    );
    assert_eq!(
        app.verify_email(&verify_token).await["data"]["verifyEmail"]["emailVerified"],
        true
    );

    // Expiry: an expired reset token says so once, then it is gone.
    app.db
        .execute("UPDATE verification SET expires_at = '2020-01-01 00:00:00' WHERE purpose = 'reset-password'")
        .await;
    assert_eq!(
        code(&app.reset_password(&reset_token, NEW_PASSWORD).await),
        "TOKEN_EXPIRED"
    );
    assert_eq!(
        code(&app.reset_password(&reset_token, NEW_PASSWORD).await),
        "INVALID_TOKEN"
    );
    signed_in_token(&app.sign_in("ada@example.com", PASSWORD).await);

    // A verification token expires too.
    app.db
        .execute("UPDATE \"user\" SET email_verified = false")
        .await;
    app.send_verification("ada@example.com").await;
    smtp.wait_for("ada@example.com", 3).await;
    let late = smtp
        .latest("ada@example.com", "Verify your email address")
        .await
        .token();
    assert_ne!(late, verify_token);
    app.db
        .execute("UPDATE verification SET expires_at = '2020-01-01 00:00:00'")
        .await;
    assert_eq!(code(&app.verify_email(&late).await), "TOKEN_EXPIRED");
}

async fn a_new_reset_request_voids_older_links(backend: Backend) {
    let smtp = SmtpSink::start();
    let app = TestApp::builder(backend).smtp(&smtp).spawn().await;
    app.sign_up("ada@example.com").await;
    app.request_reset("ada@example.com").await;
    let old = smtp.wait_for("ada@example.com", 1).await[0].token();
    app.request_reset("ada@example.com").await;
    let new = smtp.wait_for("ada@example.com", 2).await[1].token();
    assert_ne!(old, new);
    assert_eq!(
        code(&app.reset_password(&old, NEW_PASSWORD).await),
        "INVALID_TOKEN"
    );
    assert_eq!(
        app.reset_password(&new, NEW_PASSWORD).await["data"]["resetPassword"],
        true
    );
}

async fn concurrent_double_reset_exactly_one_succeeds(backend: Backend) {
    let smtp = SmtpSink::start();
    let app = TestApp::builder(backend).smtp(&smtp).spawn().await;
    app.sign_up("ada@example.com").await;
    app.request_reset("ada@example.com").await;
    let token = smtp
        .latest("ada@example.com", "Reset your password")
        .await
        .token();

    let attempts = (0..4).map(|i| {
        let password = format!("{NEW_PASSWORD} {i}");
        let app = &app;
        let token = token.clone();
        async move {
            (
                password.clone(),
                app.reset_password(&token, &password).await,
            )
        }
    });
    let results = futures_util::future::join_all(attempts).await;
    let winners: Vec<&String> = results
        .iter()
        .filter(|(_, body)| body["data"]["resetPassword"] == true)
        .map(|(p, _)| p)
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for (_, body) in results
        .iter()
        .filter(|(_, b)| b["data"]["resetPassword"] != true)
    {
        assert_eq!(code(body), "INVALID_TOKEN");
    }
    signed_in_token(&app.sign_in("ada@example.com", winners[0]).await);
}

async fn smtp_outage_loses_no_mail_and_changes_no_answer(backend: Backend) {
    // The same server answers before and during the outage: the answers must not differ.
    let smtp = SmtpSink::start();
    let app = TestApp::builder(backend).smtp(&smtp).spawn().await;
    app.sign_up("ada@example.com").await;
    let before_reset = app.request_reset("ada@example.com").await;
    let before_verify = app.send_verification("ada@example.com").await;
    smtp.wait_for("ada@example.com", 2).await;

    smtp.set_down(true);
    let answer = app.request_reset("ada@example.com").await;
    assert_eq!(answer, before_reset);
    assert_eq!(answer, json!({ "data": { "requestPasswordReset": true } }));
    let sent = app.send_verification("ada@example.com").await;
    assert_eq!(sent, before_verify);
    assert_eq!(sent, json!({ "data": { "sendVerificationEmail": true } }));

    // Deliveries fail and are rescheduled, nothing is lost.
    let mut failed = false;
    for _ in 0..200 {
        if app
            .db
            .count("SELECT COUNT(*) AS n FROM mail_outbox WHERE attempts >= 2 AND sent_at IS NULL AND last_error IS NOT NULL")
            .await
            == 2
        {
            failed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(failed, "both messages retried while the server was down");
    assert_eq!(
        smtp.for_address("ada@example.com").len(),
        2,
        "nothing got through"
    );

    smtp.set_down(false);
    let mails = smtp.wait_for("ada@example.com", 4).await;
    let mut subjects: Vec<&str> = mails[2..].iter().map(|m| m.subject.as_str()).collect();
    subjects.sort_unstable();
    assert_eq!(
        subjects,
        ["Reset your password", "Verify your email address"]
    );
    let reset_mail = smtp.latest("ada@example.com", "Reset your password").await;
    assert_eq!(
        app.reset_password(&reset_mail.token(), NEW_PASSWORD).await["data"]["resetPassword"],
        true
    );
    // The server has the messages; the worker marks its rows right after.
    let settled = "SELECT COUNT(*) AS n FROM mail_outbox WHERE sent_at IS NULL OR text_body <> '' OR html_body <> ''";
    let mut left = app.db.count(settled).await;
    for _ in 0..100 {
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        left = app.db.count(settled).await;
    }
    assert_eq!(
        left, 0,
        "every row delivered, and delivered rows keep no link"
    );
}

const HOSTILE: &[&str] = &[
    "//evil.com",
    "//evil.com/reset",
    "/\\evil.com",
    "\\\\evil.com",
    "/%2F%2Fevil.com",
    "/%2f%2fevil.com",
    "/%5Cevil.com",
    "/%5cevil.com",
    "javascript:alert(1)",
    "JAVASCRIPT:alert(document.cookie)",
    "data:text/html,<script>alert(1)</script>",
    "https://evil.com/reset",
    "https://app.example.com.evil.com/reset",
    "https://app.example.com@evil.com/reset",
    "https://evil.com#@app.example.com",
    "http://app.example.com/reset",
    "evil.com/reset",
    " /reset",
];

async fn hostile_redirect_targets_are_refused(backend: Backend) {
    let smtp = SmtpSink::start();
    let app = TestApp::builder(backend)
        .smtp(&smtp)
        .config(|c| {
            c.server.trusted_origins = vec!["https://app.example.com".into()];
        })
        .spawn()
        .await;
    let token = app.sign_up("ada@example.com").await;
    for target in HOSTILE {
        let r = app
            .gql(
                "mutation($input: RequestPasswordResetInput!) { requestPasswordReset(input: $input) }",
                json!({ "input": { "email": "ada@example.com", "redirectTo": target } }),
            )
            .await;
        assert_eq!(code(&r), "BAD_USER_INPUT", "{target}: {r}");
        assert_eq!(r["errors"][0]["extensions"]["field"], "redirectTo");
        let v = app
            .gql(
                "mutation($input: SendVerificationEmailInput!) { sendVerificationEmail(input: $input) }",
                json!({ "input": { "email": "ada@example.com", "callbackURL": target } }),
            )
            .await;
        assert_eq!(code(&v), "BAD_USER_INPUT", "{target}: {v}");
        assert_eq!(v["errors"][0]["extensions"]["field"], "callbackURL");
        let c = app
            .gql_with(
                Some(&token),
                "mutation($input: ChangeEmailInput!) { changeEmail(input: $input) }",
                json!({ "input": { "newEmail": "new@example.com", "callbackURL": target } }),
            )
            .await;
        assert_eq!(code(&c), "BAD_USER_INPUT", "{target}: {c}");
    }
    assert_eq!(
        app.db.count("SELECT COUNT(*) AS n FROM mail_outbox").await,
        0
    );
    assert_eq!(
        app.db.count("SELECT COUNT(*) AS n FROM verification").await,
        0
    );
}

async fn trusted_targets_and_relative_paths_shape_the_link(backend: Backend) {
    let smtp = SmtpSink::start();
    let app = TestApp::builder(backend)
        .smtp(&smtp)
        .config(|c| {
            c.server.trusted_origins = vec!["https://app.example.com".into()];
        })
        .spawn()
        .await;
    app.sign_up("ada@example.com").await;
    let r = app
        .gql(
            "mutation($input: RequestPasswordResetInput!) { requestPasswordReset(input: $input) }",
            json!({ "input": { "email": "ada@example.com", "redirectTo": "https://app.example.com/reset#top" } }),
        )
        .await;
    assert_eq!(r["data"]["requestPasswordReset"], true, "{r}");
    let mail = smtp.wait_for("ada@example.com", 1).await.remove(0);
    assert!(
        mail.link()
            .starts_with("https://app.example.com/reset?token=")
            && mail.link().ends_with("#top"),
        "{}",
        mail.link()
    );
    // The frontend hands the token to resetPassword.
    assert_eq!(
        app.reset_password(&mail.token(), NEW_PASSWORD).await["data"]["resetPassword"],
        true
    );
}

async fn host_headers_never_change_links(backend: Backend) {
    let smtp = SmtpSink::start();
    let app = TestApp::builder(backend)
        .smtp(&smtp)
        .config(|c| {
            c.server.base_url = Some("https://auth.example.com/".into());
        })
        .spawn()
        .await;
    app.gql(
        "mutation { signUpEmail(input: {name: \"Ada\", email: \"ada@example.com\", password: \"correct horse battery staple\"}) { user { id } } }",
        json!({}),
    )
    .await;
    let body = json!({
        "query": "mutation { requestPasswordReset(input: {email: \"ada@example.com\"}) }"
    });
    let resp = app
        .client
        .post(app.url("/graphql"))
        .header("host", "evil.com")
        .header("x-forwarded-host", "evil.com")
        .header("x-forwarded-proto", "http")
        .header("forwarded", "host=evil.com;proto=http")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mail = smtp.wait_for("ada@example.com", 1).await.remove(0);
    assert!(
        mail.link()
            .starts_with("https://auth.example.com/reset-password?token="),
        "{}",
        mail.link()
    );
    assert!(!mail.raw.contains("evil.com"));
}

async fn change_email_end_to_end(backend: Backend) {
    let smtp = SmtpSink::start();
    let app = TestApp::builder(backend).smtp(&smtp).spawn().await;
    let token = app.sign_up("ada@example.com").await;
    let r = app
        .change_email(&token, " New@Example.com", Some(PASSWORD))
        .await;
    assert_eq!(r, json!({ "data": { "changeEmail": true } }));

    let notice = smtp
        .latest("ada@example.com", "Email address change requested")
        .await;
    assert!(notice.text.contains("new@example.com"));
    assert!(notice.links().is_empty());
    let confirm = smtp
        .latest("new@example.com", "Confirm your new email address")
        .await;
    assert!(
        confirm
            .link()
            .starts_with(&format!("{}/verify-email?token=", app.base))
    );

    // Nothing changes before the new address is confirmed.
    let me = app
        .gql_with(Some(&token), "{ me { email } }", json!({}))
        .await;
    assert_eq!(me["data"]["me"]["email"], "ada@example.com");

    let done = app.client.post(confirm.link()).send().await.unwrap();
    assert_eq!(done.status(), 200);
    let me = app
        .gql_with(Some(&token), "{ me { email emailVerified } }", json!({}))
        .await;
    assert_eq!(me["data"]["me"]["email"], "new@example.com");
    assert_eq!(me["data"]["me"]["emailVerified"], true);
    signed_in_token(&app.sign_in("new@example.com", PASSWORD).await);
    assert_eq!(
        code(&app.sign_in("ada@example.com", PASSWORD).await),
        "INVALID_EMAIL_OR_PASSWORD"
    );
    assert_eq!(
        code(&app.verify_email(&confirm.token()).await),
        "INVALID_TOKEN"
    );
}

async fn change_email_to_a_taken_address_answers_the_same(backend: Backend) {
    let smtp = SmtpSink::start();
    let app = TestApp::builder(backend).smtp(&smtp).spawn().await;
    let token = app.sign_up("ada@example.com").await;
    app.sign_up("bob@example.com").await;

    let taken = app
        .change_email(&token, "bob@example.com", Some(PASSWORD))
        .await;
    let free = app
        .change_email(&token, "carol@example.com", Some(PASSWORD))
        .await;
    assert_eq!(taken, free);
    assert_eq!(free, json!({ "data": { "changeEmail": true } }));
    // The current address hears of both; only the free address gets a link.
    smtp.wait_for("ada@example.com", 2).await;
    smtp.latest("carol@example.com", "Confirm your new email address")
        .await;
    assert_eq!(
        app.db
            .count("SELECT COUNT(*) AS n FROM mail_outbox WHERE recipient = 'bob@example.com'")
            .await,
        0
    );
    assert_eq!(
        app.db
            .count("SELECT COUNT(*) AS n FROM verification WHERE purpose = 'change-email'")
            .await,
        1
    );
}

async fn change_email_needs_a_fresh_session(backend: Backend) {
    let smtp = SmtpSink::start();
    let app = TestApp::builder(backend).smtp(&smtp).spawn().await;
    let token = app.sign_up("ada@example.com").await;
    app.db
        .execute("UPDATE session SET created_at = '2020-01-01 00:00:00'")
        .await;
    assert_eq!(
        code(
            &app.change_email(&token, "new@example.com", Some(PASSWORD))
                .await
        ),
        "UNAUTHENTICATED"
    );
    let fresh = signed_in_token(&app.sign_in("ada@example.com", PASSWORD).await);
    assert_eq!(
        app.change_email(&fresh, "new@example.com", Some(PASSWORD))
            .await["data"]["changeEmail"],
        true
    );
    assert_eq!(
        code(
            &app.change_email("", "new@example.com", Some(PASSWORD))
                .await
        ),
        "UNAUTHENTICATED"
    );
}

/// Issue 13: a session alone no longer moves the account to another address.
async fn change_email_needs_the_password_or_a_recent_sign_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.sign_up("ada@example.com").await;
    let attempt = |password| app.change_email(&token, "new@example.com", password);
    let requested = || async {
        app.db
            .count("SELECT COUNT(*) AS n FROM verification WHERE purpose = 'change-email'")
            .await
    };

    // An account with a password: it is required, and must be right.
    let missing = attempt(None).await;
    assert_eq!(code(&missing), "BAD_USER_INPUT", "{missing}");
    assert_eq!(missing["errors"][0]["extensions"]["field"], "password");
    assert_eq!(
        code(&attempt(Some("not the password")).await),
        "INVALID_PASSWORD"
    );
    assert_eq!(requested().await, 0, "nothing was sent");
    assert_eq!(
        attempt(Some(PASSWORD)).await,
        json!({ "data": { "changeEmail": true } })
    );
    assert_eq!(requested().await, 1);

    // An account without one: a sign-in within the last 5 minutes instead.
    app.db.execute("UPDATE account SET password = NULL").await;
    assert_eq!(
        attempt(None).await,
        json!({ "data": { "changeEmail": true } })
    );
    let six_minutes_ago = (chrono::Utc::now() - chrono::Duration::minutes(6))
        .naive_utc()
        .format("%Y-%m-%d %H:%M:%S");
    app.db
        .execute(&format!(
            "UPDATE session SET created_at = '{six_minutes_ago}'"
        ))
        .await;
    assert_eq!(code(&attempt(None).await), "UNAUTHENTICATED");
    assert_eq!(code(&attempt(Some(PASSWORD)).await), "UNAUTHENTICATED");
}

const CHANGE_PASSWORD: &str = "mutation($input: ChangePasswordInput!) {
    changePassword(input: $input) { token accessToken user { email } session { id current } } }";

async fn change_password_keeps_or_rotates_sessions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let first = app.sign_up("ada@example.com").await;
    let second = signed_in_token(&app.sign_in("ada@example.com", PASSWORD).await);

    let wrong = app
        .gql_with(
            Some(&first),
            CHANGE_PASSWORD,
            json!({ "input": { "currentPassword": "not it at all", "newPassword": NEW_PASSWORD } }),
        )
        .await;
    assert_eq!(code(&wrong), "INVALID_PASSWORD");
    let short = app
        .gql_with(
            Some(&first),
            CHANGE_PASSWORD,
            json!({ "input": { "currentPassword": PASSWORD, "newPassword": "short" } }),
        )
        .await;
    assert_eq!(code(&short), "PASSWORD_TOO_SHORT");
    let anonymous = app
        .gql(
            CHANGE_PASSWORD,
            json!({ "input": { "currentPassword": PASSWORD, "newPassword": NEW_PASSWORD } }),
        )
        .await;
    assert_eq!(code(&anonymous), "UNAUTHENTICATED");

    // Without revoking: no new token, every session stays.
    let kept = app
        .gql_with(
            Some(&first),
            CHANGE_PASSWORD,
            json!({ "input": { "currentPassword": PASSWORD, "newPassword": NEW_PASSWORD } }),
        )
        .await;
    assert!(kept["errors"].is_null(), "{kept}");
    assert!(kept["data"]["changePassword"]["token"].is_null());
    assert!(kept["data"]["changePassword"]["accessToken"].is_null());
    assert_eq!(kept["data"]["changePassword"]["session"]["current"], true);
    for t in [&first, &second] {
        assert!(!app.session(t).await["data"]["session"].is_null());
    }
    assert_eq!(
        code(&app.sign_in("ada@example.com", PASSWORD).await),
        "INVALID_EMAIL_OR_PASSWORD"
    );
    let third = signed_in_token(&app.sign_in("ada@example.com", NEW_PASSWORD).await);

    // Revoking: every session ends, the caller gets a new one (token and cookie).
    let resp = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&first)
        .json(&json!({ "query": CHANGE_PASSWORD, "variables": { "input": {
            "currentPassword": NEW_PASSWORD, "newPassword": PASSWORD, "revokeOtherSessions": true } } }))
        .send()
        .await
        .unwrap();
    let cookie = resp
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let rotated: Value = resp.json().await.unwrap();
    let new_token = rotated["data"]["changePassword"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{rotated}"))
        .to_owned();
    assert!(cookie.contains(&new_token), "{cookie}");
    assert!(
        rotated["data"]["changePassword"]["accessToken"].is_string(),
        "the replacement session comes with an access token: {rotated}"
    );
    for t in [&first, &second, &third] {
        assert_ne!(t, &new_token);
        assert!(
            app.session(t).await["data"]["session"].is_null(),
            "old session ended"
        );
    }
    assert!(!app.session(&new_token).await["data"]["session"].is_null());
    assert_eq!(app.db.count("SELECT COUNT(*) AS n FROM session").await, 1);
    signed_in_token(&app.sign_in("ada@example.com", PASSWORD).await);
}

async fn update_user_changes_name_and_image_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.sign_up("ada@example.com").await;
    const UPDATE: &str = "mutation($input: UpdateUserInput!) { updateUser(input: $input) { name image email updatedAt } }";
    let r = app
        .gql_with(
            Some(&token),
            UPDATE,
            json!({ "input": { "name": " Ada Lovelace ", "image": "https://img.example.com/a.png" } }),
        )
        .await;
    assert_eq!(r["data"]["updateUser"]["name"], "Ada Lovelace", "{r}");
    assert_eq!(
        r["data"]["updateUser"]["image"],
        "https://img.example.com/a.png"
    );
    let only_name = app
        .gql_with(Some(&token), UPDATE, json!({ "input": { "name": "Ada" } }))
        .await;
    assert_eq!(
        only_name["data"]["updateUser"]["image"],
        "https://img.example.com/a.png"
    );
    let cleared = app
        .gql_with(Some(&token), UPDATE, json!({ "input": { "image": null } }))
        .await;
    assert!(
        cleared["data"]["updateUser"]["image"].is_null(),
        "{cleared}"
    );
    assert_eq!(cleared["data"]["updateUser"]["name"], "Ada");

    let bad = app
        .gql_with(
            Some(&token),
            UPDATE,
            json!({ "input": { "image": "javascript:alert(1)" } }),
        )
        .await;
    assert_eq!(code(&bad), "BAD_USER_INPUT");
    assert_eq!(bad["errors"][0]["extensions"]["field"], "image");
    let empty = app
        .gql_with(Some(&token), UPDATE, json!({ "input": { "name": "  " } }))
        .await;
    assert_eq!(empty["errors"][0]["extensions"]["field"], "name");
    for forbidden in [
        "email: \"eve@example.com\"",
        "emailVerified: true",
        "role: \"admin\"",
    ] {
        let r = app
            .gql_with(
                Some(&token),
                &format!("mutation {{ updateUser(input: {{{forbidden}}}) {{ email }} }}"),
                json!({}),
            )
            .await;
        assert_eq!(code(&r), "GRAPHQL_VALIDATION_FAILED", "{forbidden}");
    }
    let anonymous = app.gql(UPDATE, json!({ "input": { "name": "Eve" } })).await;
    assert_eq!(code(&anonymous), "UNAUTHENTICATED");
    let me = app
        .gql_with(
            Some(&token),
            "{ me { email emailVerified role } }",
            json!({}),
        )
        .await;
    assert_eq!(
        me["data"]["me"],
        json!({ "email": "ada@example.com", "emailVerified": false, "role": "user" })
    );
}

async fn delete_user_removes_everything_in_one_go(backend: Backend) {
    let smtp = SmtpSink::start();
    let app = TestApp::builder(backend).smtp(&smtp).spawn().await;
    let token = app.sign_up("ada@example.com").await;
    signed_in_token(&app.sign_in("ada@example.com", PASSWORD).await);
    app.request_reset("ada@example.com").await;
    app.send_verification("ada@example.com").await;
    let bob = app.sign_up("bob@example.com").await;
    assert_eq!(
        app.db.count("SELECT COUNT(*) AS n FROM verification").await,
        2
    );

    const DELETE: &str = "mutation($input: DeleteUserInput!) { deleteUser(input: $input) }";
    let wrong = app
        .gql_with(
            Some(&token),
            DELETE,
            json!({ "input": { "password": "not the password" } }),
        )
        .await;
    assert_eq!(code(&wrong), "INVALID_PASSWORD");
    assert_eq!(app.db.count("SELECT COUNT(*) AS n FROM \"user\"").await, 2);

    let done = app
        .gql_with(
            Some(&token),
            DELETE,
            json!({ "input": { "password": PASSWORD } }),
        )
        .await;
    assert_eq!(done, json!({ "data": { "deleteUser": true } }));
    let ada = "(SELECT id FROM \"user\" WHERE email = 'ada@example.com')";
    assert_eq!(
        app.db
            .count("SELECT COUNT(*) AS n FROM \"user\" WHERE email = 'ada@example.com'")
            .await,
        0
    );
    assert_eq!(app.db.count("SELECT COUNT(*) AS n FROM \"user\"").await, 1);
    assert_eq!(
        app.db.count("SELECT COUNT(*) AS n FROM session").await,
        1,
        "only Bob's"
    );
    assert_eq!(
        app.db.count("SELECT COUNT(*) AS n FROM account").await,
        1,
        "only Bob's"
    );
    assert_eq!(
        app.db.count("SELECT COUNT(*) AS n FROM verification").await,
        0
    );
    assert_eq!(
        app.db
            .count(&format!(
                "SELECT COUNT(*) AS n FROM session WHERE user_id IN {ada}"
            ))
            .await,
        0
    );
    assert!(app.session(&token).await["data"]["session"].is_null());
    assert!(!app.session(&bob).await["data"]["session"].is_null());
    assert_eq!(
        code(&app.sign_in("ada@example.com", PASSWORD).await),
        "INVALID_EMAIL_OR_PASSWORD"
    );
    // The address is free again.
    app.sign_up("ada@example.com").await;
}

async fn per_address_send_limit_drops_mail_silently(backend: Backend) {
    let smtp = SmtpSink::start();
    let app = TestApp::builder(backend)
        .smtp(&smtp)
        .config(|c| {
            c.mail.limit = 2;
        })
        .spawn()
        .await;
    app.sign_up("ada@example.com").await;
    for _ in 0..5 {
        assert_eq!(
            app.request_reset("ada@example.com").await,
            json!({ "data": { "requestPasswordReset": true } })
        );
    }
    let mails = smtp.wait_for("ada@example.com", 2).await;
    assert_eq!(
        app.db
            .count("SELECT COUNT(*) AS n FROM mail_outbox WHERE recipient = 'ada@example.com'")
            .await,
        2,
        "the excess was never queued"
    );
    // The dropped requests voided nothing: the last mailed link still works.
    let last = mails[1].token();
    assert_eq!(
        app.reset_password(&last, NEW_PASSWORD).await["data"]["resetPassword"],
        true
    );
    // Other addresses have their own budget.
    app.request_reset("bob@example.com").await;
    smtp.wait_for("bob@example.com", 1).await;
}

async fn two_replicas_never_send_a_row_twice(backend: Backend) {
    let smtp = SmtpSink::start();
    let app = TestApp::builder(backend).smtp(&smtp).spawn().await;
    let replica = app.replica().smtp(&smtp).spawn().await;
    let _third = app.replica().smtp(&smtp).spawn().await;
    let n = 12;
    for i in 0..n {
        let email = format!("user{i}@example.com");
        if i % 2 == 0 {
            app.request_reset(&email).await;
        } else {
            // Half the requests reach the other replica.
            let r: Value = app
                .client
                .post(format!("{}/graphql", replica.base))
                .json(&json!({ "query": "mutation($e: String!) { requestPasswordReset(input: {email: $e}) }",
                    "variables": { "e": email } }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(r["data"]["requestPasswordReset"], true, "{r}");
        }
    }
    for i in 0..n {
        smtp.wait_for(&format!("user{i}@example.com"), 1).await;
    }
    // Every row is marked delivered once it is sent; give stragglers a moment to (wrongly) resend.
    for _ in 0..100 {
        if app
            .db
            .count("SELECT COUNT(*) AS n FROM mail_outbox WHERE sent_at IS NULL")
            .await
            == 0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(smtp.all().len(), n, "each message exactly once");
}

/// The binary on `envs`, listening on a free port; and a client for it.
fn serve(envs: &[(&str, &str)]) -> (Proc, Api) {
    let mut proc = Proc::start(&[&[("APEXKIT_LISTEN", "127.0.0.1:0")], envs].concat());
    let addr = tokio::task::block_in_place(|| proc.listening(Duration::from_secs(30)));
    (proc, Api::at(format!("http://{addr}")))
}

/// The first log line with `needle`, waiting up to 30 s for it.
fn logged(proc: &mut Proc, needle: &str) -> String {
    tokio::task::block_in_place(|| proc.wait_for_logged(needle, Duration::from_secs(30)))
        .unwrap_or_else(|| panic!("no log line with {needle:?}:\n{}", proc.log.join("\n")))
}

const SIGN_UP_AND_RESET: [&str; 2] = [
    "mutation { signUpEmail(input: {name: \"Ada\", email: \"ada@example.com\", password: \"correct horse battery staple\"}) { user { id } } }",
    "mutation { requestPasswordReset(input: {email: \"ada@example.com\"}) }",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn development_logs_mail_with_links_and_production_never_logs_tokens() {
    let dev_db = tempfile::tempdir().unwrap();
    let dev_url = format!("sqlite://{}", dev_db.path().join("a.db").display());
    let (mut dev, dev_api) = serve(&[
        ("DATABASE_URL", dev_url.as_str()),
        ("APEXKIT_MAIL_POLL_INTERVAL_MS", "50"),
    ]);
    for q in SIGN_UP_AND_RESET {
        assert!(dev_api.gql(q, json!({})).await["errors"].is_null());
    }
    let link = logged(&mut dev, "/reset-password?token=");
    assert!(
        link.trim()
            .starts_with(&format!("{}/reset-password?token=", dev_api.base)),
        "{link}"
    );
    logged(&mut dev, "Reset your password");

    let prod_db = tempfile::tempdir().unwrap();
    let prod_url = format!("sqlite://{}", prod_db.path().join("a.db").display());
    let (mut prod, prod_api) = serve(&[
        ("DATABASE_URL", prod_url.as_str()),
        ("APEXKIT_ENV", "production"),
        ("APEXKIT_SECRET", "0123456789abcdef0123456789abcdef"),
        ("APEXKIT_BASE_URL", "https://auth.example.com"),
        ("APEXKIT_MAIL_POLL_INTERVAL_MS", "50"),
    ]);
    for q in SIGN_UP_AND_RESET {
        assert!(prod_api.gql(q, json!({})).await["errors"].is_null());
    }
    logged(&mut prod, "mail not sent");
    let log = prod.log_text();
    assert!(!log.contains("token="), "{log}");
    assert!(log.contains("Reset your password"), "{log}");
}
