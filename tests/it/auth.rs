//! Sign-up, sign-in, the current session and sign-out.

use serde_json::json;

use crate::support::{Backend, PASSWORD, TestApp, code, on_both};

on_both!(
    sign_up_session_sign_out_round_trip,
    cookie_authenticates_and_bearer_wins,
    duplicate_email_in_any_spelling,
    unknown_email_and_wrong_password_are_indistinguishable,
    password_length_limits,
    malformed_emails_are_refused,
    made_up_and_jwt_tokens_authenticate_nothing,
    expired_session_is_none_and_deleted,
    session_slides_at_most_once_per_update_age,
    remember_me_false_gives_a_short_session,
    concurrent_sign_ups_create_one_user,
    sign_in_always_issues_a_new_token,
    sign_in_rehashes_passwords_stored_at_another_cost,
);

async fn sign_up_session_sign_out_round_trip(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = app
        .sign_up_as("Ada Lovelace", " Ada@Example.com ", PASSWORD)
        .await;
    let payload = &body["data"]["signUpEmail"];
    assert!(body["errors"].is_null(), "{body}");
    let token = payload["token"].as_str().unwrap();
    assert_eq!(token.len(), 43, "256-bit base64url token");
    assert_eq!(payload["user"]["email"], "ada@example.com");
    assert_eq!(payload["user"]["name"], "Ada Lovelace");
    assert_eq!(payload["user"]["emailVerified"], false);
    assert_eq!(payload["session"]["current"], true);
    assert_eq!(payload["session"]["ipAddress"], "127.0.0.1");
    assert_eq!(payload["session"]["userId"], payload["user"]["id"]);

    // The token is stored only hashed.
    let stored = app
        .db
        .count(&format!(
            "SELECT COUNT(*) AS n FROM session WHERE token_hash = '{token}'"
        ))
        .await;
    assert_eq!(stored, 0, "the plain token must not be in the database");
    assert_eq!(app.db.count("SELECT COUNT(*) AS n FROM session").await, 1);
    assert_eq!(
        app.db
            .count("SELECT COUNT(*) AS n FROM account WHERE provider_id = 'credential' AND password LIKE '$argon2id$v=19$m=7168,t=5,p=1$%'")
            .await,
        1,
        "credential account holds an argon2id hash with OWASP parameters"
    );

    let session = app.session(token).await;
    assert_eq!(
        session["data"]["session"]["user"]["email"],
        "ada@example.com"
    );
    assert_eq!(session["data"]["session"]["session"]["current"], true);
    let me = app
        .gql_with(Some(token), "{ me { email } }", json!({}))
        .await;
    assert_eq!(me["data"]["me"]["email"], "ada@example.com");

    let signed_in = app.sign_in("ADA@example.com", PASSWORD).await;
    let second = signed_in["data"]["signInEmail"]["token"].as_str().unwrap();
    assert_ne!(second, token);

    let out = app
        .gql_with(Some(token), "mutation { signOut }", json!({}))
        .await;
    assert_eq!(out["data"]["signOut"], true, "{out}");
    let after = app.session(token).await;
    assert!(after["data"]["session"].is_null(), "{after}");
    let again = app
        .gql_with(Some(token), "mutation { signOut }", json!({}))
        .await;
    assert_eq!(code(&again), "UNAUTHENTICATED");
    // The other session is untouched.
    assert_eq!(
        app.session(second).await["data"]["session"]["user"]["email"],
        "ada@example.com"
    );
    // Anonymous: null, not an error.
    let anon = app
        .gql("{ session { user { id } } me { id } }", json!({}))
        .await;
    assert!(
        anon["data"]["session"].is_null() && anon["data"]["me"].is_null(),
        "{anon}"
    );
}

