//! Persisted operations: automatic persisted queries (the Apollo APQ protocol) and the
//! trusted-documents mode.
//!
//! A request may carry `extensions.persistedQuery = {"version": 1, "sha256Hash": "<hex>"}`:
//! - without `query`: the document registered under that hash runs; an unknown hash fails with
//!   `PERSISTED_QUERY_NOT_FOUND` (the client then resends the hash *with* the query);
//! - with `query`: the hash must be the SHA-256 of the query (`PERSISTED_QUERY_HASH_MISMATCH`
//!   otherwise); the document is remembered (a bounded in-memory cache per process) and runs.
//!
//! In trusted-documents mode (`RUNFLOW_TRUSTED_DOCUMENTS=manifest.json`) only the documents of
//! the manifest run, sent by hash or in full; any other fails with `PERSISTED_QUERY_NOT_IN_LIST`
//! and nothing is added to the cache. The manifest is a JSON object
//! `{"<sha256 hex of the document>": "<document>"}` (`rf operations-manifest` prints the CLI's).

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Mutex;

use anyhow::Context;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Documents the APQ cache keeps (least recently used go first).
const CACHE_ENTRIES: usize = 2_000;
/// Bytes of documents the APQ cache keeps.
const CACHE_BYTES: usize = 16 * 1024 * 1024;

/// Why a persisted operation cannot run; each has a stable code.
#[derive(Debug, PartialEq, Eq)]
pub enum PersistedError {
    NotFound,
    HashMismatch,
    NotInList,
    BadExtension(String),
}

impl PersistedError {
    pub fn code(&self) -> &'static str {
        match self {
            PersistedError::NotFound => "PERSISTED_QUERY_NOT_FOUND",
            PersistedError::HashMismatch => "PERSISTED_QUERY_HASH_MISMATCH",
            PersistedError::NotInList => "PERSISTED_QUERY_NOT_IN_LIST",
            PersistedError::BadExtension(_) => "BAD_REQUEST",
        }
    }

    pub fn message(&self) -> String {
        match self {
            // Apollo clients look for this exact message as well as the code.
            PersistedError::NotFound => "PersistedQueryNotFound".into(),
            PersistedError::HashMismatch => {
                "extensions.persistedQuery.sha256Hash is not the SHA-256 of the query sent".into()
            }
            PersistedError::NotInList => "this server runs only registered operations (trusted documents); \
                 this one is not in its manifest"
                .into(),
            PersistedError::BadExtension(message) => message.clone(),
        }
    }
}

pub struct PersistedQueries {
    trusted: Option<HashMap<String, String>>,
    cache: Mutex<Cache>,
}

struct Cache {
    documents: lru::LruCache<String, String>,
    bytes: usize,
}

/// The lowercase hex SHA-256 of a document: its hash in APQ and in the manifest.
pub fn document_hash(document: &str) -> String {
    hex::encode(Sha256::digest(document.as_bytes()))
}

impl PersistedQueries {
    pub fn new(trusted_documents: Option<&Path>) -> anyhow::Result<Self> {
        let trusted = match trusted_documents {
            None => None,
            Some(path) => Some(load_manifest(path)?),
        };
        Ok(PersistedQueries {
            trusted,
            cache: Mutex::new(Cache {
                documents: lru::LruCache::new(NonZeroUsize::new(CACHE_ENTRIES).unwrap_or(NonZeroUsize::MIN)),
                bytes: 0,
            }),
        })
    }

    pub fn trusted_mode(&self) -> bool {
        self.trusted.is_some()
    }

    /// The document to run for a request's `query` and `extensions`.
    pub fn resolve(&self, query: Option<&str>, extensions: Option<&Value>) -> Result<String, PersistedError> {
        let hash = requested_hash(extensions)?;
        match (&self.trusted, query, hash) {
            (Some(manifest), None, Some(hash)) => manifest.get(&hash).cloned().ok_or(PersistedError::NotInList),
            (Some(manifest), Some(query), hash) => {
                let actual = document_hash(query);
                if hash.is_some_and(|hash| hash != actual) {
                    return Err(PersistedError::HashMismatch);
                }
                if manifest.contains_key(&actual) {
                    Ok(query.to_string())
                } else {
                    Err(PersistedError::NotInList)
                }
            }
            (None, None, Some(hash)) => self.lookup(&hash).ok_or(PersistedError::NotFound),
            (None, Some(query), Some(hash)) => {
                if document_hash(query) != hash {
                    return Err(PersistedError::HashMismatch);
                }
                self.remember(hash, query);
                Ok(query.to_string())
            }
            (None, Some(query), None) => Ok(query.to_string()),
            (_, None, None) => Err(PersistedError::BadExtension(
                "the request has no `query` (and no `extensions.persistedQuery`)".into(),
            )),
        }
    }

    fn lookup(&self, hash: &str) -> Option<String> {
        self.cache.lock().ok()?.documents.get(hash).cloned()
    }

    fn remember(&self, hash: String, query: &str) {
        if query.len() > CACHE_BYTES / 16 {
            return;
        }
        let Ok(mut cache) = self.cache.lock() else {
            return;
        };
        if cache.documents.contains(&hash) {
            return;
        }
        cache.bytes += query.len();
        if let Some((_, evicted)) = cache.documents.push(hash, query.to_string()) {
            cache.bytes -= evicted.len();
        }
        while cache.bytes > CACHE_BYTES {
            match cache.documents.pop_lru() {
                Some((_, evicted)) => cache.bytes -= evicted.len(),
                None => break,
            }
        }
    }
}

/// `extensions.persistedQuery.sha256Hash`, checked for shape.
fn requested_hash(extensions: Option<&Value>) -> Result<Option<String>, PersistedError> {
    let Some(persisted) = extensions.and_then(|e| e.get("persistedQuery")) else {
        return Ok(None);
    };
    if persisted.is_null() {
        return Ok(None);
    }
    if let Some(version) = persisted.get("version")
        && version != 1
    {
        return Err(PersistedError::BadExtension(
            "extensions.persistedQuery.version must be 1".into(),
        ));
    }
    match persisted.get("sha256Hash").and_then(Value::as_str) {
        Some(hash) if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(Some(hash.to_ascii_lowercase()))
        }
        _ => Err(PersistedError::BadExtension(
            "extensions.persistedQuery.sha256Hash must be the 64-character hex SHA-256 of the query".into(),
        )),
    }
}

/// Reads a manifest `{"<sha256>": "<document>"}`; every key must be its document's hash.
pub fn load_manifest(path: &Path) -> anyhow::Result<HashMap<String, String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read RUNFLOW_TRUSTED_DOCUMENTS {}", path.display()))?;
    let manifest: HashMap<String, String> = serde_json::from_str(&text).with_context(|| {
        format!(
            "RUNFLOW_TRUSTED_DOCUMENTS {} must be a JSON object {{\"<sha256 hex>\": \"<document>\"}}",
            path.display()
        )
    })?;
    let mut normalised = HashMap::with_capacity(manifest.len());
    for (hash, document) in manifest {
        let actual = document_hash(&document);
        anyhow::ensure!(
            hash.eq_ignore_ascii_case(&actual),
            "RUNFLOW_TRUSTED_DOCUMENTS {}: the key {hash} is not the SHA-256 of its document ({actual})",
            path.display()
        );
        normalised.insert(actual, document);
    }
    Ok(normalised)
}
