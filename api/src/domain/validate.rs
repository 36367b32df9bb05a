//! Input validation shared by the domain modules. Messages name the field and the rule.
//!
//! Every value is checked against what storage can hold before anything is written, so a
//! value the database would refuse is BAD_USER_INPUT naming its field (on both back ends),
//! never an internal error: text longer than its column ([`STRING_COLUMN_CHARS`] for names,
//! kinds, keys, titles and authors) and NUL characters, which PostgreSQL cannot store in
//! `text` or `jsonb`.

use serde_json::Value;

use crate::error::{Error, Result};

/// Characters a short string column holds (`VARCHAR(255)` in migration/src).
pub const STRING_COLUMN_CHARS: usize = 255;

/// Text that is stored must not contain NUL (PostgreSQL refuses it in `text` and `jsonb`).
pub fn no_nul(field: &str, value: &str) -> Result<()> {
    if value.contains('\0') {
        return Err(Error::bad_input(format!(
            "{field} contains a NUL character (\\u0000), which cannot be stored; remove it"
        )));
    }
    Ok(())
}

/// A value stored in a short string column: at most [`STRING_COLUMN_CHARS`] characters, no NUL.
pub fn string_column(field: &str, value: &str) -> Result<()> {
    no_nul(field, value)?;
    let chars = value.chars().count();
    if chars > STRING_COLUMN_CHARS {
        return Err(Error::bad_input(format!(
            "{field} is {chars} characters; the limit is {STRING_COLUMN_CHARS}"
        )));
    }
    Ok(())
}

/// The caller's identity as recorded in audit fields (`author`, `updatedBy`, `createdBy`...):
/// the token's `sub` must fit the column.
pub fn author(subject: &str) -> Result<()> {
    string_column("the token's `sub` (recorded as the author of this change)", subject)
}

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
    no_nul(field, value)
}

/// Longer text with a size cap in bytes.
pub fn text_size(field: &str, value: &str, max_bytes: usize) -> Result<()> {
    if value.len() > max_bytes {
        return Err(Error::bad_input(format!(
            "{field} is {} bytes; the limit is {max_bytes} bytes",
            value.len()
        )));
    }
    no_nul(field, value)
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
    size_of_json(field, size, max_bytes)?;
    json_no_nul(field, value)
}

/// JSON text of `size` bytes against `max_bytes`.
pub fn size_of_json(field: &str, size: usize, max_bytes: usize) -> Result<()> {
    if size > max_bytes {
        return Err(Error::bad_input(format!(
            "{field} is {size} bytes of JSON; the limit is {max_bytes}"
        )));
    }
    Ok(())
}

/// No string or key of a JSON text (valid JSON) contains NUL, written `\u0000` (PostgreSQL
/// `jsonb` refuses it); an escaped backslash followed by `u0000` is not one.
pub fn json_text_no_nul(field: &str, text: &str) -> Result<()> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            if bytes.get(i + 1) == Some(&b'u') && bytes.get(i + 2..i + 6) == Some(b"0000".as_slice()) {
                return no_nul(field, "\0");
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    Ok(())
}

/// No string or key of a JSON value contains NUL (PostgreSQL `jsonb` refuses `\u0000`).
pub fn json_no_nul(field: &str, value: &Value) -> Result<()> {
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        match value {
            Value::String(text) => no_nul(field, text)?,
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => {
                for (key, item) in map {
                    no_nul(field, key)?;
                    stack.push(item);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Lists of names that must each be a slug and appear once.
/// Entries a list of names may have (credential references, a manifest's prompts and
/// connectors, a prompt's variables): what bounds those plain lists in the schema.
pub const MAX_LIST_ITEMS: usize = 100;

pub fn slug_list(field: &str, values: &[String]) -> Result<()> {
    list_length(field, values.len())?;
    let mut seen = std::collections::HashSet::new();
    for value in values {
        slug(field, value)?;
        if !seen.insert(value) {
            return Err(Error::bad_input(format!("{field} lists {value:?} twice")));
        }
    }
    Ok(())
}

/// At most [`MAX_LIST_ITEMS`] entries.
pub fn list_length(field: &str, length: usize) -> Result<()> {
    if length > MAX_LIST_ITEMS {
        return Err(Error::bad_input(format!(
            "{field} has {length} entries, more than the limit of {MAX_LIST_ITEMS}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn nul_and_overlong_values_are_bad_input_naming_the_field() {
        let error = string_column("title", &"é".repeat(256)).unwrap_err();
        assert!(
            matches!(&error, Error::BadInput(m) if m.starts_with("title is 256 characters")),
            "{error}"
        );
        assert!(string_column("title", &"é".repeat(255)).is_ok());
        let error = text_size("template", "a\0b", 100).unwrap_err();
        assert!(
            matches!(&error, Error::BadInput(m) if m.starts_with("template contains a NUL")),
            "{error}"
        );
        let error = json_size("config", &json!({"a": [1, {"k\u{0}": 2}]}), 1000).unwrap_err();
        assert!(
            matches!(&error, Error::BadInput(m) if m.starts_with("config contains a NUL")),
            "{error}"
        );
        assert!(json_size("config", &json!({"a": [1, {"k": "v"}]}), 1000).is_ok());
        let error = author(&"x".repeat(300)).unwrap_err();
        assert!(matches!(&error, Error::BadInput(m) if m.contains("`sub`")), "{error}");
    }
}
