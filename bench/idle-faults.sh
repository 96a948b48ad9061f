#!/usr/bin/env bash
# idle-faults.sh -- what an idle otlake holds resident, and which code start-up touched to get there.
#
#   bench/idle-faults.sh                      # the shipped default config (Delta tables under a fresh ./data)
#   bench/idle-faults.sh --config FILE        # any config (its ports must be free)
#
# Starts the daemon under `perf record -e page-faults -d` (every fault, with its address), waits SECS (6),
# then prints /proc/PID/status (VmHWM, RssAnon, RssFile) and smaps_rollup, the resident size of each
# mapping of the binary, and the faults on the binary's code counted per crate (the demangled symbol's first
# path segment; `core`/`alloc`/`std` are generic code instantiated for the caller). Each code fault maps the
# kernel's fault-around window (64 KiB by default) of already-cached pages, so the code part of RssFile is
# roughly faults x 64 KiB: fewer distinct functions run at start, or start-up code laid out together, is what
# lowers it. Needs perf (Debian linux-perf), c++filt and nm. Environment: OTLAKE_BIN
# (target/release/otlake), SECS (6). Output in bench/results/idle-faults-<time>/ (perf.data, report.txt).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
OTLAKE_BIN=$(realpath "${OTLAKE_BIN:-$REPO/target/release/otlake}")
SECS=${SECS:-6}
OUT=$HERE/results/idle-faults-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
cd "$OUT"
export OTLAKE_GRPC_ENDPOINT=127.0.0.1:0 OTLAKE_HTTP_ENDPOINT=127.0.0.1:0 \
  OTLAKE_METRICS_ADDRESS=127.0.0.1:0 OTLAKE_HEALTH_ENDPOINT=127.0.0.1:0 OTLAKE_DATA=$OUT/data
perf record -q -d -e page-faults -c 1 -o perf.data "$OTLAKE_BIN" run "$@" > otlake.log 2>&1 &
PERF=$!
sleep "$SECS"
PID=$(pgrep -P $PERF | head -1 || true)
[ -n "$PID" ] && kill -0 "$PID" 2>/dev/null \
  || { echo "otlake is not running after $SECS s: $OUT/otlake.log" >&2; kill -INT $PERF; exit 1; }
{
  echo "## /proc/$PID/status"
  grep -E '^(VmHWM|VmRSS|RssAnon|RssFile|RssShmem|Threads)' "/proc/$PID/status"
  echo; echo "## smaps_rollup"; tail -n +2 "/proc/$PID/smaps_rollup"
  echo; echo "## resident kB per mapping of the binary and libraries (perm, kB, file)"
  awk '/^[0-9a-f]+-[0-9a-f]+ /{perm=$2; file=$6} /^Rss:/{if ($2 > 100) print perm, $2, file}' "/proc/$PID/smaps"
} > report.txt
kill -INT "$PID"; wait $PERF 2>/dev/null || true
nm --defined-only "$OTLAKE_BIN" | awk 'tolower($2) == "t" {print $1, $3}' > text-symbols.txt
perf script -i perf.data --show-mmap-events 2>/dev/null \
  | awk -v bin="$OTLAKE_BIN" '/PERF_RECORD_MMAP2/ && index($0, bin) && / r--p / && !base {match($0, /\[0x[0-9a-f]+/); base = substr($0, RSTART + 1, RLENGTH - 1)} END {print base}' > base.txt
perf script -i perf.data -F addr 2>/dev/null > fault-addresses.txt
python3 - "$OTLAKE_BIN" >> report.txt <<'PY'
import bisect, collections, re, subprocess, sys
base = int(open("base.txt").read().strip(), 16)
symbols = sorted((int(a, 16), n) for a, n in (l.split(None, 1) for l in open("text-symbols.txt")))
starts = [a for a, _ in symbols]
lo, hi = starts[0], symbols[-1][0] + 4096
faults = [int(l, 16) - base for l in open("fault-addresses.txt") if l.strip()]
code = [a for a in faults if lo <= a < hi]
hits = collections.Counter(symbols[bisect.bisect_right(starts, a) - 1][1].strip() for a in code)
names = subprocess.run(["c++filt"], input="\n".join(hits), capture_output=True, text=True).stdout.split("\n")
crates = collections.Counter()
for (_, count), name in zip(hits.items(), names):
    m = re.match(r"<?&?(?:mut )?(?:dyn )?([A-Za-z_][A-Za-z0-9_]*)", name)
    crates[m.group(1) if m else name] += count
print(f"\n## faults: {len(faults)}, on the binary's code: {len(code)} (x 64 KiB ~ {len(code) * 64 / 1024:.1f} MiB)")
for crate, count in crates.most_common(30):
    print(f"{count:5d}  {crate}")
PY
cat report.txt
echo "results in $OUT"
