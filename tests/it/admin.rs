//! Administration: admins from the environment, every admin operation, bans on live sessions,
//! the audit trail, and a walk over every field of the schema proving who may call it.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::support::{ADMIN_EMAIL, Backend, PASSWORD, TestApp, code, data, on_both};

const USER_FIELDS: &str = "id name email role banned banReason banExpires emailVerified";

async fn user_id(app: &TestApp, token: &str) -> String {
    let body = app.gql_with(Some(token), "{ me { id } }", json!({})).await;
    data(&body, "me")["id"].as_str().expect("id").to_owned()
}

async fn create_user(app: &TestApp, admin: &str, name: &str, email: &str) -> Value {
    let body = app
        .gql_with(
            Some(admin),
            &format!(
                "mutation($input: AdminCreateUserInput!) {{ adminCreateUser(input: $input) {{ {USER_FIELDS} }} }}"
            ),
            json!({ "input": { "name": name, "email": email, "password": PASSWORD } }),
        )
        .await;
    data(&body, "adminCreateUser").clone()
}

on_both!(
    admin_emails_make_admins_only_once_verified,
    admin_users_paginates_with_opaque_cursors_and_searches_literally,
    admin_user_and_their_sessions,
    admin_create_user_and_set_role,
    ban_ends_live_sessions_and_sign_in_says_user_banned,
    an_expired_ban_lifts_itself,
    admin_revoke_sessions_remove_user_and_set_password,
    audit_trail_records_every_event_type_without_secrets,
    every_schema_field_is_classified_and_admin_fields_are_guarded,
);

/// Issue 13: with APEXKIT_ADMIN_EMAILS set and verification off, signing up first with a listed
/// address used to make the squatter an admin (and re-promote them at every boot). The role
/// now follows a verified address only: at verification, and at every boot for verified users.
async fn admin_emails_make_admins_only_once_verified(backend: Backend) {
    const LISTED: &str = "listed@example.com";
    let listed = || vec![ADMIN_EMAIL.to_owned(), LISTED.to_owned()];
    // One secret for every boot: a throw-away one would replace the signing key each time.
    let app = TestApp::builder(backend)
        .secret()
        .config(|c| c.admin.emails = listed())
        .spawn()
        .await;
    let boot = |emails: Vec<String>| {
        let boot = app
            .replica()
            .secret()
            .config(|c| c.admin.emails = emails)
            .boot();
        async move { boot.await.expect("boots") }
    };
    let me = |token: String| {
        let app = &app;
        async move {
            let body = app
                .gql_with(Some(&token), "{ me { role emailVerified } }", json!({}))
                .await;
            data(&body, "me").clone()
        }
    };

    // The first to sign up with a listed address is no admin, not even after a reboot.
    let squatter = app.sign_up(ADMIN_EMAIL).await;
    assert_eq!(
        me(squatter.clone()).await,
        json!({ "role": "user", "emailVerified": false })
    );
    drop(boot(listed()).await);
    assert_eq!(me(squatter.clone()).await["role"], "user", "not at boot");
    // An unverified admin left by an older release is demoted at boot.
    app.db.execute("UPDATE \"user\" SET role = 'admin'").await;
    drop(boot(listed()).await);
    assert_eq!(
        me(squatter.clone()).await["role"],
        "user",
        "demoted at boot"
    );

    // Verifying the address is what makes its owner an admin.
    let verified = app.verify_address(ADMIN_EMAIL).await;
    assert_eq!(verified["role"], "admin", "promoted at verification");
    assert_eq!(
        me(squatter.clone()).await,
        json!({ "role": "admin", "emailVerified": true })
    );
    drop(boot(listed()).await);
    assert_eq!(me(squatter.clone()).await["role"], "admin", "kept at boot");

    // A user listed later (mixed case, spaces) is promoted at boot only once verified.
    let later = app.sign_up("later@example.com").await;
    let mut with_later = listed();
    with_later.push(" Later@Example.com ".to_owned());
    drop(boot(with_later.clone()).await);
    assert_eq!(
        me(later.clone()).await["role"],
        "user",
        "unverified: no role"
    );
    app.db
        .execute("UPDATE \"user\" SET email_verified = true WHERE email = 'later@example.com'")
        .await;
    drop(boot(with_later).await);
    assert_eq!(
        me(later).await["role"],
        "admin",
        "verified: promoted at boot"
    );

    // An admin creating a listed user grants the role only with a verified address.
    let created = |verified: bool| {
        let app = &app;
        let admin = squatter.clone();
        async move {
            app.db
                .execute("DELETE FROM \"user\" WHERE email = 'listed@example.com'")
                .await;
            let body = app
                .gql_with(
                    Some(&admin),
                    "mutation($input: AdminCreateUserInput!) { adminCreateUser(input: $input) { role } }",
                    json!({ "input": { "name": "L", "email": LISTED, "password": PASSWORD, "emailVerified": verified } }),
                )
                .await;
            data(&body, "adminCreateUser")["role"].clone()
        }
    };
    assert_eq!(created(false).await, "user");
    assert_eq!(created(true).await, "admin");
}

