//! Every string a client sends is checked once, at the edge, before any resolver runs (issue 13,
//! item 8): literals in the document (field and directive arguments, variable defaults) and the
//! variables. A NUL character is refused with `BAD_USER_INPUT` and `extensions.field` (the input
//! field, argument or variable holding it): PostgreSQL cannot store it in text and SQLite would,
//! so refusing it here keeps both databases alike and covers new fields without per-resolver
//! code. The walk is iterative and visits each fragment once (no expansion, no recursion).

use async_graphql::parser::types::{
    Directive, ExecutableDocument, Selection, SelectionSet, VariableDefinition,
};
use async_graphql::{
    ErrorExtensionValues, Name, Pos, Positioned, ServerError, ServerResult, Value, Variables,
};

use crate::error::Code;

/// Refuses a NUL in the variables (before parsing) or in the document's literals (after): the
/// `parse_query` hook of [`super::hooks`].
pub(super) fn check_variables(variables: &Variables) -> ServerResult<()> {
    match nul_in_variables(variables) {
        Some(field) => Err(refusal(field, None)),
        None => Ok(()),
    }
}

pub(super) fn check_document(document: &ExecutableDocument) -> ServerResult<()> {
    match nul_in_document(document) {
        Some((field, pos)) => Err(refusal(field, Some(pos))),
        None => Ok(()),
    }
}

/// The input field (or argument or variable) of the first string with a NUL in a parsed
/// document or its variables; public for the fuzz target `graphql_strings`.
pub fn find_nul<'a>(document: &'a ExecutableDocument, variables: &'a Variables) -> Option<&'a str> {
    nul_in_variables(variables).or_else(|| nul_in_document(document).map(|(field, _)| field))
}

fn nul_in_variables(variables: &Variables) -> Option<&str> {
    variables
        .iter()
        .find_map(|(name, value)| nul_in_const(name.as_str(), value))
}

/// Whether `text` may be stored and compared as given (no NUL).
pub fn is_clean(text: &str) -> bool {
    !text.contains('\0')
}

fn refusal(field: &str, pos: Option<Pos>) -> ServerError {
    let mut err = ServerError::new("Text must not contain NUL characters", pos);
    let ext = err
        .extensions
        .get_or_insert_with(ErrorExtensionValues::default);
    ext.set("code", Code::BadUserInput.as_str());
    ext.set("field", field);
    err
}

/// The innermost input field (or else `name`) of a string in `value` holding a NUL.
fn nul_in_const<'a>(name: &'a str, value: &'a Value) -> Option<&'a str> {
    let mut stack = vec![(name, value)];
    while let Some((key, value)) = stack.pop() {
        match value {
            Value::String(s) if !is_clean(s) => return Some(key),
            Value::List(items) => stack.extend(items.iter().map(|v| (key, v))),
            Value::Object(fields) => stack.extend(fields.iter().map(|(k, v)| (k.as_str(), v))),
            _ => {}
        }
    }
    None
}

/// The same for a literal that may hold variables (those are checked with the variables).
fn nul_in_literal<'a>(name: &'a str, value: &'a async_graphql_value::Value) -> Option<&'a str> {
    use async_graphql_value::Value as V;
    let mut stack = vec![(name, value)];
    while let Some((key, value)) = stack.pop() {
        match value {
            V::String(s) if !is_clean(s) => return Some(key),
            V::List(items) => stack.extend(items.iter().map(|v| (key, v))),
            V::Object(fields) => stack.extend(fields.iter().map(|(k, v)| (k.as_str(), v))),
            _ => {}
        }
    }
    None
}

type Arguments = Vec<(Positioned<Name>, Positioned<async_graphql_value::Value>)>;

fn nul_in_arguments(arguments: &Arguments) -> Option<(&str, Pos)> {
    arguments.iter().find_map(|(name, value)| {
        nul_in_literal(name.node.as_str(), &value.node).map(|field| (field, value.pos))
    })
}

