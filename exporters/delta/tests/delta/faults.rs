//! The location becomes unwritable mid-run and writable again.
