//! A user's sessions: listing them and ending them, one, the others, or all.

use serde_json::{Value, json};

use crate::support::{Backend, PASSWORD, TestApp, code, on_both};

on_both!(
    sessions_are_listed_newest_first_with_the_current_one_marked,
    another_users_session_id_is_not_found_and_nothing_is_revoked,
    a_revoked_session_fails_on_its_very_next_request,
    signing_out_in_one_session_leaves_the_others_working,
    revoke_other_sessions_keeps_the_current_one,
    revoke_sessions_ends_every_session_and_clears_the_cookie,
    a_session_ends_at_its_max_age_however_active,
);

const LIST: &str =
    "{ sessions { id userId expiresAt createdAt updatedAt ipAddress userAgent current } }";

/// Signs in as `email` with a user agent; returns (token, session id).
async fn sign_in_with_agent(app: &TestApp, email: &str, agent: &str) -> (String, String) {
    let body: Value = app
        .client
        .post(app.url("/graphql"))
        .header("user-agent", agent)
        .json(&json!({
            "query": "mutation($i: SignInEmailInput!) { signInEmail(input: $i) { token session { id } } }",
            "variables": { "i": { "email": email, "password": PASSWORD } }
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let s = &body["data"]["signInEmail"];
    (
        s["token"]
            .as_str()
            .unwrap_or_else(|| panic!("{body}"))
            .to_owned(),
        s["session"]["id"].as_str().unwrap().to_owned(),
    )
}

async fn list(app: &TestApp, token: &str) -> Vec<Value> {
    let body = app.gql_with(Some(token), LIST, json!({})).await;
    body["data"]["sessions"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .clone()
}

fn ids(list: &[Value]) -> Vec<&str> {
    list.iter().map(|s| s["id"].as_str().unwrap()).collect()
}

async fn sessions_are_listed_newest_first_with_the_current_one_marked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up("ada@example.com").await;
    app.sign_up("eve@example.com").await;
    let (t1, s1) = sign_in_with_agent(&app, "ada@example.com", "agent-one").await;
    let (t2, s2) = sign_in_with_agent(&app, "ada@example.com", "agent-two").await;
    let (t3, s3) = sign_in_with_agent(&app, "ada@example.com", "agent-three").await;

    let sessions = list(&app, &t2).await;
    // Ada's sign-up session comes last; Eve's never appears.
    assert_eq!(sessions.len(), 4, "{sessions:?}");
    assert_eq!(
        &ids(&sessions)[..3],
        [s3.as_str(), s2.as_str(), s1.as_str()]
    );
    let current: Vec<bool> = sessions
        .iter()
        .map(|s| s["current"].as_bool().unwrap())
        .collect();
    assert_eq!(current, [false, true, false, false]);
    assert_eq!(sessions[0]["userAgent"], "agent-three");
    assert_eq!(sessions[2]["userAgent"], "agent-one");
    assert!(sessions.iter().all(|s| s["ipAddress"] == "127.0.0.1"));
    let user_id = &sessions[0]["userId"];
    assert!(sessions.iter().all(|s| &s["userId"] == user_id));

    // No session token or its hash in the answer.
    let raw = app.gql_with(Some(&t2), LIST, json!({})).await.to_string();
    for token in [&t1, &t2, &t3] {
        assert!(!raw.contains(token.as_str()), "token leaked: {raw}");
    }
    assert_eq!(
        list(&app, &t3).await[0]["current"],
        true,
        "current follows the caller"
    );
    let anon = app.gql(LIST, json!({})).await;
    assert_eq!(code(&anon), "UNAUTHENTICATED");
}

async fn another_users_session_id_is_not_found_and_nothing_is_revoked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.sign_up("ada@example.com").await;
    let eve = app.sign_up("eve@example.com").await;
    let ada_id = list(&app, &ada).await[0]["id"].as_str().unwrap().to_owned();
    let before = app.db.count("SELECT COUNT(*) AS n FROM session").await;

    let revoke = "mutation($id: ID!) { revokeSession(id: $id) }";
    let body = app
        .gql_with(Some(&eve), revoke, json!({ "id": ada_id }))
        .await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
    let missing = app
        .gql_with(Some(&eve), revoke, json!({ "id": "no-such-session" }))
        .await;
    assert_eq!(code(&missing), "NOT_FOUND");
    assert_eq!(
        body["errors"][0]["message"], missing["errors"][0]["message"],
        "someone else's id looks like a missing one"
    );
    assert_eq!(
        app.db.count("SELECT COUNT(*) AS n FROM session").await,
        before
    );
    assert!(app.alive(&ada).await && app.alive(&eve).await);
    let anon = app.gql(revoke, json!({ "id": ada_id })).await;
    assert_eq!(code(&anon), "UNAUTHENTICATED");
}

async fn a_revoked_session_fails_on_its_very_next_request(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let first = app.sign_up("ada@example.com").await;
    let (second, second_id) = sign_in_with_agent(&app, "ada@example.com", "phone").await;
    assert!(app.alive(&second).await, "warm: it worked just before");

    let revoke = "mutation($id: ID!) { revokeSession(id: $id) }";
    let body = app
        .gql_with(Some(&first), revoke, json!({ "id": second_id }))
        .await;
    assert_eq!(body["data"]["revokeSession"], true, "{body}");
    assert!(!app.alive(&second).await, "revoked at once");
    assert!(app.alive(&first).await);
    assert_eq!(ids(&list(&app, &first).await).len(), 1);

    // Revoking one's own current session also clears the cookie.
    let first_id = list(&app, &first).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&first)
        .json(&json!({ "query": revoke, "variables": { "id": first_id } }))
        .send()
        .await
        .unwrap();
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("Max-Age=0"), "{cookie}");
    assert!(!app.alive(&first).await);
    assert_eq!(app.db.count("SELECT COUNT(*) AS n FROM session").await, 0);
}

