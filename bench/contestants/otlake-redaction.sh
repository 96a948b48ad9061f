# otlake with the GenAI sidecar's redaction section in front of batch (OTLAKE_PROCESSORS=redaction in otlake.sh);
# the peer counterpart is rotel-redaction.sh.
source "$(dirname "${BASH_SOURCE[0]}")/otlake.sh"
NAME=otlake-redaction
OTLAKE_PROCESSORS=redaction
