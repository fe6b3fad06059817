#!/usr/bin/env bash
# Installs the peers Palisade is measured against, and the load tools, from
# Debian. Safe to run again: it installs only what is missing. Services are
# not started by the packages here (Debian's policy-rc.d in containers, or
# run.sh stops nothing it did not start); run.sh starts its own instances on
# loopback with their own configuration files.
set -euo pipefail

# command -> Debian package that provides it
declare -A wanted=(
  [nginx]=nginx
  [haproxy]=haproxy
  [wrk]=wrk
  [sqlite3]=sqlite3
  [openssl]=openssl
  [taskset]=util-linux
  [setpriv]=util-linux
  [curl]=curl
  [jq]=jq
  [nats-server]=nats-server
)

missing=()
for cmd in "${!wanted[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ]; then
    missing+=("${wanted[$cmd]}")
  fi
done
# The PostgreSQL server, initdb and pgbench (run.sh starts a private cluster).
if ! ls /usr/lib/postgresql/*/bin/pgbench >/dev/null 2>&1 \
  || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  missing+=(postgresql)
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-peers: everything is present"
  exit 0
fi

mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
echo "install-peers: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y --no-install-recommends "${missing[@]}"
