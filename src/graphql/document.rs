//! The gate every GraphQL document passes before async-graphql's parser, validator or executor
//! sees it, so that no document can make the service recurse without bound or work exponentially:
//!
//! 1. [`scan`]: one linear pass over the text that refuses nesting (`{`, `[`, `(`) deeper than
//!    [`MAX_NESTING`] — the parser recurses once per level, and about 1,600 nested list values
//!    used to overflow a worker's stack and abort the process.
//! 2. [`measure`]: one pass over the parsed document that computes each fragment's cost exactly
//!    once (memoised), so a chain of fragments that spread the next twice costs linear work,
//!    not 2ⁿ. It refuses cycles, too many operations or fragments, documents whose expansion is
//!    too deep, too large or too complex, literals that are too large, and — where introspection
//!    is off — any selection of `__schema` or `__type`.
//!
//! Only a document that passes reaches async-graphql, whose own depth, complexity and cache
//! visitors expand every fragment at every use: bounded now by the expanded size checked here.

use std::collections::HashMap;

use async_graphql::parser::types::{
    Directive, ExecutableDocument, FragmentDefinition, Selection, SelectionSet,
};
use async_graphql::{ErrorExtensionValues, Name, Positioned, ServerError};
use async_graphql_value::Value;

use crate::error::Code;

/// Deepest nesting of brackets, braces and parentheses in a document's text.
pub const MAX_NESTING: usize = 64;
/// Deepest nesting of selection sets once fragments are expanded (fields, inline fragments and
/// fragment spreads each add a level).
pub const MAX_STRUCTURE: usize = 128;
/// Operations in one document.
pub const MAX_OPERATIONS: usize = 32;
/// Fragment definitions in one document.
pub const MAX_FRAGMENTS: usize = 256;
/// Literal values (every scalar, list item and object field) in one document.
pub const MAX_LITERAL_VALUES: usize = 2_000;
/// Selections of the expanded document (`__typename`, spreads and inline fragments included) are
/// bounded by this many times the complexity limit, and at least [`MIN_SELECTIONS`].
pub const SELECTIONS_PER_COMPLEXITY: usize = 4;
pub const MIN_SELECTIONS: usize = 1_000;

/// What a document may cost.
#[derive(Debug, Clone)]
pub struct DocumentLimits {
    pub max_depth: usize,
    pub max_complexity: usize,
    pub introspection: bool,
}

impl DocumentLimits {
    fn max_selections(&self) -> usize {
        self.max_complexity
            .saturating_mul(SELECTIONS_PER_COMPLEXITY)
            .max(MIN_SELECTIONS)
    }
}

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: Code,
    pub message: String,
}

impl Refusal {
    fn parse(message: impl Into<String>) -> Self {
        Self {
            code: Code::GraphqlParseFailed,
            message: message.into(),
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self {
            code: Code::GraphqlValidationFailed,
            message: message.into(),
        }
    }

    fn too_complex() -> Self {
        // async-graphql's own wording for the same limit.
        Self::invalid("Query is too complex.")
    }

    fn too_deep() -> Self {
        Self::invalid("Query is nested too deep.")
    }

    pub fn into_server_error(self) -> ServerError {
        let mut err = ServerError::new(self.message, None);
        let mut ext = ErrorExtensionValues::default();
        ext.set("code", self.code.as_str());
        err.extensions = Some(ext);
        err
    }

    /// The GraphQL response that answers a refused document.
    pub fn into_response(self) -> async_graphql::Response {
        async_graphql::Response::from_errors(vec![self.into_server_error()])
    }
}

/// Refuses text that nests deeper than [`MAX_NESTING`]. Linear, no recursion: strings, block
/// strings and comments are skipped as GraphQL's lexer would.
pub fn scan(text: &str) -> Result<(), Refusal> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    // `\"""` is an escaped delimiter inside a block string.
                    i += if bytes[i..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(Refusal::parse(format!(
                        "The document nests deeper than {MAX_NESTING} levels"
                    )));
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// What the expanded document costs (fragments expanded at every use).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cost {
    /// Fields, `__typename` excepted: async-graphql's complexity.
    pub complexity: usize,
    /// Deepest nesting of fields, `__typename` excepted: async-graphql's depth.
    pub depth: usize,
    /// Every selection: fields, `__typename`, spreads and inline fragments.
    pub selections: usize,
    /// Deepest nesting of selection sets, of any kind.
    pub structure: usize,
    /// Selects `__schema` or `__type` somewhere.
    pub introspects: bool,
}

impl Cost {
    fn add(&mut self, other: Cost) {
        self.complexity = self.complexity.saturating_add(other.complexity);
        self.depth = self.depth.max(other.depth);
        self.selections = self.selections.saturating_add(other.selections);
        self.structure = self.structure.max(other.structure);
        self.introspects |= other.introspects;
    }
}

enum Memo {
    InProgress,
    Done(Cost),
}

struct Measure<'a> {
    doc: &'a ExecutableDocument,
    limits: &'a DocumentLimits,
    fragments: HashMap<&'a str, Memo>,
    literals: usize,
}

