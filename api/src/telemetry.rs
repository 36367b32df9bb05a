//! Export of the server's own traces over OTLP/HTTP (protobuf), when `RUNFLOW_OTLP_ENDPOINT` is
//! set: every `tracing` span the server records at the log filter's level (the `request` span
//! of each HTTP request and what happens inside it) becomes an OpenTelemetry span, batched and
//! sent to `{RUNFLOW_OTLP_ENDPOINT}/v1/traces` by the SDK's batch processor.
//!
//! The standard OpenTelemetry variables still apply: `OTEL_EXPORTER_OTLP_HEADERS` (or
//! `OTEL_EXPORTER_OTLP_TRACES_HEADERS`) for headers such as an API key, `OTEL_SERVICE_NAME`
//! (default here: `runflow`) and `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_BSP_*` for batching.
//!
//! The batch processor exports from its own thread; the HTTP request itself runs on the
//! server's Tokio runtime with the reqwest client the rest of the server uses (rustls), so no
//! second HTTP stack is needed.

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

/// Longest wait for the collector to answer one export.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest collector response read (an OTLP response is a few bytes).
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// The traces endpoint for a base endpoint, as the OpenTelemetry exporters derive it from
/// `OTEL_EXPORTER_OTLP_ENDPOINT`: `/v1/traces` appended (unless the URL already ends with it).
pub fn traces_url(endpoint: &str) -> String {
    let base = endpoint.trim_end_matches('/');
    if base.ends_with("/v1/traces") {
        base.to_string()
    } else {
        format!("{base}/v1/traces")
    }
}

/// The exporter pipeline for `endpoint`. Keep the provider: [`shutdown`] flushes it.
/// Must be called inside the Tokio runtime (the exports run on it).
pub fn tracer_provider(endpoint: &str) -> anyhow::Result<(SdkTracerProvider, SdkTracer)> {
    let client = ExportClient {
        client: reqwest::Client::builder().timeout(EXPORT_TIMEOUT).build()?,
        runtime: tokio::runtime::Handle::try_current()
            .map_err(|_| anyhow::anyhow!("the OTLP exporter needs the Tokio runtime"))?,
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(traces_url(endpoint))
        .with_timeout(EXPORT_TIMEOUT)
        .with_http_client(client)
        .build()
        .map_err(|e| anyhow::anyhow!("RUNFLOW_OTLP_ENDPOINT: cannot build the OTLP exporter: {e}"))?;
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("runflow");
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    let tracer = provider.tracer("runflow");
    Ok((provider, tracer))
}

/// Exports what is still buffered and stops the exporter (at most a few seconds).
pub async fn shutdown(provider: SdkTracerProvider) {
    // The SDK blocks while it flushes; the export itself needs the runtime's other threads.
    let flushed = tokio::task::spawn_blocking(move || provider.shutdown()).await;
    if let Ok(Err(error)) = flushed {
        eprintln!("runflow: exporting the last traces failed: {error}");
    }
}

/// The exporter's HTTP client: sends on the server's runtime, whatever thread asks.
#[derive(Debug)]
struct ExportClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for ExportClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let client = self.client.clone();
        self.runtime
            .spawn(async move {
                let mut response = client.execute(request).await?;
                let mut builder = Response::builder().status(response.status());
                if let Some(headers) = builder.headers_mut() {
                    *headers = response.headers().clone();
                }
                let mut body = Vec::new();
                while let Some(chunk) = response.chunk().await? {
                    if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                        return Err::<Response<Bytes>, HttpError>(
                            format!("the collector's response is over {MAX_RESPONSE_BYTES} bytes").into(),
                        );
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(builder.body(Bytes::from(body))?)
            })
            .await?
    }
}

#[cfg(test)]
mod tests {
    use super::traces_url;

    #[test]
    fn the_traces_path_is_appended_once() {
        assert_eq!(traces_url("http://collector:4318"), "http://collector:4318/v1/traces");
        assert_eq!(traces_url("http://collector:4318/"), "http://collector:4318/v1/traces");
        assert_eq!(
            traces_url("https://x.example/otlp/v1/traces"),
            "https://x.example/otlp/v1/traces"
        );
    }
}
