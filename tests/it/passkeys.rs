//! Passkeys over HTTP with a software authenticator (`support::authenticator`): registration,
//! discoverable and email-first sign-in, the ceremony's single use, binding, expiry and origin,
//! the signature counter, the user's list, the last way to sign in, and a ceremony finished by
//! another replica. Every refusal leaves no session behind.

use serde_json::{Value, json};

use crate::support::authenticator::{SoftAuthenticator, b64};
use crate::support::{Backend, TestApp, code, data, metric_value, on_both};

/// The frontend's origin, trusted by the app; passkeys are bound to `localhost`.
const ORIGIN: &str = "http://localhost:5173";

async fn app(backend: Backend) -> TestApp {
    TestApp::builder(backend)
        .secret()
        .config(configure)
        .spawn()
        .await
}

fn configure(c: &mut apexkit::Config) {
    c.server.trusted_origins = vec![ORIGIN.to_owned()];
    c.webauthn.rp_id = Some("localhost".to_owned());
}

const PASSKEY_FIELDS: &str = "id name createdAt lastUsedAt deviceType backedUp aaguid";

/// A made-up authenticator model, and its AAGUID as a UUID.
const LAPTOP_AAGUID: [u8; 16] = [
    0x08, 0x98, 0x70, 0x58, 0xca, 0xdc, 0x4b, 0x81, 0xb6, 0xe1, 0x30, 0xde, 0x50, 0xdc, 0xbe, 0x96,
];
const LAPTOP_AAGUID_TEXT: &str = "08987058-cadc-4b81-b6e1-30de50dcbe96";

async fn registration_options(app: &TestApp, token: &str) -> Value {
    let body = app
        .gql_with(
            Some(token),
            "mutation { passkeyRegistrationOptions(input: {}) }",
            json!({}),
        )
        .await;
    data(&body, "passkeyRegistrationOptions").clone()
}

async fn register(app: &TestApp, token: &str, response: Value, name: Option<&str>) -> Value {
    app.gql_with(
        Some(token),
        &format!(
            "mutation($input: RegisterPasskeyInput!) {{ registerPasskey(input: $input) {{ {PASSKEY_FIELDS} }} }}"
        ),
        json!({ "input": { "response": response, "name": name } }),
    )
    .await
}

/// Registers `authenticator` for the holder of `token`; returns the passkey.
async fn add_passkey(app: &TestApp, token: &str, authenticator: &mut SoftAuthenticator) -> Value {
    let options = registration_options(app, token).await;
    let body = register(app, token, authenticator.create(&options), Some("Laptop")).await;
    data(&body, "registerPasskey").clone()
}

async fn authentication_options(app: &TestApp, email: Option<&str>) -> Value {
    let body = app
        .gql(
            "mutation($input: PasskeyAuthenticationOptionsInput) { passkeyAuthenticationOptions(input: $input) }",
            json!({ "input": { "email": email } }),
        )
        .await;
    data(&body, "passkeyAuthenticationOptions").clone()
}

async fn sign_in(app: &TestApp, response: Value) -> Value {
    app.gql(
        "mutation($input: SignInPasskeyInput!) { signInPasskey(input: $input) { token user { id email } session { id } } }",
        json!({ "input": { "response": response } }),
    )
    .await
}

/// A discoverable sign-in with `authenticator`: the whole `signInPasskey` answer.
async fn sign_in_with(app: &TestApp, authenticator: &mut SoftAuthenticator) -> Value {
    let options = authentication_options(app, None).await;
    sign_in(app, authenticator.get(&options)).await
}

async fn sessions(app: &TestApp) -> i64 {
    app.db.count("SELECT COUNT(*) AS n FROM session").await
}

