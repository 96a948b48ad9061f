# Contestant: rotel with its own redaction processor, for /work/shared/bench/run-peer-bench.sh: rotel.sh of the
# harness plus `--otlp-with-trace-processor` / `--otlp-with-logs-processor` running rotel_redaction.py (beside
# this file), which loads rotel's redaction_processor.py from $ROTEL_REDACTION_PROCESSOR (rotel's repository,
# rotel_python_processor_sdk/processors/). The counterpart of otlake.sh with OTLAKE_PROCESSORS=redaction.
NAME=rotel-redaction
_ROTEL_REDACTION_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=/dev/null
source "$BENCH_DIR/contestants/rotel.sh"
NAME=rotel-redaction
SUPPORTS="http-traces grpc-traces http-logs"
: "${ROTEL_REDACTION_PROCESSOR:?set ROTEL_REDACTION_PROCESSOR to the path of redaction_processor.py from the rotel repository}"
export ROTEL_REDACTION_PROCESSOR

# rotel.sh's contestant_cmd, renamed, so that the one below can add to its command line.
_rotel_base=$(declare -f contestant_cmd)
eval "${_rotel_base/contestant_cmd/_rotel_cmd}"
contestant_cmd() {
  echo "$(_rotel_cmd) --otlp-with-trace-processor $_ROTEL_REDACTION_DIR/rotel_redaction.py" \
       "--otlp-with-logs-processor $_ROTEL_REDACTION_DIR/rotel_redaction.py"
}
