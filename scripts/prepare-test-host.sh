#!/usr/bin/env bash
# Prepares this machine for govbmc's end-to-end tests the way a normal
# Debian host with systemd and udev would be: /dev/kvm usable by the kvm
# group (libvirt's qemu user is in it), virtlogd and libvirtd running.
# Idempotent; needs root for what it changes.
set -euo pipefail
export PATH="/usr/sbin:/sbin:$PATH"

if [ "$(id -u)" -ne 0 ]; then
  echo "prepare-test-host: not root; leaving /dev/kvm and libvirtd as they are" >&2
  exit 0
fi
if [ -c /dev/kvm ] && getent group kvm >/dev/null; then
  chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
fi
if command -v libvirtd >/dev/null; then
  mkdir -p /run/libvirt
  pgrep -x virtlogd >/dev/null || virtlogd -d
  pgrep -x libvirtd >/dev/null || libvirtd -d
fi
