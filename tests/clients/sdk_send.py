#!/usr/bin/env python3
"""Sends spans, logs and metrics to an OTLP endpoint with the real OpenTelemetry Python SDK exporters.

Used by the end-to-end tests. It calls each exporter's export() directly, so it knows exactly what the
collector acknowledged, and prints one JSON object describing what it sent and how each export ended:
  {"spans": [{"trace_id", "span_id", "name", "attributes"}...], "logs": [{"body", "severity_text"}...],
   "metric_names": [...], "metric_points": [{"service", "name", "kind": "sum|gauge|histogram", "value",
   "count", "sum", "attributes"}...], "results": {"traces": "SUCCESS", "logs": "SUCCESS", "metrics": "SUCCESS"}}
  A metric point's "value" is a sum's or gauge's value, "count" and "sum" a histogram's (the others null).

usage: sdk_send.py --protocol grpc|http --endpoint HOST:PORT [--spans N] [--logs N] [--tag TEXT]
       [--span-attr-bytes N] [--log-body-bytes N] [--timeout S]
       [--certificate CA.pem [--server-name NAME] [--client-certificate CERT.pem --client-key KEY.pem]]
       [--header NAME=VALUE ...]
  --certificate turns on TLS (https:// or a secure gRPC channel) trusting that CA; --server-name is the name the
  server certificate is checked against (default: the endpoint's host); --header adds a request header
  (e.g. authorization=Bearer TOKEN) to every export.
"""
import argparse
import json
import sys
import time

from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import SpanKind, Status, StatusCode, Link

from sdk_common import exporters, record_logs, record_spans


def make_spans(n, tag, attr_bytes, big_spans):
    def emit(tracer):
        with tracer.start_as_current_span("agent.run", kind=SpanKind.SERVER) as root:
            root.set_attribute("gen_ai.operation.name", "invoke_agent")
            previous = None
            for i in range(max(n - 1, 0)):
                links = [Link(previous.get_span_context(), {"link.kind": "previous"})] if previous else []
                with tracer.start_as_current_span(f"chat {tag} {i}", kind=SpanKind.CLIENT, links=links) as span:
                    span.set_attribute("gen_ai.operation.name", "chat")
                    span.set_attribute("gen_ai.request.model", "llama-3-70b")
                    span.set_attribute("gen_ai.usage.input_tokens", 100 + i)
                    span.set_attribute("gen_ai.usage.output_tokens", 20 + i)
                    span.set_attribute("e2e.tag", tag)
                    if attr_bytes and i < big_spans:
                        span.set_attribute("e2e.big", "x" * attr_bytes)
                    span.add_event("gen_ai.content.prompt", {"gen_ai.prompt": f"question {i}"})
                    if i % 5 == 4:
                        span.set_status(Status(StatusCode.ERROR, "model timeout"))
                    previous = span

    resource = {"service.name": f"e2e-{tag}", "deployment.environment": "test"}
    return record_spans(resource, "otlake.e2e", emit)


def make_logs(n, tag, body_bytes):
    from opentelemetry._logs import SeverityNumber

    def emit(logger):
        for i in range(n):
            body = ("y" * body_bytes) if (body_bytes and i == 0) else f"log {tag} {i}"
            severity = SeverityNumber.ERROR if i % 4 == 3 else SeverityNumber.INFO
            logger.emit(timestamp=time.time_ns(), observed_timestamp=time.time_ns(),
                        severity_text=severity.name, severity_number=severity, body=body,
                        attributes={"e2e.tag": tag, "e2e.index": i})

    return record_logs({"service.name": f"e2e-{tag}"}, "otlake.e2e", emit)


