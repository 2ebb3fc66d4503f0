#!/usr/bin/env bash
# Prepares this machine for govbmc's end-to-end tests the way a normal
# Debian host with systemd and udev would be: /dev/kvm usable by the kvm
# group (libvirt's qemu user is in it), virtlogd and libvirtd running, and
# libvirt's QEMU capabilities probed once (the first probe takes tens of
# seconds, longer than a test should wait for a domain definition).
# Idempotent; needs root for what it changes.
set -euo pipefail
export PATH="/usr/sbin:/sbin:$PATH"

if [ "$(id -u)" -ne 0 ]; then
  echo "prepare-test-host: not root; leaving /dev/kvm and libvirtd as they are" >&2
  exit 0
fi
kvm_changed=no
if [ -c /dev/kvm ] && getent group kvm >/dev/null; then
  if [ "$(stat -c %G:%a /dev/kvm)" != "kvm:660" ]; then
    chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
    kvm_changed=yes
  fi
fi
if command -v libvirtd >/dev/null; then
  mkdir -p /run/libvirt
  pgrep -x virtlogd >/dev/null || virtlogd -d
  if [ "$kvm_changed" = yes ] && pgrep -x libvirtd >/dev/null; then
    # It probed QEMU without KVM access: start it again to probe with it.
    pkill -x libvirtd || true
    for _ in $(seq 50); do pgrep -x libvirtd >/dev/null || break; sleep 0.1; done
  fi
  pgrep -x libvirtd >/dev/null || libvirtd -d
  for _ in $(seq 100); do [ -S /var/run/libvirt/libvirt-sock ] && break; sleep 0.1; done
  if command -v virsh >/dev/null; then
    timeout 300 virsh -c qemu:///system domcapabilities >/dev/null 2>&1 || \
      echo "prepare-test-host: warning: could not probe QEMU capabilities" >&2
  fi
fi
