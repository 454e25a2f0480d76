//! Refuses introspection outright where it is disabled: async-graphql's own switch answers
//! `__schema` with a silent null, which tells a client nothing.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ErrorExtensionValues, Pos, ServerError, ServerResult, Variables};

use crate::error::Code;

pub struct NoIntrospection;

impl ExtensionFactory for NoIntrospection {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(NoIntrospection)
    }
}

/// Whether a selection set asks for `__schema` or `__type`, through fragments too. Fragment
/// cycles are invalid GraphQL; `depth` bounds the walk regardless.
fn introspects(doc: &ExecutableDocument, set: &SelectionSet, depth: usize) -> bool {
    if depth > 32 {
        return false;
    }
    set.items.iter().any(|item| match &item.node {
        Selection::Field(f) => {
            let name = f.node.name.node.as_str();
            name == "__schema"
                || name == "__type"
                || introspects(doc, &f.node.selection_set.node, depth + 1)
        }
        Selection::InlineFragment(f) => introspects(doc, &f.node.selection_set.node, depth + 1),
        Selection::FragmentSpread(s) => doc
            .fragments
            .get(&s.node.fragment_name.node)
            .is_some_and(|f| introspects(doc, &f.node.selection_set.node, depth + 1)),
    })
}

#[async_trait::async_trait]
impl Extension for NoIntrospection {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        if doc
            .operations
            .iter()
            .any(|(_, op)| introspects(&doc, &op.node.selection_set.node, 0))
        {
            let mut err = ServerError::new("Introspection is disabled", Some(Pos::default()));
            let mut ext = ErrorExtensionValues::default();
            ext.set("code", Code::GraphqlValidationFailed.as_str());
            err.extensions = Some(ext);
            return Err(err);
        }
        Ok(doc)
    }
}
