//! Size caps on what runtimes report (execution input, output and error, session messages,
//! spans and their attributes), checked at ingestion before anything is written. Over a cap:
//! PAYLOAD_TOO_LARGE (HTTP 413) naming the field and the limit. Live-feed events never carry
//! these fields (see [`super::events`]), so the caps bound the database, not the feed.

use serde_json::Value;

use super::traces::Attributes;
use crate::error::{Error, Result};

/// The caps, from `RUNFLOW_MAX_OUTPUT_BYTES`, `RUNFLOW_MAX_TEXT_BYTES`,
/// `RUNFLOW_MAX_SPAN_ATTRIBUTES_BYTES` and `RUNFLOW_MAX_SPANS_PER_REQUEST`.
#[derive(Clone, Copy, Debug)]
pub struct IngestLimits {
    pub max_output_bytes: usize,
    pub max_text_bytes: usize,
    pub max_span_attributes_bytes: usize,
    pub max_spans_per_request: usize,
}

impl IngestLimits {
    pub fn from_config(config: &crate::config::Config) -> Self {
        IngestLimits {
            max_output_bytes: config.max_output_bytes,
            max_text_bytes: config.max_text_bytes,
            max_span_attributes_bytes: config.max_span_attributes_bytes,
            max_spans_per_request: config.max_spans_per_request,
        }
    }

    /// A JSON value's serialised size against `limit`.
    fn json(field: &str, value: &Value, limit: usize, setting: &str) -> Result<()> {
        let size = serde_json::to_vec(value).map(|v| v.len()).unwrap_or(usize::MAX);
        Self::size(field, size, limit, setting)
    }

    fn size(field: &str, size: usize, limit: usize, setting: &str) -> Result<()> {
        if size > limit {
            return Err(Error::PayloadTooLarge(format!(
                "`{field}` is {size} bytes, over the limit of {limit} bytes ({setting})"
            )));
        }
        Ok(())
    }

    pub fn input(&self, input: &Value) -> Result<()> {
        Self::json("input", input, self.max_text_bytes, "RUNFLOW_MAX_TEXT_BYTES")
    }

    pub fn output(&self, output: Option<&Value>) -> Result<()> {
        match output {
            Some(output) => Self::json("output", output, self.max_output_bytes, "RUNFLOW_MAX_OUTPUT_BYTES"),
            None => Ok(()),
        }
    }

    pub fn text(&self, field: &str, text: Option<&str>) -> Result<()> {
        Self::size(
            field,
            text.map_or(0, str::len),
            self.max_text_bytes,
            "RUNFLOW_MAX_TEXT_BYTES",
        )
    }

    /// A batch of spans: their number, then each one's attributes (`spans[i].attributes`), as
    /// the JSON text they came as.
    pub fn spans<'a>(&self, attributes: impl ExactSizeIterator<Item = &'a Attributes>) -> Result<()> {
        if attributes.len() > self.max_spans_per_request {
            return Err(Error::PayloadTooLarge(format!(
                "`spans` has {} spans, over the limit of {} per request (RUNFLOW_MAX_SPANS_PER_REQUEST); send them in several requests",
                attributes.len(),
                self.max_spans_per_request
            )));
        }
        for (i, value) in attributes.enumerate() {
            let size = value.as_str().len();
            if size > self.max_span_attributes_bytes {
                // The field name is formatted only for a span over the cap.
                Self::size(
                    &format!("spans[{i}].attributes"),
                    size,
                    self.max_span_attributes_bytes,
                    "RUNFLOW_MAX_SPAN_ATTRIBUTES_BYTES",
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_field_and_the_limit() {
        let limits = IngestLimits {
            max_output_bytes: 10,
            max_text_bytes: 5,
            max_span_attributes_bytes: 8,
            max_spans_per_request: 1,
        };
        let error = limits
            .output(Some(&Value::String("x".repeat(20))))
            .err()
            .map(|e| e.to_string());
        assert!(error.is_some_and(|e| e.contains("`output`") && e.contains("10 bytes")));
        assert!(limits.text("error", Some("123456")).is_err());
        assert!(limits.text("error", Some("12345")).is_ok());
        let attributes = [Attributes::from_value(&serde_json::json!({"k": "long value"})).expect("attributes")];
        let error = limits.spans(attributes.iter()).err().map(|e| e.to_string());
        assert!(error.is_some_and(|e| e.contains("spans[0].attributes")));
    }
}
