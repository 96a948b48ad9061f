# Contestant: otlake with the filelog receiver's checkpoint `storage` on (filelog-export only), for
# /work/shared/bench/run-peer-bench.sh: every batch's intent is appended to the journal and fsynced before it
# is sent, and the checkpoints are saved (fsynced) as verdicts come. Run beside otlake.sh to see what that costs:
#   run-peer-bench.sh -c $PWD/bench/contestants/otlake.sh -c $PWD/bench/contestants/otlake-storage.sh \
#       -s filelog-export -l drain
# OTLAKE_FILELOG_STORAGE: the directory (default /tmp/otlake-bench-filelog-storage), emptied at each start.
OTLAKE_FILELOG_STORAGE=${OTLAKE_FILELOG_STORAGE:-/tmp/otlake-bench-filelog-storage}
# shellcheck source=otlake.sh
source "$(dirname "${BASH_SOURCE[0]}")/otlake.sh"
NAME=otlake-storage
SUPPORTS="filelog-export"
