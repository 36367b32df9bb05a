//! Input validation shared by the domain modules. Messages name the field and the rule.

use serde_json::Value;

use crate::error::{Error, Result};

/// Slugs (agents, prompts, connectors, triggers, credentials...): lowercase, URL-safe.
pub fn slug(field: &str, value: &str) -> Result<()> {
    let valid = !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && value.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if valid {
        Ok(())
    } else {
        Err(Error::bad_input(format!(
            "{field} {value:?} is not a valid slug: use 1-64 characters of a-z, 0-9, '-' and '_', \
             starting with a letter or digit"
        )))
    }
}

/// A short free-text field (names, titles, kinds).
pub fn short_text(field: &str, value: &str, max: usize) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::bad_input(format!("{field} must not be empty")));
    }
    if value.chars().count() > max {
        return Err(Error::bad_input(format!("{field} must be at most {max} characters")));
    }
    Ok(())
}

/// Longer text with a size cap in bytes.
pub fn text_size(field: &str, value: &str, max_bytes: usize) -> Result<()> {
    if value.len() > max_bytes {
        return Err(Error::bad_input(format!(
            "{field} is {} bytes; the limit is {max_bytes} bytes",
            value.len()
        )));
    }
    Ok(())
}

/// Configuration documents are JSON objects of bounded size.
pub fn json_object(field: &str, value: &Value) -> Result<()> {
    if !value.is_object() {
        return Err(Error::bad_input(format!("{field} must be a JSON object")));
    }
    json_size(field, value, 256 * 1024)
}

pub fn json_size(field: &str, value: &Value, max_bytes: usize) -> Result<()> {
    let size = serde_json::to_vec(value).map(|v| v.len()).unwrap_or(usize::MAX);
    if size > max_bytes {
        return Err(Error::bad_input(format!(
            "{field} is {size} bytes of JSON; the limit is {max_bytes}"
        )));
    }
    Ok(())
}

/// Lists of names that must each be a slug and appear once.
pub fn slug_list(field: &str, values: &[String]) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for value in values {
        slug(field, value)?;
        if !seen.insert(value) {
            return Err(Error::bad_input(format!("{field} lists {value:?} twice")));
        }
    }
    Ok(())
}
