#!/usr/bin/env bash
# Creates ./.venv with the real OTLP clients and Delta/DuckDB readers the tests use. Idempotent: does nothing
# when the venv already matches tests/requirements.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
stamp=.venv/.requirements.sha
want=$(sha256sum tests/requirements.txt | cut -d' ' -f1)
if [ -x .venv/bin/python ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
"$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
echo "$want" > "$stamp"
echo "venv ready: $(.venv/bin/python --version), $(wc -l < tests/requirements.txt) requirement lines"
