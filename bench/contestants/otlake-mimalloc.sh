# Experiment: otlake-nobytes with mimalloc (Debian libmimalloc2.0) preloaded as the process's malloc, to measure
# what a faster global allocator would give (prost's owned decode makes one allocation per string/attribute).
source "$(dirname "${BASH_SOURCE[0]}")/otlake.sh"
NAME=otlake-mimalloc
OTLAKE_BATCH_MAX_BYTES=0
OTLAKE_PRELOAD=${OTLAKE_PRELOAD:-/usr/lib/x86_64-linux-gnu/libmimalloc.so.2}
