//! OpenTelemetry: OTLP/HTTP traces (`POST /v1/runtime/otlp/v1/traces`) become Runflow
//! traces and spans in the token's environment.
//!
//! - Bodies are protobuf (`Content-Type: application/x-protobuf`, the default of the standard
//!   exporters, decoded with the official `opentelemetry-proto` types) or JSON
//!   (`application/json`); any other type is refused with 415. The response has the request's
//!   type.
//! - Spans are grouped by OTLP trace id; each group is one Runflow trace (ids are derived from
//!   the tenant and the OTLP ids, so batches of one trace join it and retries do not duplicate).
//! - `deployment.environment` (or `deployment.environment.name`) on the resource must agree
//!   with the token, or the request is refused with 403.
//! - `runflow.execution_id` (resource or span attribute) links the spans to an execution.
//! - The kind comes from `runflow.span.kind`, else LLM for `gen_ai.*` spans, else CUSTOM;
//!   token counts from `gen_ai.usage.input_tokens` / `gen_ai.usage.output_tokens`.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use prost::Message;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{ApiResult, Runtime, body};
use crate::app::App;
use crate::domain::traces::{self, Attributes, SPAN_KINDS, SpanInput, TraceInput};
use crate::error::Error;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExportRequest {
    #[serde(default)]
    resource_spans: Vec<ResourceSpans>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceSpans {
    #[serde(default)]
    resource: Resource,
    #[serde(default)]
    scope_spans: Vec<ScopeSpans>,
}

#[derive(Deserialize, Default)]
struct Resource {
    #[serde(default)]
    attributes: Vec<KeyValue>,
}

#[derive(Deserialize)]
struct ScopeSpans {
    #[serde(default)]
    spans: Vec<OtlpSpan>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OtlpSpan {
    trace_id: String,
    span_id: String,
    #[serde(default)]
    parent_span_id: String,
    name: String,
    #[serde(default)]
    kind: i64,
    start_time_unix_nano: Value,
    end_time_unix_nano: Option<Value>,
    #[serde(default)]
    attributes: Vec<KeyValue>,
    #[serde(default)]
    status: Option<Status>,
}

#[derive(Deserialize)]
struct Status {
    #[serde(default)]
    code: i64,
}

#[derive(Deserialize)]
struct KeyValue {
    key: String,
    #[serde(default)]
    value: Value,
}

/// An OTLP AnyValue as plain JSON.
fn plain(value: &Value) -> Value {
    let Some(object) = value.as_object() else {
        return Value::Null;
    };
    if let Some(v) = object.get("stringValue") {
        return v.clone();
    }
    if let Some(v) = object.get("boolValue") {
        return v.clone();
    }
    if let Some(v) = object.get("intValue") {
        return v
            .as_str()
            .and_then(|s| s.parse::<i64>().ok())
            .map(Value::from)
            .unwrap_or_else(|| v.clone());
    }
    if let Some(v) = object.get("doubleValue") {
        return v.clone();
    }
    if let Some(values) = object
        .get("arrayValue")
        .and_then(|a| a.get("values"))
        .and_then(Value::as_array)
    {
        return Value::Array(values.iter().map(plain).collect());
    }
    Value::Null
}

fn attributes(list: &[KeyValue]) -> Map<String, Value> {
    list.iter().map(|kv| (kv.key.clone(), plain(&kv.value))).collect()
}

fn hex_id(value: &str, bytes: usize, what: &str) -> Result<String, Error> {
    let valid = value.len() == bytes * 2 && value.chars().all(|c| c.is_ascii_hexdigit());
    if valid {
        Ok(value.to_ascii_lowercase())
    } else {
        Err(Error::bad_input(format!(
            "{what} {value:?} must be {} hex characters",
            bytes * 2
        )))
    }
}

/// A stable UUID for an OTLP id within a tenant.
fn derived_id(tenant: &str, parts: &[&str]) -> Uuid {
    let mut hasher = Sha256::new();
    hasher.update(tenant.as_bytes());
    for part in parts {
        hasher.update(b":");
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Uuid::from_bytes(bytes)
}

fn nanos(value: &Value, what: &str) -> Result<DateTime<Utc>, Error> {
    let n: Option<i64> = match value {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    };
    n.filter(|n| *n > 0).map(DateTime::from_timestamp_nanos).ok_or_else(|| {
        Error::bad_input(format!(
            "{what} must be a positive integer of nanoseconds since the epoch"
        ))
    })
}

/// The wire formats of OTLP/HTTP.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

/// An OTLP AnyValue in its JSON encoding (what [`plain`] reads).
fn any_value_json(value: Option<&AnyValue>) -> Value {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(v)) => json!({ "stringValue": v }),
        Some(any_value::Value::BoolValue(v)) => json!({ "boolValue": v }),
        Some(any_value::Value::IntValue(v)) => json!({ "intValue": v.to_string() }),
        Some(any_value::Value::DoubleValue(v)) => json!({ "doubleValue": v }),
        Some(any_value::Value::ArrayValue(array)) => json!({
            "arrayValue": { "values": array.values.iter().map(|v| any_value_json(Some(v))).collect::<Vec<_>>() }
        }),
        _ => Value::Null,
    }
}

fn key_values(list: &[opentelemetry_proto::tonic::common::v1::KeyValue]) -> Vec<KeyValue> {
    list.iter()
        .map(|kv| KeyValue {
            key: kv.key.clone(),
            value: any_value_json(kv.value.as_ref()),
        })
        .collect()
}

/// A protobuf export request in the shape of the JSON one (ids as hex, times as integers).
fn from_protobuf(bytes: &[u8]) -> Result<ExportRequest, Error> {
    let request = ExportTraceServiceRequest::decode(bytes)
        .map_err(|e| Error::bad_input(format!("the body is not an OTLP ExportTraceServiceRequest: {e}")))?;
    Ok(ExportRequest {
        resource_spans: request
            .resource_spans
            .iter()
            .map(|resource_spans| ResourceSpans {
                resource: Resource {
                    attributes: resource_spans
                        .resource
                        .as_ref()
                        .map(|r| key_values(&r.attributes))
                        .unwrap_or_default(),
                },
                scope_spans: resource_spans
                    .scope_spans
                    .iter()
                    .map(|scope| ScopeSpans {
                        spans: scope
                            .spans
                            .iter()
                            .map(|span| OtlpSpan {
                                trace_id: hex::encode(&span.trace_id),
                                span_id: hex::encode(&span.span_id),
                                parent_span_id: hex::encode(&span.parent_span_id),
                                name: span.name.clone(),
                                kind: i64::from(span.kind),
                                start_time_unix_nano: json!(span.start_time_unix_nano),
                                end_time_unix_nano: (span.end_time_unix_nano > 0)
                                    .then(|| json!(span.end_time_unix_nano)),
                                attributes: key_values(&span.attributes),
                                status: span.status.as_ref().map(|s| Status {
                                    code: i64::from(s.code),
                                }),
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect(),
    })
}

pub async fn traces(
    State(app): State<App>,
    Runtime(caller): Runtime,
    headers: HeaderMap,
    bytes: Bytes,
) -> ApiResult<Response> {
    let scope = &caller.scope;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let encoding = if content_type.starts_with("application/x-protobuf") {
        Encoding::Protobuf
    } else if content_type.starts_with("application/json") {
        Encoding::Json
    } else {
        return Ok(crate::http::errors::http_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "send OTLP traces as protobuf (`Content-Type: application/x-protobuf`) or JSON \
             (`Content-Type: application/json`)",
        ));
    };
    let request: ExportRequest = match encoding {
        Encoding::Protobuf => from_protobuf(&bytes)?,
        Encoding::Json => body(&bytes)?,
    };
    let tenant = scope.tenant.id().to_string();
    let mut groups: BTreeMap<String, TraceInput> = BTreeMap::new();
    let mut accepted = 0usize;
    for resource_spans in &request.resource_spans {
        let resource = attributes(&resource_spans.resource.attributes);
        let declared = resource
            .get("deployment.environment")
            .or_else(|| resource.get("deployment.environment.name"))
            .and_then(Value::as_str);
        if let Some(declared) = declared
            && declared != scope.environment.as_str()
        {
            return Err(Error::Forbidden(format!(
                "deployment.environment is {declared:?} but this runtime token reports to {}",
                scope.environment
            ))
            .into());
        }
        for span in resource_spans.scope_spans.iter().flat_map(|s| &s.spans) {
            let trace_hex = hex_id(&span.trace_id, 16, "traceId")?;
            let span_hex = hex_id(&span.span_id, 8, "spanId")?;
            let mut attrs = attributes(&span.attributes);
            let execution = attrs
                .get("runflow.execution_id")
                .or_else(|| resource.get("runflow.execution_id"))
                .and_then(Value::as_str)
                .map(|id| {
                    Uuid::parse_str(id)
                        .map_err(|_| Error::bad_input(format!("runflow.execution_id {id:?} is not a UUID")))
                })
                .transpose()?;
            let execution = caller.report_target(execution)?;
            let kind = match attrs.get("runflow.span.kind").and_then(Value::as_str) {
                Some(kind) if SPAN_KINDS.contains(&kind) => kind.to_string(),
                Some(kind) => return Err(Error::bad_input(format!("runflow.span.kind {kind:?} is unknown")).into()),
                None if attrs.keys().any(|k| k.starts_with("gen_ai.")) => "LLM".into(),
                None => "CUSTOM".into(),
            };
            let tokens = |key: &str| attrs.get(key).and_then(Value::as_i64);
            let (input_tokens, output_tokens) = (
                tokens("gen_ai.usage.input_tokens"),
                tokens("gen_ai.usage.output_tokens"),
            );
            attrs.insert("otel.trace_id".into(), json!(trace_hex));
            attrs.insert("otel.span_id".into(), json!(span_hex));
            attrs.insert("otel.kind".into(), json!(span.kind));
            for (key, value) in &resource {
                attrs.entry(format!("resource.{key}")).or_insert_with(|| value.clone());
            }
            let parent = if span.parent_span_id.is_empty() {
                None
            } else {
                Some(derived_id(
                    &tenant,
                    &[&trace_hex, &hex_id(&span.parent_span_id, 8, "parentSpanId")?],
                ))
            };
            let started_at = nanos(&span.start_time_unix_nano, "startTimeUnixNano")?;
            let ended_at = span
                .end_time_unix_nano
                .as_ref()
                .map(|v| nanos(v, "endTimeUnixNano"))
                .transpose()?;
            let group = groups.entry(trace_hex.clone()).or_insert_with(|| TraceInput {
                id: Some(derived_id(&tenant, &[&trace_hex])),
                execution_id: execution,
                name: span.name.clone(),
                status: "OK".into(),
                started_at,
                ended_at: None,
                spans: vec![],
            });
            group.started_at = group.started_at.min(started_at);
            group.spans.push(SpanInput {
                id: Some(derived_id(&tenant, &[&trace_hex, &span_hex])),
                parent_span_id: parent,
                name: span.name.clone(),
                kind,
                status: match span.status.as_ref().map_or(0, |s| s.code) {
                    1 => "OK".into(),
                    2 => "ERROR".into(),
                    _ => "UNSET".into(),
                },
                started_at,
                ended_at,
                attributes: Attributes::from_value(&Value::Object(attrs))?,
                input_tokens,
                output_tokens,
            });
            accepted += 1;
        }
    }
    crate::domain::ingest::IngestLimits::from_config(&app.config).spans(
        groups
            .values()
            .flat_map(|g| &g.spans)
            .map(|s| &s.attributes)
            .collect::<Vec<_>>()
            .into_iter(),
    )?;
    if accepted > 0 {
        traces::record_many(&app.services.db, scope, groups.into_values().collect()).await?;
    }
    // The OTLP/HTTP success response (an empty ExportTraceServiceResponse).
    Ok(match encoding {
        Encoding::Json => axum::Json(json!({ "partialSuccess": {} })).into_response(),
        Encoding::Protobuf => (
            [(header::CONTENT_TYPE, HeaderValue::from_static("application/x-protobuf"))],
            Vec::<u8>::new(),
        )
            .into_response(),
    })
}
