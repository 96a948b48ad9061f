#!/usr/bin/env python3
"""Talks to a real MLflow tracking server for the exporter tests.

usage: mlflow_check.py URI create-experiment NAME      -> prints the experiment id
       mlflow_check.py URI traces EXPERIMENT_ID        -> prints {"traces": N, "span_names": [...], "trace_ids": [...]}
"""
import json
import sys

from mlflow import MlflowClient


def main():
    uri, command, arg = sys.argv[1:4]
    client = MlflowClient(tracking_uri=uri)
    if command == "create-experiment":
        print(client.create_experiment(arg))
        return
    traces = client.search_traces(locations=[arg], max_results=500)
    names, otel_ids = [], []
    for t in traces:
        for s in t.data.spans:
            names.append(s.name)
        otel_ids.append(t.info.trace_id)
    json.dump({"traces": len(traces), "span_names": sorted(names), "trace_ids": otel_ids}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
