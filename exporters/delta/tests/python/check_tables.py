#!/usr/bin/env python3
"""Checks OTel Delta tables written by otlake with real readers (delta-rs' Python `deltalake`, DuckDB).

Usage:
  check_tables.py LOCATION [--prefix P] [--spans-table N] [--logs-table N] [--metrics-table N]
                  [--tables spans,logs,metrics] [--expect-spans N] [--expect-logs N] [--expect-metrics N]
                  [--min-spans N] [--min-logs N] [--min-metrics N] [--expect-json FILE]
                  [--storage-option KEY=VALUE ...] [--schema-version v1|v2] [--quiet]

LOCATION is the exporter's `location` (a local path or a URI). For each table it checks:
  1. the table property otel.schemaVersion is v1 and the table's Arrow schema equals the v1 DDL of
     docs/otel-tables.md field by field (names, order, types); the Parquet files name map fields
     key_value/key/value and list items element;
  2. the encoding rules on every row: hex ids (NULL, never '', for an empty parent), enum names, exactly one
     metric type struct per row, ...;
  3. row counts (--expect-* exact, --min-* at least) and, with --expect-json, that given rows round-trip:
     {"spans": [{"span_id": "...", "name": "...", "attributes": {"k": "v"}, "status.code": "..."}],
      "logs": [{"match": {"body": "..."}, "severity_number": "9"}], "metrics": [...],
      "unique": ["spans"], "token_usage": {"model-a": 123}}
     A row is found by "span_id" (spans) or by the fields under "match"; every other key is compared, dotted
     keys reach into structs, dicts compare as maps (a subset check), lists exactly.
  4. the four queries of docs/otel-tables.md run through DuckDB on the Arrow tables, with results printed;
  5. readers that share no code with the writer (delta-rs) read the same table: DuckDB's own Delta reader
     (`delta_scan`, delta-kernel-rs underneath; the `delta` extension from the duckdb-extension-delta wheel,
     loaded from its file) and Polars' `scan_delta` (polars-deltalake, delta-kernel-rs); both must find the
     same row count and the same row keys (span ids, log times/ids, metric names) as deltalake, and DuckDB's
     `delta_scan` must answer the reference queries as the Arrow tables do (on v2, DuckDB's own VARIANT
     decoding must give the values this script's decoder reads from deltalake's raw variant structs). DuckDB
     reads local tables only (object stores would need its secrets); Polars reads every location. The log is
     read by hand too: the protocol action must be (1, 2) for v1 and (3, 7) with the `variantType` reader and
     writer feature for v2.
With --schema-version v2 the tables must be v2: the v1 columns with VARIANT maps/body/metadata (decoded here,
so expected rows compare typed values), record_id/time/date/service_name in front, metric times at the top,
partitioned by date; the token-usage query is computed from the decoded variants instead of DuckDB.
Exits 0 when every check passed, 1 otherwise (the failures are printed), 2 on bad usage.
"""

import argparse
import datetime
import json
import re
import struct
import sys

import glob
import os

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable
from polars_deltalake import scan_delta

# DuckDB's own Delta reader, set up as the end-to-end clients set it up.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "tests", "clients"))
import duckdb_delta  # noqa: E402

# The v1 DDL of docs/otel-tables.md, verbatim in structure.
R = "STRUCT<attributes: MAP<STRING,STRING>, dropped_attributes_count: INT>"
S = "STRUCT<name: STRING, version: STRING, attributes: MAP<STRING,STRING>, dropped_attributes_count: INT>"
X = ("ARRAY<STRUCT<time_unix_nano: BIGINT, value: DOUBLE, span_id: STRING, trace_id: STRING, "
     "filtered_attributes: MAP<STRING,STRING>>>")
