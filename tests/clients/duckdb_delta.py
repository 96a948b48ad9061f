"""DuckDB with its own Delta reader (`delta_scan`, delta-kernel-rs underneath), shared by the clients that read
our tables through it. The `delta` extension is loaded from the duckdb-extension-delta wheel's file (pinned to the
duckdb release in tests/requirements.txt), unsigned extensions allowed: nothing is downloaded."""
import glob
import os

import duckdb


def connect():
    """A DuckDB connection with the `delta` extension loaded."""
    import duckdb_extension_delta

    (path,) = glob.glob(os.path.join(os.path.dirname(duckdb_extension_delta.__file__),
                                     "extensions", f"v{duckdb.__version__}", "delta.duckdb_extension"))
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{path}'")
    return con
