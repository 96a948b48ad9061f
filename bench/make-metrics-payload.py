#!/usr/bin/env python3
"""make-metrics-payload.py [--out DIR] -- the metrics payload the shared harness lacks, made the way
/work/shared/bench/make-payloads.py makes traces.pb and logs.pb (imported from there: the same resource,
scope, models and seeded generator), for bench/delta-scenario.sh's metrics scenario.

Writes into --out (default: bench/payloads/, git-ignored):

  metrics.pb         ExportMetricsServiceRequest, protobuf (OTLP/HTTP body)
  metrics.grpc       the same message with the 5-byte gRPC length prefix
  manifest.json      {"points_per_request": ..., "metrics_pb_bytes": ...}

Shape (defaults): 1 resource (the harness's 8 attributes) / 1 scope / 100 data points per request in the
GenAI semantic conventions' client metrics: gen_ai.client.token.usage (histogram, 14 bounds, by token type),
gen_ai.client.operation.duration (histogram, 14 bounds), a monotonic cumulative sum of requests and a gauge of
in-flight requests, 25 points each, every point with the conventions' 4-5 attributes (gen_ai.system,
gen_ai.operation.name, gen_ai.request.model, server.address, ...). An item is a data point (a row of
otel_metrics). Deterministic (seed 42).
"""
import argparse
import importlib.util
import json
import os
import random

from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2

SHARED = os.environ.get("SHARED_BENCH", "/work/shared/bench")
spec = importlib.util.spec_from_file_location("make_payloads", os.path.join(SHARED, "make-payloads.py"))
mp = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mp)

# The conventions' advisory bucket boundaries.
TOKEN_BOUNDS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]
DURATION_BOUNDS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]
CUMULATIVE = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE


def point_attrs(rng, extra=()):
    model = rng.choice(mp.MODELS)
    system = mp.SYSTEMS[model[:3]]
    return [mp.kv("gen_ai.system", system), mp.kv("gen_ai.operation.name", rng.choice(mp.OPS)),
            mp.kv("gen_ai.request.model", model), mp.kv("server.address", "api.%s.example" % system),
            *extra]


def histogram_point(rng, p, t0, bounds, scale, extra=()):
    counts = [rng.randrange(0, 50) for _ in range(len(bounds) + 1)]
    p.attributes.extend(point_attrs(rng, extra))
    p.start_time_unix_nano = t0 - 60_000_000_000
    p.time_unix_nano = t0
    p.count = sum(counts)
    p.sum = sum(c * b * scale for c, b in zip(counts, bounds + [bounds[-1] * 2]))
    p.bucket_counts.extend(counts)
    p.explicit_bounds.extend(bounds)
    p.min = bounds[0] * scale
    p.max = bounds[-1] * scale


def make_metrics(rng, per_metric, t0):
    req = metrics_service_pb2.ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.CopyFrom(mp.resource(rng))
    rm.schema_url = "https://opentelemetry.io/schemas/1.27.0"
    sm = rm.scope_metrics.add()
    sm.scope.CopyFrom(mp.scope())

    m = sm.metrics.add(name="gen_ai.client.token.usage", unit="{token}",
                       description="Measures number of input and output tokens used")
    m.histogram.aggregation_temporality = CUMULATIVE
    for i in range(per_metric):
        kind = "input" if i % 2 == 0 else "output"
        histogram_point(rng, m.histogram.data_points.add(), t0, TOKEN_BOUNDS, 0.5,
                        [mp.kv("gen_ai.token.type", kind)])

    m = sm.metrics.add(name="gen_ai.client.operation.duration", unit="s",
                       description="GenAI operation duration")
    m.histogram.aggregation_temporality = CUMULATIVE
    for _ in range(per_metric):
        histogram_point(rng, m.histogram.data_points.add(), t0, DURATION_BOUNDS, 0.7)

    m = sm.metrics.add(name="gen_ai.client.requests", unit="{request}", description="GenAI requests")
    m.sum.aggregation_temporality = CUMULATIVE
    m.sum.is_monotonic = True
    for _ in range(per_metric):
        p = m.sum.data_points.add(start_time_unix_nano=t0 - 60_000_000_000, time_unix_nano=t0,
                                  as_int=rng.randrange(1, 100_000))
        p.attributes.extend(point_attrs(rng))

    m = sm.metrics.add(name="gen_ai.client.requests.active", unit="{request}",
                       description="GenAI requests in flight")
    for _ in range(per_metric):
        p = m.gauge.data_points.add(time_unix_nano=t0, as_double=float(rng.randrange(0, 64)))
        p.attributes.extend(point_attrs(rng))
    return req


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "payloads"))
    ap.add_argument("--points-per-metric", type=int, default=25)
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rng = random.Random(a.seed)
    body = make_metrics(rng, a.points_per_metric, 1_735_689_600_000_000_000).SerializeToString()
    for name, data in {"metrics.pb": body, "metrics.grpc": mp.grpc_frame(body)}.items():
        with open(os.path.join(a.out, name), "wb") as f:
            f.write(data)
    manifest = {"points_per_request": 4 * a.points_per_metric, "metrics_pb_bytes": len(body), "seed": a.seed}
    with open(os.path.join(a.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(json.dumps(manifest))


if __name__ == "__main__":
    main()
