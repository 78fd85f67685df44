#!/usr/bin/env bash
# Installs the system packages the tests use, when they are missing. Needs root (as in CI).
set -euo pipefail
packages=(openssl curl strace stunnel4 tshark libwolfssl-dev gcc pkg-config chromium iproute2 iputils-ping
  # strongSwan's charon with user-space ESP (this kernel has none), swanctl, VICI
  strongswan-charon strongswan-swanctl libcharon-extra-plugins libstrongswan-extra-plugins
  # what Libreswan's pluto needs to run (Libreswan itself is unpacked below)
  libnss3-tools libunbound8 libldns3 libevent-core-2.1-7 libevent-pthreads-2.1-7 libcurl3-nss libcap-ng0
  libaudit1 libldap-2.5-0 dns-root-data
  # systemd-analyze for the unit files, systemd-notify for readiness; python3 receives the notice
  systemd python3 procps
  # `cloud-init schema` for packaging/cloud-init (its units are only enabled, never started, on install)
  cloud-init
  # the PostgreSQL store (primary and synchronous standby), KME replicas behind HAProxy, a PKCS#11 token
  postgresql-15 haproxy softhsm2 socat
  # real OpenSSH (client and sshd) through the QKD-keyed tunnel
  openssh-client openssh-server
  # Open vSwitch (user-space datapath) and its test controller; ethtool turns off veth TX offload
  openvswitch-switch openvswitch-testcontroller ethtool)
# Libreswan's package conflicts with strongSwan's, so it is unpacked beside them, not installed:
# tests run its pluto from here, bound over /usr/libexec/ipsec in a private mount namespace.
libreswan_root=${QKS_LIBRESWAN_ROOT:-/opt/qks-test/libreswan}

missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
need_libreswan=0
[ -x "$libreswan_root/usr/libexec/ipsec/pluto" ] || need_libreswan=1
[ ${#missing[@]} -eq 0 ] && [ $need_libreswan -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  [ $need_libreswan -eq 1 ] && missing+=("libreswan (unpacked into $libreswan_root)")
  echo "missing system packages: ${missing[*]} (run this script as root)" >&2
  exit 1
fi

# Another job may hold the dpkg lock for a while: try a few times.
apt_get() {
  for attempt in 1 2 3 4 5; do
    apt-get "$@" && return 0
    echo "apt-get $1 failed (attempt $attempt); retrying in 20 s" >&2
    sleep 20
  done
  return 1
}
apt_get update -qq
if [ ${#missing[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt_get install -y -qq --no-install-recommends "${missing[@]}"
fi
if [ $need_libreswan -eq 1 ]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && apt_get download -qq libreswan 2>/dev/null)
  mkdir -p "$libreswan_root"
  dpkg-deb -x "$tmp"/libreswan_*.deb "$libreswan_root"
  rm -rf "$tmp"
fi
