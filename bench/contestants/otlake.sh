# Contestant: otlake (this repository), for /work/shared/bench/run-peer-bench.sh.
# Sourced by the harness (bash, `set -u`); see the harness's contestants/TEMPLATE.sh for the interface.
#
#   OTLAKE_BIN   the daemon (default: target/release/otlake of this repository)
#   OTLAKE_BATCH_TIMEOUT  the batch processor's timeout (default 10ms; the peers use 200ms, see below)
#   OTLAKE_BATCH_MAX_BYTES  the batch processor's send_batch_max_bytes (default: unset, the processor's 8MiB)
#   OTLAKE_SEND_WHEN_IDLE  the batch processor's send_when_idle (default true, see below)
#   OTLAKE_WAL   a directory: put the exporter behind a write-ahead log there (sending_queue.storage: wal), so a
#                client is answered once its request is in the log rather than once exported (default: unset)
#   OTLAKE_WAL_FSYNC  the log's fsync (default true; false survives kill -9 but not a power loss)
#   OTLAKE_FILELOG_STORAGE  a directory (emptied at each start): filelog-export with checkpoint `storage` there,
#                so every batch's intent is appended and fsynced before it is sent (default: unset, no storage,
#                as the peer). bench/contestants/otlake-storage.sh sets it, to run both side by side.
#   OTLAKE_PRELOAD  a malloc .so to LD_PRELOAD (e.g. /usr/lib/x86_64-linux-gnu/libmimalloc.so.2), for experiments
#   OTLAKE_PROCESSORS  "redaction": the GenAI sidecar's redaction section (configs/examples/genai-sidecar.yaml)
#                in front of batch in both pipelines (default: unset, batch only); the peer counterpart is
#                rotel-redaction.sh
#   OTLAKE_TELEMETRY_PORTS  "METRICS HEALTH" ports of the daemon's own endpoints (default "14888 14133":
#                not the defaults 8888/13133, which tests of other checkouts may use)
#
# Pipelines as the peers run them: OTLP/HTTP + OTLP/gRPC in -> batch (8192 items or OTLAKE_BATCH_TIMEOUT) ->
#   EXPORT=blackhole: the debug exporter at verbosity basic (one summary line per batch, then dropped)
#   EXPORT=sink:      the otlphttp exporter (protobuf) to $SINK_URL with $EXPORT_COMPRESSION
# filelog-export, as the Collector's configs/otelcol-filelog.yaml: filelog on $FILELOG_PATH (start_at beginning,
#   poll_interval 50ms, json_parser body -> attributes) -> batch (8192 items / 200 ms, the peer's) -> otlphttp.
#   No checkpoint storage (the peer has none either; OTLAKE_FILELOG_STORAGE adds it); the receiver still waits
#   for the exporter's verdict.
# The daemon's own Prometheus and health endpoints stay on, as in the shipped default config.
#
# Why not 200 ms like the peers: otlake answers a client only after the exporter's verdict on the batch that
# holds its request (rotel answers on enqueue). The harness's loads are closed loops with 10-16 HTTP/1.1
# connections (one request each in flight), so with 200 ms every request waits the full timeout and a
# contestant can never take more than 16 x 100 spans / 0.2 s = 8k spans/s, whatever its speed (measured:
# 7.6k/s at 5% CPU). A short timeout still merges the requests that arrive together; send_when_idle (the
# batch leaves as soon as no further request is waiting) removes the wait altogether, as a user forwarding
# for clients that wait on their answers would configure it (configs/examples/otlp.yaml).
NAME=otlake
SUPPORTS="http-traces grpc-traces http-logs http-traces-export filelog-export"
_OTLAKE_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OTLAKE_BIN=${OTLAKE_BIN:-$_OTLAKE_REPO/target/release/otlake}
read -r _OTLAKE_METRICS_PORT _OTLAKE_HEALTH_PORT <<< "${OTLAKE_TELEMETRY_PORTS:-14888 14133}"

contestant_version() { "$OTLAKE_BIN" --version; }

# The filelog-export scenario's config.
_otlake_filelog_config() {
  local storage=""
  if [ -n "${OTLAKE_FILELOG_STORAGE:-}" ]; then
    rm -rf "$OTLAKE_FILELOG_STORAGE"; mkdir -p "$OTLAKE_FILELOG_STORAGE"
    storage="
    storage: $OTLAKE_FILELOG_STORAGE"
  fi
  cat > "$RUN_DIR/otlake.yaml" <<CFG
receivers:
  filelog:
    include: ["$FILELOG_PATH"]
    start_at: beginning
    poll_interval: 50ms
    max_log_size: 1MiB$storage
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
    endpoint: $SINK_URL
    encoding: proto
    compression: $EXPORT_COMPRESSION
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
      address: 127.0.0.1:$_OTLAKE_METRICS_PORT
    health:
      endpoint: 127.0.0.1:$_OTLAKE_HEALTH_PORT
CFG
}

contestant_cmd() {
  if [ "$SCENARIO" = filelog-export ]; then
    _otlake_filelog_config
    echo "${OTLAKE_PRELOAD:+env LD_PRELOAD=$OTLAKE_PRELOAD }$OTLAKE_BIN run --config $RUN_DIR/otlake.yaml"
    return
  fi
  local exporter
  if [ "$EXPORT" = sink ]; then
    exporter="  otlphttp:
    endpoint: $SINK_URL
    encoding: proto
    compression: $EXPORT_COMPRESSION"
    if [ -n "${OTLAKE_WAL:-}" ]; then
      rm -rf "$OTLAKE_WAL"
      exporter="$exporter
    sending_queue:
      storage: wal
      directory: $OTLAKE_WAL
      fsync: ${OTLAKE_WAL_FSYNC:-true}"
    fi
  else
    exporter="  debug:
    verbosity: basic"
  fi
  local name=${exporter%%:*}; name=${name// /}
  local chain="batch" redaction=""
  if [ "${OTLAKE_PROCESSORS:-}" = redaction ]; then
    chain="redaction, batch"
    # The section of configs/examples/genai-sidecar.yaml (bench/configs/redaction-section.yaml).
    redaction=$(cat "$_OTLAKE_REPO/bench/configs/redaction-section.yaml")
  fi
  cat > "$RUN_DIR/otlake.yaml" <<CFG
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: $OTLP_GRPC_ADDR
      http:
        endpoint: $OTLP_HTTP_ADDR
processors:
$redaction
  batch:
    send_batch_size: 8192
    timeout: ${OTLAKE_BATCH_TIMEOUT:-10ms}
    send_when_idle: ${OTLAKE_SEND_WHEN_IDLE:-true}${OTLAKE_BATCH_MAX_BYTES:+
    send_batch_max_bytes: $OTLAKE_BATCH_MAX_BYTES}
exporters:
$exporter
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [$chain]
      exporters: [$name]
    logs:
      receivers: [otlp]
      processors: [$chain]
      exporters: [$name]
  telemetry:
    logs:
      level: info
    metrics:
      address: 127.0.0.1:$_OTLAKE_METRICS_PORT
    health:
      endpoint: 127.0.0.1:$_OTLAKE_HEALTH_PORT
CFG
  echo "${OTLAKE_PRELOAD:+env LD_PRELOAD=$OTLAKE_PRELOAD }$OTLAKE_BIN run --config $RUN_DIR/otlake.yaml"
}
