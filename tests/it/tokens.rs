//! Access tokens, the JWKS and key rotation, checked as a resource server would: with only the
//! JWKS document fetched over HTTP and an independent JWT implementation (`jwt-compact` over
//! `ed25519-compact`, not the `jsonwebtoken`/`ed25519-dalek` pair that signs), configured as
//! the README's recipe says.

use std::collections::BTreeSet;
use std::time::Duration;

use apexkit::auth::keys::{KeyPolicy, KeyStore};
use apexkit::config::Secret;
use apexkit::db::migrations;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

use crate::support::{
    ADMIN_EMAIL, Backend, PASSWORD, TEST_SECRET, TestApp, TestDb, apexkit_cmd, code, on_both,
};

on_both!(
    access_tokens_verify_with_only_the_jwks,
    verification_survives_rotation_and_retired_keys_leave,
    sign_in_signs_with_the_key_another_replica_rotated_to,
    interval_rotation_keeps_the_old_key_published,
    the_verifier_rejects_every_forgery,
    a_jwt_as_bearer_authenticates_nothing_without_a_lookup,
    three_replicas_booting_at_once_create_one_key,
    a_changed_secret_is_refused_in_production_and_replaced_in_development,
);

/// The README recipe: pin EdDSA, find the key by `kid` in the JWKS only (ignoring `jku`, `jwk`,
/// `x5u`), require `typ: at+jwt`, `iss`, `aud`, `exp`, check `nbf` when present, 60 s leeway.
fn verify(
    jwks: &Value,
    token: &str,
    issuer: &str,
    audience: &str,
    now: DateTime<Utc>,
) -> Result<Value, String> {
    use jwt_compact::alg::Ed25519;
    use jwt_compact::jwk::JsonWebKey;
    use jwt_compact::{AlgorithmExt as _, TimeOptions, UntrustedToken};

    let untrusted = UntrustedToken::new(token).map_err(|e| format!("parse: {e}"))?;
    if untrusted.algorithm() != "EdDSA" {
        return Err(format!("algorithm {}", untrusted.algorithm()));
    }
    if untrusted.header().token_type.as_deref() != Some("at+jwt") {
        return Err("typ".into());
    }
    let kid = untrusted.header().key_id.as_deref().ok_or("no kid")?;
    let jwk = jwks["keys"]
        .as_array()
        .ok_or("no keys")?
        .iter()
        .find(|k| k["kid"] == kid && k["alg"] == "EdDSA" && k["use"] == "sig")
        .ok_or("unknown kid")?;
    let jwk: JsonWebKey<'_> = serde_json::from_value(jwk.clone()).map_err(|e| e.to_string())?;
    let key = <Ed25519 as jwt_compact::Algorithm>::VerifyingKey::try_from(&jwk)
        .map_err(|e| e.to_string())?;
    let token = Ed25519
        .validator::<Value>(&key)
        .validate(&untrusted)
        .map_err(|e| format!("signature: {e}"))?;
    let claims = token.claims();
    let time = TimeOptions::new(chrono::Duration::seconds(60), move || now);
    claims
        .validate_expiration(&time)
        .map_err(|e| format!("exp: {e}"))?;
    if claims.not_before.is_some() {
        claims
            .validate_maturity(&time)
            .map_err(|e| format!("nbf: {e}"))?;
    }
    let custom = &claims.custom;
    if custom["iss"] != issuer {
        return Err("iss".into());
    }
    let aud_ok = match &custom["aud"] {
        Value::String(a) => a == audience,
        Value::Array(all) => all.iter().any(|a| a == audience),
        _ => false,
    };
    if !aud_ok {
        return Err("aud".into());
    }
    let mut out = custom.clone();
    out["exp"] = json!(claims.expiration.map(|e| e.timestamp()));
    out["iat"] = json!(claims.issued_at.map(|e| e.timestamp()));
    Ok(out)
}

