#!/usr/bin/env bash
# delta-scenario.sh -- otlake's OTLP -> batch -> delta (local files, zstd) scenario, and idle, measured
# the way /work/shared/bench/run-peer-bench.sh measures (no peer writes Delta, so the shared harness has no
# such scenario): a fresh daemon per run pinned to CPU 0 under /usr/bin/time -v, h2load pinned to CPU 1 with
# the harness's pre-encoded payloads, CPU = utime+stime of all the daemon's threads from /proc/PID/stat,
# peak RSS = VmHWM. Items are counted as rows that LANDED in the Delta table (numRecords of the commits'
# add actions), not as h2load's answers: h2load cannot see a gRPC error status (trailers).
#
#   bench/delta-scenario.sh                       # grpc, fixed 50k spans/s and sat, 3 reps, 10 s windows
#   bench/delta-scenario.sh -l idle -d 30         # idle: default sidecar config, no load
#   FORWARD_BIN=/tmp/otlake-fwd bench/delta-scenario.sh -l idle -l idle-forward -d 10 -r 3
#                                                 # idle-forward: the forwarding-only build (cargo build --release
#                                                 # -p otlake --no-default-features --features otlp,mimalloc) with
#                                                 # OTLP -> batch -> otlp exporter (to a port nobody listens on)
#   bench/delta-scenario.sh -p http -l fixed -r 5
#   bench/delta-scenario.sh -l filelog -r 3       # filelog -> delta: drain the harness's 1 M-line NDJSON file
#                                                 # (json_parser -> batch -> delta), CPU-s per million lines
#   bench/delta-scenario.sh -p http -x plain -x redaction   # OTLP -> [redaction ->] batch -> delta, alternating
#                                                 # in one run: redaction is the GenAI sidecar's section
#   bench/delta-scenario.sh -s metrics -v v1 -v v2 -b /tmp/otlake-before   # metrics into v1 and v2 tables, with
#                                                 # a second binary (contestant otlake-before) in the same run
#   bench/delta-scenario.sh --table -r 2 -d 8     # issue 18's whole table in one command: rotel OTLP/gRPC -> drop
#                                                 # (the shared harness, fixed and sat) next to otlake gRPC ->
#                                                 # batch -> delta for traces, logs and metrics, v1 and v2, and idle;
#                                                 # DIR/table.md has the ratios to rotel's drop
#
# Options: -p grpc|http (protocol of the load; default grpc)  -l fixed|sat|idle|idle-forward|filelog (repeatable;
#   default fixed sat). Idle rows note VmRSS and its parts RssAnon (heap, stacks) and RssFile (code and data of
#   the binary and libraries touched so far).
#   -x plain|redaction (repeatable; default plain): the processors in front of batch for fixed/sat loads
#   -s traces|logs|metrics (repeatable; default traces): the signal of fixed/sat loads, with the harness's
#      traces and logs payloads and bench/make-metrics-payload.py's metrics payload (100 items a request each)
#   -v v1|v2 (repeatable; default v1): the Delta tables' schema_version for fixed/sat loads
#   -b BIN  a second otlake binary measured in the same run for the same fixed/sat loads (contestant
#      otlake-before: the build before a change)
#   --table  = -s traces -s logs -s metrics -v v1 -v v2 -l fixed -l sat -l idle, plus rotel OTLP -> drop from the
#      shared harness (run-peer-bench.sh -c rotel, fixed and sat, one rep per rep here), and DIR/table.md
#   -r REPS (3)  -d SECONDS (10)  --rate N spans/s for fixed (50000)  -o DIR (results/delta-YYYYmmdd-HHMMSS)
#   --max-latency D  the delta exporter's max_latency (default 500ms; the shipped default is 2s, which with a
#                   fixed offered load keeps ~4x more spans in memory)
# Environment: OTLAKE_BIN (target/release/otlake), FORWARD_BIN (the forwarding-only build for idle-forward;
#   default OTLAKE_BIN), PRELOAD (a malloc .so to LD_PRELOAD, e.g. mimalloc), SHARED_BENCH (/work/shared/bench), WARM (2),
#   SAT_GRPC ("-c 8 -m 128"), SAT_HTTP ("--h1 -c 512 -m 1"), FIX_GRPC ("-c 10 -m 64"), FIX_HTTP_CLIENTS (250),
#   QUIET_WAIT (30), PRIO ("nice -n -15" as root), CONTESTANT_CPU (0), LOAD_CPU (1), HTTP_PORT (14318),
#   GRPC_PORT (14317), METRICS_PORT (14888), HEALTH_PORT (14133), SINK_PORT (24318) (HTTP, gRPC and sink ports also
#   go to the shared harness).
# Output: DIR/results.tsv (the harness's columns), DIR/summary.md (the harness's summarize.py), DIR/runs/*,
#   DIR/table.md (bench/ratios.py --reference: every row against rotel's OTLP -> drop of the same load, when rotel ran).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SHARED_BENCH=${SHARED_BENCH:-/work/shared/bench}
PY=$SHARED_BENCH/.venv/bin/python
PAYLOADS=${PAYLOADS:-$SHARED_BENCH/payloads}
OTLAKE_BIN=${OTLAKE_BIN:-$REPO/target/release/otlake}
FORWARD_BIN=${FORWARD_BIN:-$OTLAKE_BIN}
PROTO=grpc REPS=3 DUR=10 RATE=50000 OUT="" MAX_LATENCY=500ms
LOADS=() VARIANTS=() SIGNALS=() VERSIONS=() BEFORE_BIN="" TABLE=""
METRICS_PAYLOADS=${METRICS_PAYLOADS:-$HERE/payloads}
WARM=${WARM:-2}
QUIET_WAIT=${QUIET_WAIT:-30}
SAT_GRPC=${SAT_GRPC:-"-c 8 -m 128"}
SAT_HTTP=${SAT_HTTP:-"--h1 -c 512 -m 1"}
FIX_GRPC=${FIX_GRPC:-"-c 10 -m 64"}
FIX_HTTP_CLIENTS=${FIX_HTTP_CLIENTS:-250}
CONTESTANT_CPU=${CONTESTANT_CPU:-0} LOAD_CPU=${LOAD_CPU:-1}
HTTP_PORT=${HTTP_PORT:-14318} GRPC_PORT=${GRPC_PORT:-14317} METRICS_PORT=${METRICS_PORT:-14888} HEALTH_PORT=${HEALTH_PORT:-14133}
SINK_PORT=${SINK_PORT:-24318}  # only checked free by the shared harness when rotel runs
while [ $# -gt 0 ]; do
  case "$1" in
    -p) PROTO=$2; shift 2 ;;
    -l) LOADS+=("$2"); shift 2 ;;
    -x) VARIANTS+=("$2"); shift 2 ;;
    -s) SIGNALS+=("$2"); shift 2 ;;
    -v) VERSIONS+=("$2"); shift 2 ;;
    -b) BEFORE_BIN=$2; shift 2 ;;
    --table) TABLE=1; shift ;;
    -r) REPS=$2; shift 2 ;;
    -d) DUR=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --max-latency) MAX_LATENCY=$2; shift 2 ;;
    -o) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