async fn cookie_authenticates_and_bearer_wins(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let resp = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({ "query": "mutation { signUpEmail(input: {name: \"Ada\", email: \"ada@example.com\", password: \"correct horse battery staple\"}) { token } }" }))
        .send()
        .await
        .unwrap();
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("apexkit.session_token="), "{cookie}");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=604800"] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    assert!(!cookie.contains("Secure"), "plain http base URL: no Secure");
    let pair = cookie.split(';').next().unwrap().to_owned();
    let query = json!({ "query": "{ me { email } }" });

    let by_cookie: serde_json::Value = app
        .client
        .post(app.url("/graphql"))
        .header("cookie", format!("theme=dark; {pair}"))
        .json(&query)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(by_cookie["data"]["me"]["email"], "ada@example.com");

    // A bad Authorization header wins over a good cookie.
    let with_bad_bearer: serde_json::Value = app
        .client
        .post(app.url("/graphql"))
        .header("cookie", pair.clone())
        .bearer_auth("not-a-token")
        .json(&query)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(with_bad_bearer["data"]["me"].is_null(), "{with_bad_bearer}");

    // Sign-out by cookie clears it (a cookie-authenticated mutation shows its trusted Origin).
    let out = app
        .client
        .post(app.url("/graphql"))
        .header("cookie", pair)
        .header("origin", &app.base)
        .json(&json!({ "query": "mutation { signOut }" }))
        .send()
        .await
        .unwrap();
    let cleared = out.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cleared.starts_with("apexkit.session_token=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
}

async fn duplicate_email_in_any_spelling(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up("ada@example.com").await;
    for spelling in ["ada@example.com", "ADA@Example.COM", "  ada@example.com\t"] {
        let body = app.sign_up_as("Ada", spelling, PASSWORD).await;
        assert_eq!(code(&body), "USER_ALREADY_EXISTS", "{spelling:?}: {body}");
    }
    assert_eq!(app.db.count("SELECT COUNT(*) AS n FROM \"user\"").await, 1);
    assert_eq!(app.db.count("SELECT COUNT(*) AS n FROM account").await, 1);
}

async fn unknown_email_and_wrong_password_are_indistinguishable(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up("ada@example.com").await;
    let wrong = app
        .sign_in("ada@example.com", "not the right password")
        .await;
    let unknown = app
        .sign_in("nobody@example.com", "not the right password")
        .await;
    assert_eq!(code(&wrong), "INVALID_EMAIL_OR_PASSWORD");
    assert_eq!(
        wrong["errors"], unknown["errors"],
        "same code, message and shape"
    );
    assert!(wrong["data"].is_null() && unknown["data"].is_null());
}

async fn password_length_limits(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let short = app.sign_up_as("Ada", "a@example.com", "1234567").await;
    assert_eq!(code(&short), "PASSWORD_TOO_SHORT");
    let long = app
        .sign_up_as("Ada", "b@example.com", &"x".repeat(129))
        .await;
    assert_eq!(code(&long), "PASSWORD_TOO_LONG");
    // Code points, not bytes: 128 four-byte characters are fine, 7 are too short.
    let emoji_short = app
        .sign_up_as("Ada", "c@example.com", &"🔑".repeat(7))
        .await;
    assert_eq!(code(&emoji_short), "PASSWORD_TOO_SHORT");
    assert_eq!(
        app.db.count("SELECT COUNT(*) AS n FROM \"user\"").await,
        0,
        "nothing written"
    );
    // Not repetitive or sequential (issue 13, item 9): varied characters of the exact lengths.
    let varied = |len: u32, base: u32| -> String {
        (0..len)
            .map(|i| char::from_u32(base + (i * 7) % 26).unwrap())
            .collect()
    };
    for (email, pw) in [
        ("d@example.com", "zq8#Lm2!".to_owned()),
        ("e@example.com", varied(128, 'a' as u32)),
        ("f@example.com", varied(128, 0x1F600)),
    ] {
        let ok = app.sign_up_as("Ada", email, &pw).await;
        assert!(ok["errors"].is_null(), "{email}: {ok}");
        let back = app.sign_in(email, &pw).await;
        assert!(back["errors"].is_null(), "{email}: {back}");
    }
    // Passwords are used exactly as given: no trimming.
    let trimmed = app.sign_in("d@example.com", " zq8#Lm2! ").await;
    assert_eq!(code(&trimmed), "INVALID_EMAIL_OR_PASSWORD");
    let huge = app.sign_in("d@example.com", &"x".repeat(10_000)).await;
    assert_eq!(code(&huge), "PASSWORD_TOO_LONG");
}