/// The README's example (as rustfmt lays it out): it must compile, accept our tokens and
/// reject the forgeries.
mod readme_example {
    use jwt_compact::{AlgorithmExt, TimeOptions, UntrustedToken, alg::Ed25519, jwk::JsonWebKey};
    use serde_json::Value;

    pub fn verify(
        jwks: &Value,
        token: &str,
        issuer: &str,
        audience: &str,
    ) -> anyhow::Result<Value> {
        let untrusted = UntrustedToken::new(token)?;
        anyhow::ensure!(untrusted.algorithm() == "EdDSA", "algorithm");
        anyhow::ensure!(
            untrusted.header().token_type.as_deref() == Some("at+jwt"),
            "typ"
        );
        let kid = untrusted
            .header()
            .key_id
            .as_deref()
            .ok_or(anyhow::anyhow!("no kid"))?;
        let jwk = jwks["keys"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|k| k["kid"] == kid && k["alg"] == "EdDSA" && k["use"] == "sig")
            .ok_or(anyhow::anyhow!(
                "unknown kid: refetch the JWKS once, then reject"
            ))?;
        let jwk: JsonWebKey<'_> = serde_json::from_value(jwk.clone())?;
        let key = <Ed25519 as jwt_compact::Algorithm>::VerifyingKey::try_from(&jwk)?;
        let token = Ed25519.validator::<Value>(&key).validate(&untrusted)?;
        let claims = token.claims();
        let time = TimeOptions::from_leeway(chrono::Duration::seconds(60));
        claims.validate_expiration(&time)?;
        if claims.not_before.is_some() {
            claims.validate_maturity(&time)?;
        }
        anyhow::ensure!(claims.custom["iss"] == issuer, "iss");
        anyhow::ensure!(claims.custom["aud"] == audience, "aud");
        Ok(claims.custom.clone()) // sub, sid, email, email_verified, role
    }
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

fn part(token: &str, i: usize) -> Value {
    let raw = token.split('.').nth(i).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(raw).unwrap()).unwrap()
}

/// A token with any header and claims, signed with `key` (unsigned for `alg: none`).
fn forge(header: &Value, claims: &Value, key: Option<(&EncodingKey, Algorithm)>) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let sig = match key {
        Some((key, alg)) => jsonwebtoken::crypto::sign(input.as_bytes(), key, alg).unwrap(),
        None => String::new(),
    };
    format!("{input}.{sig}")
}

/// An Ed25519 key the attacker owns, and its public half as a JWK.
fn attacker_key() -> (EncodingKey, Value) {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).unwrap();
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(&seed);
    let public = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes();
    let jwk = json!({ "kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(public),
                      "kid": "attacker", "alg": "EdDSA", "use": "sig" });
    (EncodingKey::from_ed_der(&der), jwk)
}

/// The deployment's own key store, opened on the test database with the same secret: lets a
/// test sign arbitrary (forged) claims with the real key.
fn key_store(app: &TestApp) -> KeyStore {
    KeyStore::new(
        app.db.pool(),
        &Secret::new(TEST_SECRET),
        KeyPolicy {
            token_lifetime: Duration::from_secs(900),
            rotation_interval: Duration::from_secs(30 * 24 * 3600),
        },
    )
}

