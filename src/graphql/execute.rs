//! Running one GraphQL request the way Hasura answers it: the JSON the
//! database built for each query root field over a table is spliced into the
//! response body as it was written (see [`Splice`]), instead of being
//! rebuilt field by field.
//!
//! The splice is skipped, and the plain response used, when it cannot be
//! exact: a document using `@skip`/`@include` (whose effect on nested fields
//! only async-graphql's own walk applies), a response key resolved twice (a
//! repeated root field; queries have no side effects, so it is run again the
//! plain way), or a refusal (which answers with the refusal only, no partial
//! data). Documents nested past [`MAX_NESTING`] brackets are refused before
//! they are parsed. The transport (`crate::http`) only hands requests here.

use std::sync::Arc;

use async_graphql::dynamic::Schema;

use super::ops::ClientAddress;
use crate::auth::Caller;
use crate::hasura::Splice;

pub enum Answer {
    /// The response body, with the database's JSON spliced in.
    Spliced(String),
    Plain(async_graphql::Response),
}

/// Runs one request. Query root fields over tables are spliced (see
/// [`Splice`]) unless the document uses `@skip`/`@include`, whose effect on
/// nested fields only async-graphql's own walk applies.
pub async fn run(schema: &Schema, request: async_graphql::Request, caller: Caller, address: ClientAddress) -> Answer {
    let operation =
        crate::metrics::label(request.operation_name.as_deref().or_else(|| named_operation(&request.query)).unwrap_or("anonymous"));
    let started = std::time::Instant::now();
    let answer = run_once(schema, request, caller, address).await;
    let outcome = match &answer {
        Answer::Plain(response) if response.is_err() => "error",
        _ => "ok",
    };
    ::metrics::counter!("wxnotify_graphql_requests_total", "operation" => operation.clone(), "outcome" => outcome).increment(1);
    ::metrics::histogram!("wxnotify_graphql_request_duration_seconds", "operation" => operation).record(started.elapsed().as_secs_f64());
    answer
}

/// Deeper bracket nesting than any real document has; the GraphQL parser
/// recurses on nesting, so deeper input is refused before it is parsed.
pub const MAX_NESTING: usize = 128;

async fn run_once(schema: &Schema, request: async_graphql::Request, caller: Caller, address: ClientAddress) -> Answer {
    if nesting(&request.query) > MAX_NESTING {
        let error = async_graphql::ServerError::new(format!("the document nests deeper than {MAX_NESTING} levels of brackets"), None);
        return Answer::Plain(async_graphql::Response::from_errors(vec![error]));
    }
    let directives = request.query.contains("@skip") || request.query.contains("@include");
    if directives {
        return Answer::Plain(without_data_if_refused(schema.execute(request.data(caller).data(address)).await));
    }
    let splice = Arc::new(Splice::default());
    let mut retry = async_graphql::Request::new(request.query.clone()).variables(request.variables.clone());
    retry.operation_name = request.operation_name.clone();
    let response = schema.execute(request.data(caller.clone()).data(address).data(splice.clone())).await;
    let entries = splice.take();
    if entries.is_empty() || refused(&response) {
        return Answer::Plain(without_data_if_refused(response));
    }
    let mut keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    if keys.len() != entries.len() {
        // One response key resolved twice (a repeated root field): queries
        // have no side effects, so answer it the plain way.
        return Answer::Plain(without_data_if_refused(schema.execute(retry.data(caller).data(address)).await));
    }
    Answer::Spliced(spliced_body(response, &entries))
}

/// The deepest bracket nesting of a document, ignoring strings and comments.
fn nesting(document: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut chars = document.chars();
    while let Some(c) = chars.next() {
        match c {
            '{' | '[' | '(' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            '}' | ']' | ')' => depth = depth.saturating_sub(1),
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '#' => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    deepest
}

/// The name of the document's first operation (`query notice { ... }`), for
/// metrics when the request does not say which operation it runs.
fn named_operation(document: &str) -> Option<&str> {
    let start = document.lines().find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))?;
    let code = &document[document.find(start)?..];
    let rest = code.trim_start();
    let after = ["query", "mutation", "subscription"].iter().find_map(|k| rest.strip_prefix(k))?;
    if after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
        return None; // `queryX { ... }` is not the keyword
    }
    let after = after.trim_start();
    let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
    let name = &after[..end];
    (!name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit())).then_some(name)
}

/// Whether any field was refused for the caller's role.
fn refused(response: &async_graphql::Response) -> bool {
    response
        .errors
        .iter()
        .any(|e| e.extensions.as_ref().and_then(|x| x.get("code")) == Some(&async_graphql::Value::String("access-denied".into())))
}

/// A refused request answers with the refusal only: no partial data.
fn without_data_if_refused(mut response: async_graphql::Response) -> async_graphql::Response {
    if refused(&response) {
        response.data = async_graphql::Value::Null;
    }
    response
}

/// `{"data":{...},"errors":[...],"extensions":{...}}` with spliced fields'
/// JSON written as the database produced it.
fn spliced_body(response: async_graphql::Response, entries: &[(String, String)]) -> String {
    let mut body = String::from("{\"data\":");
    match &response.data {
        async_graphql::Value::Object(fields) => {
            body.push('{');
            for (i, (key, value)) in fields.iter().enumerate() {
                if i > 0 {
                    body.push(',');
                }
                body.push_str(&to_json(&key.as_str()));
                body.push(':');
                match entries.iter().find(|(k, _)| k == key.as_str()) {
                    Some((_, raw)) => body.push_str(raw),
                    None => body.push_str(&to_json(value)),
                }
            }
            body.push('}');
        }
        other => body.push_str(&to_json(other)),
    }
    if !response.errors.is_empty() {
        body.push_str(",\"errors\":");
        body.push_str(&to_json(&response.errors));
    }
    if !response.extensions.is_empty() {
        body.push_str(",\"extensions\":");
        body.push_str(&to_json(&response.extensions));
    }
    body.push('}');
    body
}

pub fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

#[cfg(test)]
mod tests {
    use super::named_operation;

    #[test]
    fn nesting_ignores_strings_and_comments() {
        assert_eq!(super::nesting("{ a(where: {b: {_eq: \"{{{{\"}}) { c } }"), 4);
        assert_eq!(super::nesting("# {{{{{\n{ a }"), 1);
    }

    #[test]
    fn operations_are_named_from_the_document() {
        assert_eq!(named_operation("query notice{ account { id } }"), Some("notice"));
        assert_eq!(named_operation("# a comment\n  mutation jj { addScheduledJob }"), Some("jj"));
        assert_eq!(named_operation("{ account { id } }"), None);
        assert_eq!(named_operation("query { account { id } }"), None);
        assert_eq!(named_operation("mutation($a: Int) { x }"), None);
    }
}