fn nul_in_directives(directives: &[Positioned<Directive>]) -> Option<(&str, Pos)> {
    directives
        .iter()
        .find_map(|d| nul_in_arguments(&d.node.arguments))
}

fn nul_in_variable_defaults(definitions: &[Positioned<VariableDefinition>]) -> Option<(&str, Pos)> {
    definitions.iter().find_map(|d| {
        let in_default = d.node.default_value.as_ref().and_then(|v| {
            nul_in_const(d.node.name.node.as_str(), &v.node).map(|field| (field, v.pos))
        });
        in_default.or_else(|| nul_in_directives(&d.node.directives))
    })
}

fn nul_in_selections(roots: Vec<&Positioned<SelectionSet>>) -> Option<(&str, Pos)> {
    let mut stack = roots;
    while let Some(set) = stack.pop() {
        for selection in &set.node.items {
            let found = match &selection.node {
                Selection::Field(field) => {
                    stack.push(&field.node.selection_set);
                    nul_in_arguments(&field.node.arguments)
                        .or_else(|| nul_in_directives(&field.node.directives))
                }
                Selection::FragmentSpread(spread) => nul_in_directives(&spread.node.directives),
                Selection::InlineFragment(inline) => {
                    stack.push(&inline.node.selection_set);
                    nul_in_directives(&inline.node.directives)
                }
            };
            if found.is_some() {
                return found;
            }
        }
    }
    None
}

/// A string literal with a NUL anywhere in the document: its field and position.
fn nul_in_document(document: &ExecutableDocument) -> Option<(&str, Pos)> {
    let mut roots = Vec::new();
    for (_, operation) in document.operations.iter() {
        let op = &operation.node;
        let found = nul_in_variable_defaults(&op.variable_definitions)
            .or_else(|| nul_in_directives(&op.directives));
        if found.is_some() {
            return found;
        }
        roots.push(&op.selection_set);
    }
    for fragment in document.fragments.values() {
        if let Some(found) = nul_in_directives(&fragment.node.directives) {
            return Some(found);
        }
        roots.push(&fragment.node.selection_set);
    }
    nul_in_selections(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(query: &str) -> ExecutableDocument {
        async_graphql::parser::parse_query(query).unwrap()
    }

    #[test]
    fn finds_nul_in_every_kind_of_literal() {
        for (query, field) in [
            (r#"{ adminUser(id: "\u0000") { id } }"#, "id"),
            (r#"{ a { b(input: {x: ["ok", "n\u0000"]}) } }"#, "x"),
            (r#"query($s: String = "\u0000") { a(s: $s) }"#, "s"),
            (
                r#"{ a @include(if: true) @skip(reason: "\u0000") }"#,
                "reason",
            ),
            (
                r#"{ ...F } fragment F on Query { b { c(q: "x\u0000y") } }"#,
                "q",
            ),
            (r#"{ ... on Query { c(q: "\u0000") } }"#, "q"),
        ] {
            let d = doc(query);
            assert_eq!(nul_in_document(&d).map(|(f, _)| f), Some(field), "{query}");
        }
        assert_eq!(
            nul_in_document(&doc(r#"{ a(s: "fine", t: $v) { b } }"#)),
            None
        );
    }

    #[test]
    fn finds_nul_in_variables() {
        let vars: serde_json::Value =
            serde_json::json!({ "input": { "email": "a@b.c", "name": ["x", "y\u{0}"] } });
        let vars = Variables::from_json(vars);
        let found = vars
            .iter()
            .find_map(|(name, value)| nul_in_const(name.as_str(), value));
        assert_eq!(found, Some("name"));
        let scalar = Variables::from_json(serde_json::json!({ "id": "\u{0}" }));
        let found = scalar
            .iter()
            .find_map(|(name, value)| nul_in_const(name.as_str(), value));
        assert_eq!(found, Some("id"));
    }
}
