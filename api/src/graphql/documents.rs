//! Parsed GraphQL documents, remembered by their text.
//!
//! Clients send the same few documents over and over (with different variables). Parsing one
//! costs far more than copying the parsed tree, so the parsed form of each recently seen
//! document is kept (bounded by count and by document size) and handed to async-graphql with
//! `Request::set_parsed_query`; the rest of the pipeline (recursion and directive limits, the
//! access check in [`super::access`], validation) runs on it as on a freshly parsed one.
//! Documents that do not parse are not remembered: async-graphql parses them again and
//! reports the error the usual way.

use std::sync::LazyLock;

use async_graphql::parser::types::ExecutableDocument;

use crate::cache::Bounded;

/// How many parsed documents are kept.
const DOCUMENTS: usize = 512;
/// Larger documents are parsed every time (bounds the cache to DOCUMENTS x this many bytes of
/// text, plus their parsed trees).
const MAX_CACHED_DOCUMENT_BYTES: usize = 16 * 1024;

static PARSED: LazyLock<Bounded<String, ExecutableDocument>> = LazyLock::new(|| Bounded::new(DOCUMENTS));

/// Attaches the parsed form of the request's document, from the cache or parsed now.
pub fn attach_parsed(mut request: async_graphql::Request) -> async_graphql::Request {
    if let Some(document) = parsed(&request.query) {
        request.set_parsed_query(document);
    }
    request
}

/// The parsed form of `query`, from the cache or parsed now (and remembered unless larger
/// than the cache's bound); None when it does not parse.
pub fn parsed(query: &str) -> Option<ExecutableDocument> {
    if query.len() > MAX_CACHED_DOCUMENT_BYTES {
        return async_graphql::parser::parse_query(query).ok();
    }
    if let Some(document) = PARSED.get(query) {
        return Some(document);
    }
    let document = async_graphql::parser::parse_query(query).ok()?;
    PARSED.put(query.to_string(), document.clone());
    Some(document)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_is_parsed_once_and_reused() {
        let query = "{ __typename documents_test_marker: __typename }";
        let first = attach_parsed(async_graphql::Request::new(query));
        assert!(PARSED.get(query).is_some());
        let mut second = attach_parsed(async_graphql::Request::new(query));
        let mut first = first;
        assert_eq!(
            format!("{:?}", first.parsed_query().unwrap()),
            format!("{:?}", second.parsed_query().unwrap())
        );
    }

    #[test]
    fn broken_and_oversized_documents_are_not_remembered() {
        let broken = "{ documents_test_broken ";
        let request = attach_parsed(async_graphql::Request::new(broken));
        assert!(PARSED.get(broken).is_none());
        let mut request = request;
        assert!(request.parsed_query().is_err());
        let huge = format!("{{ __typename {} }}", "a: __typename ".repeat(2000));
        attach_parsed(async_graphql::Request::new(huge.clone()));
        assert!(PARSED.get(huge.as_str()).is_none());
    }
}
