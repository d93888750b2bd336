#!/usr/bin/env bash
# Runs every test on a fresh machine: makes sure PostgreSQL answers (starting the local
# cluster if it is installed but stopped), then builds and runs the whole workspace's tests,
# then the schema fuzzing of scripts/fuzz.sh, then the checks a commit must pass (rustfmt, and
# clippy with warnings as errors).
# Each integration scenario runs on SQLite (temp dir) and on PostgreSQL (a database of its
# own, dropped afterwards); the Stripe emulator is started in-process on a free port.
set -euo pipefail
cd "$(dirname "$0")/.."

export TEST_POSTGRES_URL="${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

if command -v pg_isready >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "starting the local PostgreSQL cluster"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
  fi
  for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p 5432 && break
    sleep 1
  done
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked 2>&1 | tee "$log" || status=$?

# One closing line for the whole run (cargo prints one per test binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "summary: %d passed, %d failed\n", p, f }' "$log"

# Fault suite scenario 5 (docs/RELIABILITY.md): schemathesis against /openapi.json, 10,000+
# requests, no 5xx, nothing the document does not describe (scenario 6 is in the tests above).
echo "fuzz: scripts/fuzz.sh"
scripts/fuzz.sh || { echo "check failed: scripts/fuzz.sh"; status=1; }

echo "checks: cargo fmt --check, cargo clippy -D warnings"
cargo fmt --all --check || { echo "check failed: cargo fmt --check"; status=1; }
cargo clippy --workspace --all-targets --locked -- -D warnings || { echo "check failed: clippy"; status=1; }
# The production build (no emulator, no demo) must stay clean too.
cargo clippy -p sales-block --no-default-features --locked -- -D warnings || { echo "check failed: clippy (production build)"; status=1; }
exit "$status"
