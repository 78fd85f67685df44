#!/usr/bin/env bash
# The whole test suite: system packages the tests need, lint and format checks, type check and
# build, then every test. README and .ci/run call this through `npm test`.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh
[ -d node_modules ] || npm ci
# The C kernels (src/qkd/native/), rebuilt every run so that tests never load a stale build.
npm run --silent install >/dev/null

echo "== lint and format"
npx eslint .
npx prettier --check .

echo "== type check and build"
rm -rf dist
npx tsc -p tsconfig.json

echo "== tests"
# Tests fingerprint every key they receive and archive their KMEs' logs here; test/final/ then
# scans all of it, and this run's own output, for key material.
export QKS_TEST_LOG_ROOT="$(mktemp -d "${TMPDIR:-/tmp}/qks-test-logs-XXXXXX")"
trap 'rm -rf "$QKS_TEST_LOG_ROOT"' EXIT
mapfile -t files < <(find dist/test -name '*.test.js' -not -path 'dist/test/final/*' | sort)
# Tests, then the key-material scan whatever the tests did; fails if either failed.
bash scripts/run-tests.sh "${files[@]}"
