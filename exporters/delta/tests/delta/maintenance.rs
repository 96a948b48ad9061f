//! Compaction and vacuum on a table that is being written.