DDL = {
    "spans": f"""
  trace_id STRING, span_id STRING, trace_state STRING, parent_span_id STRING, flags INT,
  name STRING, kind STRING, start_time_unix_nano BIGINT, end_time_unix_nano BIGINT,
  attributes MAP<STRING,STRING>, dropped_attributes_count INT,
  events ARRAY<STRUCT<time_unix_nano: BIGINT, name: STRING, attributes: MAP<STRING,STRING>,
                      dropped_attributes_count: INT>>,
  dropped_events_count INT,
  links ARRAY<STRUCT<trace_id: STRING, span_id: STRING, trace_state: STRING,
                     attributes: MAP<STRING,STRING>, dropped_attributes_count: INT, flags: INT>>,
  dropped_links_count INT,
  status STRUCT<message: STRING, code: STRING>,
  resource {R}, resource_schema_url STRING, instrumentation_scope {S}, span_schema_url STRING""",
    "logs": f"""
  event_name STRING, trace_id STRING, span_id STRING, time_unix_nano BIGINT,
  observed_time_unix_nano BIGINT, severity_number STRING, severity_text STRING, body STRING,
  attributes MAP<STRING,STRING>, dropped_attributes_count INT, flags INT,
  resource {R}, resource_schema_url STRING, instrumentation_scope {S}, log_schema_url STRING""",
    "metrics": f"""
  name STRING, description STRING, unit STRING, metric_type STRING,
  gauge STRUCT<start_time_unix_nano: BIGINT, time_unix_nano: BIGINT, value: DOUBLE, exemplars: {X},
               attributes: MAP<STRING,STRING>, flags: INT>,
  sum STRUCT<start_time_unix_nano: BIGINT, time_unix_nano: BIGINT, value: DOUBLE, exemplars: {X},
             attributes: MAP<STRING,STRING>, flags: INT, aggregation_temporality: STRING, is_monotonic: BOOLEAN>,
  histogram STRUCT<start_time_unix_nano: BIGINT, time_unix_nano: BIGINT, count: BIGINT, sum: DOUBLE,
             bucket_counts: ARRAY<BIGINT>, explicit_bounds: ARRAY<DOUBLE>, exemplars: {X},
             attributes: MAP<STRING,STRING>, flags: INT, min: DOUBLE, max: DOUBLE, aggregation_temporality: STRING>,
  exponential_histogram STRUCT<attributes: MAP<STRING,STRING>, start_time_unix_nano: BIGINT,
             time_unix_nano: BIGINT, count: BIGINT, sum: DOUBLE, scale: INT, zero_count: BIGINT,
             positive_bucket: STRUCT<offset: INT, bucket_counts: ARRAY<BIGINT>>,
             negative_bucket: STRUCT<offset: INT, bucket_counts: ARRAY<BIGINT>>, flags: INT, exemplars: {X},
             min: DOUBLE, max: DOUBLE, zero_threshold: DOUBLE, aggregation_temporality: STRING>,
  summary STRUCT<start_time_unix_nano: BIGINT, time_unix_nano: BIGINT, count: BIGINT, sum: DOUBLE,
             quantile_values: ARRAY<STRUCT<quantile: DOUBLE, value: DOUBLE>>,
             attributes: MAP<STRING,STRING>, flags: INT>,
  metadata MAP<STRING,STRING>, resource {R}, resource_schema_url STRING, instrumentation_scope {S},
  metric_schema_url STRING""",
}

QUERIES = {
    "slow root spans": """
SELECT trace_id, name, (end_time_unix_nano - start_time_unix_nano) / 1e9 AS seconds
FROM otel_spans WHERE parent_span_id IS NULL ORDER BY seconds DESC LIMIT 20""",
    "error rate by span name": """
SELECT name, COUNT(*) AS total, SUM(CASE WHEN status.code = 'STATUS_CODE_ERROR' THEN 1 ELSE 0 END) AS errors
FROM otel_spans GROUP BY name ORDER BY errors DESC""",
    "error logs": """
SELECT time_unix_nano, severity_text, body, attributes FROM otel_logs WHERE severity_text = 'ERROR'""",
    "token usage by model": """
SELECT attributes['gen_ai.request.model'] AS model,
       SUM(CAST(attributes['gen_ai.usage.input_tokens'] AS BIGINT)) AS input_tokens
FROM otel_spans GROUP BY 1""",
}

SPAN_KINDS = {f"SPAN_KIND_{k}" for k in ["UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"]}
STATUS_CODES = {"STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"}
METRIC_TYPES = {"gauge": "GAUGE", "sum": "SUM", "histogram": "HISTOGRAM",
                "exponential_histogram": "EXPONENTIAL_HISTOGRAM", "summary": "SUMMARY"}
