//! String inputs of GraphQL requests (issue 13, item 8): for any document that parses and any
//! variables, the NUL check never panics (it walks without recursion, whatever the nesting),
//! finds every NUL in the variables, and finds one in the document exactly when a string literal
//! holds one (oracle: the same document with every NUL escape replaced parses clean).
//! Input: the query text, then optionally `\u{1}` and the variables as JSON.
#![no_main]

use apexkit::graphql::inputs::find_nul;
use async_graphql::Variables;
use libfuzzer_sys::fuzz_target;

fn json_has_nul(value: &serde_json::Value) -> bool {
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            serde_json::Value::String(s) if s.contains('\0') => return true,
            serde_json::Value::Array(items) => stack.extend(items),
            serde_json::Value::Object(map) => stack.extend(map.values()),
            _ => {}
        }
    }
    false
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (query, vars) = text.split_once('\u{1}').unwrap_or((text, "{}"));
    let json: serde_json::Value = serde_json::from_str(vars).unwrap_or(serde_json::json!({}));
    let variables = Variables::from_json(json.clone());
    let Ok(document) = async_graphql::parser::parse_query(query) else {
        return;
    };
    let found = find_nul(&document, &variables);
    if json.is_object() && json_has_nul(&json) {
        assert!(found.is_some(), "a NUL in the variables was missed");
    }
    let none = Variables::default();
    let in_document = find_nul(&document, &none).is_some();
    // The oracle: escapes that decode to NUL, replaced by a harmless escape of the same shape.
    let cleaned = query
        .replace("\\u0000", "\\u0041")
        .replace("\\u{0}", "\\u{41}")
        .replace("\\u{00}", "\\u{41}")
        .replace("\\u{000}", "\\u{41}")
        .replace("\\u{0000}", "\\u{41}");
    if !query.contains('\0') && cleaned != query {
        if let Ok(clean_doc) = async_graphql::parser::parse_query(&cleaned) {
            assert!(
                find_nul(&clean_doc, &none).is_none(),
                "a NUL reported in a document without one"
            );
        }
    }
    if !query.contains('\0') && !query.contains("\\u") {
        assert!(!in_document, "a NUL reported in a document without any escape");
    }
});
