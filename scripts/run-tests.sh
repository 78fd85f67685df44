#!/usr/bin/env bash
# Runs the given test files, then the key-material scan (test/final/) whatever the tests did: a
# failing test must not hide a key in a log. The exit status reports both: 0 only if the tests
# and the scan passed. QKS_TEST_LOG_ROOT (set by scripts/test.sh, or made here) holds the ledger,
# the archived logs and this run's output.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ -z "${QKS_TEST_LOG_ROOT:-}" ]; then
  export QKS_TEST_LOG_ROOT="$(mktemp -d "${TMPDIR:-/tmp}/qks-test-logs-XXXXXX")"
  trap 'rm -rf "$QKS_TEST_LOG_ROOT"' EXIT
fi
mkdir -p "$QKS_TEST_LOG_ROOT"

node --test --test-reporter=spec --test-timeout=300000 "$@" 2>&1 | tee "$QKS_TEST_LOG_ROOT/test-output.log"
tests=${PIPESTATUS[0]}

echo "== key material in logs"
node --test --test-reporter=spec dist/test/final/*.test.js
scan=$?

# The suite's own summary last, where readers (and CI) look for it.
echo "== summary"
tail -n 8 "$QKS_TEST_LOG_ROOT/test-output.log"
verdict() { [ "$1" -eq 0 ] && echo "passed" || echo "FAILED (exit $1)"; }
echo "tests: $(verdict "$tests"); key-material scan: $(verdict "$scan")"
[ "$tests" -eq 0 ] && [ "$scan" -eq 0 ]
