#!/usr/bin/env bash
# The whole test suite: system packages the tests need, lint and format checks, type check and
# build, then every test. README and .ci/run call this through `npm test`.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh
[ -d node_modules ] || npm ci

echo "== lint and format"
npx eslint .
npx prettier --check .

echo "== type check and build"
rm -rf dist
npx tsc -p tsconfig.json

echo "== tests"
mapfile -t files < <(find dist/test -name '*.test.js' | sort)
node --test --test-reporter=spec --test-timeout=300000 "${files[@]}"
