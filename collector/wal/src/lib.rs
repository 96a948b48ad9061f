//! otlake-wal: the write-ahead log in front of an exporter (work in progress).
