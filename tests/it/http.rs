//! The HTTP transport: content types, methods, limits, batches, health and error codes.

use serde_json::{Value, json};

use crate::support::{Backend, TestApp, code, on_both};

on_both!(
    mutation_over_get_is_refused_and_runs_nothing,
    non_json_post_is_refused_and_runs_nothing,
    oversized_body_is_refused,
    batches_run_in_order_within_the_limit,
    query_limits_and_error_codes,
    health_and_readiness,
    graphiql_in_development,
    other_methods_are_refused,
);

const SIGN_UP: &str = "mutation { signUpEmail(input: {name: \"Ada\", email: \"ada@example.com\", password: \"correct horse battery staple\"}) { token } }";

async fn mutation_over_get_is_refused_and_runs_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let resp = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", SIGN_UP)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "POST");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(code(&body), "METHOD_NOT_ALLOWED");
    // Also when the mutation is picked by operationName among several operations.
    let resp = app
        .client
        .get(app.url("/graphql"))
        .query(&[
            (
                "query",
                format!(
                    "query Q {{ me {{ id }} }} {}",
                    SIGN_UP.replacen("mutation", "mutation M", 1)
                ),
            ),
            ("operationName", "M".to_owned()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(app.db.users().await, 0, "nothing ran");

    // Queries over GET work.
    let resp = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", "{ me { id } }")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["data"]["me"].is_null() && body["errors"].is_null(),
        "{body}"
    );
}

async fn non_json_post_is_refused_and_runs_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let payload = json!({ "query": SIGN_UP }).to_string();
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let resp = app
            .client
            .post(app.url("/graphql"))
            .header("content-type", content_type)
            .body(payload.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 415, "{content_type}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(code(&body), "UNSUPPORTED_MEDIA_TYPE");
    }
    let none = app
        .client
        .post(app.url("/graphql"))
        .body(payload.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 415);
    assert_eq!(app.db.users().await, 0, "nothing ran");
    let ok = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "application/json; charset=utf-8")
        .body(payload)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(app.db.users().await, 1);
}

async fn oversized_body_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let password = "x".repeat(1024 * 1024);
    let resp = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({
            "query": "mutation($p: String!) { signUpEmail(input: {name: \"A\", email: \"a@example.com\", password: $p}) { token } }",
            "variables": { "p": password }
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(code(&body), "PAYLOAD_TOO_LARGE");
    assert_eq!(app.db.users().await, 0);
}

async fn batches_run_in_order_within_the_limit(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let resp = app
        .client
        .post(app.url("/graphql"))
        .json(&json!([{ "query": SIGN_UP }, { "query": "{ me { id } }" }]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let items = body.as_array().expect("batch answers with an array");
    assert_eq!(items.len(), 2);
    assert!(items[0]["data"]["signUpEmail"]["token"].is_string());

    let one: Value = app
        .client
        .post(app.url("/graphql"))
        .json(&json!([{ "query": "{ me { id } }" }]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        one.as_array().map(Vec::len),
        Some(1),
        "a batch of one is still a batch"
    );

    let too_many: Vec<Value> = (0..6).map(|_| json!({ "query": SIGN_UP })).collect();
    let resp = app
        .client
        .post(app.url("/graphql"))
        .json(&too_many)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["errors"][0]["extensions"]["code"].is_string(),
        "{body}"
    );
    assert_eq!(app.db.users().await, 1, "the refused batch ran nothing");

    let garbage = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 400);
    let body: Value = garbage.json().await.unwrap();
    assert_eq!(code(&body), "GRAPHQL_PARSE_FAILED");
}

async fn query_limits_and_error_codes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let parse = app.gql("{ me { id ", json!({})).await;
    assert_eq!(code(&parse), "GRAPHQL_PARSE_FAILED");
    let unknown = app.gql("{ nope }", json!({})).await;
    assert_eq!(code(&unknown), "GRAPHQL_VALIDATION_FAILED");
    let bad_var = app
        .gql(
            "query($x: Int!) { me { id } }",
            json!({ "x": "not an int" }),
        )
        .await;
    assert!(
        bad_var["errors"][0]["extensions"]["code"].is_string(),
        "{bad_var}"
    );

    // Depth: introspection nesting beyond the limit.
    let deep = "{ __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } } }";
    let body = app.gql(deep, json!({})).await;
    assert_eq!(code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");

    // Complexity: aliases count.
    let aliases: String = (0..300).map(|i| format!("a{i}: me {{ id }} ")).collect();
    let body = app.gql(&format!("{{ {aliases} }}"), json!({})).await;
    assert_eq!(code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");

    // Directives.
    let directives: String = (0..30).map(|_| "@include(if: true) ").collect();
    let body = app
        .gql(&format!("{{ me {directives} {{ id }} }}"), json!({}))
        .await;
    assert_eq!(code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");

    // Every error has a code; no error leaks SQL.
    for body in [parse, unknown] {
        for e in body["errors"].as_array().unwrap() {
            assert!(e["extensions"]["code"].is_string(), "{e}");
        }
    }
}

async fn health_and_readiness(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.headers()["x-content-type-options"], "nosniff");

    // A migration reverted behind the server's back: not ready.
    apexkit::db::migrations::revert_all(&app.db.database_url())
        .await
        .unwrap();
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
}

async fn graphiql_in_development(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let resp = app
        .client
        .get(app.url("/graphql"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.text()
            .await
            .unwrap()
            .to_lowercase()
            .contains("graphiql")
    );
}

async fn other_methods_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let resp = app.client.put(app.url("/graphql")).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(code(&body), "METHOD_NOT_ALLOWED");
}