async fn malformed_emails_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let too_long = format!("{}@{}.example.com", "a".repeat(60), "b".repeat(200));
    for email in [
        "ada.example.com",
        "ada@example.com,eve@example.com",
        "ada@example.com\r\nBcc: eve@example.com",
        "ada@exa\nmple.com",
        too_long.as_str(),
        "",
    ] {
        let body = app.sign_up_as("Ada", email, PASSWORD).await;
        assert_eq!(code(&body), "INVALID_EMAIL", "{email:?}: {body}");
    }
    assert_eq!(app.db.count("SELECT COUNT(*) AS n FROM \"user\"").await, 0);
    let sign_in = app.sign_in("no-at-sign", PASSWORD).await;
    assert_eq!(code(&sign_in), "INVALID_EMAIL");
}

async fn made_up_and_jwt_tokens_authenticate_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up("ada@example.com").await;
    for token in [
        "a".repeat(43),
        "made-up".to_owned(),
        "eyJhbGciOiJFZERTQSIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl".to_owned(),
        "x".repeat(5000),
    ] {
        let body = app.session(&token).await;
        assert!(body["data"]["session"].is_null(), "{body}");
        let out = app
            .gql_with(Some(&token), "mutation { signOut }", json!({}))
            .await;
        assert_eq!(code(&out), "UNAUTHENTICATED");
    }
}

async fn expired_session_is_none_and_deleted(backend: Backend) {
    let app = TestApp::builder(backend)
        .config(|c| c.sessions.expires_in = 1)
        .spawn()
        .await;
    let token = app.sign_up("ada@example.com").await;
    assert!(!app.session(&token).await["data"]["session"].is_null());
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let body = app.session(&token).await;
    assert!(body["data"]["session"].is_null(), "{body}");
    assert_eq!(
        app.db.count("SELECT COUNT(*) AS n FROM session").await,
        0,
        "expired row deleted"
    );
}

async fn session_slides_at_most_once_per_update_age(backend: Backend) {
    let app = TestApp::builder(backend)
        .config(|c| c.sessions.update_age = 1)
        .spawn()
        .await;
    let token = app.sign_up("ada@example.com").await;
    let first = app.session(&token).await["data"]["session"]["session"].clone();
    let again = app.session(&token).await["data"]["session"]["session"].clone();
    assert_eq!(
        first["expiresAt"], again["expiresAt"],
        "no write within update age"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let slid = app.session(&token).await["data"]["session"]["session"].clone();
    let parse =
        |v: &serde_json::Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    assert!(
        parse(&slid["expiresAt"]) > parse(&first["expiresAt"]),
        "{first} → {slid}"
    );
    let lifetime = parse(&slid["expiresAt"]) - parse(&slid["updatedAt"]);
    assert_eq!(
        lifetime.num_seconds(),
        7 * 24 * 3600,
        "keeps its 7-day lifetime"
    );
}

async fn remember_me_false_gives_a_short_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up("ada@example.com").await;
    let resp = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({
            "query": "mutation($i: SignInEmailInput!) { signInEmail(input: $i) { session { createdAt expiresAt } } }",
            "variables": { "i": { "email": "ada@example.com", "password": PASSWORD, "rememberMe": false } }
        }))
        .send()
        .await
        .unwrap();
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        !cookie.contains("Max-Age"),
        "browser-session cookie: {cookie}"
    );
    let body: serde_json::Value = resp.json().await.unwrap();
    let s = &body["data"]["signInEmail"]["session"];
    let parse =
        |v: &serde_json::Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    assert_eq!(
        (parse(&s["expiresAt"]) - parse(&s["createdAt"])).num_seconds(),
        24 * 3600
    );
}

