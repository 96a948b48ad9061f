#!/usr/bin/env python3
"""A stand-in for vLLM's /metrics: the real Python `prometheus_client` serving vLLM's metric families (their names,
types, label names and bucket layouts, from vllm/v1/metrics/loggers.py), with values that change at every scrape.

Each GET /metrics first advances a simulated engine by one step (seeded, so runs repeat), then serves the
registry exactly as prometheus_client does: OpenMetrics or text 0.0.4 by the Accept header, gzip when accepted.
Every served state is appended to --log as one JSON line (the counters and the TTFT histogram's cumulative
buckets), so a test can compare what reached the tables with what was served.

Other paths: /auth/metrics (a GPU-exporter-like gauge behind HTTP basic auth, --basic-auth USER:PASS),
/garbage (a text/plain body that is no exposition), /ready (200, changes nothing).

usage: prom_vllm_exporter.py --port N --log FILE [--basic-auth USER:PASS] [--seed N] [--max-seconds N]
"""
import argparse
import base64
import gzip
import json
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder, gzip_accepted

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
ENGINES = ["0", "1"]
LABELS = ["model_name", "engine"]

TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
                20.0, 40.0, 80.0, 160.0, 640.0, 2560.0]
TPOT_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
                40.0, 80.0]
LATENCY_BUCKETS = [0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0,
                   240.0, 480.0, 960.0, 1920.0, 7680.0]
ITERATION_BUCKETS = [1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384]


def build_1_2_5_buckets(max_value):
    buckets, exponent = [], 0
    while True:
        for mantissa in (1, 2, 5):
            value = mantissa * 10 ** exponent
            if value > max_value:
                return buckets
            buckets.append(value)
        exponent += 1


class Engine:
    """vLLM's PrometheusStatLogger families on one registry, and a deterministic simulated load."""

    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.registry = CollectorRegistry()
        r = self.registry
        self.running = Gauge("vllm:num_requests_running", "Number of requests in model execution batches.",
                             LABELS, registry=r, multiprocess_mode="mostrecent")
        self.waiting = Gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.",
                             LABELS, registry=r, multiprocess_mode="mostrecent")
        self.kv_cache = Gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.",
                              LABELS, registry=r)
        self.prompt_tokens = Counter("vllm:prompt_tokens", "Number of prefill tokens processed.", LABELS, registry=r)
        self.generation_tokens = Counter("vllm:generation_tokens", "Number of generation tokens processed.",
                                         LABELS, registry=r)
        self.preemptions = Counter("vllm:num_preemptions", "Cumulative number of preemption from the engine.",
                                   LABELS, registry=r)
        self.success = Counter("vllm:request_success", "Count of successfully processed requests.",
                               LABELS + ["finished_reason"], registry=r)
        self.prompt_hist = Histogram("vllm:request_prompt_tokens", "Number of prefill tokens processed.", LABELS,
                                     buckets=build_1_2_5_buckets(8192), registry=r)
        self.generation_hist = Histogram("vllm:request_generation_tokens", "Number of generation tokens processed.",
                                         LABELS, buckets=build_1_2_5_buckets(8192), registry=r)
        self.iteration = Histogram("vllm:iteration_tokens_total", "Histogram of number of tokens per engine_step.",
                                   LABELS, buckets=ITERATION_BUCKETS, registry=r)
        self.ttft = Histogram("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.",
                              LABELS, buckets=TTFT_BUCKETS, registry=r)
        self.tpot = Histogram("vllm:time_per_output_token_seconds",
                              "Histogram of time per output token in seconds.", LABELS, buckets=TPOT_BUCKETS,
                              registry=r)
        self.e2e = Histogram("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.",
                             LABELS, buckets=LATENCY_BUCKETS, registry=r)
        self.queue = Histogram("vllm:request_queue_time_seconds",
                               "Histogram of time spent in WAITING phase for request.", LABELS,
                               buckets=LATENCY_BUCKETS, registry=r)
        info = Gauge("vllm:cache_config_info", "Information of the LLMEngine CacheConfig",
                     ["block_size", "cache_dtype", "engine", "gpu_memory_utilization", "num_gpu_blocks"],
                     registry=r, multiprocess_mode="mostrecent")
        for engine in ENGINES:
            info.labels("16", "auto", engine, "0.9", "27264").set(1)
        # What was served, mirrored: cumulative TTFT bucket counts (le inclusive, as prometheus_client counts).
        self.served = {e: {"prompt_tokens": 0.0, "ttft": [0] * (len(TTFT_BUCKETS) + 1), "ttft_sum": 0.0}
                       for e in ENGINES}
        self.sequence = 0

    def step(self):
        """One scrape interval of simulated traffic on each engine: at least one request each."""
        self.sequence += 1
        for engine in ENGINES:
            labels = (MODEL, engine)
            requests = self.rng.randint(1, 6)
            self.running.labels(*labels).set(self.rng.randint(0, 32))
            self.waiting.labels(*labels).set(self.rng.randint(0, 8))
            self.kv_cache.labels(*labels).set(round(self.rng.random(), 4))
            for _ in range(requests):
                prompt = self.rng.randint(16, 4000)
                generated = self.rng.randint(1, 1000)
                ttft = round(self.rng.lognormvariate(-2.0, 1.2), 6)
                self.prompt_tokens.labels(*labels).inc(prompt)
                self.generation_tokens.labels(*labels).inc(generated)
                self.success.labels(*labels, self.rng.choice(["stop", "length", "abort"])).inc()
                self.prompt_hist.labels(*labels).observe(prompt)
                self.generation_hist.labels(*labels).observe(generated)
                self.iteration.labels(*labels).observe(prompt + generated)
                self.ttft.labels(*labels).observe(ttft)
                self.tpot.labels(*labels).observe(round(self.rng.uniform(0.005, 0.2), 6))
                self.e2e.labels(*labels).observe(round(ttft + generated * 0.02, 6))
                self.queue.labels(*labels).observe(round(self.rng.uniform(0, 2), 6))
                served = self.served[engine]
                served["prompt_tokens"] += prompt
                served["ttft_sum"] += ttft
                for i, bound in enumerate(TTFT_BUCKETS + [float("inf")]):
                    if ttft <= bound:
                        served["ttft"][i] += 1
            if self.rng.random() < 0.2:
                self.preemptions.labels(*labels).inc()

    def snapshot(self, fmt):
        return {"sequence": self.sequence, "format": fmt, "engines": json.loads(json.dumps(self.served))}


