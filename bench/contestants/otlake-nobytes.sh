# Experiment: otlake with the batch processor's byte cap off (send_batch_max_bytes: 0), so it does not compute
# every request's encoded size (Payload::encoded_len, ~13% of the CPU in HTTP traces -> drop).
source "$(dirname "${BASH_SOURCE[0]}")/otlake.sh"
NAME=otlake-nobytes
OTLAKE_BATCH_MAX_BYTES=0
