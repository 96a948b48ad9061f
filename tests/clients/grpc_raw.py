#!/usr/bin/env python3
"""Sends raw bytes as one OTLP gRPC export call and prints the status code name and details as JSON.

usage: grpc_raw.py HOST:PORT traces|logs|metrics FILE   (FILE holds the serialized request bytes)
"""
import json
import sys

import grpc

SERVICES = {
    "traces": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "logs": "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
    "metrics": "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
}


def main():
    target, signal, path = sys.argv[1:4]
    payload = open(path, "rb").read()
    options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
    with grpc.insecure_channel(target, options=options) as channel:
        call = channel.unary_unary(SERVICES[signal], request_serializer=None, response_deserializer=None)
        try:
            call(payload, timeout=30)
            print(json.dumps({"code": "OK", "details": ""}))
        except grpc.RpcError as e:
            print(json.dumps({"code": e.code().name, "details": e.details() or ""}))


if __name__ == "__main__":
    main()
