"""Exports two spans with the real OpenTelemetry Python SDK and its OTLP/HTTP protobuf exporter.

Usage: RUNFLOW_URL=http://127.0.0.1:PORT RUNTIME_TOKEN=... python export.py
Prints one JSON line {"traceId": "<hex>", "result": "SUCCESS"}; exits 1 if the export failed.
"""

import json
import os
import sys

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

url = os.environ["RUNFLOW_URL"] + "/v1/runtime/otlp/v1/traces"
token = os.environ["RUNTIME_TOKEN"]

collected = InMemorySpanExporter()
provider = TracerProvider(
    resource=Resource.create({"service.name": "support-bot", "deployment.environment": "staging"})
)
provider.add_span_processor(SimpleSpanProcessor(collected))
tracer = provider.get_tracer("runflow-otlp-test")
with tracer.start_as_current_span("answer question") as root:
    root.set_attribute("app.question", "protobuf?")
    with tracer.start_as_current_span("chat gpt") as child:
        child.set_attribute("gen_ai.request.model", "test-model")
        child.set_attribute("gen_ai.usage.input_tokens", 12)
        child.set_attribute("gen_ai.usage.output_tokens", 34)
provider.shutdown()

# The exporter as an application configures it (protobuf is its only encoding).
exporter = OTLPSpanExporter(endpoint=url, headers={"Authorization": f"Bearer {token}"})
result = exporter.export(collected.get_finished_spans())
exporter.shutdown()
trace_id = format(collected.get_finished_spans()[0].context.trace_id, "032x")
print(json.dumps({"traceId": trace_id, "result": result.name}))
sys.exit(0 if result == SpanExportResult.SUCCESS else 1)
