"""The OpenTelemetry Python SDK set-up that the end-to-end clients share.

Spans and log records are made by the SDK's own providers and collected in memory, then handed to the SDK's
OTLP exporters by the client itself (export()), so the client knows exactly what the collector acknowledged.
"""
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult, SimpleSpanProcessor


class _CollectSpans(SpanExporter):
    def __init__(self):
        self.spans = []

    def export(self, spans):
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def record_spans(resource, scope, emit, scope_attributes=None):
    """The spans emit(tracer) makes with a provider of resource attributes `resource` and instrumentation scope
    `scope` (version 1.0, with `scope_attributes` if given), ended and collected."""
    collect = _CollectSpans()
    provider = TracerProvider(resource=Resource.create(resource))
    provider.add_span_processor(SimpleSpanProcessor(collect))
    emit(provider.get_tracer(scope, "1.0", attributes=scope_attributes))
    provider.shutdown()
    return collect.spans


def record_logs(resource, scope, emit):
    """The log records emit(logger) makes with a provider of resource attributes `resource` and scope `scope`
    (version 1.0), collected."""
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor, LogRecordExporter, LogRecordExportResult

    class CollectLogs(LogRecordExporter):
        def __init__(self):
            self.records = []

        def export(self, batch):
            self.records.extend(batch)
            return LogRecordExportResult.SUCCESS

        def shutdown(self):
            pass

        def force_flush(self, timeout_millis=30000):
            return True

    collect = CollectLogs()
    provider = LoggerProvider(resource=Resource.create(resource))
    provider.add_log_record_processor(SimpleLogRecordProcessor(collect))
    emit(provider.get_logger(scope, "1.0"))
    provider.shutdown()
    return collect.records


def _read_file(path):
    with open(path, "rb") as f:
        return f.read()


def exporters(protocol, endpoint, timeout, access=None):
    """The SDK's OTLP span, log and metric exporters for `endpoint` (HOST:PORT) over "grpc" or "http".
    access (optional): dict with certificate (a CA file: TLS trusting it), server_name, client_certificate,
    client_key, headers."""
    access = access or {}
    headers = access.get("headers") or None
    tls = access.get("certificate") is not None
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        kw = dict(endpoint=f"http://{endpoint}", insecure=True, timeout=timeout)
        if tls:
            import grpc
            key = access.get("client_key")
            cert = access.get("client_certificate")
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read_file(access["certificate"]),
                private_key=_read_file(key) if key else None,
                certificate_chain=_read_file(cert) if cert else None)
            kw = dict(endpoint=f"https://{endpoint}", insecure=False, credentials=credentials, timeout=timeout)
            if access.get("server_name"):
                kw["channel_options"] = (("grpc.ssl_target_name_override", access["server_name"]),)
        if headers:
            kw["headers"] = headers
        return OTLPSpanExporter(**kw), OTLPLogExporter(**kw), OTLPMetricExporter(**kw)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    base = f"http://{endpoint}"
    kw = dict(timeout=timeout)
    if tls:
        # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE from the environment override a session's own CA
        # file (psf/requests#3829): drop them so --certificate is the CA that is trusted.
        import os
        for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            os.environ.pop(var, None)
        host = access.get("server_name") or endpoint.rsplit(":", 1)[0]
        base = f"https://{host}:{endpoint.rsplit(':', 1)[1]}"
        kw["certificate_file"] = access["certificate"]
        if access.get("client_certificate"):
            kw["client_certificate_file"] = access["client_certificate"]
            kw["client_key_file"] = access["client_key"]
    if headers:
        kw["headers"] = headers
    return (OTLPSpanExporter(endpoint=f"{base}/v1/traces", **kw),
            OTLPLogExporter(endpoint=f"{base}/v1/logs", **kw),
            OTLPMetricExporter(endpoint=f"{base}/v1/metrics", **kw))
