#!/usr/bin/env bash
# profile.sh -- where otlake's CPU goes under a saturating load: perf record (DWARF call graphs) of a fresh
# daemon pinned to CPU 0 while h2load (CPU 1) sends the peer harness's payloads, then the top functions.
#
#   bench/profile.sh http-drop   [SECONDS]   OTLP/HTTP traces -> batch -> debug (basic): the "blackhole"
#   bench/profile.sh grpc-drop   [SECONDS]   OTLP/gRPC traces -> batch -> debug (basic)
#   bench/profile.sh delta       [SECONDS]   OTLP/gRPC traces -> batch -> delta (local, zstd)
#   bench/profile.sh filelog     [SECONDS]   the peer harness's filelog-export drain: filelog (the 1 M NDJSON
#                                            lines from the start, json_parser) -> batch 8192/200ms -> otlphttp
#                                            to the harness's counting sink.py (on CPU 1)
#
# Output in bench/results/profile-<scenario>-<time>/: perf.data, self.txt (functions by self time),
# children.txt (inclusive time), crates.txt (self time summed per crate). Needs perf (Debian linux-perf)
# and /work/shared/bench (install-peers.sh). Environment: OTLAKE_BIN, SHARED_BENCH, FREQ (499),
# BATCH_TIMEOUT (10ms, as bench/contestants/otlake.sh), PRELOAD (an allocator .so to LD_PRELOAD),
# RATE (spans/s: a fixed load, h2load --rps over the same connections, instead of saturation).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SC=${1:?scenario: http-drop | grpc-drop | delta | filelog}
SECS=${2:-10}
SHARED_BENCH=${SHARED_BENCH:-/work/shared/bench}
PAYLOADS=$SHARED_BENCH/payloads
OTLAKE_BIN=${OTLAKE_BIN:-$REPO/target/release/otlake}
FREQ=${FREQ:-499}
OUT=$HERE/results/profile-$SC-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
case $SC in
  http-drop|grpc-drop) EXP="  debug:
    verbosity: basic"; EXPNAME=debug ;;
  delta) EXP="  delta:
    location: $OUT/data
    max_latency: 500ms"; EXPNAME=delta ;;
  filelog) ;;
  *) echo "unknown scenario $SC" >&2; exit 2 ;;
esac
if [ "$SC" = filelog ]; then
  # The same pipeline as bench/contestants/otlake.sh's filelog-export.
  taskset -c 1 "$SHARED_BENCH/.venv/bin/python" "$SHARED_BENCH/sink.py" --port 24318 > "$OUT/sink.log" 2>&1 &
  SINK=$!
  trap 'kill $SINK 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/24318) 2>/dev/null && break; sleep 0.1; done
  cat > "$OUT/otlake.yaml" <<CFG
receivers:
  filelog:
    include: ["$PAYLOADS/filelog.ndjson"]
    start_at: beginning
    poll_interval: 50ms
    operators:
      - type: json_parser
        parse_from: body
        parse_to: attributes
processors:
  batch:
    send_batch_size: 8192
    send_batch_max_size: 8192
    timeout: 200ms
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:24318
    encoding: proto
    compression: none
service:
  pipelines:
    logs:
      receivers: [filelog]
      processors: [batch]
      exporters: [otlphttp]
  telemetry:
    logs:
      level: warn
    metrics:
      address: 127.0.0.1:14888
    health:
      endpoint: 127.0.0.1:14133
CFG
  taskset -c 0 env ${PRELOAD:+LD_PRELOAD=$PRELOAD} "$OTLAKE_BIN" run --config "$OUT/otlake.yaml" > "$OUT/otlake.log" 2>&1 &
  PID=$!
  trap 'kill -TERM $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; kill $SINK 2>/dev/null || true' EXIT
  sleep 1
  perf record -F "$FREQ" --call-graph dwarf,16384 -p "$PID" -o "$OUT/perf.data" -- sleep "$SECS" 2> "$OUT/perf-record.txt"
  curl -s http://127.0.0.1:24318/stats > "$OUT/sink-stats.json" || true
fi
if [ "$SC" != filelog ]; then
cat > "$OUT/otlake.yaml" <<CFG
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:14317
      http:
        endpoint: 127.0.0.1:14318
processors:
  batch:
    send_batch_size: 8192
    timeout: ${BATCH_TIMEOUT:-10ms}
exporters:
$EXP
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [$EXPNAME]
  telemetry:
    metrics:
      address: 127.0.0.1:14888
    health:
      endpoint: 127.0.0.1:14133
CFG
taskset -c 0 env ${PRELOAD:+LD_PRELOAD=$PRELOAD} "$OTLAKE_BIN" run --config "$OUT/otlake.yaml" > "$OUT/otlake.log" 2>&1 &
PID=$!
trap 'kill -TERM $PID 2>/dev/null || true; wait $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/14318) 2>/dev/null && break; sleep 0.1; done
if [ "$SC" = http-drop ]; then
  LOAD=(--h1 -c 64 -m 1 -d "$PAYLOADS/traces.pb" -H 'content-type: application/x-protobuf' http://127.0.0.1:14318/v1/traces)
else
  LOAD=(-c 8 -m 64 -d "$PAYLOADS/traces.grpc" -H 'content-type: application/grpc' -H 'te: trailers'
        http://127.0.0.1:14317/opentelemetry.proto.collector.trace.v1.TraceService/Export)
fi
if [ -n "${RATE:-}" ]; then
  CONNS=8; [ "$SC" = http-drop ] && CONNS=64
  LOAD=(--rps $(( (RATE / 100 + CONNS - 1) / CONNS )) "${LOAD[@]}")
fi
taskset -c 1 h2load -t 1 -D $((SECS + 4)) "${LOAD[@]}" > "$OUT/h2load.txt" 2>&1 &
LG=$!
sleep 2
perf record -F "$FREQ" --call-graph dwarf,16384 -p "$PID" -o "$OUT/perf.data" -- sleep "$SECS" 2> "$OUT/perf-record.txt"
wait $LG || true
fi
perf report -i "$OUT/perf.data" --no-children --sort symbol --stdio --percent-limit 0.7 -g none 2>/dev/null \
  | grep -v '^$' > "$OUT/self.txt"
perf report -i "$OUT/perf.data" --children --sort symbol --stdio --percent-limit 3 -g none 2>/dev/null \
  | grep -v '^$' > "$OUT/children.txt"
# self time per crate: the first path segment of the demangled symbol (std/core/alloc, tokio, prost, ...)
perf report -i "$OUT/perf.data" --no-children --sort symbol --stdio -g none 2>/dev/null \
  | awk '/^ +[0-9.]+%/ { p=$1; sub("%","",p); $1=""; $2=""; s=$0; sub(/^ +/,"",s);
         c=s; sub(/^</,"",c); sub(/^_</,"",c); split(c, a, "::"); k=a[1]; if (k ~ /^0x|^\[/) k="(unknown/kernel)";
         t[k]+=p } END { for (k in t) printf "%6.2f%%  %s\n", t[k], k }' | sort -rn | head -25 > "$OUT/crates.txt"
if [ "$SC" = filelog ]; then echo "sink after ${SECS}s of perf (started 1 s in): $(cat "$OUT/sink-stats.json")"
else grep -E '^requests:|^finished' "$OUT/h2load.txt"; fi
echo "== top self"; head -45 "$OUT/self.txt"
echo "== per crate"; cat "$OUT/crates.txt"
echo "results in $OUT"
