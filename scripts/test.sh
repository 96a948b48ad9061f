#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what it needs, then runs every test.
#   - Rust crates: fetched by cargo (Cargo.lock is committed)
#   - Python test clients and table readers: into ./.venv (scripts/setup-venv.sh)
#   - Object-store test servers (Azurite, an S3-compatible server): into ./.test-tools
# Then: `cargo fmt --check` and `cargo clippy -D warnings` (what the brief promises), a compile check of the
# forwarding-only build (no Delta stack), and `cargo test --workspace --lib --bins --tests` (unit tests,
# per-component tests, the end-to-end suite in tests/e2e; doctests are skipped: the crates have none that run,
# and each costs a rustdoc build).
set -euo pipefail
cd "$(dirname "$0")/.."
# A cold run gains nothing from incremental compilation, and its caches cost gigabytes of disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

echo "== Python test clients (./.venv)"
./scripts/setup-venv.sh
export OTLAKE_PYTHON="$PWD/.venv/bin/python"

if [ -x exporters/delta/tests/servers/install.sh ]; then
  echo "== object-store test servers (./.test-tools)"
  exporters/delta/tests/servers/install.sh
fi

echo "== cargo fmt --check"
cargo fmt --all --check

echo "== cargo clippy (the workspace lint table, warnings denied)"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== the forwarding-only build compiles (no Delta stack)"
cargo check -p otlake --no-default-features --features otlp --locked

echo "== disk used by the build so far: $(du -sh target 2>/dev/null | cut -f1)"

echo "== cargo test --workspace"
# Four tests at a time within each test binary: several start daemons and Python clients, and CI has 2 cores.
cargo test --workspace --locked --lib --bins --tests -- --test-threads="${OTLAKE_TEST_THREADS:-4}"

echo "== disk used by the build: $(du -sh target 2>/dev/null | cut -f1)"