TEMPORALITIES = {"AGGREGATION_TEMPORALITY_UNSPECIFIED", "AGGREGATION_TEMPORALITY_DELTA",
                 "AGGREGATION_TEMPORALITY_CUMULATIVE"}
HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")


# ---- v2: Variant decoding (Parquet VariantEncoding.md) and the v2 layout ----------------------------------------

def decode_variant(metadata, value):
    if metadata is None or value is None:
        return None
    osz = (metadata[0] >> 6) + 1
    n = int.from_bytes(metadata[1:1 + osz], "little")
    offs = [int.from_bytes(metadata[1 + osz * (i + 1):1 + osz * (i + 2)], "little") for i in range(n + 1)]
    base = 1 + osz * (n + 2)
    keys = [metadata[base + offs[i]:base + offs[i + 1]].decode() for i in range(n)]

    def at(pos):
        h = value[pos]
        basic, vh = h & 3, h >> 2
        if basic == 0:
            if vh == 0:
                return None
            if vh in (1, 2):
                return vh == 1
            if vh in (3, 4, 5, 6):
                size = {3: 1, 4: 2, 5: 4, 6: 8}[vh]
                return int.from_bytes(value[pos + 1:pos + 1 + size], "little", signed=True)
            if vh == 7:
                return struct.unpack("<d", value[pos + 1:pos + 9])[0]
            if vh in (15, 16):
                ln = int.from_bytes(value[pos + 1:pos + 5], "little")
                raw = value[pos + 5:pos + 5 + ln]
                return raw.decode() if vh == 16 else bytes(raw)
            raise ValueError(f"variant primitive {vh} not expected here")
        if basic == 1:
            return value[pos + 1:pos + 1 + vh].decode()
        if basic == 2:
            off_size, id_size, large = (vh & 3) + 1, ((vh >> 2) & 3) + 1, (vh >> 4) & 1
            nsz = 4 if large else 1
            count = int.from_bytes(value[pos + 1:pos + 1 + nsz], "little")
            ids_at = pos + 1 + nsz
            ids = [int.from_bytes(value[ids_at + i * id_size:ids_at + (i + 1) * id_size], "little")
                   for i in range(count)]
            offs_at = ids_at + count * id_size
            offsets = [int.from_bytes(value[offs_at + i * off_size:offs_at + (i + 1) * off_size], "little")
                       for i in range(count + 1)]
            start = offs_at + (count + 1) * off_size
            names = [keys[i] for i in ids]
            if names != sorted(names):
                raise ValueError(f"object fields not sorted by key: {names}")
            return {keys[ids[i]]: at(start + offsets[i]) for i in range(count)}
        off_size, large = (vh & 3) + 1, (vh >> 2) & 1
        nsz = 4 if large else 1
        count = int.from_bytes(value[pos + 1:pos + 1 + nsz], "little")
        offs_at = pos + 1 + nsz
        offsets = [int.from_bytes(value[offs_at + i * off_size:offs_at + (i + 1) * off_size], "little")
                   for i in range(count + 1)]
        start = offs_at + (count + 1) * off_size
        return [at(start + offsets[i]) for i in range(count)]

    return at(0)


def drop_fields(struct_norm, names):
    inner = struct_norm[len("struct<"):-1]
    return "struct<" + ",".join(f for f in split_top(inner) if f.split(":", 1)[0] not in names) + ">"


def v2_columns(signal):
    """The v2 layout, derived from the v1 DDL the way docs/otel-tables.md describes it."""
    leading = [("record_id", "string"), ("time", "timestamp"), ("date", "date"), ("service_name", "string")]
    columns = []
    for name, t in ddl_columns(DDL[signal]):
        t = t.replace("map<string,string>", "variant")
        if signal == "logs" and name == "body":
            t = "variant"
        if signal == "metrics" and name in METRIC_TYPES:
            t = drop_fields(t, {"start_time_unix_nano", "time_unix_nano"})
        columns.append((name, t))
        if signal == "metrics" and name == "metric_type":
            columns += [("start_time_unix_nano", "bigint"), ("time_unix_nano", "bigint")]
    if signal == "metrics":
        columns = [(n, "variant" if n == "metadata" else t) for n, t in columns]
    return leading + columns


