//! Social sign-in against a real OpenID provider (oidc-provider on loopback): the browser's
//! redirect flow hop by hop, linking rules, the attacks on `state`, code and `id_token`, the
//! provider's denial and outage, the native `idToken` sign-in, and two replicas.

use apexkit::Config;
use apexkit::config::{ProviderConfig, Secret};
use serde_json::{Value, json};

use crate::support::oidc::{
    Browser, CLIENT_ID, CLIENT_SECRET, OidcProvider, client, free_port, native_id_token, param,
    provider_config,
};
use crate::support::{Backend, TestApp, TestDb, code, data, metric_value, on_both};

/// A provider and an app that knows it as `corp` (and as each of `extra`'s ids, with their
/// client ids), the provider started first with the app's callback URLs.
struct Setup {
    app: TestApp,
    provider: OidcProvider,
    /// The app's base URL.
    base: String,
}

fn corp(issuer: &str, id: &str, client_id: &str) -> ProviderConfig {
    ProviderConfig {
        id: id.to_owned(),
        client_id: Some(client_id.to_owned()),
        client_secret: Some(Secret::new(CLIENT_SECRET)),
        issuer: Some(issuer.to_owned()),
        ..Default::default()
    }
}

/// The `?error=` values the contract allows on a callback's redirect.
const CONTRACT_ERRORS: [&str; 7] = [
    "state_mismatch",
    "access_denied",
    "invalid_code",
    "email_not_found",
    "account_not_linked",
    "account_already_linked",
    "provider_not_found",
];

/// A callback's redirect, after checking that any `?error=` on it is a contract value.
fn checked(to: Option<String>) -> String {
    let to = to.expect("location");
    if let Some(error) = param(&to, "error") {
        assert!(
            CONTRACT_ERRORS.contains(&error.as_str()),
            "not a contract error: {to}"
        );
    }
    to
}

impl Setup {
    async fn new(backend: Backend) -> Self {
        Self::with(backend, |_, _| {}, |_| {}).await
    }

    /// The provider `corp` with its configuration adjusted by `provider`.
    async fn provider(backend: Backend, provider: impl FnOnce(&mut Value, &str)) -> Self {
        Self::with(backend, provider, |_| {}).await
    }

    /// The app's configuration adjusted by `app`.
    async fn app(backend: Backend, app: impl FnOnce(&mut Config) + Send + 'static) -> Self {
        Self::with(backend, |_, _| {}, app).await
    }

    /// `corp` and a preset (or any other provider) `extra`, e.g. pointed at a stand-in.
    async fn preset(backend: Backend, extra: ProviderConfig) -> Self {
        Self::app(backend, move |c| c.social.providers.push(extra)).await
    }

    /// `query` (no variables) from a page of the app in `browser`: the whole answer.
    async fn ask(&self, browser: &Browser, query: &str) -> Value {
        browser.gql(&self.base, query, json!({})).await
    }

    /// Rows of `from` (`table [WHERE …]`).
    async fn count(&self, from: &str) -> i64 {
        self.app
            .db
            .count(&format!("SELECT COUNT(*) AS n FROM {from}"))
            .await
    }

    /// The audit trail's failure reasons of `kind`, oldest first.
    async fn failure_reasons(&self, kind: &str) -> Vec<String> {
        let details = self
            .app
            .db
            .strings(&format!(
                "SELECT detail AS s FROM audit_event WHERE type = '{kind}' AND outcome = 'failure' ORDER BY created_at"
            ))
            .await;
        details
            .iter()
            .map(|d| {
                let v: Value = serde_json::from_str(d).expect("detail");
                v["reason"].as_str().expect("reason").to_owned()
            })
            .collect()
    }

    /// A browser signed in with a password as a new user `email`.
    async fn password_user(&self, email: &str) -> Browser {
        self.app.sign_up(email).await;
        let browser = Browser::new();
        let signed = browser
            .gql(
                &self.base,
                "mutation($e: String!) { signInEmail(input: {email: $e, password: \"correct horse battery staple\"}) { token } }",
                json!({ "e": email }),
            )
            .await;
        assert!(
            signed["data"]["signInEmail"]["token"].is_string(),
            "{signed}"
        );
        browser
    }

    /// `linkSocial` of `corp` from `browser` (to `/linked`, failures to `/oops`), the
    /// provider's login as `login`: where the callback sends the browser.
    async fn link(&self, browser: &Browser, login: &str) -> String {
        let input =
            json!({ "provider": "corp", "callbackURL": "/linked", "errorCallbackURL": "/oops" });
        let body = browser
            .gql(
                &self.base,
                "mutation($i: LinkSocialInput!) { linkSocial(input: $i) { url redirect } }",
                json!({ "i": input }),
            )
            .await;
        let url = data(&body, "linkSocial")["url"]
            .as_str()
            .expect("url")
            .to_owned();
        let back = browser.authorize(&url, Some(login)).await;
        checked(browser.get(&back).await.1)
    }