async fn make_admin(app: &TestApp, email: &str) {
    app.db
        .execute(&format!(
            "UPDATE \"user\" SET role = 'admin' WHERE email = '{email}'"
        ))
        .await;
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

async fn access_tokens_verify_with_only_the_jwks(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let payload = app.sign_up_payload("ada@example.com").await;
    let access = payload["accessToken"].as_str().unwrap();

    let resp = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let cache = resp.headers()["cache-control"].to_str().unwrap().to_owned();
    assert!(
        cache.contains("public") && cache.contains("max-age="),
        "{cache}"
    );
    let jwks: Value = resp.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{jwks}");
    let members: BTreeSet<&str> = keys[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        members,
        BTreeSet::from(["kty", "crv", "x", "kid", "alg", "use"]),
        "public members only, no `d`, no `k`"
    );
    assert_eq!(keys[0]["kty"], "OKP");
    assert_eq!(keys[0]["crv"], "Ed25519");
    assert_eq!(keys[0]["alg"], "EdDSA");
    assert_eq!(keys[0]["use"], "sig");

    let header = part(access, 0);
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["kid"], keys[0]["kid"]);

    let claims = verify(&jwks, access, &app.base, &app.base, Utc::now()).expect("verifies");
    let readme = readme_example::verify(&jwks, access, &app.base, &app.base).expect("README");
    assert_eq!(readme["sub"], claims["sub"]);
    assert_eq!(claims["sub"], payload["user"]["id"]);
    assert_eq!(claims["sid"], payload["session"]["id"]);
    assert_eq!(claims["email"], "ada@example.com");
    assert_eq!(claims["email_verified"], false);
    assert_eq!(claims["role"], "user");
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert_eq!(exp - iat, 900, "15 minutes by default");
    let expires_at =
        DateTime::parse_from_rfc3339(payload["accessTokenExpiresAt"].as_str().unwrap()).unwrap();
    assert_eq!(expires_at.timestamp(), exp);

    // The most common Rust library accepts the JWK as published, too.
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(keys[0].clone()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(Algorithm::EdDSA);
    validation.set_issuer(&[&app.base]);
    validation.set_audience(&[&app.base]);
    jsonwebtoken::decode::<Value>(
        access,
        &jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap(),
        &validation,
    )
    .expect("jsonwebtoken verifies from the JWK");

    // Sign-in and refresh issue tokens for their own session.
    let signed_in = app
        .gql(
            "mutation { signInEmail(input: {email: \"ada@example.com\", password: \"correct horse battery staple\"}) { token accessToken session { id } } }",
            json!({}),
        )
        .await;
    let s = &signed_in["data"]["signInEmail"];
    let claims = verify(
        &jwks,
        s["accessToken"].as_str().unwrap(),
        &app.base,
        &app.base,
        Utc::now(),
    )
    .unwrap();
    assert_eq!(claims["sid"], s["session"]["id"]);
    let refreshed = app
        .gql_with(
            s["token"].as_str(),
            "mutation { refreshAccessToken { token expiresAt } }",
            json!({}),
        )
        .await;
    let fresh = refreshed["data"]["refreshAccessToken"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{refreshed}"));
    let claims = verify(&jwks, fresh, &app.base, &app.base, Utc::now()).unwrap();
    assert_eq!(claims["sid"], s["session"]["id"]);
    let anon = app
        .gql("mutation { refreshAccessToken { token } }", json!({}))
        .await;
    assert_eq!(code(&anon), "UNAUTHENTICATED");
}

async fn verification_survives_rotation_and_retired_keys_leave(backend: Backend) {
    let app = TestApp::builder(backend)
        .config(|c| {
            c.tokens.audience = Some("https://api.example.com".into());
        })
        .spawn()
        .await;
    let aud = "https://api.example.com";
    let payload = app.sign_up_payload("ada@example.com").await;
    let admin = payload["token"].as_str().unwrap().to_owned();
    let old = payload["accessToken"].as_str().unwrap().to_owned();
    let old_kid = part(&old, 0)["kid"].as_str().unwrap().to_owned();
    let user = app.sign_up("eve@example.com").await;

    let rotate = "mutation { adminRotateSigningKeys { kid algorithm createdAt retiredAt } }";
    assert_eq!(code(&app.gql(rotate, json!({})).await), "UNAUTHENTICATED");
    assert_eq!(
        code(&app.gql_with(Some(&user), rotate, json!({})).await),
        "FORBIDDEN"
    );
    assert_eq!(
        kids(&app.jwks().await),
        std::slice::from_ref(&old_kid),
        "nothing rotated"
    );

    make_admin(&app, "ada@example.com").await;
    let rotated = app.gql_with(Some(&admin), rotate, json!({})).await;
    let key = &rotated["data"]["adminRotateSigningKeys"];
    let new_kid = key["kid"].as_str().unwrap_or_else(|| panic!("{rotated}"));
    assert_ne!(new_kid, old_kid);
    assert_eq!(key["algorithm"], "EdDSA");
    assert!(key["retiredAt"].is_null());

    let jwks = app.jwks().await;
    assert_eq!(kids(&jwks), [new_kid.to_owned(), old_kid.clone()]);
    verify(&jwks, &old, &app.base, aud, Utc::now()).expect("old token still verifies");
    let fresh = app
        .gql_with(
            Some(&admin),
            "mutation { refreshAccessToken { token } }",
            json!({}),
        )
        .await["data"]["refreshAccessToken"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(part(&fresh, 0)["kid"], new_kid);
    verify(&jwks, &fresh, &app.base, aud, Utc::now()).expect("new token verifies");
    assert_eq!(
        app.db
            .count("SELECT COUNT(*) AS n FROM signing_key WHERE retired_at IS NULL")
            .await,
        1
    );

    // The retired key stays published for token lifetime + leeway after retirement, then leaves.
    let at = |secs: i64| {
        (Utc::now() - chrono::Duration::seconds(secs))
            .naive_utc()
            .format("%Y-%m-%d %H:%M:%S%.6f")
            .to_string()
    };
    app.db
        .execute(&format!(
            "UPDATE signing_key SET retired_at = '{}' WHERE id = '{old_kid}'",
            at(900 + 50)
        ))
        .await;
    assert_eq!(kids(&app.jwks().await).len(), 2, "still within retention");
    app.db
        .execute(&format!(
            "UPDATE signing_key SET retired_at = '{}' WHERE id = '{old_kid}'",
            at(900 + 70)
        ))
        .await;
    let jwks = app.jwks().await;
    assert_eq!(kids(&jwks), [new_kid.to_owned()]);
    assert_eq!(
        verify(&jwks, &old, &app.base, aud, Utc::now()),
        Err("unknown kid".into())
    );
    verify(&jwks, &fresh, &app.base, aud, Utc::now()).expect("current key unaffected");
}

/// Sign-in reads the active key together with the user (and keeps it unsealed while it stays
/// active): a rotation by another replica must still take effect on the very next sign-in.
async fn sign_in_signs_with_the_key_another_replica_rotated_to(backend: Backend) {
    let (a, admin) = TestApp::builder(backend).secret().spawn_admin().await;
    let b = a
        .replica()
        .secret()
        .config(|c| c.admin.emails = vec![ADMIN_EMAIL.to_owned()])
        .spawn()
        .await;
    a.sign_up("ada@example.com").await;
    let sign_in = || async {
        let body = a
            .gql(
                "mutation($input: SignInEmailInput!) { signInEmail(input: $input) { accessToken } }",
                json!({ "input": { "email": "ada@example.com", "password": PASSWORD } }),
            )
            .await;
        body["data"]["signInEmail"]["accessToken"]
            .as_str()
            .unwrap_or_else(|| panic!("{body}"))
            .to_owned()
    };
    let before = sign_in().await;
    let old_kid = part(&before, 0)["kid"].clone();

    let rotated = b
        .gql_with(
            Some(&admin),
            "mutation { adminRotateSigningKeys { kid } }",
            json!({}),
        )
        .await;
    let new_kid = rotated["data"]["adminRotateSigningKeys"]["kid"].clone();
    assert!(new_kid.is_string(), "{rotated}");
    assert_ne!(new_kid, old_kid);

    let after = sign_in().await;
    assert_eq!(part(&after, 0)["kid"], new_kid, "A signs with B's new key");
    let jwks = a.jwks().await;
    verify(&jwks, &after, &a.base, &a.base, Utc::now()).expect("verifies with A's JWKS");
    drop(b);
}

async fn interval_rotation_keeps_the_old_key_published(backend: Backend) {
    let app = TestApp::builder(backend)
        .config(|c| c.tokens.key_rotation_interval = 1)
        .spawn()
        .await;
    let payload = app.sign_up_payload("ada@example.com").await;
    let old = payload["accessToken"].as_str().unwrap().to_owned();
    let old_kid = part(&old, 0)["kid"].as_str().unwrap().to_owned();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let jwks = loop {
        let jwks = app.jwks().await;
        if kids(&jwks)[0] != old_kid {
            break jwks;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no rotation within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        kids(&jwks).contains(&old_kid),
        "retired key still published"
    );
    verify(&jwks, &old, &app.base, &app.base, Utc::now()).expect("old token verifies");
}

async fn the_verifier_rejects_every_forgery(backend: Backend) {
    let app = TestApp::builder(backend).secret().spawn().await;
    let payload = app.sign_up_payload("ada@example.com").await;
    let real = payload["accessToken"].as_str().unwrap().to_owned();
    let jwks = app.jwks().await;
    let ours = key_store(&app).signer().await.expect("our signer");
    let kid = ours.kid().to_owned();
    let now = Utc::now().timestamp();
    let claims = part(&real, 1);
    let header = json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": kid });
    let with = |base: &Value, changes: Value| {
        let mut v = base.clone();
        for (k, val) in changes.as_object().unwrap() {
            if val.is_null() {
                v.as_object_mut().unwrap().remove(k);
            } else {
                v[k] = val.clone();
            }
        }
        v
    };
    let real_key = Some((ours.encoding_key(), Algorithm::EdDSA));
    let check = |token: &str| verify(&jwks, token, &app.base, &app.base, Utc::now());

    // Control: a token made here with the real key and honest claims verifies, so every
    // rejection below is about the forgery, not the harness.
    check(&forge(&header, &claims, real_key)).expect("control token verifies");
    check(&real).expect("issued token verifies");

    let x = URL_SAFE_NO_PAD
        .decode(jwks["keys"][0]["x"].as_str().unwrap())
        .unwrap();
    let (evil, evil_jwk) = attacker_key();
    let evil_key = Some((&evil, Algorithm::EdDSA));
    let hs_raw = EncodingKey::from_secret(&x);
    let x_text = jwks["keys"][0]["x"].as_str().unwrap().to_owned();
    let hs_text = EncodingKey::from_secret(x_text.as_bytes());
    let jwks_text = jwks.to_string();
    let hs_doc = EncodingKey::from_secret(jwks_text.as_bytes());

    let forgeries: Vec<(&str, String)> = vec![
        (
            "alg none",
            forge(&with(&header, json!({"alg": "none"})), &claims, None),
        ),
        (
            "alg none with the real signature",
            format!(
                "{}.{}.{}",
                b64(&with(&header, json!({"alg": "none"}))),
                real.split('.').nth(1).unwrap(),
                real.split('.').nth(2).unwrap()
            ),
        ),
        (
            "HS256 keyed with the public key bytes",
            forge(
                &with(&header, json!({"alg": "HS256"})),
                &claims,
                Some((&hs_raw, Algorithm::HS256)),
            ),
        ),
        (
            "HS256 keyed with the base64url public key",
            forge(
                &with(&header, json!({"alg": "HS256"})),
                &claims,
                Some((&hs_text, Algorithm::HS256)),
            ),
        ),
        (
            "HS256 keyed with the JWKS document",
            forge(
                &with(&header, json!({"alg": "HS256"})),
                &claims,
                Some((&hs_doc, Algorithm::HS256)),
            ),
        ),
        (
            "unknown kid",
            forge(
                &with(&header, json!({"kid": "attacker"})),
                &claims,
                evil_key,
            ),
        ),
        ("our kid, attacker's key", forge(&header, &claims, evil_key)),
        (
            "jwk header with the attacker's key",
            forge(
                &with(&header, json!({"kid": "attacker", "jwk": evil_jwk})),
                &claims,
                evil_key,
            ),
        ),
        (
            "jwk header, our kid",
            forge(&with(&header, json!({"jwk": evil_jwk})), &claims, evil_key),
        ),
        (
            "jku header",
            forge(
                &with(
                    &header,
                    json!({"kid": "attacker", "jku": "https://evil.example/jwks.json"}),
                ),
                &claims,
                evil_key,
            ),
        ),
        (
            "x5u header",
            forge(
                &with(
                    &header,
                    json!({"kid": "attacker", "x5u": "https://evil.example/cert.pem"}),
                ),
                &claims,
                evil_key,
            ),
        ),
        (
            "expired beyond the leeway",
            forge(
                &header,
                &with(&claims, json!({"iat": now - 1000, "exp": now - 61})),
                real_key,
            ),
        ),
        (
            "no exp",
            forge(&header, &with(&claims, json!({"exp": null})), real_key),
        ),
        (
            "nbf in the future",
            forge(&header, &with(&claims, json!({"nbf": now + 120})), real_key),
        ),
        (
            "wrong iss",
            forge(
                &header,
                &with(&claims, json!({"iss": "https://evil.example"})),
                real_key,
            ),
        ),
        (
            "no iss",
            forge(&header, &with(&claims, json!({"iss": null})), real_key),
        ),
        (
            "wrong aud",
            forge(
                &header,
                &with(&claims, json!({"aud": "https://other.example"})),
                real_key,
            ),
        ),
        (
            "wrong typ",
            forge(&with(&header, json!({"typ": "JWT"})), &claims, real_key),
        ),
        (
            "no typ",
            forge(&with(&header, json!({"typ": null})), &claims, real_key),
        ),
        (
            "tampered payload",
            format!(
                "{}.{}.{}",
                real.split('.').next().unwrap(),
                b64(&with(&claims, json!({"role": "admin"}))),
                real.split('.').nth(2).unwrap()
            ),
        ),
        ("truncated signature", real[..real.len() - 4].to_owned()),
    ];
    for (name, token) in &forgeries {
        assert!(check(token).is_err(), "accepted forgery: {name}");
        assert!(
            readme_example::verify(&jwks, token, &app.base, &app.base).is_err(),
            "README example accepted forgery: {name}"
        );
    }

    // The leeway is 60 s, no more, no less.
    check(&forge(
        &header,
        &with(&claims, json!({"iat": now - 1000, "exp": now - 50})),
        real_key,
    ))
    .expect("within the leeway");
    let real_exp = claims["exp"].as_i64().unwrap();
    let at = |t: i64| DateTime::from_timestamp(t, 0).unwrap();
    assert!(verify(&jwks, &real, &app.base, &app.base, at(real_exp + 59)).is_ok());
    assert!(verify(&jwks, &real, &app.base, &app.base, at(real_exp + 61)).is_err());

    // None of them gets anywhere with Apexkit itself either.
    for (name, token) in forgeries.iter().take(3) {
        let body = app.session(token).await;
        assert!(body["data"]["session"].is_null(), "{name}: {body}");
    }
}

async fn a_jwt_as_bearer_authenticates_nothing_without_a_lookup(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let payload = app.sign_up_payload("ada@example.com").await;
    let access = payload["accessToken"].as_str().unwrap().to_owned();
    let query = "{ session { session { id } } }";

    let body = app.gql_with(Some(&access), query, json!({})).await;
    assert!(
        body["data"]["session"].is_null() && body["errors"].is_null(),
        "{body}"
    );
    let body = app
        .gql_with(
            Some(&access),
            "mutation { refreshAccessToken { token } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&body), "UNAUTHENTICATED");

    // With the tables gone behind the running app, any session lookup fails loudly. A token of
    // our shape proves it; the JWT still answers a clean null, so it never reached the database.
    migrations::revert_all(&app.db.database_url())
        .await
        .expect("revert");
    let made_up = "A".repeat(43);
    let looked_up = app.gql_with(Some(&made_up), query, json!({})).await;
    assert!(
        !looked_up["errors"].is_null(),
        "a session-shaped token is looked up: {looked_up}"
    );
    let body = app.gql_with(Some(&access), query, json!({})).await;
    assert!(
        body["data"]["session"].is_null() && body["errors"].is_null(),
        "{body}"
    );
}

async fn three_replicas_booting_at_once_create_one_key(backend: Backend) {
    for _ in 0..3 {
        let db = TestDb::new(backend).await;
        let boots: Vec<_> = (0..3)
            .map(|_| tokio::spawn(TestApp::on(&db).secret().boot()))
            .collect();
        for boot in boots {
            boot.await.unwrap().expect("replica boots");
        }
        assert_eq!(
            db.count("SELECT COUNT(*) AS n FROM signing_key").await,
            1,
            "exactly one key"
        );
    }
}

async fn a_changed_secret_is_refused_in_production_and_replaced_in_development(backend: Backend) {
    let db = TestDb::new(backend).await;
    let config = |secret: &str, production: bool| {
        let secret = Secret::new(secret);
        TestApp::on(&db).config(move |c| {
            c.server.secret = Some(secret);
            if production {
                c.server.environment = apexkit::config::Environment::Production;
                c.server.base_url = Some("https://auth.example.com".into());
            }
        })
    };
    let a = "a".repeat(32);
    let b = "b".repeat(32);
    drop(config(&a, true).boot().await.expect("boots"));
    let stored = db
        .count("SELECT COUNT(*) AS n FROM signing_key WHERE private_key LIKE 'xc20p1.%'")
        .await;
    assert_eq!(stored, 1, "private half stored sealed");

    let refused = config(&b, true)
        .boot()
        .await
        .err()
        .expect("production refuses a key it cannot decrypt");
    let message = format!("{refused:#}");
    assert!(
        message.contains("cannot be decrypted") && message.contains("APEXKIT_SECRET"),
        "{message}"
    );
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM signing_key").await, 1);

    // Development replaces it (a development secret changes on every start).
    drop(config(&b, false).boot().await.expect("dev boots"));
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM signing_key WHERE retired_at IS NULL")
            .await,
        1
    );
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM signing_key").await, 2);
    drop(config(&b, true).boot().await.expect("new key is readable"));

    // The operator's way out in production: `apexkit keys rotate` with the new secret.
    let c = "c".repeat(32);
    apexkit::app::rotate_keys(&config(&c, true).into_config())
        .await
        .expect("rotate");
    drop(config(&c, true).boot().await.expect("boots after rotate"));
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM signing_key").await, 3);
}

on_both!(keys_rotate_subcommand_rotates_and_needs_the_secret);

async fn keys_rotate_subcommand_rotates_and_needs_the_secret(backend: Backend) {
    let db = TestDb::new(backend).await;
    let run = |secret: Option<&str>| {
        let mut cmd = apexkit_cmd(&[("DATABASE_URL", &db.url)]);
        cmd.args(["keys", "rotate"]);
        if let Some(secret) = secret {
            cmd.env("APEXKIT_SECRET", secret);
        }
        cmd.output().expect("run apexkit keys rotate")
    };
    let refused = run(None);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("APEXKIT_SECRET"));

    let mut printed = Vec::new();
    for _ in 0..2 {
        let out = run(Some(TEST_SECRET));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        printed.push(String::from_utf8_lossy(&out.stdout).trim().to_owned());
    }
    assert_ne!(printed[0], printed[1], "a new kid each time");
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM signing_key").await, 2);
    assert_eq!(
        db.count(&format!(
            "SELECT COUNT(*) AS n FROM signing_key WHERE retired_at IS NULL AND id = '{}'",
            printed[1]
        ))
        .await,
        1,
        "the printed kid is the active key"
    );
}
