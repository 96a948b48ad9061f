"""A rotel Python processor (rotel-agent --otlp-with-trace-processor / --otlp-with-logs-processor) that runs
rotel's own redaction processor (rotel_python_processor_sdk/processors/redaction_processor.py in rotel's
repository, not shipped in its wheel: its path in $ROTEL_REDACTION_PROCESSOR) with the patterns of otlake's
GenAI sidecar redaction section (configs/examples/genai-sidecar.yaml), written for Python's `re`. Used by
bench/contestants/rotel-redaction.sh; see bench/RESULTS.md.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.environ["ROTEL_REDACTION_PROCESSOR"]))

from redaction_processor import RedactionProcessor, RedactionProcessorConfig  # noqa: E402

_PROCESSOR = RedactionProcessor(RedactionProcessorConfig(
    allow_all_keys=True,
    blocked_key_patterns=[r"(?i)(password|passwd|secret|api[_.-]?key|authorization|cookie)"],
    blocked_values=[
        r"(?i)\b[a-z0-9._%+\-]+@[a-z0-9\-]+(?:\.[a-z0-9\-]+)*\.[a-z]{2,}\b",
        r"\b\d(?:[ \-]?\d){12,18}\b",
        r"(?:\+\d{1,3}[ .\-]?)?(?:\(\d{3}\)|\b\d{3})[ .\-]\d{3}[ .\-]\d{4}\b|\+\d{8,15}\b",
        r"(?i)\bbearer\s+[a-z0-9\-._~+/]{8,}=*",
        r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_\-]{16,}|\bAKIA[0-9A-Z]{16}\b|\bgh[pousr]_[A-Za-z0-9]{36,}\b"
        r"|\bgithub_pat_[A-Za-z0-9_]{22,}|\beyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]+",
    ],
    summary="info",
))


def process_spans(resource_spans):
    _PROCESSOR.process_spans(resource_spans)


def process_logs(resource_logs):
    _PROCESSOR.process_logs(resource_logs)
