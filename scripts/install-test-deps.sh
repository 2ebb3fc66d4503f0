#!/usr/bin/env bash
# Installs the Debian packages govbmc's tests drive (scripts/test-packages.txt)
# when one is missing. Idempotent; uses apt as root (or through sudo).
set -euo pipefail
list="$(dirname "$0")/test-packages.txt"

mapfile -t wanted < <(sed -e 's/#.*//' "$list" | xargs -n1)
if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "install-test-deps: not a Debian system; install the packages in $list (or their equivalents) yourself" >&2
  exit 1
fi
missing=()
for pkg in "${wanted[@]}"; do
  [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" = "install ok installed" ] || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-test-deps: missing ${missing[*]} and no apt-get to install them" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-test-deps: missing ${missing[*]}; run as root or install them" >&2
    exit 1
  fi
fi
echo "install-test-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
