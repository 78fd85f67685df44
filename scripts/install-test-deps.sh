#!/usr/bin/env bash
# Installs the system packages the tests use, when they are missing. Needs root (as in CI).
set -euo pipefail
packages=(openssl curl stunnel4 tshark libwolfssl-dev gcc pkg-config chromium)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing system packages: ${missing[*]} (run as root, or install them with apt-get)" >&2
  exit 1
fi
# Another job may hold the dpkg lock for a while: try a few times.
for attempt in 1 2 3 4 5; do
  apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" && exit 0
  echo "apt-get failed (attempt $attempt); retrying in 20 s" >&2
  sleep 20
done
exit 1