async fn signing_out_in_one_session_leaves_the_others_working(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let first = app.sign_up("ada@example.com").await;
    let (second, _) = sign_in_with_agent(&app, "ada@example.com", "phone").await;
    let (third, _) = sign_in_with_agent(&app, "ada@example.com", "laptop").await;
    let out = app
        .gql_with(Some(&first), "mutation { signOut }", json!({}))
        .await;
    assert_eq!(out["data"]["signOut"], true);
    assert!(!app.alive(&first).await);
    assert!(app.alive(&second).await && app.alive(&third).await);
    assert_eq!(list(&app, &second).await.len(), 2);
}

async fn revoke_other_sessions_keeps_the_current_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let first = app.sign_up("ada@example.com").await;
    let eve = app.sign_up("eve@example.com").await;
    let (second, second_id) = sign_in_with_agent(&app, "ada@example.com", "phone").await;
    let (third, _) = sign_in_with_agent(&app, "ada@example.com", "laptop").await;
    let body = app
        .gql_with(Some(&second), "mutation { revokeOtherSessions }", json!({}))
        .await;
    assert_eq!(body["data"]["revokeOtherSessions"], true, "{body}");
    assert!(app.alive(&second).await);
    assert!(!app.alive(&first).await && !app.alive(&third).await);
    assert!(app.alive(&eve).await, "other users untouched");
    let left = list(&app, &second).await;
    assert_eq!(ids(&left), [second_id.as_str()]);
    assert_eq!(left[0]["current"], true);
}

async fn revoke_sessions_ends_every_session_and_clears_the_cookie(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let first = app.sign_up("ada@example.com").await;
    let eve = app.sign_up("eve@example.com").await;
    let (second, _) = sign_in_with_agent(&app, "ada@example.com", "phone").await;
    let resp = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&first)
        .json(&json!({ "query": "mutation { revokeSessions }" }))
        .send()
        .await
        .unwrap();
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("Max-Age=0"), "{cookie}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["data"]["revokeSessions"], true, "{body}");
    assert!(!app.alive(&first).await && !app.alive(&second).await);
    assert!(app.alive(&eve).await);
    let again = app
        .gql_with(Some(&first), "mutation { revokeSessions }", json!({}))
        .await;
    assert_eq!(code(&again), "UNAUTHENTICATED");
}

/// Seconds ago as an SQL timestamp (whole seconds, UTC), and the same instant.
fn ago(secs: i64) -> (String, chrono::NaiveDateTime) {
    let t = chrono::Utc::now().naive_utc() - chrono::Duration::seconds(secs);
    let text = t.format("%Y-%m-%d %H:%M:%S").to_string();
    let whole = chrono::NaiveDateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S").unwrap();
    (text, whole)
}

/// Issue 13: APEXKIT_SESSION_MAX_AGE ends a session that long after sign-in however active:
/// the sliding expiry never passes that point, and an older session is refused.
async fn a_session_ends_at_its_max_age_however_active(backend: Backend) {
    let app = TestApp::builder(backend)
        .config(|c| {
            c.sessions.max_age = 3600;
            c.sessions.expires_in = 1800;
            c.sessions.short_expires_in = 1800;
            // Every use slides the expiry.
            c.sessions.update_age = 0;
        })
        .spawn()
        .await;
    let first = app.sign_up("ada@example.com").await;
    let (second, _) = sign_in_with_agent(&app, "ada@example.com", "second").await;

    // Signed in 3500 s ago, used now: the expiry slides to sign-in + 1 h, not now + 30 min.
    let (created, created_at) = ago(3500);
    app.db
        .execute(&format!("UPDATE session SET created_at = '{created}'"))
        .await;
    let body = app.session(&first).await;
    let expires = body["data"]["session"]["session"]["expiresAt"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"));
    let expires = chrono::DateTime::parse_from_rfc3339(expires)
        .unwrap()
        .naive_utc();
    assert_eq!(
        expires,
        created_at + chrono::Duration::seconds(3600),
        "{body}"
    );

    // Past the max age: refused (and gone) though the sliding expiry is still ahead.
    let (created, _) = ago(3601);
    let (_, future) = ago(-1000);
    app.db
        .execute(&format!(
            "UPDATE session SET created_at = '{created}', expires_at = '{}'",
            future.format("%Y-%m-%d %H:%M:%S")
        ))
        .await;
    let (third, _) = sign_in_with_agent(&app, "ada@example.com", "third").await;
    let listed = list(&app, &third).await;
    assert_eq!(
        listed.len(),
        1,
        "only the fresh session is listed: {listed:?}"
    );
    assert_eq!(listed[0]["current"], true);
    assert!(!app.alive(&first).await);
    assert!(!app.alive(&second).await);
    assert_eq!(app.db.count("SELECT COUNT(*) AS n FROM session").await, 1);
    assert!(app.alive(&third).await);
}
