//! Parsed GraphQL documents, remembered by their text.
//!
//! Clients send the same few documents over and over (with different variables). Parsing one
//! costs far more than copying the parsed tree, so the parsed form of each recently seen
//! document is kept (bounded by count and by document size), shared: [`super::operation`]
//! checks it, hands a copy to async-graphql with `Request::set_parsed_query` and orders the
//! response by it. Documents that do not parse are not remembered: [`super::operation`]
//! parses them again to report the error.

use std::sync::{Arc, LazyLock};

use async_graphql::parser::types::ExecutableDocument;

use crate::cache::Bounded;

/// How many parsed documents are kept.
const DOCUMENTS: usize = 512;
/// Larger documents are parsed every time (bounds the cache to DOCUMENTS x this many bytes of
/// text, plus their parsed trees).
const MAX_CACHED_DOCUMENT_BYTES: usize = 16 * 1024;

static PARSED: LazyLock<Bounded<String, Arc<ExecutableDocument>>> = LazyLock::new(|| Bounded::new(DOCUMENTS));

/// The parsed form of `query`, from the cache or parsed now (and remembered unless larger
/// than the cache's bound); None when it does not parse.
pub fn parsed(query: &str) -> Option<Arc<ExecutableDocument>> {
    if query.len() > MAX_CACHED_DOCUMENT_BYTES {
        return async_graphql::parser::parse_query(query).ok().map(Arc::new);
    }
    if let Some(document) = PARSED.get(query) {
        return Some(document);
    }
    let document = Arc::new(async_graphql::parser::parse_query(query).ok()?);
    PARSED.put(query.to_string(), document.clone());
    Some(document)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_is_parsed_once_and_reused() {
        let query = "{ __typename documents_test_marker: __typename }";
        let first = parsed(query).expect("parses");
        assert!(PARSED.get(query).is_some());
        let second = parsed(query).expect("parses");
        assert!(
            Arc::ptr_eq(&first, &second),
            "the second request reuses the first's parse"
        );
    }

    #[test]
    fn broken_and_oversized_documents_are_not_remembered() {
        let broken = "{ documents_test_broken ";
        assert!(parsed(broken).is_none());
        assert!(PARSED.get(broken).is_none());
        let huge = format!("{{ __typename {} }}", "a: __typename ".repeat(2000));
        assert!(parsed(&huge).is_some());
        assert!(PARSED.get(huge.as_str()).is_none());
    }
}