impl<'a> Measure<'a> {
    fn check(&self, cost: &Cost) -> Result<(), Refusal> {
        if cost.selections > self.limits.max_selections()
            || cost.complexity > self.limits.max_complexity
        {
            return Err(Refusal::too_complex());
        }
        if cost.depth > self.limits.max_depth || cost.structure > MAX_STRUCTURE {
            return Err(Refusal::too_deep());
        }
        Ok(())
    }

    /// The cost of a selection set reached `level` selection sets below its root.
    fn set(&mut self, set: &'a SelectionSet, level: usize) -> Result<Cost, Refusal> {
        if level > MAX_STRUCTURE {
            return Err(Refusal::too_deep());
        }
        let mut total = Cost::default();
        for item in &set.items {
            let cost = match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    self.arguments(&field.arguments)?;
                    self.directives(&field.directives)?;
                    let name = field.name.node.as_str();
                    let below = self.set(&field.selection_set.node, level + 1)?;
                    let counted = usize::from(name != "__typename");
                    Cost {
                        complexity: below.complexity.saturating_add(counted),
                        depth: below.depth.saturating_add(counted),
                        selections: below.selections.saturating_add(1),
                        structure: below.structure.saturating_add(1),
                        introspects: below.introspects || name == "__schema" || name == "__type",
                    }
                }
                Selection::InlineFragment(inline) => {
                    self.directives(&inline.node.directives)?;
                    let below = self.set(&inline.node.selection_set.node, level + 1)?;
                    Cost {
                        selections: below.selections.saturating_add(1),
                        structure: below.structure.saturating_add(1),
                        ..below
                    }
                }
                Selection::FragmentSpread(spread) => {
                    self.directives(&spread.node.directives)?;
                    let name = spread.node.fragment_name.node.as_str();
                    // An unknown fragment costs nothing here; async-graphql reports it.
                    let below = match self.doc.fragments.get(name) {
                        Some(fragment) => self.fragment(name, &fragment.node, level + 1)?,
                        None => Cost::default(),
                    };
                    Cost {
                        selections: below.selections.saturating_add(1),
                        structure: below.structure.saturating_add(1),
                        ..below
                    }
                }
            };
            total.add(cost);
            // Refuse as soon as the running total is over: nothing grows past the limits.
            self.check(&total)?;
            if level.saturating_add(total.structure) > MAX_STRUCTURE {
                return Err(Refusal::too_deep());
            }
        }
        Ok(total)
    }

    /// A fragment's cost, computed once whatever the number of its uses.
    fn fragment(
        &mut self,
        name: &'a str,
        fragment: &'a FragmentDefinition,
        level: usize,
    ) -> Result<Cost, Refusal> {
        match self.fragments.get(name) {
            Some(Memo::Done(cost)) => return Ok(*cost),
            Some(Memo::InProgress) => {
                return Err(Refusal::invalid(format!(
                    "Cannot spread fragment \"{name}\" within itself"
                )));
            }
            None => {}
        }
        self.fragments.insert(name, Memo::InProgress);
        self.directives(&fragment.directives)?;
        let cost = self.set(&fragment.selection_set.node, level)?;
        self.fragments.insert(name, Memo::Done(cost));
        Ok(cost)
    }

    fn arguments(
        &mut self,
        arguments: &'a [(Positioned<Name>, Positioned<Value>)],
    ) -> Result<(), Refusal> {
        for (_, value) in arguments {
            self.literal(&value.node, 0)?;
        }
        Ok(())
    }

    fn directives(&mut self, directives: &'a [Positioned<Directive>]) -> Result<(), Refusal> {
        for directive in directives {
            self.arguments(&directive.node.arguments)?;
        }
        Ok(())
    }

    /// Counts literal values; their nesting is already bounded by [`scan`].
    fn literal(&mut self, value: &Value, level: usize) -> Result<(), Refusal> {
        self.literals += 1;
        if self.literals > MAX_LITERAL_VALUES {
            return Err(Refusal::invalid(format!(
                "The document holds more than {MAX_LITERAL_VALUES} literal values"
            )));
        }
        if level > MAX_NESTING {
            return Err(Refusal::too_deep());
        }
        match value {
            Value::List(items) => {
                for item in items {
                    self.literal(item, level + 1)?;
                }
            }
            Value::Object(fields) => {
                for item in fields.values() {
                    self.literal(item, level + 1)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Measures a parsed document the way async-graphql's validation would expand it — every
/// fragment definition and every operation, fragments expanded at every use — but computing
/// each fragment once. Refuses what is over the limits.
pub fn measure(doc: &ExecutableDocument, limits: &DocumentLimits) -> Result<Cost, Refusal> {
    let operations = doc.operations.iter().count();
    if operations > MAX_OPERATIONS {
        return Err(Refusal::invalid(format!(
            "A document may hold at most {MAX_OPERATIONS} operations"
        )));
    }
    if doc.fragments.len() > MAX_FRAGMENTS {
        return Err(Refusal::invalid(format!(
            "A document may hold at most {MAX_FRAGMENTS} fragments"
        )));
    }
    let mut measure = Measure {
        doc,
        limits,
        fragments: HashMap::with_capacity(doc.fragments.len()),
        literals: 0,
    };
    let mut total = Cost::default();
    for (name, fragment) in &doc.fragments {
        total.add(measure.fragment(name.as_str(), &fragment.node, 0)?);
        measure.check(&total)?;
    }
    for (_, operation) in doc.operations.iter() {
        let operation = &operation.node;
        measure.directives(&operation.directives)?;
        for variable in &operation.variable_definitions {
            measure.directives(&variable.node.directives)?;
            if let Some(default) = &variable.node.default_value {
                measure.literal(&default.node.clone().into_value(), 0)?;
            }
        }
        total.add(measure.set(&operation.selection_set.node, 0)?);
        measure.check(&total)?;
    }
    if total.introspects && !limits.introspection {
        return Err(Refusal::invalid("Introspection is disabled"));
    }
    Ok(total)
}

/// The gate for a bare text (the fuzz target's entry): scan, parse, measure.
pub fn check(text: &str, limits: &DocumentLimits) -> Result<Cost, Refusal> {
    scan(text)?;
    let doc =
        async_graphql::parser::parse_query(text).map_err(|e| Refusal::parse(e.to_string()))?;
    measure(&doc, limits)
}

/// The whole gate for one request: scan the text, parse it (the parsed document stays cached
/// in the request for the executor), measure it.
pub fn vet(request: &mut async_graphql::Request, limits: &DocumentLimits) -> Result<(), Refusal> {
    scan(&request.query)?;
    let doc = request
        .parsed_query()
        .map_err(|e| Refusal::parse(e.message))?;
    measure(doc, limits).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> DocumentLimits {
        DocumentLimits {
            max_depth: 10,
            max_complexity: 200,
            introspection: false,
        }
    }

    fn vet_text(text: &str) -> Result<(), Refusal> {
        vet(&mut async_graphql::Request::new(text), &limits())
    }

    /// `fragment F0 on Query { ...F1 ...F1 } … fragment Fn on Query { me { id } }`
    fn doubling_chain(levels: usize) -> String {
        let mut doc = String::from("query { ...F0 }\n");
        for i in 0..levels {
            doc.push_str(&format!(
                "fragment F{i} on Query {{ ...F{n} ...F{n} }}\n",
                n = i + 1
            ));
        }
        doc.push_str(&format!("fragment F{levels} on Query {{ me {{ id }} }}\n"));
        doc
    }

    #[test]
    fn scan_bounds_nesting_outside_strings_and_comments() {
        assert!(scan(&"[".repeat(MAX_NESTING)).is_ok());
        let deep = format!("{{ a(x: {}) }}", "[".repeat(100_000));
        let refused = scan(&deep).unwrap_err();
        assert_eq!(refused.code, Code::GraphqlParseFailed);
        // Brackets inside strings, block strings and comments do not count.
        let quoted = format!(
            "{{ a(x: \"{b}\", y: \"\"\"{b}\\\"\"\"{b}\"\"\") }} # {b}\n",
            b = "[".repeat(1000)
        );
        assert!(scan(&quoted).is_ok(), "{quoted}");
        assert!(scan(&format!("\"\\\"{}\"", "{".repeat(1000))).is_ok());
    }

    #[test]
    fn deep_values_are_refused_before_the_parser_recurses() {
        for open in ["[", "{a: "] {
            let doc = format!("{{ me(x: {}1) {{ id }} }}", open.repeat(100_000));
            assert_eq!(vet_text(&doc).unwrap_err().code, Code::GraphqlParseFailed);
        }
    }

    #[test]
    fn fragment_chains_cost_linear_work() {
        // Expanded, 64 levels would be 2^64 fields: this returns at all only because each
        // fragment is measured once.
        for levels in [20, 30, 64] {
            let refused = vet_text(&doubling_chain(levels)).unwrap_err();
            assert_eq!(refused, Refusal::too_complex(), "{levels}");
        }
        // A short chain within the limits passes: 2^5 = 32 fields.
        assert!(vet_text(&doubling_chain(5)).is_ok());
    }

    #[test]
    fn costs_match_what_async_graphql_counts() {
        let mut request = async_graphql::Request::new(
            "query { session { user { id __typename } } ...F } \
             fragment F on Query { me { id name } }",
        );
        let doc = request.parsed_query().unwrap();
        let cost = measure(doc, &limits()).unwrap();
        // Fragment definition (me, id, name = 3) + operation (session, user, id + 3).
        assert_eq!(cost.complexity, 9);
        assert_eq!(cost.depth, 3);
        assert!(!cost.introspects);
    }

    #[test]
    fn cycles_counts_and_introspection_are_refused() {
        let cycle = "query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }";
        assert_eq!(
            vet_text(cycle).unwrap_err().code,
            Code::GraphqlValidationFailed
        );
        let hidden =
            "query { ...A } fragment A on Query { ... on Query { __schema { types { name } } } }";
        assert_eq!(
            vet_text(hidden).unwrap_err().message,
            "Introspection is disabled"
        );
        let many_ops: String = (0..=MAX_OPERATIONS)
            .map(|i| format!("query Q{i} {{ me {{ id }} }} "))
            .collect();
        assert!(vet_text(&many_ops).is_err());
        let many_fragments: String = (0..=MAX_FRAGMENTS)
            .map(|i| format!("fragment F{i} on Query {{ me {{ id }} }} "))
            .collect();
        assert!(vet_text(&format!("{{ me {{ id }} }} {many_fragments}")).is_err());
        let literals = format!(
            "{{ me(x: [{}]) {{ id }} }}",
            "1,".repeat(MAX_LITERAL_VALUES)
        );
        assert!(vet_text(&literals).is_err());
        // Inline fragments nested within the text limit, chained through fragments past the
        // structural limit.
        let mut doc = String::from("query { ...F0 }\n");
        for i in 0..40 {
            doc.push_str(&format!(
                "fragment F{i} on Query {{ {}...F{n} {} }}\n",
                "... on Query { ".repeat(10),
                "}".repeat(10),
                n = i + 1
            ));
        }
        doc.push_str("fragment F40 on Query { me { id } }\n");
        assert_eq!(vet_text(&doc).unwrap_err(), Refusal::too_deep());
    }
}
