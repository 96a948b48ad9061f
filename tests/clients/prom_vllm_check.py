#!/usr/bin/env python3
"""Answers a platform engineer's questions about a scraped vLLM from the Delta tables with DuckDB (the SQL of
receivers/prometheus/README.md), and what the exporter actually served (its --log of prom_vllm_exporter.py),
side by side, as JSON:
  - prompt-token throughput per engine, from the `vllm:prompt_tokens_total` counter;
  - TTFT p50 / p99 per engine over the scraped window, from `vllm:time_to_first_token_seconds` buckets;
  - every histogram point checked against the served cumulative buckets (count, sum, each bucket).

usage: prom_vllm_check.py LOCATION EXPORTER_LOG JOB
"""
import json
import os
import sys

import duckdb
from deltalake import DeltaTable

TOKEN_RATE_SQL = """
SELECT sum.attributes['engine'] AS engine,
       max(sum.value) - min(sum.value) AS tokens,
       (max(sum.time_unix_nano) - min(sum.time_unix_nano)) / 1e9 AS seconds,
       (max(sum.value) - min(sum.value)) / ((max(sum.time_unix_nano) - min(sum.time_unix_nano)) / 1e9)
         AS tokens_per_second,
       min(sum.value) AS first_value, max(sum.value) AS last_value, count(*) AS points
FROM otel_metrics
WHERE name = 'vllm:prompt_tokens_total' AND resource.attributes['service.name'] = $job
GROUP BY engine, sum.start_time_unix_nano
ORDER BY engine
"""

# Prometheus' histogram_quantile over the increase between the first and the last scrape in the table.
TTFT_QUANTILES_SQL = """
WITH points AS (
  SELECT histogram.attributes['engine'] AS engine, histogram.time_unix_nano AS t,
         histogram.bucket_counts AS counts, histogram.explicit_bounds AS bounds
  FROM otel_metrics
  WHERE name = 'vllm:time_to_first_token_seconds' AND resource.attributes['service.name'] = $job
), windows AS (
  SELECT engine, arg_min(counts, t) AS first, arg_max(counts, t) AS last, arg_max(bounds, t) AS bounds
  FROM points GROUP BY engine
), buckets AS (
  SELECT engine, i,
         CASE WHEN i = 1 THEN 0.0 ELSE bounds[i - 1] END AS lower,
         CASE WHEN i <= len(bounds) THEN bounds[i] END AS upper,
         last[i] - first[i] AS n
  FROM windows, range(1, len(last) + 1) AS r(i)
), cumulative AS (
  SELECT *, sum(n) OVER (PARTITION BY engine ORDER BY i) AS cum, sum(n) OVER (PARTITION BY engine) AS total
  FROM buckets
)
SELECT engine, q,
       arg_min(lower + (coalesce(upper, lower) - lower) * (q * total - (cum - n)) / n, i) AS seconds
FROM cumulative, (VALUES (0.5::DOUBLE), (0.99::DOUBLE)) AS qs(q)
WHERE n > 0 AND cum >= q * total
GROUP BY engine, q
ORDER BY engine, q
"""

HISTOGRAM_POINTS_SQL = """
SELECT histogram.attributes['engine'] AS engine, histogram.count AS count, histogram.sum AS sum,
       histogram.bucket_counts AS counts, histogram.explicit_bounds AS bounds,
       histogram.start_time_unix_nano AS start, histogram.time_unix_nano AS t
FROM otel_metrics
WHERE name = 'vllm:time_to_first_token_seconds' AND resource.attributes['service.name'] = $job
ORDER BY t
"""

TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
                20.0, 40.0, 80.0, 160.0, 640.0, 2560.0]


def histogram_quantile(q, cumulative, bounds):
    """Prometheus' histogram_quantile over cumulative bucket counts (the last one +Inf)."""
    total = cumulative[-1]
    rank = q * total
    i = next(i for i, c in enumerate(cumulative) if c >= rank)
    if i == len(bounds):
        return bounds[-1]
    lower = 0.0 if i == 0 else bounds[i - 1]
    below = 0 if i == 0 else cumulative[i - 1]
    return lower + (bounds[i] - lower) * (rank - below) / (cumulative[i] - below)


def main():
    location, log_path, job = sys.argv[1], sys.argv[2], sys.argv[3]
    con = duckdb.connect()
    for name in sorted(os.listdir(location)):
        if os.path.isdir(os.path.join(location, name, "_delta_log")):
            con.register(name, DeltaTable(os.path.join(location, name)).to_pyarrow_table())
    served = [json.loads(line) for line in open(log_path) if line.strip()]

    def rows(sql):
        cursor = con.execute(sql, {"job": job})
        columns = [d[0] for d in cursor.description]
        return [dict(zip(columns, row)) for row in cursor.fetchall()]

    report = {"engines": {}, "served_scrapes": len(served)}
    for row in rows(TOKEN_RATE_SQL):
        engine = row["engine"]
        values = [s["engines"][engine]["prompt_tokens"] for s in served]
        report["engines"].setdefault(engine, {}).update({
            "token_points": row["points"],
            "tokens_sql": row["tokens"],
            "tokens_per_second_sql": row["tokens_per_second"],
            "seconds": row["seconds"],
            "first_value_served": row["first_value"] in values,
            "last_value_served": row["last_value"] in values,
            # What the exporter served between the two scrapes the table holds first and last.
            "tokens_served": (row["last_value"] - row["first_value"]) if row["last_value"] in values else None,
        })

    # Every histogram point: its cumulative buckets are exactly a state the exporter served.
    by_count = {}
    for state in served:
        for engine, data in state["engines"].items():
            by_count[(engine, data["ttft"][-1])] = data
    firsts, lasts = {}, {}
    for point in rows(HISTOGRAM_POINTS_SQL):
        engine = point["engine"]
        entry = report["engines"].setdefault(engine, {})
        entry["histogram_points"] = entry.get("histogram_points", 0) + 1
        state = by_count.get((engine, point["count"]))
        cumulative, running = [], 0
        for n in point["counts"]:
            running += n
            cumulative.append(running)
        matched = (state is not None and cumulative == state["ttft"] and list(point["bounds"]) == TTFT_BUCKETS
                   and abs(point["sum"] - state["ttft_sum"]) < 1e-6)
        entry["histogram_points_matching_served"] = entry.get("histogram_points_matching_served", 0) + int(matched)
        firsts.setdefault(engine, state)
        lasts[engine] = state

    for row in rows(TTFT_QUANTILES_SQL):
        engine = row["engine"]
        entry = report["engines"][engine]
        q = float(row["q"])
        key = "p50" if q == 0.5 else "p99"
        entry[f"ttft_{key}_sql"] = row["seconds"]
        first, last = firsts.get(engine), lasts.get(engine)
        if first is not None and last is not None:
            increase = [b - a for a, b in zip(first["ttft"], last["ttft"])]
            entry[f"ttft_{key}_served"] = histogram_quantile(q, increase, TTFT_BUCKETS)

    json.dump(report, sys.stdout, default=str)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
