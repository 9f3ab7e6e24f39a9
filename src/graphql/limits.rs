//! Request limits async-graphql does not have built in: the number of
//! aliased fields one document may select (`WXNOTIFY_MAX_QUERY_ALIASES`).
//!
//! Aliases let one small document ask for the same expensive field many
//! times over (`a1: account_aggregate {…} a2: account_aggregate {…} …`);
//! depth and complexity limits count each copy, but a cap on aliases refuses
//! such documents before anything is validated or run.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ServerError, ServerResult, Variables};

/// Refuses documents with more than `max` aliased fields.
pub struct AliasLimit {
    pub max: usize,
}

impl ExtensionFactory for AliasLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(AliasLimitExtension { max: self.max })
    }
}

struct AliasLimitExtension {
    max: usize,
}

#[async_graphql::async_trait::async_trait]
impl Extension for AliasLimitExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let aliases = count_aliases(&document);
        if aliases > self.max {
            let message = format!(
                "the document uses {aliases} aliases, more than the {} allowed (WXNOTIFY_MAX_QUERY_ALIASES): split it into several requests",
                self.max
            );
            let mut error = ServerError::new(message, None);
            error.extensions = Some(code_extension("too-many-aliases"));
            return Err(error);
        }
        Ok(document)
    }
}

fn code_extension(code: &str) -> async_graphql::ErrorExtensionValues {
    let mut extensions = async_graphql::ErrorExtensionValues::default();
    extensions.set("code", code);
    extensions
}

/// Aliased fields in every operation and fragment of the document, each
/// counted once where it is written.
fn count_aliases(document: &ExecutableDocument) -> usize {
    let operations = document.operations.iter().map(|(_, op)| &op.node.selection_set.node);
    let fragments = document.fragments.values().map(|f| &f.node.selection_set.node);
    operations.chain(fragments).map(in_selection_set).sum()
}

fn in_selection_set(set: &SelectionSet) -> usize {
    set.items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(field) => usize::from(field.node.alias.is_some()) + in_selection_set(&field.node.selection_set.node),
            Selection::InlineFragment(fragment) => in_selection_set(&fragment.node.selection_set.node),
            Selection::FragmentSpread(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::count_aliases;

    fn aliases(document: &str) -> usize {
        count_aliases(&async_graphql::parser::parse_query(document).expect("the document parses"))
    }

    #[test]
    fn aliases_are_counted_in_operations_fragments_and_nested_selections() {
        assert_eq!(aliases("{ account { id } }"), 0);
        assert_eq!(aliases("{ a: account { b: id c: id } }"), 3);
        assert_eq!(aliases("query q { x: account { ...f } } fragment f on account { y: id ... on account { z: id } }"), 3);
        assert_eq!(aliases("query a { x: account { id } } query b { y: account { id } }"), 2);
    }
}