    /// `provider` adjusts the provider's config (given the app's base URL); `app` the app's
    /// (whose `social.providers` holds `corp`).
    async fn with(
        backend: Backend,
        provider: impl FnOnce(&mut Value, &str),
        app: impl FnOnce(&mut Config) + Send + 'static,
    ) -> Self {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let mut config = provider_config(&[format!("{base}/callback/corp")]);
        provider(&mut config, &base);
        // A test may pin the provider's port (`"port"`, not a provider setting).
        let pinned = config
            .as_object_mut()
            .and_then(|o| o.remove("port"))
            .and_then(|p| p.as_u64())
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(0);
        let oidc = OidcProvider::start_on(&config, pinned);
        let issuer = oidc.issuer.clone();
        let app = TestApp::builder(backend)
            .secret()
            .config(move |c| {
                c.server.listen = format!("127.0.0.1:{port}").parse().expect("addr");
                c.social.providers = vec![corp(&issuer, "corp", CLIENT_ID)];
                app(c);
                c.social.provider_ids = c.social.providers.iter().map(|p| p.id.clone()).collect();
            })
            .spawn()
            .await;
        Self {
            app,
            provider: oidc,
            base,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A whole sign-in in a fresh browser as `login`: the final redirect and the browser.
    async fn sign_in(&self, login: &str, input: Value) -> (String, Browser) {
        let browser = Browser::new();
        let url = browser.start(&self.base, input).await;
        let back = browser.authorize(&url, Some(login)).await;
        let (status, to) = browser.get(&back).await;
        assert_eq!(status, 302, "callback redirects");
        (checked(to), browser)
    }
}

async fn me(browser: &Browser, base: &str) -> Value {
    let body = browser
        .gql(base, "{ me { email emailVerified name image } }", json!({}))
        .await;
    data(&body, "me").clone()
}

fn flow(extra: Value) -> Value {
    let mut input = json!({
        "provider": "corp",
        "callbackURL": "/home",
        "newUserCallbackURL": "/welcome",
        "errorCallbackURL": "/oops",
    });
    if let (Some(i), Some(e)) = (input.as_object_mut(), extra.as_object()) {
        i.extend(e.clone());
    }
    input
}

async fn new_and_returning_user(backend: Backend) {
    let s = Setup::new(backend).await;
    let body = s
        .app
        .gql("{ socialProviders { id name } }", json!({}))
        .await;
    assert_eq!(
        data(&body, "socialProviders"),
        &json!([{ "id": "corp", "name": "Corp" }])
    );

    let browser = Browser::new();
    let url = browser
        .start(&s.base, flow(json!({ "loginHint": "alice" })))
        .await;
    for p in ["state", "nonce", "code_challenge"] {
        assert!(
            param(&url, p).is_some_and(|v| v.len() >= 43),
            "{p} in {url}"
        );
    }
    assert_eq!(
        param(&url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(
        param(&url, "redirect_uri").as_deref(),
        Some(s.url("/callback/corp").as_str())
    );
    let back = browser.authorize(&url, Some("alice")).await;
    assert!(back.starts_with(&s.url("/callback/corp?")), "{back}");
    assert_eq!(
        param(&back, "iss").as_deref(),
        Some(s.provider.issuer.as_str())
    );
    let (status, to) = browser.get(&back).await;
    assert_eq!(
        (status, to.as_deref()),
        (302, Some(s.url("/welcome").as_str()))
    );
    let user = me(&browser, &s.base).await;
    assert_eq!(user["email"], "alice@example.test");
    assert_eq!(user["emailVerified"], true, "the provider asserted it");
    assert_eq!(user["name"], "Alice Example");

    let sealed = s
        .app
        .db
        .strings("SELECT access_token AS s FROM account WHERE provider_id = 'corp'")
        .await;
    assert_eq!(sealed.len(), 1);
    assert!(sealed[0].starts_with("xc20p1."), "tokens sealed at rest");
    let scopes = s
        .ask(&browser, "{ accounts { providerId accountId scopes } }")
        .await;
    assert_eq!(
        data(&scopes, "accounts"),
        &json!([{ "providerId": "corp", "accountId": "alice-sub",
                  "scopes": ["openid", "email", "profile"] }])
    );

    let metrics = s.app.metrics_text().await;
    assert!(
        metric_value(
            &metrics,
            "apexkit_social_sign_in_total",
            &[("provider", "corp"), ("outcome", "success")]
        ) >= 1.0,
        "{metrics}"
    );

    // Returning: the same identity, no new user, callbackURL.
    let (to, again) = s.sign_in("alice", flow(json!({}))).await;
    assert_eq!(to, s.url("/home"));
    assert_eq!(me(&again, &s.base).await["email"], "alice@example.test");
    assert_eq!(s.app.db.users().await, 1);
    assert_eq!(
        s.count("audit_event WHERE type = 'social_sign_in' AND outcome = 'success'")
            .await,
        2
    );
}

async fn links_only_verified_emails(backend: Backend) {
    let s = Setup::new(backend).await;
    // Alice owns her address (verified): the provider's verified identity is linked.
    s.app.sign_up("alice@example.test").await;
    s.app.verify_address("alice@example.test").await;
    let (to, browser) = s.sign_in("alice", flow(json!({}))).await;
    assert_eq!(to, s.url("/home"), "an existing user, linked");
    assert_eq!(me(&browser, &s.base).await["email"], "alice@example.test");
    assert_eq!(
        s.count(
            "account a JOIN \"user\" u ON u.id = a.user_id WHERE u.email = 'alice@example.test'"
        )
        .await,
        2
    );

    // Someone registered bob@ with a password and never verified it: the provider's (here
    // unverified) identity must not take that account over, nor be merged into it.
    s.app.sign_up("bob@example.test").await;
    let (to, browser) = s.sign_in("bob", flow(json!({}))).await;
    assert_eq!(to, s.url("/oops?error=account_not_linked"));
    assert!(me(&browser, &s.base).await.is_null(), "no session");
    assert_eq!(
        s.count("account WHERE provider_id = 'corp' AND account_id = 'bob-sub'")
            .await,
        0,
        "no row written"
    );
    assert_eq!(s.app.db.users().await, 2);
    // Bob's own address verified now, but the provider still does not vouch for it.
    s.app.verify_address("bob@example.test").await;
    let (to, _) = s.sign_in("bob", flow(json!({}))).await;
    assert_eq!(to, s.url("/oops?error=account_not_linked"));
    assert_eq!(s.count("account WHERE account_id = 'bob-sub'").await, 0);

    // No email from the provider at all.
    let (to, _) = s.sign_in("nomail", flow(json!({}))).await;
    assert_eq!(to, s.url("/oops?error=email_not_found"));
    assert_eq!(s.app.db.users().await, 2);
}

async fn state_is_single_use_and_bound_to_the_browser(backend: Backend) {
    let s = Setup::new(backend).await;
    let error_page = s.url("/error?error=state_mismatch");

    // No state at all.
    let stranger = Browser::new();
    let (status, to) = stranger.get(&s.url("/callback/corp?code=abc")).await;
    assert_eq!((status, to.as_deref()), (302, Some(error_page.as_str())));

    // Started in one browser, finished in another (the attacker's link in the victim's
    // browser): refused, and it spends nothing.
    let browser = Browser::new();
    let url = browser.start(&s.base, flow(json!({}))).await;
    let back = browser.authorize(&url, Some("alice")).await;
    let (_, to) = stranger.get(&back).await;
    assert_eq!(to.as_deref(), Some(error_page.as_str()));
    assert_eq!(s.app.db.users().await, 0);

    // A callback for another provider than the state's.
    let (_, to) = browser
        .get(&back.replace("/callback/corp", "/callback/other"))
        .await;
    assert_eq!(
        to.as_deref(),
        Some(s.url("/error?error=provider_not_found").as_str())
    );

    // The right browser finishes it once...
    let (_, to) = browser.get(&back).await;
    assert_eq!(to.as_deref(), Some(s.url("/welcome").as_str()));
    // ... and only once.
    let (_, to) = browser.get(&back).await;
    assert_eq!(to.as_deref(), Some(error_page.as_str()));

    // A spent code under a fresh state: the exchange fails (and the provider revokes the grant).
    let old_code = param(&back, "code").expect("code");
    let url = browser.start(&s.base, flow(json!({}))).await;
    let fresh = browser.authorize(&url, Some("alice")).await;
    let replayed = fresh.replace(&param(&fresh, "code").expect("code"), &old_code);
    let (_, to) = browser.get(&replayed).await;
    assert_eq!(
        to.as_deref(),
        Some(s.url("/oops?error=invalid_code").as_str())
    );

    // An `iss` that is not the provider's (RFC 9207 mix-up): a forged response.
    let url = browser.start(&s.base, flow(json!({}))).await;
    let fresh = browser.authorize(&url, Some("alice")).await;
    let mixed = fresh.replace(
        &format!("iss={}", urlencode(&s.provider.issuer)),
        "iss=https%3A%2F%2Fevil.example",
    );
    assert_ne!(mixed, fresh);
    let (_, to) = browser.get(&mixed).await;
    assert_eq!(to.as_deref(), Some(error_page.as_str()));

    // An abandoned flow: its row expires and the periodic purge (which also runs at start)
    // removes it.
    browser.start(&s.base, flow(json!({}))).await;
    let flows = "SELECT COUNT(*) AS n FROM verification WHERE purpose = 'oauth-state'";
    assert_eq!(s.app.db.count(flows).await, 1);
    s.app
        .db
        .execute("UPDATE verification SET expires_at = '2020-01-01 00:00:00' WHERE purpose = 'oauth-state'")
        .await;
    let restarted = s.app.replica().secret().spawn().await;
    let mut left = 1;
    for _ in 0..50 {
        left = s.app.db.count(flows).await;
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(left, 0, "expired flows purged");
    drop(restarted);

    assert_eq!(s.app.db.users().await, 1);
    assert_eq!(
        s.count("session").await,
        1,
        "only the one good callback opened a session"
    );
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn provider_denial_and_outage(backend: Backend) {
    let s = Setup::new(backend).await;
    let browser = Browser::new();
    let url = browser.start(&s.base, flow(json!({}))).await;
    let back = browser.authorize(&url, None).await;
    assert_eq!(param(&back, "error").as_deref(), Some("access_denied"));
    let (_, to) = browser.get(&back).await;
    assert_eq!(
        to.as_deref(),
        Some(s.url("/oops?error=access_denied").as_str())
    );

    // Redirect targets follow the mailed-link rule: no open redirect.
    let body = s.ask(&browser, "mutation { signInSocial(input: {provider: \"corp\", callbackURL: \"https://evil.example/\"}) { url } }").await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    let body = s
        .ask(
            &browser,
            "mutation { signInSocial(input: {provider: \"nope\"}) { url } }",
        )
        .await;
    assert_eq!(code(&body), "PROVIDER_NOT_FOUND", "{body}");

    // The token endpoint down (a closed port): a clean error redirect, nothing written.
    let closed = format!("http://127.0.0.1:{}/token", free_port());
    let s = Setup::app(backend, move |c| {
        c.social.providers[0].token_url = Some(closed)
    })
    .await;
    let (to, browser) = s.sign_in("alice", flow(json!({}))).await;
    assert_eq!(to, s.url("/oops?error=invalid_code"));
    assert!(me(&browser, &s.base).await.is_null());
    assert_eq!(s.app.db.users().await, 0);
    assert_eq!(s.count("account").await, 0);
    assert_eq!(s.count("verification").await, 0, "flow spent");
}

const ID_TOKEN_SIGN_IN: &str = "mutation($i: SignInSocialInput!) { signInSocial(input: $i) { redirect url token user { email emailVerified } session { id } accessToken } }";

async fn id_token_sign_in(backend: Backend) {
    let s = Setup::new(backend).await;
    let token = native_id_token(&s.provider.issuer, "alice", "native-nonce").await;
    let app = &s.app;
    let sign_in = |token: String, nonce: &str| {
        let input = json!({ "provider": "corp", "idToken": { "token": token, "nonce": nonce } });
        async move { app.gql(ID_TOKEN_SIGN_IN, json!({ "i": input })).await }
    };

    // A wrong nonce, and a token whose signature was tampered with: refused, nothing written.
    let body = sign_in(token.clone(), "other-nonce").await;
    assert_eq!(code(&body), "INVALID_ID_TOKEN", "{body}");
    let mut tampered = token.clone().into_bytes();
    let last = tampered.len() - 5;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let body = sign_in(String::from_utf8(tampered).expect("ascii"), "native-nonce").await;
    assert_eq!(code(&body), "INVALID_ID_TOKEN", "{body}");
    // Claims re-signed by nobody: an `alg: none` token built from the real one.
    let parts: Vec<&str> = token.split('.').collect();
    let unsigned = format!("eyJhbGciOiJub25lIn0.{}.", parts[1]);
    let body = sign_in(unsigned, "native-nonce").await;
    assert_eq!(code(&body), "INVALID_ID_TOKEN", "{body}");
    assert_eq!(s.app.db.users().await, 0);

    let body = sign_in(token, "native-nonce").await;
    let payload = data(&body, "signInSocial");
    assert_eq!(payload["redirect"], false);
    assert!(payload["url"].is_null());
    assert!(
        payload["token"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    assert!(payload["accessToken"].is_string());
    assert_eq!(
        payload["user"],
        json!({ "email": "alice@example.test", "emailVerified": true })
    );
    assert_eq!(
        s.count("account WHERE provider_id = 'corp' AND account_id = 'alice-sub'")
            .await,
        1
    );
}

async fn refuses_hmac_signed_id_tokens(backend: Backend) {
    let s = Setup::with(
        backend,
        |config, base| {
            // oidc-provider 8 signs id_tokens with HS256 (the client secret as the key) on
            // request, but never with `none` (it refuses to enable it): the unsigned token is
            // built by hand in `id_token_sign_in`.
            config["idTokenSigningAlgValues"] = json!(["RS256", "HS256"]);
            let mut hs = client("apexkit-hs", &[format!("{base}/callback/hs")]);
            hs["id_token_signed_response_alg"] = json!("HS256");
            config["clients"].as_array_mut().expect("clients").push(hs);
        },
        |c| {
            let issuer = c.social.providers[0].issuer.clone().expect("issuer");
            c.social.providers.push(corp(&issuer, "hs", "apexkit-hs"));
        },
    )
    .await;
    let input = json!({ "provider": "hs", "errorCallbackURL": "/oops" });
    let (to, browser) = s.sign_in("alice", input).await;
    assert_eq!(to, s.url("/oops?error=invalid_code"));
    assert!(me(&browser, &s.base).await.is_null());
    assert_eq!(s.app.db.users().await, 0);
    assert_eq!(s.count("account").await, 0);
}

async fn any_replica_finishes_the_flow(backend: Backend) {
    let s = Setup::new(backend).await;
    let base = s.base.clone();
    let issuer = s.provider.issuer.clone();
    let replica = s
        .app
        .replica()
        .secret()
        .config(move |c| {
            c.server.base_url = Some(base);
            c.social.provider_ids = vec!["corp".into()];
            c.social.providers = vec![corp(&issuer, "corp", CLIENT_ID)];
        })
        .spawn()
        .await;
    let browser = Browser::new();
    let url = browser.start(&s.base, flow(json!({}))).await;
    let back = browser.authorize(&url, Some("alice")).await;
    // The load balancer sends the callback to the other instance (same public URL). The
    // binding cookie is host-only: reqwest keys it by host, and both listen on 127.0.0.1.
    let on_replica = back.replace(&s.base, &replica.url(""));
    let (status, to) = browser.get(&on_replica).await;
    assert_eq!(
        (status, to.as_deref()),
        (302, Some(s.url("/welcome").as_str()))
    );
    assert_eq!(
        me(&browser, &replica.url("")).await["email"],
        "alice@example.test"
    );
    drop(replica);
}

async fn link_and_unlink(backend: Backend) {
    let s = Setup::new(backend).await;
    // Alice has a password account (her address unverified here, so no automatic linking)
    // and links her provider identity, which vouches for that same address, from her
    // signed-in session.
    let alice = s.password_user("alice@example.test").await;
    let to = s.link(&alice, "alice").await;
    assert_eq!(to, s.url("/linked"));
    let accounts = s.ask(&alice, "{ accounts { providerId accountId } }").await;
    assert_eq!(
        data(&accounts, "accounts"),
        &json!([{ "providerId": "credential", "accountId": data(&accounts, "accounts")[0]["accountId"] },
                { "providerId": "corp", "accountId": "alice-sub" }])
    );
    // The identity now signs Alice in.
    let (to, other) = s.sign_in("alice", flow(json!({}))).await;
    assert_eq!(to, s.url("/home"));
    assert_eq!(me(&other, &s.base).await["email"], "alice@example.test");

    // Grace cannot link an identity whose provider does not vouch for her own address (a
    // browser left signed in at the provider as Bob): `account_not_linked`, nothing written.
    let grace = s.password_user("grace@example.test").await;
    let to = s.link(&grace, "bob").await;
    assert_eq!(to, s.url("/oops?error=account_not_linked"));
    assert_eq!(s.count("account WHERE account_id = 'bob-sub'").await, 0);

    // Ada cannot link the identity Alice owns.
    let ada = s.password_user("ada@example.test").await;
    let to = s.link(&ada, "alice").await;
    assert_eq!(to, s.url("/oops?error=account_already_linked"));
    assert_eq!(s.count("account WHERE provider_id = 'corp'").await, 1);
    assert_eq!(
        s.failure_reasons("account_link").await,
        ["email_mismatch", "account_already_linked"]
    );

    // Unlinking: another user's or a missing account is NOT_FOUND; the last one is refused.
    let unlink = "mutation($i: UnlinkAccountInput!) { unlinkAccount(input: $i) }";
    let body = ada
        .gql(&s.base, unlink, json!({ "i": { "providerId": "corp" } }))
        .await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
    let credential = json!({ "i": { "providerId": "credential" } });
    let body = ada.gql(&s.base, unlink, credential.clone()).await;
    assert_eq!(code(&body), "FAILED_TO_UNLINK_LAST_ACCOUNT", "{body}");
    let body = alice
        .gql(
            &s.base,
            unlink,
            json!({ "i": { "providerId": "corp", "accountId": "alice-sub" } }),
        )
        .await;
    assert_eq!(data(&body, "unlinkAccount"), true, "{body}");
    let body = alice.gql(&s.base, unlink, credential).await;
    assert_eq!(code(&body), "FAILED_TO_UNLINK_LAST_ACCOUNT", "{body}");
    assert_eq!(s.count("account WHERE provider_id = 'corp'").await, 0);
    assert_eq!(
        s.count(
            "audit_event WHERE type IN ('account_link', 'account_unlink') AND outcome = 'success'"
        )
        .await,
        2
    );
}

/// APEXKIT_OAUTH_ALLOW_DIFFERENT_EMAILS=true: the operator lets users link any identity.
async fn linking_different_emails_when_allowed(backend: Backend) {
    let s = Setup::app(backend, |c| c.social.allow_different_emails = true).await;
    let grace = s.password_user("grace@example.test").await;
    let to = s.link(&grace, "bob").await;
    assert_eq!(to, s.url("/linked"));
    let (to, bob) = s.sign_in("bob", flow(json!({}))).await;
    assert_eq!(to, s.url("/home"));
    assert_eq!(me(&bob, &s.base).await["email"], "grace@example.test");

    // A user created by the provider has only that account: unlinking it is refused.
    let (_, alice) = s.sign_in("alice", flow(json!({}))).await;
    let body = s
        .ask(
            &alice,
            "mutation { unlinkAccount(input: {providerId: \"corp\"}) }",
        )
        .await;
    assert_eq!(code(&body), "FAILED_TO_UNLINK_LAST_ACCOUNT", "{body}");
    assert_eq!(s.count("account WHERE account_id = 'alice-sub'").await, 1);
}

async fn provider_access_token_is_refreshed_when_expired(backend: Backend) {
    let s = Setup::provider(backend, |config, _| {
        config["ttl"] = json!({ "AccessToken": 2 })
    })
    .await;
    let (_, browser) = s.sign_in("alice", flow(json!({}))).await;
    let query = "mutation { accountAccessToken(input: {providerId: \"corp\"}) { accessToken accessTokenExpiresAt scopes idToken } }";
    let first = browser.gql(&s.base, query, json!({})).await;
    let first = data(&first, "accountAccessToken").clone();
    assert_eq!(first["scopes"], json!(["openid", "email", "profile"]));
    assert!(
        first["idToken"]
            .as_str()
            .is_some_and(|t| t.split('.').count() == 3)
    );
    let userinfo = |token: String| {
        let url = format!("{}/me", s.provider.issuer);
        async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("userinfo")
                .status()
                .as_u16()
        }
    };
    let token = first["accessToken"].as_str().expect("token").to_owned();
    assert_eq!(
        userinfo(token.clone()).await,
        200,
        "the provider's own token"
    );

    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(
        userinfo(token.clone()).await,
        401,
        "expired at the provider"
    );
    let second = browser.gql(&s.base, query, json!({})).await;
    let second = data(&second, "accountAccessToken").clone();
    let fresh = second["accessToken"].as_str().expect("token").to_owned();
    assert_ne!(fresh, token, "refreshed");
    assert_eq!(userinfo(fresh).await, 200);
    assert_ne!(
        second["accessTokenExpiresAt"],
        first["accessTokenExpiresAt"]
    );

    // Nobody else's: an unknown provider account is NOT_FOUND.
    let body = s.ask(&browser, "mutation { accountAccessToken(input: {providerId: \"corp\", accountId: \"bob-sub\"}) { accessToken } }").await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
}

async fn userinfo_plain_oauth2_and_form_post(backend: Backend) {
    let s = Setup::with(
        backend,
        |config, base| {
            // Strict OIDC Core 5.4: the id_token has no email; it comes from userinfo.
            config["conformIdTokenClaims"] = json!(true);
            config["clients"][0]["redirect_uris"]
                .as_array_mut()
                .expect("uris")
                .push(json!(format!("{base}/callback/plain")));
        },
        |c| {
            // The same server as a plain OAuth 2.0 provider: endpoints only, no id_token check.
            let issuer = c.social.providers[0].issuer.clone().expect("issuer");
            c.social.providers.push(ProviderConfig {
                id: "plain".into(),
                client_id: Some(CLIENT_ID.into()),
                client_secret: Some(Secret::new(CLIENT_SECRET)),
                scopes: Some("openid,email,profile".into()),
                authorization_url: Some(format!("{issuer}/auth")),
                token_url: Some(format!("{issuer}/token")),
                userinfo_url: Some(format!("{issuer}/me")),
                ..Default::default()
            });
        },
    )
    .await;
    let (to, browser) = s.sign_in("alice", flow(json!({}))).await;
    assert_eq!(to, s.url("/welcome"));
    let user = me(&browser, &s.base).await;
    assert_eq!(
        user,
        json!({ "email": "alice@example.test", "emailVerified": true,
                "name": "Alice Example", "image": "https://example.test/alice.png" })
    );

    let (to, browser) = s.sign_in("bob", flow(json!({ "provider": "plain" }))).await;
    assert_eq!(to, s.url("/welcome"));
    let user = me(&browser, &s.base).await;
    assert_eq!(user["email"], "bob@example.test");
    assert_eq!(
        user["emailVerified"], false,
        "the provider did not vouch for it"
    );

    // response_mode=form_post: the same answer as a POSTed form.
    let browser = Browser::new();
    let url = browser.start(&s.base, flow(json!({}))).await;
    let back = browser.authorize(&url, Some("alice")).await;
    let form: Vec<(String, String)> = reqwest::Url::parse(&back)
        .expect("url")
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let resp = browser
        .http
        .post(s.url("/callback/corp"))
        .form(&form)
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status().as_u16(), 302);
    assert_eq!(
        crate::support::oidc::location(&resp).as_deref(),
        Some(s.url("/home").as_str())
    );
    assert_eq!(me(&browser, &s.base).await["email"], "alice@example.test");
}

async fn verification_and_bans_still_apply(backend: Backend) {
    let s = Setup::app(backend, |c| c.mail.require_email_verification = true).await;
    // Bob's provider does not vouch for his address: a user, unverified, and no session —
    // `access_denied`, the service's refusal (the audit trail says why).
    let (to, browser) = s.sign_in("bob", flow(json!({}))).await;
    assert_eq!(to, s.url("/oops?error=access_denied"));
    assert!(me(&browser, &s.base).await.is_null());
    assert_eq!(
        s.count("\"user\" WHERE email = 'bob@example.test' AND email_verified = false")
            .await,
        1
    );
    assert_eq!(s.count("session").await, 0);

    // A provider-verified address counts as verified.
    let (to, _) = s.sign_in("alice", flow(json!({}))).await;
    assert_eq!(to, s.url("/welcome"));

    s.app
        .db
        .execute("UPDATE \"user\" SET banned = true WHERE email = 'alice@example.test'")
        .await;
    let (to, browser) = s.sign_in("alice", flow(json!({}))).await;
    assert_eq!(to, s.url("/oops?error=access_denied"));
    assert!(me(&browser, &s.base).await.is_null());
    assert_eq!(
        s.failure_reasons("social_sign_in").await,
        ["email_not_verified", "banned"]
    );
    let metrics = s.app.metrics_text().await;
    // The recorder is process-wide (the other backend's run counts too).
    for outcome in ["email_not_verified", "banned"] {
        let counted = metric_value(
            &metrics,
            "apexkit_social_sign_in_total",
            &[("provider", "corp"), ("outcome", outcome)],
        );
        assert!(counted >= 1.0, "{outcome}: {metrics}");
    }
}

async fn keys_are_fetched_again_for_an_unknown_kid(backend: Backend) {
    let port = free_port();
    let s = Setup::with(
        backend,
        move |config, _| config["port"] = json!(port),
        |_| {},
    )
    .await;
    let Setup { app, provider, .. } = s;
    let issuer = provider.issuer.clone();
    let token = native_id_token(&issuer, "alice", "n1").await;
    let input = json!({ "provider": "corp", "idToken": { "token": token, "nonce": "n1" } });
    let body = app.gql(ID_TOKEN_SIGN_IN, json!({ "i": input })).await;
    assert_eq!(data(&body, "signInSocial")["redirect"], false, "{body}");

    // The provider restarts with new signing keys (same issuer): the app's cached JWKS no
    // longer has the token's kid, so it fetches the set again (at most every 10 s).
    drop(provider);
    let restarted = OidcProvider::start_on(&provider_config(&[]), port);
    assert_eq!(restarted.issuer, issuer);
    tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    let token = native_id_token(&issuer, "alice", "n2").await;
    let input = json!({ "provider": "corp", "idToken": { "token": token, "nonce": "n2" } });
    let body = app.gql(ID_TOKEN_SIGN_IN, json!({ "i": input })).await;
    assert_eq!(data(&body, "signInSocial")["redirect"], false, "{body}");
}

/// A preset `id` pointed at a stand-in with its endpoints (`authorize`, `token`, `user`
/// paths under `standin`).
fn oauth_preset(id: &str, client: (&str, &str), standin: &str, paths: [&str; 3]) -> ProviderConfig {
    ProviderConfig {
        id: id.into(),
        client_id: Some(client.0.into()),
        client_secret: Some(Secret::new(client.1)),
        authorization_url: Some(format!("{standin}{}", paths[0])),
        token_url: Some(format!("{standin}{}", paths[1])),
        userinfo_url: Some(format!("{standin}{}", paths[2])),
        ..Default::default()
    }
}

async fn github_preset(backend: Backend) {
    use crate::support::oidc::github;
    let standin = github::serve().await;
    let paths = [
        "/login/oauth/authorize",
        "/login/oauth/access_token",
        "/user",
    ];
    let client = (github::CLIENT_ID, github::CLIENT_SECRET);
    let s = Setup::preset(backend, oauth_preset("github", client, &standin, paths)).await;
    let body = s
        .app
        .gql("{ socialProviders { id name } }", json!({}))
        .await;
    assert_eq!(
        data(&body, "socialProviders")[1],
        json!({ "id": "github", "name": "GitHub" })
    );
    let browser = Browser::new();
    let url = browser
        .start(&s.base, flow(json!({ "provider": "github" })))
        .await;
    assert_eq!(
        param(&url, "scope").as_deref(),
        Some("read:user user:email")
    );
    assert_eq!(param(&url, "nonce"), None, "no OpenID Connect");
    let (_, back) = browser.get(&url).await;
    let back = back.expect("back to the app");
    let (_, to) = browser.get(&back).await;
    assert_eq!(to.as_deref(), Some(s.url("/welcome").as_str()));
    let user = me(&browser, &s.base).await;
    assert_eq!(
        user,
        json!({ "email": "octocat@example.test", "emailVerified": true,
                "name": "The Octocat", "image": "https://avatars.example.test/u/583231" })
    );
    let accounts = s
        .ask(&browser, "{ accounts { providerId accountId scopes } }")
        .await;
    assert_eq!(
        data(&accounts, "accounts"),
        &json!([{ "providerId": "github", "accountId": "583231",
                  "scopes": ["read:user", "user:email"] }])
    );
}

async fn discord_preset(backend: Backend) {
    use crate::support::oidc::discord;
    let standin = discord::serve().await;
    let paths = ["/oauth2/authorize", "/api/oauth2/token", "/api/users/@me"];
    let client = (discord::CLIENT_ID, discord::CLIENT_SECRET);
    let s = Setup::preset(backend, oauth_preset("discord", client, &standin, paths)).await;
    let browser = Browser::new();
    let url = browser
        .start(&s.base, flow(json!({ "provider": "discord" })))
        .await;
    assert_eq!(param(&url, "scope").as_deref(), Some("identify email"));
    let (_, back) = browser.get(&url).await;
    let (_, to) = browser.get(&back.expect("back to the app")).await;
    assert_eq!(to.as_deref(), Some(s.url("/welcome").as_str()));
    assert_eq!(
        me(&browser, &s.base).await,
        json!({ "email": "nelly@example.test", "emailVerified": true, "name": "Nelly",
                "image": "https://cdn.discordapp.com/avatars/80351110224678912/8342729096ea3675442027381ff50dfe.png" })
    );
    let token = s.ask(&browser, "mutation { accountAccessToken(input: {providerId: \"discord\"}) { accessToken scopes } }").await;
    assert_eq!(
        data(&token, "accountAccessToken"),
        &json!({ "accessToken": "discord-token", "scopes": ["identify", "email"] })
    );
}

/// The `id_token` of the redirect flow: one whose `exp` has passed (beyond the 60 s leeway),
/// one altered after signing (another `sub` and address), and one carrying another `nonce`
/// than the flow's — each refused with `invalid_code`, nothing written.
async fn id_token_checks_in_the_redirect_flow(backend: Backend) {
    async fn refused(s: &Setup, browser: &Browser, url: &str) {
        let back = browser.authorize(url, Some("alice")).await;
        let to = checked(browser.get(&back).await.1);
        assert_eq!(to, s.url("/oops?error=invalid_code"));
        assert!(me(browser, &s.base).await.is_null());
        assert_eq!(s.app.db.users().await, 0);
        assert_eq!(s.count("account").await, 0);
        assert_eq!(s.count("session").await, 0);
        assert_eq!(s.count("verification").await, 0, "flow spent");
    }
    let expired = Setup::provider(backend, |c, _| c["idTokenExpiredSecondsAgo"] = json!(120)).await;
    let browser = Browser::new();
    let url = browser.start(&expired.base, flow(json!({}))).await;
    refused(&expired, &browser, &url).await;
    drop(expired);

    let tampered = Setup::provider(backend, |c, _| c["tamperIdTokens"] = json!(true)).await;
    let browser = Browser::new();
    let url = browser.start(&tampered.base, flow(json!({}))).await;
    refused(&tampered, &browser, &url).await;
    drop(tampered);

    // The authorization request's nonce swapped on the way (the provider signs what it got).
    let s = Setup::new(backend).await;
    let browser = Browser::new();
    let url = browser.start(&s.base, flow(json!({}))).await;
    let nonce = param(&url, "nonce").expect("nonce");
    let swapped = url.replace(&format!("nonce={nonce}"), "nonce=another-nonce");
    assert_ne!(swapped, url);
    refused(&s, &browser, &swapped).await;
    assert_eq!(s.failure_reasons("social_sign_in").await, ["invalid_code"]);
}

/// Microsoft's multi-tenant `common` endpoint (a stand-in): users of any tenant sign in; the
/// `iss` of a token must name its own `tid`; Microsoft does not verify addresses, so nobody is
/// linked by email.
async fn microsoft_preset(backend: Backend) {
    use crate::support::presets::{self, MS_CLIENT_ID, MS_CLIENT_SECRET};
    let standin = presets::microsoft().await;
    let s = Setup::preset(
        backend,
        ProviderConfig {
            id: "microsoft".into(),
            client_id: Some(MS_CLIENT_ID.into()),
            client_secret: Some(Secret::new(MS_CLIENT_SECRET)),
            issuer: Some(format!("{}/common/v2.0", standin.base)),
            ..Default::default()
        },
    )
    .await;
    let sign_in = |login: &'static str| {
        s.sign_in(
            login,
            flow(json!({ "provider": "microsoft", "loginHint": login })),
        )
    };
    let (to, adele) = sign_in("adele").await;
    assert_eq!(to, s.url("/welcome"));
    assert_eq!(
        me(&adele, &s.base).await,
        json!({ "email": "adele@contoso.example", "emailVerified": false,
                "name": "Adele Vance", "image": null })
    );
    assert_eq!(
        standin.accepted_secrets(),
        [MS_CLIENT_SECRET],
        "client_secret_post"
    );

    // Megan's address is owned by a verified user here: her token even says
    // `email_verified`, but Microsoft does not verify addresses — not linked (nOAuth).
    s.app.sign_up("megan@fabrikam.example").await;
    s.app.verify_address("megan@fabrikam.example").await;
    let (to, _) = sign_in("megan").await;
    assert_eq!(to, s.url("/oops?error=account_not_linked"));
    assert_eq!(s.count("account WHERE provider_id = 'microsoft'").await, 1);

    // A token whose `iss` names another tenant than its `tid`.
    let (to, _) = sign_in("forger").await;
    assert_eq!(to, s.url("/oops?error=invalid_code"));
    assert_eq!(s.app.db.users().await, 2);

    // Returning.
    let (to, _) = sign_in("adele").await;
    assert_eq!(to, s.url("/home"));
}

/// Sign in with Apple (a stand-in): the authorization answer is a `form_post` (a POST to the
/// callback), the client secret a JWT signed with the team's key, `email_verified` the string
/// `"true"`, the name only in the first answer.
async fn apple_preset(backend: Backend) {
    use crate::support::presets::{self, APPLE_CLIENT_ID, APPLE_KEY_ID, APPLE_P8, APPLE_TEAM_ID};
    let standin = presets::apple().await;
    let dir = tempfile::tempdir().expect("dir");
    let key_file = dir.path().join("AuthKey.p8");
    std::fs::write(&key_file, APPLE_P8).expect("key file");
    let setup = Setup::preset(
        backend,
        ProviderConfig {
            id: "apple".into(),
            client_id: Some(APPLE_CLIENT_ID.into()),
            team_id: Some(APPLE_TEAM_ID.into()),
            key_id: Some(APPLE_KEY_ID.into()),
            private_key_file: Some(key_file.display().to_string()),
            issuer: Some(standin.base.clone()),
            ..Default::default()
        },
    )
    .await;
    let s = &setup;
    let sign_in = |input: Value| async move {
        let browser = Browser::new();
        let url = browser.start(&s.base, input).await;
        assert_eq!(param(&url, "response_mode").as_deref(), Some("form_post"));
        assert_eq!(param(&url, "scope").as_deref(), Some("name email"));
        let page = browser.http.get(&url).send().await.expect("authorize");
        assert_eq!(page.status().as_u16(), 200, "a form_post page");
        let (action, fields) = presets::form_post_fields(&page.text().await.expect("html"));
        assert_eq!(action, s.url("/callback/apple"));
        let resp = browser
            .http
            .post(&action)
            .form(&fields)
            .send()
            .await
            .expect("post");
        assert_eq!(resp.status().as_u16(), 302);
        (
            checked(crate::support::oidc::location(&resp)),
            browser,
            fields,
        )
    };
    let input = flow(json!({ "provider": "apple", "loginHint": "jane" }));
    let (to, jane, fields) = sign_in(input.clone()).await;
    assert!(
        fields.iter().any(|(k, _)| k == "user"),
        "the first answer names the user"
    );
    assert_eq!(to, s.url("/welcome"));
    assert_eq!(
        me(&jane, &s.base).await,
        json!({ "email": "x7k2p9q4rt@privaterelay.appleid.com", "emailVerified": true,
                "name": "Jane Appleseed", "image": null })
    );
    // The next answer has no name; the same user, the same secret (still valid).
    let (to, again, fields) = sign_in(input).await;
    assert!(!fields.iter().any(|(k, _)| k == "user"));
    assert_eq!(to, s.url("/home"));
    assert_eq!(me(&again, &s.base).await["name"], "Jane Appleseed");
    let secrets = standin.accepted_secrets();
    assert_eq!(secrets.len(), 2);
    assert_eq!(secrets[0], secrets[1], "kept until it nears its expiry");
    assert_eq!(s.app.db.users().await, 1);

    // Without the binding cookie a form_post is refused like any other callback.
    let stranger = Browser::new();
    let resp = stranger
        .http
        .post(s.url("/callback/apple"))
        .form(&[("code", "c"), ("state", "s")])
        .send()
        .await
        .expect("post");
    assert_eq!(
        crate::support::oidc::location(&resp).as_deref(),
        Some(s.url("/error?error=state_mismatch").as_str())
    );
}

on_both!(
    discord_preset,
    github_preset,
    userinfo_plain_oauth2_and_form_post,
    verification_and_bans_still_apply,
    keys_are_fetched_again_for_an_unknown_kid,
    link_and_unlink,
    linking_different_emails_when_allowed,
    id_token_checks_in_the_redirect_flow,
    microsoft_preset,
    apple_preset,
    provider_access_token_is_refreshed_when_expired,
    new_and_returning_user,
    links_only_verified_emails,
    state_is_single_use_and_bound_to_the_browser,
    provider_denial_and_outage,
    id_token_sign_in,
    refuses_hmac_signed_id_tokens,
    any_replica_finishes_the_flow,
    second_factor_stops_social_sign_in,
);

/// issue 16: a user with two-factor on (here a password user whose verified address the
/// provider's verified identity links to) stops at the second step in both social flows.
async fn second_factor_stops_social_sign_in(backend: Backend) {
    let s = Setup::new(backend).await;
    let email = "alice@example.test";
    let (_, mut totp, _) = crate::two_factor::enrolled(&s.app, email).await;
    s.app.verify_address(email).await;
    let sessions = s.app.db.count("SELECT COUNT(*) AS n FROM session").await;

    let (to, browser) = s.sign_in("alice", flow(json!({}))).await;
    assert_eq!(to, s.url("/home?twoFactorRequired=true"));
    assert_eq!(
        s.app.db.count("SELECT COUNT(*) AS n FROM session").await,
        sessions,
        "no session before the second factor"
    );
    let body = browser
        .gql(
            &s.base,
            crate::two_factor::VERIFY_TOTP,
            json!({ "c": totp.code().await }),
        )
        .await;
    assert!(data(&body, "verifyTotp")["token"].is_string(), "{body}");
    assert_eq!(me(&browser, &s.base).await["email"], email);

    let token = native_id_token(&s.provider.issuer, "alice", "n-2fa").await;
    let body = s
        .app
        .gql(
            "mutation($i: SignInSocialInput!) { signInSocial(input: $i) { token twoFactorRequired twoFactorToken } }",
            json!({ "i": { "provider": "corp", "idToken": { "token": token, "nonce": "n-2fa" } } }),
        )
        .await;
    let payload = data(&body, "signInSocial");
    assert_eq!(payload["twoFactorRequired"], true, "{body}");
    assert!(payload["token"].is_null() && payload["twoFactorToken"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_refuses_an_unreachable_or_misconfigured_provider() {
    let db = TestDb::new(Backend::Sqlite).await;
    let closed = format!("http://127.0.0.1:{}", free_port());
    let err = TestApp::on(&db)
        .production()
        .config(move |c| {
            c.social.provider_ids = vec!["corp".into()];
            c.social.providers = vec![corp(&closed, "corp", CLIENT_ID)];
        })
        .boot()
        .await
        .err()
        .expect("refused");
    assert!(format!("{err:#}").contains("\"corp\""), "{err:#}");

    // In development an unreachable provider is a warning: the app starts, and the provider
    // is tried again when used.
    let unreachable = format!("http://127.0.0.1:{}", free_port());
    let app = TestApp::on(&db)
        .config(move |c| {
            c.social.provider_ids = vec!["corp".into()];
            c.social.providers = vec![corp(&unreachable, "corp", CLIENT_ID)];
        })
        .spawn()
        .await;
    let body = app
        .gql(
            "mutation { signInSocial(input: {provider: \"corp\"}) { url } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&body), "INTERNAL_SERVER_ERROR", "{body}");
    drop(app);

    let err = TestApp::on(&db)
        .config(|c| {
            c.social.provider_ids = vec!["github2".into()];
            c.social.providers = vec![ProviderConfig {
                id: "github2".into(),
                client_id: Some("id".into()),
                ..Default::default()
            }];
        })
        .boot()
        .await
        .err()
        .expect("refused");
    let err = format!("{err:#}");
    assert!(err.contains("APEXKIT_OAUTH_GITHUB2_CLIENT_SECRET"), "{err}");
    assert!(err.contains("APEXKIT_OAUTH_GITHUB2_ISSUER"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_page_and_callbacks_without_providers() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let browser = Browser::new();
    let (status, to) = browser
        .get(&app.url("/callback/github?code=c&state=s"))
        .await;
    assert_eq!(status, 302);
    assert_eq!(
        to.as_deref(),
        Some(app.url("/error?error=provider_not_found").as_str())
    );

    let resp = browser
        .http
        .get(app.url("/error?error=%3Cscript%3Ealert(1)%3C%2Fscript%3E"))
        .send()
        .await
        .expect("error page");
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .is_ok_and(|v| v.starts_with("text/html"))
    );
    let html = resp.text().await.expect("html");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(!html.contains("<script>"), "{html}");
}