def decode_row(value):
    """Replaces every {metadata, value} variant struct by its decoded value, recursively."""
    if isinstance(value, dict):
        if set(value) == {"metadata", "value"} and isinstance(value["value"], (bytes, type(None))):
            return decode_variant(value["metadata"], value["value"])
        return {k: decode_row(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_row(v) for v in value]
    return value


class Checker:
    def __init__(self, quiet):
        self.failures = []
        self.quiet = quiet

    def ok(self, message):
        if not self.quiet:
            print(f"OK   {message}")

    def fail(self, message):
        self.failures.append(message)
        print(f"FAIL {message}")

    def check(self, condition, message):
        (self.ok if condition else self.fail)(message)
        return condition


# ---- Spark DDL types → one normalized text form; Arrow types → the same form -------------------------------

def split_top(text, sep=","):
    """Splits on `sep` outside <...>."""
    parts, depth, start = [], 0, 0
    for i, c in enumerate(text):
        if c == "<":
            depth += 1
        elif c == ">":
            depth -= 1
        elif c == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def norm_ddl_type(t):
    t = " ".join(t.split())
    upper = t.upper()
    if upper.startswith("STRUCT<"):
        fields = []
        for f in split_top(t[7:-1]):
            name, ftype = f.split(":", 1)
            fields.append(f"{name.strip()}:{norm_ddl_type(ftype)}")
        return "struct<" + ",".join(fields) + ">"
    if upper.startswith("ARRAY<"):
        return "array<" + norm_ddl_type(t[6:-1]) + ">"
    if upper.startswith("MAP<"):
        k, v = split_top(t[4:-1])
        return "map<" + norm_ddl_type(k) + "," + norm_ddl_type(v) + ">"
    return {"STRING": "string", "INT": "int", "BIGINT": "bigint", "DOUBLE": "double",
            "BOOLEAN": "boolean"}[upper]


def ddl_columns(ddl):
    columns = []
    for col in split_top(ddl):
        name, ctype = col.split(None, 1)
        columns.append((name, norm_ddl_type(ctype)))
    return columns


def norm_arrow_type(t):
    if (pa.types.is_struct(t) and t.num_fields == 2 and t.field(0).name == "metadata"
            and t.field(1).name == "value" and pa.types.is_binary(t.field(0).type)):
        return "variant"
    if pa.types.is_timestamp(t):
        return "timestamp" if t.unit == "us" and t.tz in ("UTC", "+00:00") else f"<arrow {t}>"
    if pa.types.is_date32(t):
        return "date"
    if pa.types.is_struct(t):
        return "struct<" + ",".join(f"{t.field(i).name}:{norm_arrow_type(t.field(i).type)}"
                                    for i in range(t.num_fields)) + ">"
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t):
        return "array<" + norm_arrow_type(t.value_type) + ">"
    if pa.types.is_map(t):
        return "map<" + norm_arrow_type(t.key_type) + "," + norm_arrow_type(t.item_type) + ">"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_int32(t):
        return "int"
    if pa.types.is_int64(t):
        return "bigint"
    if pa.types.is_float64(t):
        return "double"
    if pa.types.is_boolean(t):
        return "boolean"
    return f"<arrow {t}>"


def parquet_names_ok(t, path, problems):
    """Map entries must be key_value/key/value and list items element in the files."""
    if pa.types.is_map(t):
        if t.key_field.name != "key" or t.item_field.name != "value":
            problems.append(f"{path}: map fields are {t.key_field.name}/{t.item_field.name}")
        parquet_names_ok(t.item_type, path + ".value", problems)
    elif pa.types.is_list(t):
        if t.value_field.name != "element":
            problems.append(f"{path}: list item is named {t.value_field.name}")
        parquet_names_ok(t.value_type, path + ".element", problems)
    elif pa.types.is_struct(t):
        for i in range(t.num_fields):
            parquet_names_ok(t.field(i).type, f"{path}.{t.field(i).name}", problems)


def parquet_map_group_names(path):
    """The physical Parquet group names of map columns (key_value) as the file stores them."""
    schema = pq.ParquetFile(path).schema
    return {schema.column(i).path for i in range(len(schema))}


# ---- per-table checks ------------------------------------------------------------------------------------------

