#!/usr/bin/env bash
# Installs the object-store servers the delta exporter's tests start on 127.0.0.1, into <workspace>/.test-tools
# (git-ignored). Idempotent: does nothing when the pinned versions are already there.
#   - Azurite (npm `azurite`): Azure Blob Storage emulator.
#   - moto's S3 server (PyPI `moto[server]`): S3 with conditional writes (If-None-Match), as delta-rs commits need.
#   - PyPI `azure-storage-blob` beside moto: the tests create Azurite containers with it.
set -euo pipefail
root=$(cd "$(dirname "$0")/../../../.." && pwd)
tools="$root/.test-tools"
AZURITE_VERSION=3.37.0
MOTO_VERSION=5.2.5
AZURE_BLOB_VERSION=12.31.1
mkdir -p "$tools"

if [ ! -x "$tools/node_modules/.bin/azurite-blob" ] || \
   [ "$(cat "$tools/.azurite-version" 2>/dev/null)" != "$AZURITE_VERSION" ]; then
  echo "installing azurite $AZURITE_VERSION into $tools"
  npm install --prefix "$tools" --no-audit --no-fund --silent "azurite@$AZURITE_VERSION"
  echo "$AZURITE_VERSION" > "$tools/.azurite-version"
fi

if [ ! -x "$tools/moto/bin/moto_server" ] || \
   [ "$(cat "$tools/.moto-version" 2>/dev/null)" != "$MOTO_VERSION+$AZURE_BLOB_VERSION" ]; then
  echo "installing moto[server] $MOTO_VERSION and azure-storage-blob $AZURE_BLOB_VERSION into $tools/moto"
  python3 -m venv "$tools/moto"
  "$tools/moto/bin/python" -m pip install --quiet --disable-pip-version-check \
    "moto[server]==$MOTO_VERSION" "azure-storage-blob==$AZURE_BLOB_VERSION"
  echo "$MOTO_VERSION+$AZURE_BLOB_VERSION" > "$tools/.moto-version"
fi
echo "test servers ready in $tools: azurite-blob $("$tools/node_modules/.bin/azurite-blob" --version), moto $MOTO_VERSION"
