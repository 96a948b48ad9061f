#!/usr/bin/env python3
"""Sets table properties on a Delta table with Python `deltalake` (another writer than otlake), as an operator
would, e.g. a lower `delta.checkpointInterval` so that a test crosses checkpoints in a few commits.

usage: delta_properties.py TABLE_URI KEY=VALUE [KEY=VALUE ...]
"""
import sys

from deltalake import DeltaTable


def main():
    table = DeltaTable(sys.argv[1])
    properties = dict(arg.split("=", 1) for arg in sys.argv[2:])
    table.alter.set_table_properties(properties)
    print(f"{sys.argv[1]}: version {DeltaTable(sys.argv[1]).version()}, {properties}")


if __name__ == "__main__":
    main()