async fn concurrent_sign_ups_create_one_user(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let attempts = (0..20).map(|_| app.sign_up_as("Ada", "race@example.com", PASSWORD));
    let results = futures_util::future::join_all(attempts).await;
    let ok = results.iter().filter(|b| b["errors"].is_null()).count();
    let dup = results
        .iter()
        .filter(|b| b["errors"][0]["extensions"]["code"] == "USER_ALREADY_EXISTS")
        .count();
    assert_eq!((ok, dup), (1, 19), "{results:?}");
    assert_eq!(app.db.count("SELECT COUNT(*) AS n FROM \"user\"").await, 1);
    assert_eq!(app.db.count("SELECT COUNT(*) AS n FROM account").await, 1);
    assert_eq!(app.db.count("SELECT COUNT(*) AS n FROM session").await, 1);
}

async fn sign_in_always_issues_a_new_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let first = app.sign_up("ada@example.com").await;
    // Presenting a session (as a client might, to "reuse" it) still yields a fresh one.
    let body = app
        .gql_with(
            Some(&first),
            "mutation { signInEmail(input: {email: \"ada@example.com\", password: \"correct horse battery staple\"}) { token } }",
            json!({}),
        )
        .await;
    let second = body["data"]["signInEmail"]["token"].as_str().unwrap();
    assert_ne!(second, first);
    assert_eq!(app.db.count("SELECT COUNT(*) AS n FROM session").await, 2);
}

/// A hash stored at an older argon2 cost still signs in, and that sign-in stores the password
/// again at the configured cost (here OWASP's 9 MiB row); a wrong password changes nothing.
async fn sign_in_rehashes_passwords_stored_at_another_cost(backend: Backend) {
    use argon2::{Algorithm, Argon2, Params, PasswordHasher, Version};
    let app = TestApp::builder(backend)
        .config(|c| {
            c.passwords.argon2_memory_kib = 9_216;
            c.passwords.argon2_iterations = 4;
        })
        .spawn()
        .await;
    app.sign_up("old@example.com").await;
    let fresh =
        "SELECT COUNT(*) AS n FROM account WHERE password LIKE '$argon2id$v=19$m=9216,t=4,p=1$%'";
    assert_eq!(
        app.db.count(fresh).await,
        1,
        "sign-up uses the configured cost"
    );

    let old = Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(19_456, 2, 1, None).unwrap(),
    )
    .hash_password(PASSWORD.as_bytes())
    .unwrap()
    .to_string();
    app.db
        .execute(&format!("UPDATE account SET password = '{old}'"))
        .await;
    let stored_old = format!("SELECT COUNT(*) AS n FROM account WHERE password = '{old}'");
    assert_eq!(app.db.count(&stored_old).await, 1);

    let wrong = app
        .sign_in("old@example.com", "not the password at all")
        .await;
    assert_eq!(code(&wrong), "INVALID_EMAIL_OR_PASSWORD");
    assert_eq!(
        app.db.count(&stored_old).await,
        1,
        "a failed sign-in rehashes nothing"
    );

    let signed = app.sign_in("old@example.com", PASSWORD).await;
    assert!(signed["errors"].is_null(), "{signed}");
    assert_eq!(
        app.db.count(&stored_old).await,
        0,
        "the old hash is replaced"
    );
    assert_eq!(
        app.db.count(fresh).await,
        1,
        "by one at the configured cost"
    );

    let again = app.sign_in("old@example.com", PASSWORD).await;
    assert!(
        again["errors"].is_null(),
        "the rehashed password still signs in: {again}"
    );
}
