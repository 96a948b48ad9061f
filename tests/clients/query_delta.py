#!/usr/bin/env python3
"""Runs one SQL query through DuckDB over the Delta tables under a location, as a user would, and prints the
rows as a JSON list of objects. Every table directory under LOCATION (otel_spans, otel_logs, ...) is read with
Python `deltalake` and registered under its directory name.

With --delta-scan the tables are read by DuckDB's own Delta reader instead (`delta_scan`, delta-kernel-rs
underneath; the `delta` extension loaded from the duckdb-extension-delta wheel's file), which decodes the VARIANT
columns of v2 tables: an attribute map comes out as an object of typed values (a string, an integer, a double).

usage: query_delta.py [--delta-scan] LOCATION "SQL"
"""
import json
import os
import sys

import duckdb
from deltalake import DeltaTable

import duckdb_delta


def main():
    args = sys.argv[1:]
    delta_scan = args[:1] == ["--delta-scan"]
    location, sql = args[1:] if delta_scan else args
    con = duckdb_delta.connect() if delta_scan else duckdb.connect()
    for name in sorted(os.listdir(location)):
        path = os.path.join(location, name)
        if not os.path.isdir(os.path.join(path, "_delta_log")):
            continue
        if delta_scan:
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM delta_scan('{path}')")
        else:
            con.register(name, DeltaTable(path).to_pyarrow_table())
    cursor = con.execute(sql)
    columns = [d[0] for d in cursor.description]
    rows = [dict(zip(columns, row)) for row in cursor.fetchall()]
    json.dump(rows, sys.stdout, default=str)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