/// A refused sign-in: the code, and no session row added, no token, no cookie.
async fn assert_refused(app: &TestApp, response: Value, expected: &str) {
    let before = sessions(app).await;
    let (status, headers, body) = app
        .post_raw(
            &json!({
                "query": "mutation($input: SignInPasskeyInput!) { signInPasskey(input: $input) { token } }",
                "variables": { "input": { "response": response } },
            }),
            &[],
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(code(&body), expected, "{body}");
    assert!(
        body["data"].is_null() || body["data"]["signInPasskey"].is_null(),
        "{body}"
    );
    assert!(
        headers.get("set-cookie").is_none(),
        "no cookie on a refusal"
    );
    assert_eq!(sessions(app).await, before, "no session on a refusal");
}

async fn registers_and_signs_in(backend: Backend) {
    let app = app(backend).await;
    let token = app.sign_up("ada@example.com").await;
    let options = registration_options(&app, &token).await;
    // The bare PublicKeyCredentialCreationOptionsJSON the contract names.
    assert!(options.get("publicKey").is_none(), "{options}");
    assert_eq!(options["rp"]["id"], "localhost");
    assert_eq!(options["rp"]["name"], "Apexkit");
    assert_eq!(options["user"]["name"], "ada@example.com");
    assert_eq!(options["attestation"], "none");
    assert_eq!(options["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(
        options["authenticatorSelection"]["userVerification"],
        "preferred"
    );
    assert!(options["challenge"].as_str().unwrap().len() >= 43);

    let mut laptop = SoftAuthenticator::new(ORIGIN);
    laptop.aaguid = LAPTOP_AAGUID;
    let body = register(&app, &token, laptop.create(&options), Some("  Laptop ")).await;
    let passkey = data(&body, "registerPasskey");
    assert_eq!(passkey["name"], "Laptop");
    assert_eq!(passkey["deviceType"], "singleDevice");
    assert_eq!(passkey["backedUp"], false);
    assert!(passkey["lastUsedAt"].is_null());
    // The authenticator's AAGUID from the attested credential data, stored as Better Auth does.
    assert_eq!(passkey["aaguid"], LAPTOP_AAGUID_TEXT, "{body}");
    assert_eq!(
        app.db
            .strings("SELECT aaguid AS s FROM passkey WHERE name = 'Laptop'")
            .await,
        [LAPTOP_AAGUID_TEXT]
    );

    // A second one: a user may hold several; the first is excluded from the new options.
    let options = registration_options(&app, &token).await;
    assert_eq!(
        options["excludeCredentials"][0]["id"],
        b64(&laptop.credential_id)
    );
    let mut phone = SoftAuthenticator::synced(ORIGIN);
    let body = register(&app, &token, phone.create(&options), None).await;
    assert_eq!(data(&body, "registerPasskey")["deviceType"], "multiDevice");
    assert_eq!(data(&body, "registerPasskey")["backedUp"], true);
    // An authenticator that does not say what it is (zeros, as synced passkeys often do).
    assert_eq!(
        data(&body, "registerPasskey")["aaguid"],
        "00000000-0000-0000-0000-000000000000"
    );

    // Discoverable: no email, empty allowCredentials; the user handle names the user.
    let options = authentication_options(&app, None).await;
    assert_eq!(options["allowCredentials"], json!([]));
    assert_eq!(options["rpId"], "localhost");
    assert_eq!(options["userVerification"], "preferred");
    let body = sign_in(&app, laptop.get(&options)).await;
    let signed = data(&body, "signInPasskey");
    assert_eq!(signed["user"]["email"], "ada@example.com");
    let passkey_token = signed["token"].as_str().unwrap().to_owned();
    assert!(app.alive(&passkey_token).await);
    assert_ne!(passkey_token, token);

    // Email first: the user's passkeys are offered.
    let options = authentication_options(&app, Some(" ADA@example.com")).await;
    let offered: Vec<&str> = options["allowCredentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(offered.len(), 2, "{options}");
    assert!(offered.contains(&b64(&phone.credential_id).as_str()));
    let body = sign_in(&app, phone.get(&options)).await;
    assert_eq!(
        data(&body, "signInPasskey")["user"]["email"],
        "ada@example.com"
    );

    // The list, with last use recorded.
    let body = app
        .gql_with(
            Some(&token),
            &format!("{{ passkeys {{ {PASSKEY_FIELDS} }} }}"),
            json!({}),
        )
        .await;
    let list = data(&body, "passkeys").as_array().unwrap().clone();
    assert_eq!(list.len(), 2);
    assert!(list.iter().all(|p| !p["lastUsedAt"].is_null()), "{list:?}");

    // Audit trail and metrics.
    let count = |kind: &str, outcome: &str| {
        format!(
            "SELECT COUNT(*) AS n FROM audit_event WHERE type = '{kind}' AND outcome = '{outcome}'"
        )
    };
    assert_eq!(app.db.count(&count("passkey_register", "success")).await, 2);
    assert_eq!(app.db.count(&count("passkey_sign_in", "success")).await, 2);
    assert_eq!(app.db.count(&count("sign_in", "success")).await, 2);
    let metrics = app.metrics_text().await;
    assert!(
        metric_value(
            &metrics,
            "apexkit_passkey_ceremonies_total",
            &[("ceremony", "sign_in"), ("outcome", "success")]
        ) >= 2.0,
        "{metrics}"
    );
    // Nothing secret or key-like leaves through the API.
    assert!(!body.to_string().contains("publicKey"));
}

async fn email_first_does_not_enumerate(backend: Backend) {
    let app = app(backend).await;
    app.sign_up("nopasskey@example.com").await;
    let unknown = authentication_options(&app, Some("nobody@example.com")).await;
    let again = authentication_options(&app, Some("nobody@example.com")).await;
    let known = authentication_options(&app, Some("nopasskey@example.com")).await;
    for options in [&unknown, &again, &known] {
        let allow = options["allowCredentials"].as_array().unwrap();
        assert_eq!(allow.len(), 1, "{options}");
        assert_eq!(allow[0]["type"], "public-key");
    }
    // Stable per address (a fresh decoy each time would give it away), distinct per address.
    assert_eq!(unknown["allowCredentials"], again["allowCredentials"]);
    assert_ne!(unknown["allowCredentials"], known["allowCredentials"]);
    assert_ne!(unknown["challenge"], again["challenge"]);
    // A response to an unknown address's ceremony signs nobody in.
    let mut stray = SoftAuthenticator::new(ORIGIN);
    assert_refused(&app, stray.get(&unknown), "INVALID_TOKEN").await;
}

async fn ceremonies_are_single_use_bound_and_expiring(backend: Backend) {
    let app = app(backend).await;
    let ada = app.sign_up("ada@example.com").await;
    let bob = app.sign_up("bob@example.com").await;
    let mut key = SoftAuthenticator::new(ORIGIN);
    add_passkey(&app, &ada, &mut key).await;

    // Replayed: the same assertion twice.
    let options = authentication_options(&app, None).await;
    let response = key.get(&options);
    assert!(sign_in(&app, response.clone()).await["errors"].is_null());
    assert_refused(&app, response, "INVALID_TOKEN").await;

    // Foreign: Bob's registration ceremony answered by Ada.
    let bobs = registration_options(&app, &bob).await;
    let mut other = SoftAuthenticator::new(ORIGIN);
    let body = register(&app, &ada, other.create(&bobs), None).await;
    assert_eq!(code(&body), "INVALID_TOKEN", "{body}");
    // A sign-in ceremony is no registration ceremony, and the other way round.
    let sign_in_options = authentication_options(&app, None).await;
    let mut swapped = registration_options(&app, &ada).await;
    swapped["challenge"] = sign_in_options["challenge"].clone();
    let body = register(&app, &ada, other.create(&swapped), None).await;
    assert_eq!(code(&body), "INVALID_TOKEN", "{body}");
    let ada_options = registration_options(&app, &ada).await;
    let forged = json!({ "challenge": ada_options["challenge"], "rpId": "localhost" });
    assert_refused(&app, key.get(&forged), "INVALID_TOKEN").await;
    // A made-up challenge.
    let made_up = json!({ "challenge": b64(&[9u8; 32]), "rpId": "localhost" });
    assert_refused(&app, key.get(&made_up), "INVALID_TOKEN").await;
    // Not a credential at all.
    assert_refused(&app, json!({ "id": "x" }), "INVALID_TOKEN").await;

    // Expired: 5 minutes, then TOKEN_EXPIRED (and spent).
    let options = authentication_options(&app, None).await;
    app.db
        .execute(
            "UPDATE verification SET expires_at = '2000-01-01 00:00:00' WHERE purpose = 'passkey-authentication'",
        )
        .await;
    let response = key.get(&options);
    assert_refused(&app, response.clone(), "TOKEN_EXPIRED").await;
    assert_refused(&app, response, "INVALID_TOKEN").await;

    // From an origin that is not trusted (a phishing page relaying the ceremony): FORBIDDEN.
    let options = authentication_options(&app, None).await;
    key.origin = "http://evil.example".to_owned();
    assert_refused(&app, key.get(&options), "FORBIDDEN").await;
    let options = registration_options(&app, &bob).await;
    let mut phished = SoftAuthenticator::new("http://localhost:6666");
    let body = register(&app, &bob, phished.create(&options), None).await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
    key.origin = ORIGIN.to_owned();

    // A bad signature.
    let options = authentication_options(&app, None).await;
    let mut response = key.get(&options);
    let other_signature =
        SoftAuthenticator::new(ORIGIN).get(&options)["response"]["signature"].clone();
    response["response"]["signature"] = other_signature;
    assert_refused(&app, response, "INVALID_TOKEN").await;

    // Email first for Bob, answered with Ada's passkey: not his.
    let options = authentication_options(&app, Some("bob@example.com")).await;
    assert_refused(&app, key.get(&options), "INVALID_TOKEN").await;
    // Discoverable with a user handle that is not the passkey's owner.
    let options = authentication_options(&app, None).await;
    let handle = key.user_handle.replace(b"someone-else".to_vec());
    assert_refused(&app, key.get(&options), "INVALID_TOKEN").await;

    // The ceremony is finished by another replica than the one that began it.
    key.user_handle = handle;
    let options = authentication_options(&app, None).await;
    let replica = app.replica().secret().config(configure).spawn().await;
    let body = sign_in(&replica, key.get(&options)).await;
    assert_eq!(
        data(&body, "signInPasskey")["user"]["email"],
        "ada@example.com"
    );
    let failures = app
        .db
        .count("SELECT COUNT(*) AS n FROM audit_event WHERE type = 'passkey_sign_in' AND outcome = 'failure'")
        .await;
    assert!(
        failures >= 2,
        "origin and signature refusals are audited: {failures}"
    );
}

async fn counter_is_checked(backend: Backend) {
    let app = app(backend).await;
    let token = app.sign_up("ada@example.com").await;
    let mut key = SoftAuthenticator::new(ORIGIN);
    key.counter = 5;
    add_passkey(&app, &token, &mut key).await; // stored 5, next 6
    assert!(sign_in_with(&app, &mut key).await["errors"].is_null()); // 6
    // A cloned authenticator replaying an older (or the same) count is refused.
    for stale in [6, 3, 0] {
        key.counter = stale;
        key.fixed_counter = true;
        let options = authentication_options(&app, None).await;
        assert_refused(&app, key.get(&options), "INVALID_TOKEN").await;
    }
    key.counter = 7;
    key.fixed_counter = false;
    assert!(sign_in_with(&app, &mut key).await["errors"].is_null());
    assert_eq!(app.db.count("SELECT counter AS n FROM passkey").await, 7);
    assert!(
        app.db
            .count("SELECT COUNT(*) AS n FROM audit_event WHERE type = 'passkey_sign_in' AND outcome = 'failure' AND detail LIKE '%counter%'")
            .await
            >= 3
    );

    // Authenticators that always report 0 (synced passkeys) are accepted every time.
    let other = app.sign_up("bob@example.com").await;
    let mut synced = SoftAuthenticator::synced(ORIGIN);
    add_passkey(&app, &other, &mut synced).await;
    for _ in 0..3 {
        let body = sign_in_with(&app, &mut synced).await;
        assert_eq!(
            data(&body, "signInPasskey")["user"]["email"],
            "bob@example.com"
        );
    }
}

async fn manages_own_passkeys_only(backend: Backend) {
    let app = app(backend).await;
    let ada = app.sign_up("ada@example.com").await;
    let bob = app.sign_up("bob@example.com").await;
    let mut key = SoftAuthenticator::new(ORIGIN);
    let id = add_passkey(&app, &ada, &mut key).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let rename = |token: &str, id: &str, name: &str| {
        let (token, id, name) = (token.to_owned(), id.to_owned(), name.to_owned());
        let app = &app;
        async move {
            app.gql_with(
                Some(&token),
                "mutation($input: RenamePasskeyInput!) { renamePasskey(input: $input) { id name } }",
                json!({ "input": { "id": id, "name": name } }),
            )
            .await
        }
    };
    let body = rename(&ada, &id, "Work laptop").await;
    assert_eq!(data(&body, "renamePasskey")["name"], "Work laptop");
    assert_eq!(code(&rename(&ada, &id, "").await), "BAD_USER_INPUT");
    assert_eq!(
        code(&rename(&ada, &id, &"x".repeat(65)).await),
        "BAD_USER_INPUT"
    );
    // Another user's passkey is NOT_FOUND, like a missing one; nothing changes.
    assert_eq!(code(&rename(&bob, &id, "mine").await), "NOT_FOUND");
    assert_eq!(code(&rename(&ada, "nope", "x").await), "NOT_FOUND");
    let delete = |token: &str, id: &str| {
        let (token, id) = (token.to_owned(), id.to_owned());
        let app = &app;
        async move {
            app.gql_with(
                Some(&token),
                "mutation($id: ID!) { deletePasskey(id: $id) }",
                json!({ "id": id }),
            )
            .await
        }
    };
    assert_eq!(code(&delete(&bob, &id).await), "NOT_FOUND");
    let body = app
        .gql_with(Some(&bob), "{ passkeys { id } }", json!({}))
        .await;
    assert_eq!(data(&body, "passkeys"), &json!([]));
    let body = app
        .gql_with(Some(&ada), "{ passkeys { name } }", json!({}))
        .await;
    assert_eq!(data(&body, "passkeys"), &json!([{ "name": "Work laptop" }]));

    // The last way to sign in: with the password account gone, the one passkey stays.
    let unlink = app
        .gql_with(
            Some(&ada),
            "mutation { unlinkAccount(input: { providerId: \"credential\" }) }",
            json!({}),
        )
        .await;
    assert_eq!(
        data(&unlink, "unlinkAccount"),
        true,
        "a passkey counts as a way in: {unlink}"
    );
    assert_eq!(
        code(&delete(&ada, &id).await),
        "FAILED_TO_UNLINK_LAST_ACCOUNT"
    );
    // With a second passkey, one of them may go; the last again may not.
    let mut second = SoftAuthenticator::synced(ORIGIN);
    let fresh = sign_in_with(&app, &mut key).await;
    let fresh = data(&fresh, "signInPasskey")["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let second_id = add_passkey(&app, &fresh, &mut second).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(data(&delete(&ada, &id).await, "deletePasskey"), true);
    assert_eq!(
        code(&delete(&ada, &second_id).await),
        "FAILED_TO_UNLINK_LAST_ACCOUNT"
    );
    // A deleted passkey signs nobody in.
    let options = authentication_options(&app, None).await;
    assert_refused(&app, key.get(&options), "INVALID_TOKEN").await;
    assert_eq!(
        app.db
            .count("SELECT COUNT(*) AS n FROM audit_event WHERE type IN ('passkey_rename', 'passkey_delete')")
            .await,
        2
    );
}

async fn registration_needs_a_recent_sign_in(backend: Backend) {
    let app = app(backend).await;
    let body = app
        .gql(
            "mutation { passkeyRegistrationOptions(input: {}) }",
            json!({}),
        )
        .await;
    assert_eq!(code(&body), "UNAUTHENTICATED");
    let token = app.sign_up("ada@example.com").await;
    let options = registration_options(&app, &token).await;
    // Six minutes later, the session is too old to add a passkey: sign in again.
    let old = (chrono::Utc::now() - chrono::Duration::minutes(6)).format("%Y-%m-%d %H:%M:%S");
    app.db
        .execute(&format!("UPDATE session SET created_at = '{old}'"))
        .await;
    let body = app
        .gql_with(
            Some(&token),
            "mutation { passkeyRegistrationOptions(input: {}) }",
            json!({}),
        )
        .await;
    assert_eq!(code(&body), "UNAUTHENTICATED", "{body}");
    let mut key = SoftAuthenticator::new(ORIGIN);
    let body = register(&app, &token, key.create(&options), None).await;
    assert_eq!(code(&body), "UNAUTHENTICATED", "{body}");
    assert_eq!(app.db.count("SELECT COUNT(*) AS n FROM passkey").await, 0);
}

/// Two-factor users: a passkey with user verification is both factors (a session at once); a
/// passkey without it stops at the second step like a password, and no session exists until
/// the TOTP code is given; and a passkey registered with user verification cannot be used
/// without it.
async fn two_factor_users_need_user_verification(backend: Backend) {
    let app = app(backend).await;
    let (token, mut totp, _) = crate::two_factor::enrolled(&app, "ada@example.com").await;
    let mut key = SoftAuthenticator::new(ORIGIN);
    add_passkey(&app, &token, &mut key).await;
    const SIGN_IN: &str = "mutation($input: SignInPasskeyInput!) { signInPasskey(input: $input) { token twoFactorRequired twoFactorToken session { id } } }";
    let passkey_sign_in = |response: Value| {
        let app = &app;
        async move {
            app.gql(SIGN_IN, json!({ "input": { "response": response } }))
                .await
        }
    };

    let options = authentication_options(&app, None).await;
    let body = passkey_sign_in(key.get(&options)).await;
    let payload = data(&body, "signInPasskey");
    assert_eq!(payload["twoFactorRequired"], false, "{body}");
    assert!(payload["token"].is_string(), "{body}");
    key.user_verified = false;
    let options = authentication_options(&app, None).await;
    assert_refused(&app, key.get(&options), "INVALID_TOKEN").await;

    // A security key without a PIN: registered, and used, without user verification. (A
    // passkey registered with it must keep using it: webauthn-rs-core refuses the downgrade.)
    let mut no_pin = SoftAuthenticator::new(ORIGIN);
    no_pin.user_verified = false;
    add_passkey(&app, &token, &mut no_pin).await;
    let before = sessions(&app).await;
    let options = authentication_options(&app, None).await;
    let body = passkey_sign_in(no_pin.get(&options)).await;
    let payload = data(&body, "signInPasskey");
    assert_eq!(payload["twoFactorRequired"], true, "{body}");
    assert!(
        payload["token"].is_null() && payload["session"].is_null(),
        "{body}"
    );
    assert_eq!(
        sessions(&app).await,
        before,
        "no session before the second factor"
    );
    let pending = payload["twoFactorToken"].as_str().unwrap().to_owned();
    let code = totp.code().await;
    let body = app
        .gql(
            crate::two_factor::VERIFY_TOTP,
            json!({ "c": code, "t": pending }),
        )
        .await;
    assert!(data(&body, "verifyTotp")["token"].is_string(), "{body}");
    assert_eq!(sessions(&app).await, before + 1);
}

on_both!(
    two_factor_users_need_user_verification,
    registers_and_signs_in,
    email_first_does_not_enumerate,
    ceremonies_are_single_use_bound_and_expiring,
    counter_is_checked,
    manages_own_passkeys_only,
    registration_needs_a_recent_sign_in,
);
