#!/usr/bin/env python3
"""Runs one SQL query through DuckDB over the Delta tables under a location, as a user would, and prints the
rows as a JSON list of objects. Every table directory under LOCATION (otel_spans, otel_logs, ...) is read with
Python `deltalake` and registered under its directory name.

usage: query_delta.py LOCATION "SQL"
"""
import json
import os
import sys

import duckdb
from deltalake import DeltaTable


def main():
    location, sql = sys.argv[1], sys.argv[2]
    con = duckdb.connect()
    for name in sorted(os.listdir(location)):
        if os.path.isdir(os.path.join(location, name, "_delta_log")):
            con.register(name, DeltaTable(os.path.join(location, name)).to_pyarrow_table())
    cursor = con.execute(sql)
    columns = [d[0] for d in cursor.description]
    rows = [dict(zip(columns, row)) for row in cursor.fetchall()]
    json.dump(rows, sys.stdout, default=str)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
