#!/usr/bin/env python3
"""Holds one HTTP/1.1 keep-alive connection and one gRPC channel to an OTLP receiver open, and sends a span over
each for every line read from stdin; neither ever connects again.

usage: held_connections.py HOST GRPC_PORT HTTP_PORT
  stdin: one span name per line; stdout: one JSON line per name:
  {"http_status": 200, "http_local_port": 51234, "grpc_code": "OK", "grpc_connections": 1}

The gRPC channel goes through a one-connection TCP relay on loopback: the relay accepts once and then stops
listening, so if the daemon closes the connection, the channel's reconnect is refused and the call fails
(gRPC would otherwise reconnect silently). The HTTP connection does not reopen itself either (`auto_open = 0`).
"""
import http.client
import json
import socket
import sys
import threading

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

TRACES = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def request(name):
    span = Span(trace_id=bytes(range(1, 17)), span_id=bytes(range(1, 9)), name=name,
                start_time_unix_nano=1_700_000_000_000_000_000, end_time_unix_nano=1_700_000_000_500_000_000)
    return ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])]).SerializeToString()


class OneConnectionRelay:
    """Relays the first connection made to it to `upstream`, and refuses every later one."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self.accept_once, daemon=True).start()

    def accept_once(self):
        client, _ = self.listener.accept()
        self.listener.close()
        self.connections += 1
        server = socket.create_connection(self.upstream)
        for a, b in ((client, server), (server, client)):
            threading.Thread(target=self.pump, args=(a, b), daemon=True).start()

    @staticmethod
    def pump(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def main():
    host, grpc_port, http_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    relay = OneConnectionRelay((host, grpc_port))
    channel = grpc.insecure_channel(f"127.0.0.1:{relay.port}")
    export = channel.unary_unary(TRACES, request_serializer=None, response_deserializer=None)
    connection = http.client.HTTPConnection(host, http_port, timeout=30)
    connection.connect()
    connection.auto_open = 0
    for line in sys.stdin:
        name = line.strip()
        body = request(name)
        out = {}
        try:
            connection.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
            response = connection.getresponse()
            response.read()
            out["http_status"] = response.status
            out["http_local_port"] = connection.sock.getsockname()[1]
        except Exception as e:  # the connection was closed under us: the test reports it
            out["http_status"] = 0
            out["http_error"] = repr(e)
        try:
            export(body, timeout=10)
            out["grpc_code"] = "OK"
        except grpc.RpcError as e:
            out["grpc_code"] = e.code().name
            out["grpc_details"] = e.details() or ""
        out["grpc_connections"] = relay.connections
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
