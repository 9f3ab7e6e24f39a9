//! Request limits: the number of aliased fields one document may select
//! (`WXNOTIFY_MAX_QUERY_ALIASES`), which async-graphql does not count, and
//! clear errors for the depth and complexity limits it does enforce (its
//! own messages do not say which setting to change).
//!
//! Aliases let one small document ask for the same expensive field many
//! times over (`a1: account_aggregate {…} a2: account_aggregate {…} …`);
//! depth and complexity limits count each copy, but a cap on aliases refuses
//! such documents before anything is validated or run.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::Name;
use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ServerError, ServerResult, ValidationResult, Variables};

/// The limits of one schema, from the settings.
#[derive(Clone, Copy)]
pub struct Limits {
    pub max_aliases: usize,
    pub max_depth: usize,
    pub max_complexity: usize,
}

impl ExtensionFactory for Limits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(*self)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for Limits {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let aliases = count_aliases(&document);
        if aliases > self.max_aliases {
            let message = format!(
                "the document uses {aliases} aliases, more than the {} allowed (WXNOTIFY_MAX_QUERY_ALIASES): split it into several requests",
                self.max_aliases
            );
            return Err(coded(ServerError::new(message, None), "too-many-aliases"));
        }
        Ok(document)
    }

    async fn validation(&self, ctx: &ExtensionContext<'_>, next: NextValidation<'_>) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|errors| errors.into_iter().map(|e| self.explain(e)).collect())
    }
}

impl Limits {
    /// async-graphql's depth and complexity refusals, with the limit and the
    /// setting that raises it.
    fn explain(&self, mut error: ServerError) -> ServerError {
        let (limit, what, setting, code) = match error.message.as_str() {
            "Query is nested too deep." => (self.max_depth, "levels of selection", "WXNOTIFY_MAX_QUERY_DEPTH", "too-deep"),
            "Query is too complex." => (self.max_complexity, "selected fields", "WXNOTIFY_MAX_QUERY_COMPLEXITY", "too-complex"),
            _ => return error,
        };
        error.message = format!("{} The limit is {limit} {what} ({setting}): ask for less, or in several requests.", error.message);
        coded(error, code)
    }
}

fn coded(mut error: ServerError, code: &str) -> ServerError {
    let mut extensions = async_graphql::ErrorExtensionValues::default();
    extensions.set("code", code);
    error.extensions = Some(extensions);
    error
}

/// Aliased fields the document's operations select, each fragment counted
/// as often as it is spread (memoised, so nested spreads cannot blow up the
/// count's own cost; a spread cycle, which validation refuses, counts 0).
fn count_aliases(document: &ExecutableDocument) -> usize {
    let mut fragments = HashMap::new();
    document
        .operations
        .iter()
        .map(|(_, op)| in_selection_set(document, &op.node.selection_set.node, &mut fragments))
        .fold(0, usize::saturating_add)
}

fn in_selection_set<'d>(document: &'d ExecutableDocument, set: &'d SelectionSet, fragments: &mut HashMap<&'d Name, usize>) -> usize {
    set.items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(field) => usize::from(field.node.alias.is_some()).saturating_add(in_selection_set(
                document,
                &field.node.selection_set.node,
                fragments,
            )),
            Selection::InlineFragment(fragment) => in_selection_set(document, &fragment.node.selection_set.node, fragments),
            Selection::FragmentSpread(spread) => {
                let name = &spread.node.fragment_name.node;
                if let Some(known) = fragments.get(name) {
                    return *known;
                }
                fragments.insert(name, 0); // a cycle back to this fragment counts 0
                let count = document.fragments.get(name).map_or(0, |f| in_selection_set(document, &f.node.selection_set.node, fragments));
                fragments.insert(name, count);
                count
            }
        })
        .fold(0, usize::saturating_add)
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
        assert_eq!(aliases("{ a: account { ...f } b: account { ...f } } fragment f on account { c: id d: id }"), 6, "per spread");
        let bomb: String = (0..70).map(|i| format!("fragment f{i} on account {{ a: id ...f{} ...f{} }} ", i + 1, i + 1)).collect();
        assert_eq!(aliases(&format!("{{ account {{ ...f0 }} }} {bomb} fragment f70 on account {{ id }}")), usize::MAX, "saturates, fast");
    }
}