async fn admin_users_paginates_with_opaque_cursors_and_searches_literally(backend: Backend) {
    let (app, admin) = TestApp::builder(backend).spawn_admin().await;
    for (name, email) in [
        ("Ann 100%", "ann@example.com"),
        ("Bob_x", "bob@example.com"),
        ("Bobbx", "bobbx@example.com"),
        ("Carl", "carl@Example.ORG"),
    ] {
        create_user(&app, &admin, name, email).await;
    }
    let list = |search: Option<&str>, first: Option<i64>, after: Option<String>| {
        let app = &app;
        let admin = admin.clone();
        let search = search.map(str::to_owned);
        async move {
            app.gql_with(
                Some(&admin),
                "query($s: String, $f: Int, $a: String) { adminUsers(search: $s, first: $f, after: $a) {
                    edges { cursor node { id name email } } pageInfo { hasNextPage endCursor } totalCount } }",
                json!({ "s": search, "f": first, "a": after }),
            )
            .await
        }
    };

    // Walk every page of two.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let body = list(None, Some(2), after.clone()).await;
        let conn = data(&body, "adminUsers");
        assert_eq!(conn["totalCount"], 5);
        let edges = conn["edges"].as_array().expect("edges");
        assert!(edges.len() <= 2);
        for e in edges {
            seen.push(e["node"]["email"].as_str().expect("email").to_owned());
            assert!(
                !e["cursor"].as_str().expect("cursor").contains(':'),
                "opaque"
            );
        }
        if conn["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = conn["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
    assert_eq!(
        seen,
        [
            ADMIN_EMAIL,
            "ann@example.com",
            "bob@example.com",
            "bobbx@example.com",
            "carl@example.org"
        ],
        "every user once, oldest first"
    );

    let names = |body: &Value| -> Vec<String> {
        data(body, "adminUsers")["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .map(|e| e["node"]["name"].as_str().expect("name").to_owned())
            .collect()
    };
    // `%` and `_` are literal: a wildcard would match everyone / "Bobbx" too.
    assert_eq!(names(&list(Some("%"), None, None).await), ["Ann 100%"]);
    assert_eq!(names(&list(Some("b_x"), None, None).await), ["Bob_x"]);
    // Case-insensitive on name and email.
    assert_eq!(names(&list(Some("CARL"), None, None).await), ["Carl"]);
    assert_eq!(
        names(&list(Some("example.ORG"), None, None).await),
        ["Carl"]
    );
    let body = list(Some("bob"), None, None).await;
    assert_eq!(data(&body, "adminUsers")["totalCount"], 2);

    let bad = list(None, Some(2), Some("not-a-cursor".into())).await;
    assert_eq!(code(&bad), "BAD_USER_INPUT");
    assert_eq!(bad["errors"][0]["extensions"]["field"], "after");
    let bad = list(None, Some(0), None).await;
    assert_eq!(code(&bad), "BAD_USER_INPUT");
    let bad = list(None, Some(101), None).await;
    assert_eq!(code(&bad), "BAD_USER_INPUT");
}

async fn admin_user_and_their_sessions(backend: Backend) {
    let (app, admin) = TestApp::builder(backend).spawn_admin().await;
    let token = app.sign_up("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    let id = user_id(&app, &token).await;

    let body = app
        .gql_with(
            Some(&admin),
            "query($id: ID!) { adminUser(id: $id) { id email role } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(data(&body, "adminUser")["email"], "ada@example.com");
    let body = app
        .gql_with(
            Some(&admin),
            "{ adminUser(id: \"nobody\") { id } }",
            json!({}),
        )
        .await;
    assert!(data(&body, "adminUser").is_null());

    let body = app
        .gql_with(
            Some(&admin),
            "query($id: ID!) { adminUserSessions(userId: $id) { id userId current } }",
            json!({ "id": id }),
        )
        .await;
    let sessions = data(&body, "adminUserSessions").as_array().expect("list");
    assert_eq!(sessions.len(), 2);
    assert!(
        sessions
            .iter()
            .all(|s| s["userId"] == id.as_str() && s["current"] == false)
    );
}

async fn admin_create_user_and_set_role(backend: Backend) {
    let (app, admin) = TestApp::builder(backend).spawn_admin().await;
    let created = create_user(&app, &admin, "Grace", " Grace@Example.com").await;
    assert_eq!(created["email"], "grace@example.com");
    assert_eq!(created["role"], "user");
    assert_eq!(created["emailVerified"], false);
    // The credential works.
    let body = app.sign_in("grace@example.com", PASSWORD).await;
    assert!(body["errors"].is_null(), "{body}");

    let dup = app
        .gql_with(
            Some(&admin),
            "mutation { adminCreateUser(input: {name: \"G\", email: \"grace@example.com\", password: \"another password\"}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&dup), "USER_ALREADY_EXISTS");
    let short = app
        .gql_with(
            Some(&admin),
            "mutation { adminCreateUser(input: {name: \"H\", email: \"h@example.com\", password: \"short\"}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&short), "PASSWORD_TOO_SHORT");
    let with_role = app
        .gql_with(
            Some(&admin),
            "mutation { adminCreateUser(input: {name: \"I\", email: \"i@example.com\", password: \"a long password\", role: \"admin\", emailVerified: true}) { role emailVerified } }",
            json!({}),
        )
        .await;
    assert_eq!(data(&with_role, "adminCreateUser")["role"], "admin");
    assert_eq!(data(&with_role, "adminCreateUser")["emailVerified"], true);

    let set_role = |id: String, role: &'static str| {
        let (app, admin) = (&app, admin.clone());
        async move {
            app.gql_with(
                Some(&admin),
                "mutation($id: ID!, $role: String!) { adminSetRole(input: {userId: $id, role: $role}) { id role } }",
                json!({ "id": id, "role": role }),
            )
            .await
        }
    };
    let grace = created["id"].as_str().expect("id").to_owned();
    let body = set_role(grace.clone(), "admin").await;
    assert_eq!(data(&body, "adminSetRole")["role"], "admin");
    // Grace, now an admin, may list users.
    let grace_token =
        app.sign_in("grace@example.com", PASSWORD).await["data"]["signInEmail"]["token"]
            .as_str()
            .expect("token")
            .to_owned();
    let body = app
        .gql_with(
            Some(&grace_token),
            "{ adminUsers { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(data(&body, "adminUsers")["totalCount"], 3);

    let bad = set_role(grace.clone(), "root").await;
    assert_eq!(code(&bad), "BAD_USER_INPUT");
    assert_eq!(bad["errors"][0]["extensions"]["field"], "role");
    let missing = set_role("nobody".into(), "user").await;
    assert_eq!(code(&missing), "NOT_FOUND");
    let body = set_role(grace, "user").await;
    assert_eq!(data(&body, "adminSetRole")["role"], "user");
    let body = app
        .gql_with(
            Some(&grace_token),
            "{ adminUsers { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&body), "FORBIDDEN", "demoted at once");
}

async fn ban(app: &TestApp, admin: &str, id: &str, expires_in: Option<i64>) -> Value {
    app.gql_with(
        Some(admin),
        "mutation($id: ID!, $e: Int) { adminBanUser(input: {userId: $id, reason: \"spam\", expiresIn: $e}) { id banned banReason banExpires } }",
        json!({ "id": id, "e": expires_in }),
    )
    .await
}

async fn ban_ends_live_sessions_and_sign_in_says_user_banned(backend: Backend) {
    let (app, admin) = TestApp::builder(backend).spawn_admin().await;
    let token = app.sign_up("ada@example.com").await;
    let other = app.sign_in("ada@example.com", PASSWORD).await["data"]["signInEmail"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let id = user_id(&app, &token).await;

    let body = ban(&app, &admin, &id, None).await;
    let banned = data(&body, "adminBanUser");
    assert_eq!(banned["banned"], true);
    assert_eq!(banned["banReason"], "spam");
    assert!(banned["banExpires"].is_null(), "permanent");
    for t in [&token, &other] {
        assert!(data(&app.session(t).await, "session").is_null());
        let body = app
            .gql_with(Some(t), "{ accounts { id } }", json!({}))
            .await;
        assert_eq!(code(&body), "UNAUTHENTICATED");
    }
    let sessions = format!("SELECT COUNT(*) AS n FROM session WHERE user_id = '{id}'");
    assert_eq!(app.db.count(&sessions).await, 0, "sessions ended");

    let right = app.sign_in("ada@example.com", PASSWORD).await;
    assert_eq!(code(&right), "USER_BANNED");
    let wrong = app.sign_in("ada@example.com", "wrong password!").await;
    assert_eq!(code(&wrong), "INVALID_EMAIL_OR_PASSWORD");

    // An admin cannot ban themselves.
    let admin_id = user_id(&app, &admin).await;
    assert_eq!(
        code(&ban(&app, &admin, &admin_id, None).await),
        "BAD_USER_INPUT"
    );
    assert_eq!(code(&ban(&app, &admin, "nobody", None).await), "NOT_FOUND");
    assert_eq!(
        code(&ban(&app, &admin, &id, Some(0)).await),
        "BAD_USER_INPUT"
    );

    let body = app
        .gql_with(
            Some(&admin),
            "mutation($id: ID!) { adminUnbanUser(userId: $id) { banned banReason banExpires } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(data(&body, "adminUnbanUser")["banned"], false);
    assert!(data(&body, "adminUnbanUser")["banReason"].is_null());
    let again = app.sign_in("ada@example.com", PASSWORD).await;
    assert!(again["errors"].is_null(), "{again}");
    let fresh = again["data"]["signInEmail"]["token"]
        .as_str()
        .expect("token");

    // A ban written straight into the database (no session cleanup) still stops a live session.
    app.db
        .execute(&format!(
            "UPDATE \"user\" SET banned = true WHERE id = '{id}'"
        ))
        .await;
    assert!(data(&app.session(fresh).await, "session").is_null());
}

async fn an_expired_ban_lifts_itself(backend: Backend) {
    let (app, admin) = TestApp::builder(backend).spawn_admin().await;
    let token = app.sign_up("ada@example.com").await;
    let id = user_id(&app, &token).await;

    let body = ban(&app, &admin, &id, Some(3600)).await;
    let expires = data(&body, "adminBanUser")["banExpires"]
        .as_str()
        .expect("expiry")
        .to_owned();
    let expires = chrono::DateTime::parse_from_rfc3339(&expires).expect("rfc3339");
    let in_an_hour = chrono::Utc::now() + chrono::Duration::seconds(3600);
    assert!((expires.to_utc() - in_an_hour).num_seconds().abs() < 60);
    assert_eq!(
        code(&app.sign_in("ada@example.com", PASSWORD).await),
        "USER_BANNED"
    );

    // Time passes: the expiry is now in the past.
    app.db
        .execute(&format!(
            "UPDATE \"user\" SET ban_expires = '2000-01-01 00:00:00' WHERE id = '{id}'"
        ))
        .await;
    let body = app.sign_in("ada@example.com", PASSWORD).await;
    assert!(body["errors"].is_null(), "{body}");
    let still = format!("SELECT COUNT(*) AS n FROM \"user\" WHERE id = '{id}' AND banned = true");
    assert_eq!(app.db.count(&still).await, 0, "cleared lazily");

    // Same for a live session made before the ban expired (set directly, sessions kept).
    let live = body["data"]["signInEmail"]["token"]
        .as_str()
        .expect("token");
    app.db
        .execute(&format!(
            "UPDATE \"user\" SET banned = true, ban_expires = '2000-01-01 00:00:00' WHERE id = '{id}'"
        ))
        .await;
    assert_eq!(data(&app.session(live).await, "session")["user"]["id"], id);
    assert_eq!(app.db.count(&still).await, 0);
}

async fn admin_revoke_sessions_remove_user_and_set_password(backend: Backend) {
    let (app, admin) = TestApp::builder(backend).spawn_admin().await;
    let token = app.sign_up("ada@example.com").await;
    let id = user_id(&app, &token).await;

    let body = app
        .gql_with(
            Some(&admin),
            "mutation($id: ID!) { adminRevokeUserSessions(userId: $id) }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(data(&body, "adminRevokeUserSessions"), true);
    assert!(data(&app.session(&token).await, "session").is_null());
    assert!(
        data(&app.session(&admin).await, "session").is_object(),
        "others keep theirs"
    );
    let body = app
        .gql_with(
            Some(&admin),
            "mutation { adminRevokeUserSessions(userId: \"nobody\") }",
            json!({}),
        )
        .await;
    assert_eq!(code(&body), "NOT_FOUND");

    let set_password = |pw: &'static str| {
        let (app, admin, id) = (&app, admin.clone(), id.clone());
        async move {
            app.gql_with(
                Some(&admin),
                "mutation($id: ID!, $pw: String!) { adminSetUserPassword(input: {userId: $id, newPassword: $pw}) }",
                json!({ "id": id, "pw": pw }),
            )
            .await
        }
    };
    assert_eq!(code(&set_password("short").await), "PASSWORD_TOO_SHORT");
    assert_eq!(
        data(
            &set_password("a brand new password").await,
            "adminSetUserPassword"
        ),
        true
    );
    assert_eq!(
        code(&app.sign_in("ada@example.com", PASSWORD).await),
        "INVALID_EMAIL_OR_PASSWORD"
    );
    let body = app.sign_in("ada@example.com", "a brand new password").await;
    assert!(body["errors"].is_null(), "{body}");

    let remove = app
        .gql_with(
            Some(&admin),
            "mutation($id: ID!) { adminRemoveUser(userId: $id) }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(data(&remove, "adminRemoveUser"), true);
    for table in [
        "\"user\" WHERE id",
        "session WHERE user_id",
        "account WHERE user_id",
    ] {
        let sql = format!("SELECT COUNT(*) AS n FROM {table} = '{id}'");
        assert_eq!(app.db.count(&sql).await, 0, "{sql}");
    }
    let again = app
        .gql_with(
            Some(&admin),
            "mutation($id: ID!) { adminRemoveUser(userId: $id) }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(code(&again), "NOT_FOUND");
    let admin_id = user_id(&app, &admin).await;
    let me = app
        .gql_with(
            Some(&admin),
            "mutation($id: ID!) { adminRemoveUser(userId: $id) }",
            json!({ "id": admin_id }),
        )
        .await;
    assert_eq!(
        code(&me),
        "BAD_USER_INPUT",
        "an admin cannot remove themselves"
    );
}

async fn audit_events(app: &TestApp, admin: &str, vars: Value) -> Value {
    let body = app
        .gql_with(
            Some(admin),
            "query($u: ID, $t: String, $f: Int, $a: String) { auditEvents(userId: $u, type: $t, first: $f, after: $a) {
                edges { cursor node { id createdAt type actorUserId subjectUserId ipAddress userAgent outcome detail } }
                pageInfo { hasNextPage endCursor } totalCount } }",
            vars,
        )
        .await;
    data(&body, "auditEvents").clone()
}

async fn audit_trail_records_every_event_type_without_secrets(backend: Backend) {
    // One pooled connection: a use case that records its event on a second connection while
    // holding the first would wait out the checkout timeout and lose the event.
    let (app, admin) = TestApp::builder(backend)
        .config(|c| {
            c.database.pool_size = 1;
            c.database.pool_timeout_ms = 3000;
        })
        .spawn_admin()
        .await;
    let admin_id = user_id(&app, &admin).await;
    let token = app.sign_up("ada@example.com").await;
    let ada = user_id(&app, &token).await;
    app.sign_in("ada@example.com", PASSWORD).await;
    app.sign_in("ada@example.com", "a wrong password").await;
    app.sign_in("nobody@example.com", "a wrong password").await;
    let revoked = app
        .gql_with(Some(&token), "mutation { revokeOtherSessions }", json!({}))
        .await;
    assert_eq!(revoked["data"]["revokeOtherSessions"], true, "{revoked}");
    let account_ops = [
        "changePassword(input: {currentPassword: \"correct horse battery staple\", newPassword: \"a new long passphrase\"}) { token }",
        "changeEmail(input: {newEmail: \"ada.new@example.com\", password: \"a new long passphrase\"})",
    ];
    for op in account_ops {
        let body = app
            .gql_with(Some(&token), &format!("mutation {{ {op} }}"), json!({}))
            .await;
        assert!(body["errors"].is_null(), "{op}: {body}");
    }
    let bogus = app
        .gql(
            "mutation($t: String!) { resetPassword(input: {token: $t, newPassword: \"a new long passphrase\"}) }",
            json!({ "t": "a".repeat(43) }),
        )
        .await;
    assert_eq!(
        bogus["errors"][0]["extensions"]["code"], "INVALID_TOKEN",
        "{bogus}"
    );
    let cy_token = app.sign_up("cy@example.com").await;
    let cy = user_id(&app, &cy_token).await;
    let deleted = app
        .gql_with(
            Some(&cy_token),
            "mutation { deleteUser(input: {password: \"correct horse battery staple\"}) }",
            json!({}),
        )
        .await;
    assert_eq!(deleted["data"]["deleteUser"], true, "{deleted}");
    app.gql_with(Some(&token), "mutation { signOut }", json!({}))
        .await;

    let admin_ops = [
        format!("adminSetRole(input: {{userId: \"{ada}\", role: \"user\"}}) {{ id }}"),
        format!("adminSetUserPassword(input: {{userId: \"{ada}\", newPassword: \"another long password\"}})"),
        format!("adminRevokeUserSessions(userId: \"{ada}\")"),
        format!("adminBanUser(input: {{userId: \"{ada}\", reason: \"spam\"}}) {{ id }}"),
        format!("adminUnbanUser(userId: \"{ada}\") {{ id }}"),
        "adminCreateUser(input: {name: \"Bo\", email: \"bo@example.com\", password: \"bo's long password\"}) { id }".to_owned(),
        format!("adminRemoveUser(userId: \"{ada}\")"),
        "pushSchema(dryRun: true) { dryRun }".to_owned(),
        "adminRotateSigningKeys { kid }".to_owned(),
    ];
    for op in &admin_ops {
        let body = app
            .gql_with(Some(&admin), &format!("mutation {{ {op} }}"), json!({}))
            .await;
        assert!(body["errors"].is_null(), "{op}: {body}");
    }

    let expect = [
        ("sign_up", "success", Some(ada.as_str()), Some(ada.as_str())),
        ("sign_in", "success", Some(ada.as_str()), Some(ada.as_str())),
        (
            "sign_out",
            "success",
            Some(ada.as_str()),
            Some(ada.as_str()),
        ),
        (
            "admin_set_role",
            "success",
            Some(admin_id.as_str()),
            Some(ada.as_str()),
        ),
        (
            "admin_set_user_password",
            "success",
            Some(&admin_id),
            Some(&ada),
        ),
        (
            "admin_revoke_user_sessions",
            "success",
            Some(&admin_id),
            Some(&ada),
        ),
        ("admin_ban_user", "success", Some(&admin_id), Some(&ada)),
        ("admin_unban_user", "success", Some(&admin_id), Some(&ada)),
        ("admin_create_user", "success", Some(&admin_id), None),
        ("admin_remove_user", "success", Some(&admin_id), Some(&ada)),
        ("schema_push", "success", Some(&admin_id), None),
        (
            "session_revoke",
            "success",
            Some(ada.as_str()),
            Some(ada.as_str()),
        ),
        (
            "admin_rotate_signing_keys",
            "success",
            Some(&admin_id),
            None,
        ),
        (
            "password_change",
            "success",
            Some(ada.as_str()),
            Some(ada.as_str()),
        ),
        (
            "email_change",
            "success",
            Some(ada.as_str()),
            Some(ada.as_str()),
        ),
        ("password_reset", "failure", None, None),
        (
            "user_delete",
            "success",
            Some(cy.as_str()),
            Some(cy.as_str()),
        ),
    ];
    for (kind, outcome, actor, subject) in expect {
        let conn = audit_events(&app, &admin, json!({ "t": kind })).await;
        let edges = conn["edges"].as_array().expect("edges");
        let found = edges.iter().any(|e| {
            let n = &e["node"];
            n["type"] == kind
                && n["outcome"] == outcome
                && n["actorUserId"].as_str() == actor
                && subject.is_none_or(|s| n["subjectUserId"] == s)
                && n["ipAddress"] == "127.0.0.1"
        });
        assert!(found, "no {outcome} {kind} event: {conn}");
    }

    // Failed sign-ins: the attempted email, the subject when the account exists, no password.
    let failures = audit_events(&app, &admin, json!({ "t": "sign_in" })).await;
    let failed: Vec<&Value> = failures["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| &e["node"])
        .filter(|n| n["outcome"] == "failure")
        .collect();
    assert_eq!(failed.len(), 2, "{failures}");
    assert!(failed.iter().any(|n| {
        n["subjectUserId"] == ada.as_str()
            && n["detail"]
                .as_str()
                .is_some_and(|d| d.contains("ada@example.com"))
    }));
    assert!(failed.iter().any(|n| {
        n["subjectUserId"].is_null()
            && n["detail"]
                .as_str()
                .is_some_and(|d| d.contains("nobody@example.com"))
    }));

    // Filter by subject, and page through newest first.
    let about_ada = audit_events(&app, &admin, json!({ "u": ada, "f": 3 })).await;
    let total = about_ada["totalCount"].as_i64().expect("count");
    assert!(total >= 9, "{about_ada}");
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = audit_events(&app, &admin, json!({ "u": ada, "f": 3, "a": after })).await;
        for e in page["edges"].as_array().expect("edges") {
            assert_eq!(e["node"]["subjectUserId"], ada.as_str());
            seen.push(e["node"]["createdAt"].as_str().expect("time").to_owned());
        }
        if page["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = page["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
    assert_eq!(seen.len() as i64, total, "every event once");
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    let parsed = |v: &Vec<String>| -> Vec<chrono::DateTime<chrono::FixedOffset>> {
        v.iter()
            .map(|t| chrono::DateTime::parse_from_rfc3339(t).expect("rfc3339"))
            .collect()
    };
    let mut newest_first = parsed(&seen);
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(parsed(&seen), newest_first, "newest first");

    let bad = app
        .gql_with(
            Some(&admin),
            "{ auditEvents(type: \"nope\") { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&bad), "BAD_USER_INPUT");

    // Never a password or a token anywhere in the trail.
    for secret in [
        PASSWORD,
        "a wrong password",
        "another long password",
        &token,
        &admin,
    ] {
        let sql = format!(
            "SELECT COUNT(*) AS n FROM audit_event WHERE detail LIKE '%{secret}%' OR user_agent LIKE '%{secret}%'"
        );
        assert_eq!(app.db.count(&sql).await, 0, "secret in the audit trail");
    }
}

/// Who may call a root field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Anyone (answers may depend on who asks, e.g. `me` is null when anonymous).
    Public,
    /// Signed-in users: anonymous callers get UNAUTHENTICATED.
    SignedIn,
    /// Admins: anonymous callers get UNAUTHENTICATED, others FORBIDDEN.
    Admin,
}

/// EVERY root field of the (development) schema, classified. A field missing here fails the
/// walk below: add it when you add the field. An entry naming a field the schema no longer has
/// fails it too: remove it when you remove the field.
const FIELDS: &[(&str, &str, Access)] = {
    use Access::*;
    &[
        // queries
        ("Query", "session", Public),
        ("Query", "me", Public),
        ("Query", "accounts", SignedIn),
        ("Query", "socialProviders", Public),
        ("Query", "passkeys", SignedIn),
        ("Query", "sessions", SignedIn),
        ("Query", "adminUsers", Admin),
        ("Query", "adminUser", Admin),
        ("Query", "adminUserSessions", Admin),
        ("Query", "auditEvents", Admin),
        ("Query", "migrations", Admin),
        ("Query", "legacyPasswordHashes", Admin),
        // mutations
        ("Mutation", "signUpEmail", Public),
        ("Mutation", "signInEmail", Public),
        ("Mutation", "signInSocial", Public),
        ("Mutation", "linkSocial", SignedIn),
        ("Mutation", "unlinkAccount", SignedIn),
        ("Mutation", "accountAccessToken", SignedIn),
        ("Mutation", "passkeyRegistrationOptions", SignedIn),
        ("Mutation", "registerPasskey", SignedIn),
        ("Mutation", "passkeyAuthenticationOptions", Public),
        ("Mutation", "signInPasskey", Public),
        ("Mutation", "renamePasskey", SignedIn),
        ("Mutation", "deletePasskey", SignedIn),
        ("Mutation", "requestPasswordReset", Public),
        ("Mutation", "resetPassword", Public),
        ("Mutation", "sendVerificationEmail", Public),
        ("Mutation", "verifyEmail", Public),
        ("Mutation", "signOut", SignedIn),
        ("Mutation", "revokeSession", SignedIn),
        ("Mutation", "revokeSessions", SignedIn),
        ("Mutation", "revokeOtherSessions", SignedIn),
        ("Mutation", "refreshAccessToken", SignedIn),
        ("Mutation", "updateUser", SignedIn),
        ("Mutation", "changePassword", SignedIn),
        ("Mutation", "changeEmail", SignedIn),
        ("Mutation", "deleteUser", SignedIn),
        ("Mutation", "adminCreateUser", Admin),
        ("Mutation", "adminSetRole", Admin),
        ("Mutation", "adminBanUser", Admin),
        ("Mutation", "adminUnbanUser", Admin),
        ("Mutation", "adminRevokeUserSessions", Admin),
        ("Mutation", "adminRemoveUser", Admin),
        ("Mutation", "adminSetUserPassword", Admin),
        ("Mutation", "adminRotateSigningKeys", Admin),
        ("Mutation", "pushSchema", Admin),
        // issue 16: two-factor and passwordless sign-in
        ("Mutation", "enableTwoFactor", SignedIn),
        ("Mutation", "verifyTotp", Public),
        ("Mutation", "verifyBackupCode", Public),
        ("Mutation", "sendTwoFactorOtp", Public),
        ("Mutation", "verifyTwoFactorOtp", Public),
        ("Mutation", "generateBackupCodes", SignedIn),
        ("Mutation", "disableTwoFactor", SignedIn),
        ("Mutation", "adminDisableTwoFactor", Admin),
        ("Mutation", "signInMagicLink", Public),
        ("Mutation", "verifyMagicLink", Public),
        ("Mutation", "sendSignInOtp", Public),
        ("Mutation", "signInEmailOtp", Public),
    ]
};

const INTROSPECTION: &str = r#"
fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }
query {
  __schema { types { name kind enumValues { name } inputFields { name type { ...T } } } }
  q: __type(name: "Query") { fields { name args { name type { ...T } } type { ...T } } }
  m: __type(name: "Mutation") { fields { name args { name type { ...T } } type { ...T } } }
}"#;

/// A literal of GraphQL type `ty` (required parts only), built from the introspected types.
fn dummy(ty: &Value, types: &HashMap<String, Value>) -> String {
    match ty["kind"].as_str().unwrap_or_default() {
        "NON_NULL" => dummy(&ty["ofType"], types),
        "LIST" => "[]".to_owned(),
        "ENUM" => {
            let name = ty["name"].as_str().unwrap_or_default();
            types[name]["enumValues"][0]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        }
        "INPUT_OBJECT" => {
            let name = ty["name"].as_str().unwrap_or_default();
            let fields: Vec<String> = types[name]["inputFields"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|f| f["type"]["kind"] == "NON_NULL")
                .map(|f| {
                    format!(
                        "{}: {}",
                        f["name"].as_str().unwrap_or_default(),
                        dummy(&f["type"], types)
                    )
                })
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
        _ => match ty["name"].as_str().unwrap_or_default() {
            "Int" => "1".to_owned(),
            "Float" => "1.5".to_owned(),
            "Boolean" => "false".to_owned(),
            "DateTime" => "\"2026-01-01T00:00:00Z\"".to_owned(),
            _ => "\"dummy-value-1234\"".to_owned(),
        },
    }
}

/// `field(requiredArg: dummy, …) { __typename }` (the selection only for object results).
fn call(field: &Value, types: &HashMap<String, Value>) -> String {
    let name = field["name"].as_str().unwrap_or_default();
    let args: Vec<String> = field["args"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["type"]["kind"] == "NON_NULL")
        .map(|a| {
            format!(
                "{}: {}",
                a["name"].as_str().unwrap_or_default(),
                dummy(&a["type"], types)
            )
        })
        .collect();
    let args = if args.is_empty() {
        String::new()
    } else {
        format!("({})", args.join(", "))
    };
    let mut ty = &field["type"];
    while !ty["ofType"].is_null() {
        ty = &ty["ofType"];
    }
    let selection = match ty["kind"].as_str() {
        Some("OBJECT" | "INTERFACE" | "UNION") => " { __typename }",
        _ => "",
    };
    format!("{name}{args}{selection}")
}

async fn every_schema_field_is_classified_and_admin_fields_are_guarded(backend: Backend) {
    let (app, admin) = TestApp::builder(backend)
        .config(|c| {
            // Introspection documents are deep; the walk is not what the limits are about.
            c.graphql.max_depth = 20;
            c.graphql.max_complexity = 10_000;
        })
        .spawn_admin()
        .await;
    let user = app.sign_up("ada@example.com").await;
    let schema = app.gql(INTROSPECTION, json!({})).await;
    assert!(schema["errors"].is_null(), "{schema}");
    let types: HashMap<String, Value> = schema["data"]["__schema"]["types"]
        .as_array()
        .expect("types")
        .iter()
        .map(|t| (t["name"].as_str().unwrap_or_default().to_owned(), t.clone()))
        .collect();

    let mut unclassified = Vec::new();
    let mut seen = Vec::new();
    let mut admin_fields = 0;
    for (root, key, op) in [("Query", "q", "query"), ("Mutation", "m", "mutation")] {
        for field in schema["data"][key]["fields"].as_array().expect("fields") {
            let name = field["name"].as_str().expect("name");
            seen.push((root, name.to_owned()));
            let Some(&(_, _, access)) = FIELDS.iter().find(|(r, f, _)| *r == root && *f == name)
            else {
                unclassified.push(format!("{root}.{name}"));
                continue;
            };
            let document = format!("{op} {{ {} }}", call(field, &types));
            match access {
                Access::Public => {}
                Access::SignedIn => {
                    let anon = app.gql(&document, json!({})).await;
                    assert_eq!(code(&anon), "UNAUTHENTICATED", "{document}: {anon}");
                }
                Access::Admin => {
                    admin_fields += 1;
                    let anon = app.gql(&document, json!({})).await;
                    assert_eq!(code(&anon), "UNAUTHENTICATED", "{document}: {anon}");
                    let as_user = app.gql_with(Some(&user), &document, json!({})).await;
                    assert_eq!(code(&as_user), "FORBIDDEN", "{document}: {as_user}");
                }
            }
        }
    }
    assert!(
        unclassified.is_empty(),
        "fields nobody classified (add them to FIELDS in tests/it/admin.rs): {unclassified:?}"
    );
    let stale: Vec<String> = FIELDS
        .iter()
        .filter(|(r, f, _)| !seen.iter().any(|(sr, sf)| sr == r && sf == f))
        .map(|(r, f, _)| format!("{r}.{f}"))
        .collect();
    assert!(
        stale.is_empty(),
        "FIELDS in tests/it/admin.rs names fields the schema does not have: {stale:?}"
    );
    assert!(
        admin_fields >= 13,
        "the walk saw the admin fields ({admin_fields})"
    );
    // The guards refused before doing anything: the users are intact, the admin still one.
    assert_eq!(app.db.count("SELECT COUNT(*) AS n FROM \"user\"").await, 2);
    let me = app
        .gql_with(Some(&admin), "{ me { role } }", json!({}))
        .await;
    assert_eq!(data(&me, "me")["role"], "admin");
}