def check_schema(c, signal, name, dt, table, version):
    config = dt.metadata().configuration
    c.check(config.get("otel.schemaVersion") == version,
            f"{name}: table property otel.schemaVersion = {config.get('otel.schemaVersion')!r}")
    expected = ddl_columns(DDL[signal]) if version == "v1" else v2_columns(signal)
    if version == "v2":
        partitions = dt.metadata().partition_columns
        c.check(partitions == ["date"], f"{name}: partitioned by {partitions}")
    actual = [(f.name, norm_arrow_type(f.type)) for f in table.schema]
    if actual == expected:
        c.ok(f"{name}: schema equals the {version} layout ({len(expected)} columns)")
    else:
        for i in range(max(len(actual), len(expected))):
            a = actual[i] if i < len(actual) else None
            e = expected[i] if i < len(expected) else None
            if a != e:
                c.fail(f"{name}: column {i + 1} is {a}, the {version} layout says {e}")
                break
    files = dt.file_uris()
    if files:
        first = files[0]
        local = first[len("file://"):] if first.startswith("file://") else first
        if "://" not in local:
            fschema = pq.read_schema(local)
            problems = []
            for f in fschema:
                parquet_names_ok(f.type, f.name, problems)
            paths = parquet_map_group_names(local)
            if version == "v1" and not any(".key_value.key" in p for p in paths):
                problems.append("no map group named key_value in the Parquet file")
            c.check(not problems, f"{name}: Parquet map/list field names ({problems or 'key_value/key/value, element'})")


UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def check_v2_rows(c, signal, name, rows):
    bad = [r for r in rows if not (r["record_id"] and UUID.match(r["record_id"]))]
    c.check(not bad, f"{name}: record_id is a UUIDv7 ({len(bad)} bad)")
    ids = [r["record_id"] for r in rows]
    c.check(len(ids) == len(set(ids)), f"{name}: record_id is unique per row")
    bad = []
    for r in rows:
        nanos = {"spans": r.get("start_time_unix_nano"), "logs": r.get("time_unix_nano") or r.get("observed_time_unix_nano"),
                 "metrics": r.get("time_unix_nano")}[signal]
        expected = datetime.datetime.fromtimestamp(nanos // 1000 / 1e6, tz=datetime.timezone.utc)
        if r["time"] is None or abs((r["time"] - expected).total_seconds()) > 1e-6 or r["date"] != r["time"].date():
            bad.append(r)
        service = ((r.get("resource") or {}).get("attributes") or {}).get("service.name")
        if r["service_name"] != service:
            bad.append(r)
    c.check(not bad, f"{name}: time, date and service_name agree with the row ({len(bad)} bad)")


def is_hex(value, pattern):
    return value is not None and bool(pattern.match(value))


def check_spans(c, name, rows):
    bad = [r for r in rows if not is_hex(r["trace_id"], HEX32) or not is_hex(r["span_id"], HEX16)]
    c.check(not bad, f"{name}: trace_id/span_id are lowercase hex of 32/16 ({len(bad)} bad)")
    bad = [r for r in rows if r["parent_span_id"] is not None and not is_hex(r["parent_span_id"], HEX16)]
    c.check(not bad, f"{name}: parent_span_id is NULL or 16 hex, never '' ({len(bad)} bad)")
    bad = [r for r in rows if r["kind"] not in SPAN_KINDS]
    c.check(not bad, f"{name}: kind uses SPAN_KIND_* names ({len(bad)} bad)")
    bad = [r for r in rows if r["status"] is None or r["status"]["code"] not in STATUS_CODES]
    c.check(not bad, f"{name}: status.code uses STATUS_CODE_* names ({len(bad)} bad)")
    bad = [r for r in rows for l in (r["links"] or [])
           if not is_hex(l["trace_id"], HEX32) or not is_hex(l["span_id"], HEX16)]
    c.check(not bad, f"{name}: link ids are hex ({len(bad)} bad)")


def check_logs(c, name, rows):
    bad = [r for r in rows if r["trace_id"] is not None and not is_hex(r["trace_id"], HEX32)]
    c.check(not bad, f"{name}: trace_id is NULL or 32 hex ({len(bad)} bad)")
    bad = [r for r in rows if r["span_id"] is not None and not is_hex(r["span_id"], HEX16)]
    c.check(not bad, f"{name}: span_id is NULL or 16 hex ({len(bad)} bad)")
    bad = [r for r in rows if r["severity_number"] is None
           or not (r["severity_number"].isdigit() or r["severity_number"].startswith("SEVERITY_NUMBER_"))]
    c.check(not bad, f"{name}: severity_number is a number or SEVERITY_NUMBER_* ({len(bad)} bad)")


def check_metrics(c, name, rows):
    bad = []
    for r in rows:
        present = [k for k in METRIC_TYPES if r[k] is not None]
        if len(present) != 1 or METRIC_TYPES[present[0]] != r["metric_type"]:
            bad.append(r)
            continue
        point = r[present[0]]
        temporality = point.get("aggregation_temporality")
        if present[0] in ("sum", "histogram", "exponential_histogram") and temporality not in TEMPORALITIES:
            bad.append(r)
        for e in point.get("exemplars") or []:
            if e["trace_id"] is not None and not is_hex(e["trace_id"], HEX32):
                bad.append(r)
    c.check(not bad, f"{name}: exactly one type struct per row, matching metric_type, valid temporality "
                     f"and exemplar ids ({len(bad)} bad)")


# ---- expected rows ---------------------------------------------------------------------------------------------

def plain(value):
    """Arrow's Python form of maps (list of pairs) → dict, recursively."""
    if isinstance(value, list) and value and all(isinstance(x, tuple) and len(x) == 2 for x in value):
        return {k: plain(v) for k, v in value}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def lookup(row, dotted):
    value = row
    for part in dotted.split("."):
        if value is None:
            return None
        value = value.get(part) if isinstance(value, dict) else None
    return value


def matches(actual, expected):
    if isinstance(expected, dict):
        if actual == [] or actual is None:
            actual = {}
        return isinstance(actual, dict) and all(k in actual and matches(actual[k], v) for k, v in expected.items())
    if isinstance(expected, list):
        return isinstance(actual, list) and len(actual) == len(expected) and all(
            matches(a, e) for a, e in zip(actual, expected))
    if isinstance(expected, float) and isinstance(actual, float):
        return abs(actual - expected) <= 1e-9 * max(1.0, abs(expected))
    return actual == expected


def check_expected_rows(c, signal, name, rows, expected):
    rows = [plain(r) for r in rows]
    for i, want in enumerate(expected):
        key = want.get("match") or ({"span_id": want["span_id"]} if "span_id" in want else None)
        if not key:
            c.fail(f"{name}: expected row {i} has neither span_id nor match")
            continue
        found = [r for r in rows if all(matches(lookup(r, k), v) for k, v in key.items())]
        if len(found) != 1:
            c.fail(f"{name}: {len(found)} rows match {key} (expected exactly 1)")
            continue
        diffs = []
        for k, v in want.items():
            if k == "match":
                continue
            actual = lookup(found[0], k)
            if not matches(actual, v):
                diffs.append(f"{k}: table has {actual!r}, expected {v!r}")
        c.check(not diffs, f"{name}: row {key} round-trips" + (f" ({'; '.join(diffs)})" if diffs else ""))


# ---- readers that share no code with the writer ------------------------------------------------------------------

# Columns that identify a row, read by every reader (plain types in v1 and v2 alike).
ROW_KEYS = {"spans": ["trace_id", "span_id"], "logs": ["time_unix_nano", "trace_id", "span_id"],
            "metrics": ["name"]}


def local_path(uri):
    if uri.startswith("file://"):
        return uri[len("file://"):]
    return None if "://" in uri else uri


def row_keys(rows, signal):
    return sorted(tuple(str(r[k]) for k in ROW_KEYS[signal]) for r in rows)


def check_protocol(c, name, path, version):
    """The protocol action as the log says it, read by hand (the newest one wins)."""
    protocol = None
    for f in sorted(glob.glob(os.path.join(path, "_delta_log", "*.json"))):
        with open(f) as log:
            for line in log:
                action = json.loads(line)
                protocol = action.get("protocol", protocol)
    if protocol is None:
        c.fail(f"{name}: no protocol action in the JSON log")
        return
    versions = (protocol.get("minReaderVersion"), protocol.get("minWriterVersion"))
    if version == "v1":
        c.check(versions == (1, 2), f"{name}: protocol (reader, writer) = {versions}, v1 expects (1, 2)")
        return
    features = set(protocol.get("readerFeatures") or []), set(protocol.get("writerFeatures") or [])
    c.check(versions == (3, 7) and "variantType" in features[0] and "variantType" in features[1],
            f"{name}: protocol {versions}, reader features {sorted(features[0])}, writer features "
            f"{sorted(features[1])}; v2 expects (3, 7) with variantType")


def check_independent_readers(c, signal, name, uri, storage, rows, version):
    keys = row_keys(rows, signal)
    try:
        frame = scan_delta(uri, storage_options=storage or None).select(ROW_KEYS[signal]).collect()
        polars_keys = row_keys(frame.to_dicts(), signal)
        c.check(polars_keys == keys, f"{name}: polars-deltalake reads {len(polars_keys)} rows, the same keys as "
                                     f"deltalake ({len(keys)})" if polars_keys == keys else
                f"{name}: polars-deltalake reads {len(polars_keys)} rows, deltalake {len(keys)}; keys differ")
    except Exception as e:  # noqa: BLE001 - a reader that cannot read the table is a failed check
        c.fail(f"{name}: polars-deltalake cannot read the table: {e}")
    path = local_path(uri)
    if path is None:
        c.ok(f"{name}: DuckDB delta_scan not run (an object store: DuckDB would need its own secrets)")
        return
    check_protocol(c, name, path, version)
    try:
        con = duckdb_delta.connect()
        columns = ", ".join(ROW_KEYS[signal])
        duck_rows = con.execute(f"SELECT {columns} FROM delta_scan('{path}')").fetchall()
        duck_keys = sorted(tuple(str(v) for v in r) for r in duck_rows)
        c.check(duck_keys == keys, f"{name}: DuckDB delta_scan reads {len(duck_keys)} rows, the same keys as "
                                   f"deltalake" if duck_keys == keys else
                f"{name}: DuckDB delta_scan reads {len(duck_keys)} rows, deltalake {len(keys)}; keys differ")
    except Exception as e:  # noqa: BLE001
        c.fail(f"{name}: DuckDB delta_scan cannot read the table: {e}")


def compare_queries_with_delta_scan(c, paths, arrow_con, version):
    """The reference queries through delta_scan views must give what they give on deltalake's Arrow tables."""
    if not paths:
        return
    con = duckdb_delta.connect()
    for signal, path in paths.items():
        con.execute(f"CREATE VIEW otel_{signal} AS SELECT * FROM delta_scan('{path}')")
    for title, sql in QUERIES.items():
        needs = "otel_logs" if "otel_logs" in sql else "otel_spans"
        if needs[len("otel_"):] not in paths or (version == "v2" and "attributes[" in sql):
            continue
        # LIMIT picks among ties differently per reader: compare the whole ordered result instead.
        whole = re.sub(r"\s+LIMIT \d+", "", sql)
        # v2: DuckDB decodes VARIANT itself; deltalake hands the raw {metadata, value} structs, decoded here.
        def normal(rows):
            return sorted(json.dumps(decode_row(list(r)), sort_keys=True, default=repr) for r in rows)
        try:
            ours = normal(arrow_con.execute(whole).fetchall())
            theirs = normal(con.execute(whole).fetchall())
            c.check(ours == theirs, f"delta_scan: {title}: {len(theirs)} rows, as on deltalake's tables"
                    if ours == theirs else f"delta_scan: {title}: {len(theirs)} rows differ from deltalake's "
                                           f"{len(ours)}: {theirs[:3]} vs {ours[:3]}")
        except Exception as e:  # noqa: BLE001
            c.fail(f"delta_scan: {title}: {e}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("location")
    parser.add_argument("--prefix", default="")
    for signal in ("spans", "logs", "metrics"):
        parser.add_argument(f"--{signal}-table")
        parser.add_argument(f"--expect-{signal}", type=int)
        parser.add_argument(f"--min-{signal}", type=int)
    parser.add_argument("--tables", default="spans,logs,metrics",
                        help="which tables must exist (comma-separated); others are checked if present")
    parser.add_argument("--expect-json")
    parser.add_argument("--storage-option", action="append", default=[])
    parser.add_argument("--schema-version", choices=["v1", "v2"], default="v1")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()

    c = Checker(args.quiet)
    storage = dict(kv.split("=", 1) for kv in args.storage_option)
    expected = {}
    if args.expect_json:
        with open(args.expect_json) as f:
            expected = json.load(f)
    required = {t.strip() for t in args.tables.split(",") if t.strip()}
    base = args.location.rstrip("/")
    arrow = {}
    local_tables = {}
    for signal in ("spans", "logs", "metrics"):
        name = getattr(args, f"{signal}_table") or (
            f"{args.prefix}_otel_{signal}" if args.prefix else f"otel_{signal}")
        uri = f"{base}/{name}"
        if not DeltaTable.is_deltatable(uri, storage_options=storage or None):
            if signal in required or getattr(args, f"expect_{signal}") or getattr(args, f"min_{signal}"):
                c.fail(f"{name}: no Delta table at {uri}")
            continue
        dt = DeltaTable(uri, storage_options=storage or None)
        table = dt.to_pyarrow_table()
        arrow[signal] = table
        c.ok(f"{name}: read version {dt.version()} with deltalake, {table.num_rows} rows")
        check_schema(c, signal, name, dt, table, args.schema_version)
        rows = table.to_pylist()
        if args.schema_version == "v2":
            rows = [decode_row(r) for r in rows]
            check_v2_rows(c, signal, name, rows)
        {"spans": check_spans, "logs": check_logs, "metrics": check_metrics}[signal](c, name, rows)
        exact, minimum = getattr(args, f"expect_{signal}"), getattr(args, f"min_{signal}")
        if exact is not None:
            c.check(table.num_rows == exact, f"{name}: {table.num_rows} rows, expected {exact}")
        if minimum is not None:
            c.check(table.num_rows >= minimum, f"{name}: {table.num_rows} rows, expected at least {minimum}")
        if signal in expected.get("unique", []):
            if signal == "spans":
                keys = [(r["trace_id"], r["span_id"]) for r in rows]
            else:
                keys = [json.dumps(plain(r), sort_keys=True, default=str) for r in rows]
            c.check(len(keys) == len(set(keys)), f"{name}: every row is there once "
                                                 f"({len(keys) - len(set(keys))} duplicates)")
        if expected.get(signal):
            check_expected_rows(c, signal, name, rows, expected[signal])
        check_independent_readers(c, signal, name, uri, storage, table.to_pylist(), args.schema_version)
        if local_path(uri) is not None:
            local_tables[signal] = local_path(uri)

    con = duckdb.connect()
    for signal, table in arrow.items():
        con.register(f"otel_{signal}", table)
    if args.schema_version == "v2" and "spans" in arrow and expected.get("token_usage"):
        got = {}
        for r in (decode_row(x) for x in arrow["spans"].to_pylist()):
            attrs = r["attributes"] or {}
            if "gen_ai.request.model" in attrs:
                model = attrs["gen_ai.request.model"]
                got[model] = got.get(model, 0) + int(attrs.get("gen_ai.usage.input_tokens") or 0)
        for model, tokens in expected["token_usage"].items():
            c.check(got.get(model) == tokens, f"variant: input tokens of {model} = {got.get(model)}, expected {tokens}")
    for title, sql in QUERIES.items():
        needs = "otel_logs" if "otel_logs" in sql else "otel_spans"
        if needs[len("otel_"):] not in arrow:
            continue
        if args.schema_version == "v2" and "attributes[" in sql:
            continue  # map subscripts are v1 SQL; v2 is checked on the decoded variants above
        try:
            result = con.execute(sql).fetchall()
            c.ok(f"duckdb: {title}: {len(result)} rows")
            if not args.quiet:
                for row in result[:5]:
                    print(f"       {row}")
            if title == "token usage by model" and expected.get("token_usage"):
                got = {model: tokens for model, tokens in result}
                for model, tokens in expected["token_usage"].items():
                    c.check(got.get(model) == tokens,
                            f"duckdb: input tokens of {model} = {got.get(model)}, expected {tokens}")
        except Exception as e:  # noqa: BLE001 - any failure of a documented query is a failed check
            c.fail(f"duckdb: {title}: {e}")

    compare_queries_with_delta_scan(c, local_tables, con, args.schema_version)

    if c.failures:
        print(f"{len(c.failures)} check(s) failed")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