def make_metrics(tag):
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    reader = InMemoryMetricReader()
    provider = MeterProvider(resource=Resource.create({"service.name": f"e2e-{tag}"}), metric_readers=[reader])
    meter = provider.get_meter("otlake.e2e", "1.0")
    counter = meter.create_counter("e2e.requests", unit="1")
    hist = meter.create_histogram("gen_ai.client.token.usage", unit="{token}")
    gauge = meter.create_gauge("e2e.gpu.utilization")
    for i in range(5):
        counter.add(1, {"e2e.tag": tag})
        hist.record(100 + i, {"gen_ai.token.type": "input"})
    gauge.set(0.75, {"gpu": "0"})
    data = reader.get_metrics_data()
    provider.shutdown()
    return data


def metric_points(data):
    """Every data point sent, in plain terms the tests compare with what landed."""
    points = []
    for rm in data.resource_metrics:
        service = rm.resource.attributes.get("service.name")
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                kind = type(m.data).__name__.lower()
                for p in m.data.data_points:
                    histogram = kind == "histogram"
                    points.append({"service": service, "name": m.name, "kind": kind,
                                   "value": None if histogram else p.value,
                                   "count": p.count if histogram else None,
                                   "sum": float(p.sum) if histogram else None,
                                   "attributes": {k: str(v) for k, v in p.attributes.items()}})
    return points


def hexid(n, width):
    return format(n, f"0{width}x")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--protocol", choices=["grpc", "http"], required=True)
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--spans", type=int, default=10)
    ap.add_argument("--logs", type=int, default=8)
    ap.add_argument("--no-metrics", action="store_true")
    ap.add_argument("--tag", default="e2e")
    ap.add_argument("--span-attr-bytes", type=int, default=0, help="size of attribute e2e.big on the first spans")
    ap.add_argument("--big-spans", type=int, default=1, help="how many spans carry e2e.big")
    ap.add_argument("--log-body-bytes", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=10)
    ap.add_argument("--only", choices=["traces", "logs"], help="send only this signal")
    ap.add_argument("--certificate", help="CA file: use TLS and trust this CA")
    ap.add_argument("--server-name", help="TLS: the name to check the server certificate against")
    ap.add_argument("--client-certificate", help="TLS: client certificate (mutual TLS, with --client-key)")
    ap.add_argument("--client-key", help="TLS: client private key")
    ap.add_argument("--header", action="append", default=[], help="NAME=VALUE added to every export")
    a = ap.parse_args()

    access = {"certificate": a.certificate, "server_name": a.server_name,
              "client_certificate": a.client_certificate, "client_key": a.client_key,
              "headers": dict(h.split("=", 1) for h in a.header)}
    span_exp, log_exp, metric_exp = exporters(a.protocol, a.endpoint, a.timeout, access)
    out = {"spans": [], "logs": [], "metric_names": [], "metric_points": [], "results": {}}
    if a.only == "logs":
        a.spans = 0
        a.no_metrics = True
    if a.only == "traces":
        a.logs = 0
        a.no_metrics = True
    if a.spans:
        spans = make_spans(a.spans, a.tag, a.span_attr_bytes, a.big_spans)
        out["results"]["traces"] = span_exp.export(spans).name
        for s in spans:
            attrs = {k: v for k, v in s.attributes.items() if k != "e2e.big"}
            out["spans"].append({"trace_id": hexid(s.context.trace_id, 32), "span_id": hexid(s.context.span_id, 16),
                                 "name": s.name, "attributes": attrs, "big": "e2e.big" in s.attributes})
    if a.logs:
        records = make_logs(a.logs, a.tag, a.log_body_bytes)
        out["results"]["logs"] = log_exp.export(records).name
        for r in records:
            lr = getattr(r, "log_record", r)
            body = lr.body if len(str(lr.body)) < 1000 else f"<{len(lr.body)} bytes>"
            out["logs"].append({"body": body, "severity_text": lr.severity_text})
    if not a.no_metrics:
        data = make_metrics(a.tag)
        out["results"]["metrics"] = metric_exp.export(data).name
        out["metric_names"] = sorted({m.name for rm in data.resource_metrics for sm in rm.scope_metrics
                                      for m in sm.metrics})
        out["metric_points"] = metric_points(data)
    span_exp.shutdown(); log_exp.shutdown(); metric_exp.shutdown()
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