def gpu_registry():
    registry = CollectorRegistry()
    util = Gauge("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).", ["gpu", "UUID", "modelName"], registry=registry)
    util.labels("0", "GPU-5fd0", "NVIDIA H100 80GB HBM3").set(87)
    return registry


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--basic-auth", default="scraper:s3cret-pass")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-seconds", type=float, default=300.0)
    args = parser.parse_args()

    engine = Engine(args.seed)
    gpu = gpu_registry()
    lock = threading.Lock()
    expected_auth = "Basic " + base64.b64encode(args.basic_auth.encode()).decode()
    log = open(args.log, "a", buffering=1)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_):
            pass

        def serve_registry(self, registry, on_encode=None):
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            with lock:
                if on_encode:
                    on_encode(content_type)
                body = encoder(registry)
            headers = [("Content-Type", content_type)]
            if gzip_accepted(self.headers.get("Accept-Encoding", "")):
                body = gzip.compress(body)
                headers.append(("Content-Encoding", "gzip"))
            self.send_response(200)
            for name, value in headers + [("Content-Length", str(len(body)))]:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            path = self.path.split("?")[0]
            if path == "/metrics":
                def advance(content_type):
                    engine.step()
                    fmt = "openmetrics" if "openmetrics" in content_type else "text"
                    log.write(json.dumps(engine.snapshot(fmt)) + "\n")
                self.serve_registry(engine.registry, advance)
            elif path == "/auth/metrics":
                if self.headers.get("Authorization") != expected_auth:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="metrics"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.serve_registry(gpu)
            elif path == "/garbage":
                body = b"<html>this is { not an exposition\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            elif path == "/ready":
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    # Bounded: the exporter stops by itself even if the test that started it died.
    threading.Timer(args.max_seconds, server.shutdown).start()
    print(f"listening on 127.0.0.1:{args.port}", flush=True)
    server.serve_forever()
    sys.exit(0)


if __name__ == "__main__":
    main()
