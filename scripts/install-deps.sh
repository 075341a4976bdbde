#!/usr/bin/env bash
# Installs the Debian packages strata needs to build, run and test.
# Idempotent: prints nothing and exits 0 when everything is already present.
set -euo pipefail

PACKAGES=(
  build-essential pkg-config
  lua5.4 liblua5.4-dev lua-cjson lua-busted lua-socket
  libevent-dev libpq-dev libssl-dev libcurl4-openssl-dev libcrypt-dev
  postgresql-15 postgresql-client-15
  curl openssl python3
  # clang and its runtime (libFuzzer, sanitizers): the fuzz targets, spec/c/fuzz.mk
  clang libclang-rt-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = "installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
  else
    echo "install-deps: missing packages: ${missing[*]}" >&2
    echo "install-deps: run as root (or with passwordless sudo): sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
else
  SUDO=()
fi

echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# A fresh machine may have no package lists yet; update once, quietly.
if ! "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/strata-apt.$$.log 2>&1; then
  "${SUDO[@]}" apt-get update -qq >>/tmp/strata-apt.$$.log 2>&1 || true
  if ! "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >>/tmp/strata-apt.$$.log 2>&1; then
    echo "install-deps: apt-get install failed; log follows" >&2
    tail -n 30 /tmp/strata-apt.$$.log >&2
    rm -f /tmp/strata-apt.$$.log
    exit 1
  fi
fi
rm -f /tmp/strata-apt.$$.log
