#!/usr/bin/env python3
"""A small RAG agent traced with MLflow's own tracing (`@mlflow.trace`, `span.set_attributes`), exported the
way MLflow documents OTLP export: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (and `..._PROTOCOL`) set, so MLflow
sends its spans to that collector instead of a tracking server. MLflow JSON-encodes every attribute value
it sets (`mlflow.spanType` goes out as "\\"RETRIEVER\\"", a model name as "\\"gpt-4o-mini\\"", a token
count as "1000"). The LLM span carries the deprecated GenAI keys `gen_ai.usage.prompt_tokens`,
`gen_ai.usage.completion_tokens` and `gen_ai.system`.

Prints one JSON object once MLflow's exporter has shut down (it sends what it holds then):
  {"spans": {"agent": "AGENT", "retrieve": "RETRIEVER", "llm": "LLM"},
   "model": "...", "prompt_tokens": N, "completion_tokens": N}

usage: mlflow_traced.py --endpoint HOST:PORT
"""
import argparse
import json
import os
import sys

MODEL = "gpt-4o-mini-2024-07-18"
PROMPT_TOKENS = 1000
COMPLETION_TOKENS = 200


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    a = ap.parse_args()
    # What a user sets; before MLflow is imported, as its tracer provider reads them once.
    os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = f"http://{a.endpoint}/v1/traces"
    os.environ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] = "http/protobuf"

    import mlflow
    from mlflow.entities import SpanType

    @mlflow.trace(span_type=SpanType.RETRIEVER)
    def retrieve(question):
        return [{"doc_id": "kb-17", "text": "Delta tables keep every version."}]

    @mlflow.trace(span_type=SpanType.LLM)
    def llm(question, docs):
        mlflow.get_current_active_span().set_attributes({
            "gen_ai.request.model": MODEL,
            "gen_ai.system": "openai",
            "gen_ai.usage.prompt_tokens": PROMPT_TOKENS,
            "gen_ai.usage.completion_tokens": COMPLETION_TOKENS,
        })
        return "Every version is kept."

    @mlflow.trace(span_type=SpanType.AGENT)
    def agent(question):
        return llm(question, retrieve(question))

    agent("Does Delta keep old versions?")
    # MLflow's OTLP span processor is a BatchSpanProcessor: shutting the provider down sends what it holds and
    # waits for the collector's answer.
    from mlflow.tracing.provider import reset

    reset()
    json.dump({"spans": {"agent": "AGENT", "retrieve": "RETRIEVER", "llm": "LLM"},
               "model": MODEL, "prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