if [ -n "$TABLE" ]; then
  [ ${#SIGNALS[@]} -eq 0 ] && SIGNALS=(traces logs metrics)
  [ ${#VERSIONS[@]} -eq 0 ] && VERSIONS=(v1 v2)
  [ ${#LOADS[@]} -eq 0 ] && LOADS=(fixed sat idle)
fi
[ ${#LOADS[@]} -eq 0 ] && LOADS=(fixed sat)
[ ${#VARIANTS[@]} -eq 0 ] && VARIANTS=(plain)
[ ${#SIGNALS[@]} -eq 0 ] && SIGNALS=(traces)
[ ${#VERSIONS[@]} -eq 0 ] && VERSIONS=(v1)
BINS=("otlake=$OTLAKE_BIN"); [ -n "$BEFORE_BIN" ] && BINS+=("otlake-before=$BEFORE_BIN")
for t in h2load taskset /usr/bin/time "$PY" "$OTLAKE_BIN" "$FORWARD_BIN" ${BEFORE_BIN:+"$BEFORE_BIN"}; do
  command -v "$t" >/dev/null || { echo "missing $t (run $SHARED_BENCH/install-peers.sh, build otlake)" >&2; exit 2; }
done
OUT=${OUT:-$HERE/results/delta-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT/runs"; OUT=$(cd "$OUT" && pwd)
TSV=$OUT/results.tsv
TICK=$(getconf CLK_TCK)
if [[ " ${SIGNALS[*]} " == *" metrics "* ]] && [ ! -f "$METRICS_PAYLOADS/metrics.grpc" ]; then
  SHARED_BENCH=$SHARED_BENCH "$PY" "$HERE/make-metrics-payload.py" --out "$METRICS_PAYLOADS" > /dev/null
fi
# items per request of each signal's payload
items_per_request() {
  case $1 in
    traces) "$PY" -c "import json;print(json.load(open('$PAYLOADS/manifest.json'))['spans_per_request'])" ;;
    logs) "$PY" -c "import json;print(json.load(open('$PAYLOADS/manifest.json'))['logs_per_request'])" ;;
    metrics) "$PY" -c "import json;print(json.load(open('$METRICS_PAYLOADS/manifest.json'))['points_per_request'])" ;;
  esac
}
if [ -z "${PRIO+x}" ]; then PRIO=""; [ "$(id -u)" = 0 ] && PRIO="nice -n -15"; fi
PIN_C="$PRIO taskset -c $CONTESTANT_CPU"; PIN_L="$PRIO taskset -c $LOAD_CPU"

cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
status_kb() { awk -v k="^$2:" '$0 ~ k {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { local i; for i in $(seq 1 300); do port_open "$1" && return 0; sleep 0.1; done; return 1; }
now() { date +%s.%N; }
sys_busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }
quiet_wait() {
  local t=0 a b
  while [ "$t" -lt "$QUIET_WAIT" ]; do
    a=$(sys_busy); sleep 1; b=$(sys_busy)
    [ $(( (b - a) * 100 / TICK )) -lt 15 ] && return 0
    t=$((t + 1))
  done
  echo "  (machine still busy after ${QUIET_WAIT}s: measuring anyway, see other_util)" >&2
}
# rows committed to the Delta table at $1 (sum of numRecords over the log's add actions)
delta_rows() {
  "$PY" - "$1" <<'PYROWS'
import glob, json, os, sys
n = 0
for f in glob.glob(os.path.join(sys.argv[1], "_delta_log", "*.json")):
    for line in open(f):
        a = json.loads(line).get("add")
        if a and a.get("stats"):
            n += json.loads(a["stats"]).get("numRecords", 0)
print(n)
PYROWS
}

# rows once the table has stopped growing for 1 s (bounded: 30 s): the drain after a load
settled_rows() {
  local prev=-1 cur=0 i
  for i in $(seq 1 30); do cur=$(delta_rows "$1"); [ "$cur" = "$prev" ] && break; prev=$cur; sleep 1; done
  echo "$cur"
}

TPID="" CPID=""
stop_daemon() {
  [ -n "$CPID" ] && kill -TERM "$CPID" 2>/dev/null || true
  local i; for i in $(seq 1 300); do kill -0 "$TPID" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$TPID" 2>/dev/null && kill -KILL "$CPID" 2>/dev/null || true
  wait "$TPID" 2>/dev/null || true
  TPID="" CPID=""
}
trap 'stop_daemon 2>/dev/null || true' EXIT INT TERM
start_daemon() {  # start_daemon RUN_DIR ARGS...
  local rd=$1; shift
  for p in $HTTP_PORT $GRPC_PORT; do port_open $p && { echo "port $p in use" >&2; exit 1; }; done
  $PIN_C /usr/bin/time -v -o "$rd/time-v.txt" "$@" > "$rd/otlake.log" 2>&1 &
  TPID=$!
  local i; for i in $(seq 1 100); do CPID=$(pgrep -P "$TPID" | head -1 || true); [ -n "$CPID" ] && break; sleep 0.05; done
  [ -n "$CPID" ] || { echo "otlake did not start" >&2; return 1; }
  [ -n "${NO_PORTS:-}" ] || { wait_port "$HTTP_PORT" && wait_port "$GRPC_PORT"; }
}
write_config() {  # write_config RUN_DIR VARIANT SIGNAL VERSION
  local chain="batch" redaction=""
  if [ "$2" = redaction ]; then
    chain="redaction, batch"
    # The section of configs/examples/genai-sidecar.yaml (bench/configs/redaction-section.yaml).
    redaction=$(cat "$HERE/configs/redaction-section.yaml")
  fi
  cat > "$1/otlake.yaml" <<CFG
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:$GRPC_PORT
      http:
        endpoint: 127.0.0.1:$HTTP_PORT
processors:
$redaction
  batch:
    send_batch_size: 8192
    timeout: 200ms
exporters:
  delta:
    location: $1/data
    max_latency: $MAX_LATENCY
    schema_version: $4
service:
  pipelines:
    $3:
      receivers: [otlp]
      processors: [$chain]
      exporters: [delta]
  telemetry:
    metrics:
      address: 127.0.0.1:$METRICS_PORT
    health:
      endpoint: 127.0.0.1:$HEALTH_PORT
CFG
}

{
  echo "date: $(date -u +%FT%TZ)"; echo "kernel: $(uname -r)"; echo "nproc: $(nproc)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
  echo "otlake: $("$OTLAKE_BIN" --version) ($OTLAKE_BIN, commit $(git -C "$REPO" rev-parse --short HEAD))"
  [ -z "$BEFORE_BIN" ] || echo "otlake-before: $("$BEFORE_BIN" --version) ($BEFORE_BIN)"
  echo "h2load: $(h2load --version)"; echo "preload: ${PRELOAD:-none}"; echo "proto=$PROTO variants=${VARIANTS[*]} signals=${SIGNALS[*]} versions=${VERSIONS[*]} reps=$REPS dur=${DUR}s warm=${WARM}s rate=$RATE max_latency=$MAX_LATENCY prio='$PRIO'"
  echo "SAT_GRPC=$SAT_GRPC SAT_HTTP=$SAT_HTTP FIX_GRPC=$FIX_GRPC FIX_HTTP_CLIENTS=$FIX_HTTP_CLIENTS"
} > "$OUT/env.txt"
cat "$OUT/env.txt"
printf 'contestant\tscenario\tload\trep\toffered_per_s\titems\titems_per_s\tcpu_s\tcpu_util\tcpu_s_per_M\tvmhwm_mb\tmaxrss_mb\treq_ok\treq_failed\tdelivered\tlat_mean\tloadgen_cpu_s\tother_util\n' > "$TSV"

# filelog -> delta: the whole NDJSON file from the beginning, timed from the daemon's start until every line is a
# row of otel_logs (the drain load of the harness's filelog-export scenario, with Delta instead of the sink).
run_filelog() {
  local rep=$1 rd=$OUT/runs/filelog.$rep lines
  lines=$("$PY" -c "import json;print(json.load(open('$PAYLOADS/manifest.json'))['filelog_lines'])")
  mkdir -p "$rd"; quiet_wait
  cat > "$rd/otlake.yaml" <<CFG
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
    timeout: 200ms
exporters:
  delta:
    location: $rd/data
    max_latency: $MAX_LATENCY
service:
  pipelines:
    logs:
      receivers: [filelog]
      processors: [batch]
      exporters: [delta]
  telemetry:
    logs:
      level: warn
    metrics:
      address: 127.0.0.1:$METRICS_PORT
    health:
      endpoint: 127.0.0.1:$HEALTH_PORT
CFG
  local t0 t1 sb0 sb1 c1 rows=0 i
  t0=$(now); sb0=$(sys_busy)
  NO_PORTS=1 start_daemon "$rd" env ${PRELOAD:+LD_PRELOAD=$PRELOAD} "$OTLAKE_BIN" run --config "$rd/otlake.yaml" || return 0
  for i in $(seq 1 1200); do
    rows=$([ -d "$rd/data/otel_logs/_delta_log" ] && $PIN_L bash -c "$(declare -f delta_rows); PY=$PY delta_rows $rd/data/otel_logs" || echo 0)
    [ "$rows" -ge "$lines" ] && break; sleep 0.5
  done
  t1=$(now); c1=$(cpu_ticks "$CPID"); sb1=$(sys_busy)
  local hwm; hwm=$(status_kb "$CPID" VmHWM)
  stop_daemon
  local cpu_s wall other perm="-"
  cpu_s=$(echo "$c1 / $TICK" | bc -l); wall=$(echo "$t1 - $t0" | bc -l)
  [ "$rows" -gt 0 ] && perm=$(printf '%.2f' "$(echo "$cpu_s * 1000000 / $rows" | bc -l)")
  other=$(echo "100 * (($sb1 - $sb0) / $TICK - $cpu_s) / $wall" | bc -l)
  echo "parquet files: $(find "$rd/data/otel_logs" -name '*.parquet' | wc -l), table bytes: $(du -sb "$rd/data/otel_logs" | cut -f1)" > "$rd/table.txt"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%.0f\t%.2f\t%.0f%%\t%s\t%.1f\t%.1f\t0\t0\t%s\t-\t0\t%.0f%%\n' \
    otlake filelog-delta drain "$rep" drain "$rows" "$(echo "$rows / $wall" | bc -l)" "$cpu_s" \
    "$(echo "100 * $cpu_s / $wall" | bc -l)" "$perm" "$(echo "$hwm/1024" | bc -l)" \
    "$(echo "$(awk -F': ' '/Maximum resident/{print $2}' "$rd/time-v.txt")/1024" | bc -l)" \
    "$rows/$lines" "$other" | tee -a "$TSV"
  rm -rf "$rd/data"
}

run_idle() {  # run_idle REP [forward]
  local rep=$1 kind=${2:-default} rd=$OUT/runs/idle-${2:-default}.$rep
  mkdir -p "$rd"; quiet_wait
  if [ "$kind" = forward ]; then
    # The forwarding-only build: OTLP in, batch, the otlp exporter (configs/examples/otlp.yaml's shape) to a
    # gateway port nobody listens on; idle, it sends nothing.
    cat > "$rd/otlake.yaml" <<CFG
receivers:
  otlp:
    protocols:
      grpc: {endpoint: 127.0.0.1:$GRPC_PORT}
      http: {endpoint: 127.0.0.1:$HTTP_PORT}
processors:
  batch: {timeout: 200ms, send_batch_size: 8192, send_when_idle: true}
exporters:
  otlp:
    endpoint: 127.0.0.1:$(( GRPC_PORT + 100 ))
    tls: {insecure: true}
service:
  pipelines:
    traces: {receivers: [otlp], processors: [batch], exporters: [otlp]}
    logs: {receivers: [otlp], processors: [batch], exporters: [otlp]}
    metrics: {receivers: [otlp], processors: [batch], exporters: [otlp]}
  telemetry:
    metrics: {address: 127.0.0.1:$METRICS_PORT}
    health: {endpoint: 127.0.0.1:$HEALTH_PORT}
CFG
    start_daemon "$rd" "$FORWARD_BIN" run --config "$rd/otlake.yaml" || return 0
  else
    # The shipped default (configs/sidecar.yaml embedded): OTLP in, size_limit, batch, delta under ./data.
    start_daemon "$rd" env OTLAKE_DATA="$rd/data" OTLAKE_GRPC_ENDPOINT=127.0.0.1:$GRPC_PORT \
        OTLAKE_HTTP_ENDPOINT=127.0.0.1:$HTTP_PORT OTLAKE_METRICS_ADDRESS=127.0.0.1:$METRICS_PORT \
        OTLAKE_HEALTH_ENDPOINT=127.0.0.1:$HEALTH_PORT "$OTLAKE_BIN" run || return 0
  fi
  sleep 3
  local c0 c1 t0 t1 sb0 sb1 rss hwm anon file
  c0=$(cpu_ticks "$CPID"); t0=$(now); sb0=$(sys_busy)
  sleep "$DUR"
  c1=$(cpu_ticks "$CPID"); t1=$(now); sb1=$(sys_busy)
  rss=$(status_kb "$CPID" VmRSS); hwm=$(status_kb "$CPID" VmHWM)
  anon=$(status_kb "$CPID" RssAnon); file=$(status_kb "$CPID" RssFile)
  cp "/proc/$CPID/smaps_rollup" "$rd/smaps_rollup.txt" 2>/dev/null || true
  stop_daemon
  local cpu_s wall other
  cpu_s=$(echo "($c1 - $c0) / $TICK" | bc -l); wall=$(echo "$t1 - $t0" | bc -l)
  other=$(echo "100 * (($sb1 - $sb0) / $TICK - $cpu_s) / $wall" | bc -l)
  printf '%s\t%s\t%s\t%s\t0\t0\t0\t%.2f\t%.1f%%\t-\t%.1f\t%.1f\t0\t0\t-\tVmRSS=%.1fMB(anon=%.1f,file=%.1f)\t0\t%.0f%%\n' \
    otlake "idle-$kind" idle "$rep" \
    "$cpu_s" "$(echo "100 * $cpu_s / $wall" | bc -l)" "$(echo "$hwm/1024" | bc -l)" \
    "$(echo "$(awk -F': ' '/Maximum resident/{print $2}' "$rd/time-v.txt")/1024" | bc -l)" \
    "$(echo "$rss/1024" | bc -l)" "$(echo "$anon/1024" | bc -l)" "$(echo "$file/1024" | bc -l)" "$other" | tee -a "$TSV"
  rm -rf "$rd/data"
}

# run_load LOAD REP VARIANT SIGNAL VERSION CONTESTANT=BIN
run_load() {
  local load=$1 rep=$2 variant=$3 signal=$4 version=$5 name=${6%%=*} bin=${6#*=}
  local sc="$PROTO-$signal-delta" rd=$OUT/runs/$name.$PROTO.$signal.$version.$variant.$load.$rep
  [ "$variant" = plain ] || sc="$PROTO-$signal-$variant-delta"
  [ "$version" = v1 ] || sc="$sc-$version"
  local table=otel_$signal; [ "$signal" = traces ] && table=otel_spans
  local service=$signal payloads=$PAYLOADS
  case $signal in traces) service=trace.v1.TraceService ;; logs) service=logs.v1.LogsService ;;
    metrics) service=metrics.v1.MetricsService; payloads=$METRICS_PAYLOADS ;; esac
  mkdir -p "$rd"; write_config "$rd" "$variant" "$signal" "$version"; quiet_wait
  start_daemon "$rd" env ${PRELOAD:+LD_PRELOAD=$PRELOAD} "$bin" run --config "$rd/otlake.yaml" || return 0
  local url body hdr=() flags=() offered SPR reqrate smoke=ok
  SPR=$(items_per_request "$signal"); reqrate=$(( RATE / SPR ))
  # otlp-smoke.py knows traces and logs; a metrics run shows a failure as no rows landed.
  smoke_export() { [ "$signal" = metrics ] || "$PY" "$SHARED_BENCH/otlp-smoke.py" "$@" "$signal" "$payloads/$signal.pb"; }
  if [ "$PROTO" = grpc ]; then
    url=http://127.0.0.1:$GRPC_PORT/opentelemetry.proto.collector.$service/Export
    body=$payloads/$signal.grpc; hdr=(-H 'content-type: application/grpc' -H 'te: trailers')
    smoke_export grpc 127.0.0.1:$GRPC_PORT > "$rd/smoke.txt" 2>&1 || smoke=failed
    if [ "$load" = fixed ]; then read -r -a flags <<< "$FIX_GRPC"; local c=${flags[1]}; flags+=(--rps $(( reqrate / c ))); offered=$(( reqrate / c * c * SPR ))
    else read -r -a flags <<< "$SAT_GRPC"; offered=sat; fi
  else
    url=http://127.0.0.1:$HTTP_PORT/v1/$signal
    body=$payloads/$signal.pb; hdr=(-H 'content-type: application/x-protobuf')
    smoke_export http http://127.0.0.1:$HTTP_PORT > "$rd/smoke.txt" 2>&1 || smoke=failed
    if [ "$load" = fixed ]; then
      local per=$(( (reqrate + FIX_HTTP_CLIENTS - 1) / FIX_HTTP_CLIENTS ))
      flags=(--h1 -c "$FIX_HTTP_CLIENTS" -m 1 --rps "$per"); offered=$(( per * FIX_HTTP_CLIENTS * SPR ))
    else read -r -a flags <<< "$SAT_HTTP"; offered=sat; fi
  fi
  [ "$smoke" = ok ] || { echo "  smoke export failed: $(tail -1 "$rd/smoke.txt")" >&2; stop_daemon; return 0; }
  $PIN_L h2load -t 1 -D "$WARM" "${flags[@]}" -d "$body" "${hdr[@]}" "$url" > "$rd/h2load-warm.txt" 2>&1 || true
  local r0 r1 c0 c1 t0 t1 te sb0 sb1 lg
  r0=$(settled_rows "$rd/data/$table")
  c0=$(cpu_ticks "$CPID"); t0=$(now); sb0=$(sys_busy)
  $PIN_L /usr/bin/time -f 'loadgen_cpu %U %S' -o "$rd/loadgen-cpu.txt" \
      h2load -t 1 -D "$DUR" "${flags[@]}" -d "$body" "${hdr[@]}" "$url" > "$rd/h2load.txt" 2>&1 || true
  t1=$(now)
  r1=$(settled_rows "$rd/data/$table"); c1=$(cpu_ticks "$CPID"); sb1=$(sys_busy); te=$(now)
  local hwm; hwm=$(status_kb "$CPID" VmHWM)
  stop_daemon
  local ok fail lat
  ok=$(sed -n 's/^requests: .* \([0-9]*\) succeeded, \([0-9]*\) failed.*/\1/p' "$rd/h2load.txt"); ok=${ok:-0}
  fail=$(sed -n 's/^requests: .* \([0-9]*\) succeeded, \([0-9]*\) failed.*/\2/p' "$rd/h2load.txt"); fail=${fail:-0}
  lat=$(awk '/^time for request:/{print $6}' "$rd/h2load.txt"); lat=${lat:--}
  lg=$(awk '{s+=$2+$3} END{printf "%.2f", s+0}' "$rd/loadgen-cpu.txt")
  local items=$(( r1 - r0 )) cpu_s wall
  cpu_s=$(echo "($c1 - $c0) / $TICK" | bc -l); wall=$(echo "$t1 - $t0" | bc -l)
  local perm="-"; [ "$items" -gt 0 ] && perm=$(printf '%.2f' "$(echo "$cpu_s * 1000000 / $items" | bc -l)")
  local other; other=$(echo "100 * (($sb1 - $sb0) / $TICK - $cpu_s - $lg) / ($te - $t0)" | bc -l)
  local files; files=$(find "$rd/data/$table" -name '*.parquet' | wc -l)
  echo "parquet files: $files, table bytes: $(du -sb "$rd/data/$table" | cut -f1)" > "$rd/table.txt"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%.0f\t%.2f\t%.0f%%\t%s\t%.1f\t%.1f\t%s\t%s\t%s\t%s\t%s\t%.0f%%\n' \
    "$name" "$sc" "$load" "$rep" "$offered" "$items" "$(echo "$items / $wall" | bc -l)" "$cpu_s" \
    "$(echo "100 * $cpu_s / $wall" | bc -l)" "$perm" "$(echo "$hwm/1024" | bc -l)" \
    "$(echo "$(awk -F': ' '/Maximum resident/{print $2}' "$rd/time-v.txt")/1024" | bc -l)" \
    "$ok" "$fail" "$items/$(( ok * SPR ))" "$lat" "$lg" "$other" | tee -a "$TSV"
  rm -rf "$rd/data"
}

# rotel OTLP -> drop through the shared harness (its own method, its gRPC/HTTP saturation flags), one rep at a
# time so that it interleaves with otlake's runs; its rows go into this run's results.tsv.
run_rotel() {
  local rep=$1 rd=$OUT/runs/rotel.$rep loads=()
  for load in "${LOADS[@]}"; do case $load in fixed|sat) loads+=(-l "$load") ;; esac; done
  [ ${#loads[@]} -gt 0 ] || return 0
  HTTP_PORT=$HTTP_PORT GRPC_PORT=$GRPC_PORT SINK_PORT=$SINK_PORT WARM=$WARM QUIET_WAIT=$QUIET_WAIT \
    "$SHARED_BENCH/run-peer-bench.sh" -c rotel -s "$PROTO-traces" "${loads[@]}" -r 1 -d "$DUR" --rate "$RATE" \
      -o "$rd" > "$rd.log" 2>&1 || { echo "  rotel run failed: see $rd.log" >&2; return 0; }
  awk -F'\t' -v OFS='\t' -v rep="$rep" 'NR > 1 { $4 = rep; print }' "$rd/results.tsv" | tee -a "$TSV"
}

for rep in $(seq 1 "$REPS"); do
  [ -z "$TABLE" ] || run_rotel "$rep"
  for load in "${LOADS[@]}"; do
    case $load in
      idle) run_idle "$rep" ;;
      idle-forward) run_idle "$rep" forward ;;
      filelog) run_filelog "$rep" ;;
      *) for signal in "${SIGNALS[@]}"; do for version in "${VERSIONS[@]}"; do for variant in "${VARIANTS[@]}"; do
           for bin in "${BINS[@]}"; do run_load "$load" "$rep" "$variant" "$signal" "$version" "$bin"; done
         done; done; done ;;
    esac
  done
done
"$PY" "$SHARED_BENCH/summarize.py" "$TSV" > "$OUT/summary.md"
echo; cat "$OUT/summary.md"
if grep -q "^rotel" "$TSV"; then
  "$PY" "$HERE/ratios.py" "$TSV" rotel --reference "$PROTO-traces" > "$OUT/table.md"
  echo; cat "$OUT/table.md"
fi
echo "results in $OUT"
