#!/usr/bin/env python3
"""Sends spans (with events, links and an error status), a /health span beside each chat span, and logs (string
and structured bodies) that carry e-mail addresses, card numbers and API keys in prompts, attributes (of spans,
events, links, log records, the resource and the instrumentation scope) and bodies, with the real OpenTelemetry
Python SDK's OTLP/HTTP exporters. Prints one JSON object:
  {"results": {"traces": "SUCCESS", "logs": "SUCCESS"}, "secrets": [...], "span_names": [...]}

usage: sdk_sensitive.py --endpoint HOST:PORT [--timeout S]
"""
import argparse
import json
import sys
import time

from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from sdk_common import exporters, record_logs, record_spans

EMAIL = "ana.lopez@example.com"
CARD = "4111 1111 1111 1111"
OPENAI_KEY = "sk-proj-Zx9Qw8Er7Ty6Ui5Op4As3Df2"
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRETS = [EMAIL, CARD, OPENAI_KEY, AWS_KEY, "4111111111111111"]


def make_spans():
    def emit(tracer):
        with tracer.start_as_current_span("agent.run", kind=SpanKind.SERVER) as root:
            root.set_attribute("http.route", "/chat")
            for i in range(3):
                link = Link(root.get_span_context(), {"link.note": f"ticket from {EMAIL}"})
                with tracer.start_as_current_span(f"chat gpt-4o {i}", kind=SpanKind.CLIENT, links=[link]) as span:
                    span.set_attribute("gen_ai.operation.name", "chat")
                    span.set_attribute("user.email", EMAIL)
                    prompt = {"role": "user", "content": f"charge my card {CARD}, mail {EMAIL}"}
                    span.set_attribute("gen_ai.input.messages", json.dumps([prompt]))
                    span.set_attribute("gen_ai.output.messages", json.dumps([{"role": "assistant", "content": "done"}]))
                    span.set_attribute("tool.args", [f"--key={OPENAI_KEY}", "--verbose"])
                    span.add_event("gen_ai.user.message", {"content": f"my aws key is {AWS_KEY}"})
                    if i == 2:
                        span.set_status(Status(StatusCode.ERROR, f"payment failed for {EMAIL}"))
                with tracer.start_as_current_span(f"GET /health {i}", kind=SpanKind.SERVER) as health:
                    health.set_attribute("http.route", "/health")

    return record_spans({"service.name": "chat-api", "owner.contact": EMAIL}, "otlake.e2e.edit", emit,
                        scope_attributes={"scope.owner": f"team lead {EMAIL}"})


def make_logs():
    from opentelemetry._logs import SeverityNumber

    bodies = [
        f"user {EMAIL} paid with {CARD}",
        {"event": "tool_call", "args": {"api_key": OPENAI_KEY, "note": f"from {EMAIL}"}, "cards": [CARD]},
        "nothing to see here",
    ]

    def emit(logger):
        for body in bodies:
            logger.emit(timestamp=time.time_ns(), observed_timestamp=time.time_ns(),
                        severity_text="INFO", severity_number=SeverityNumber.INFO, body=body,
                        attributes={"client.key": AWS_KEY, "e2e.kind": "sensitive"})

    return record_logs({"service.name": "chat-api"}, "otlake.e2e.edit", emit)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--timeout", type=float, default=10)
    a = ap.parse_args()
    span_exp, log_exp, metric_exp = exporters("http", a.endpoint, a.timeout)
    spans = make_spans()
    out = {"results": {}, "secrets": SECRETS, "span_names": sorted(s.name for s in spans)}
    out["results"]["traces"] = span_exp.export(spans).name
    out["results"]["logs"] = log_exp.export(make_logs()).name
    span_exp.shutdown()
    log_exp.shutdown()
    metric_exp.shutdown()
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
