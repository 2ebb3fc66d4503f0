#!/usr/bin/env bash
# Prepares this machine for govbmc's end-to-end tests the way a normal
# Debian host with systemd and udev would be: /dev/kvm usable by the kvm
# group (libvirt's qemu user is in it), virtlogd and libvirtd running, and
# libvirt's QEMU capabilities probed once (the first probe takes tens of
# seconds, longer than a test should wait for a domain definition). It also
# installs a libvirt qemu hook that makes starting a domain named
# govbmc-slow-* take 3 s (the slow-operation benchmark; every other domain
# is untouched).
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

# libvirt calls /etc/libvirt/hooks/qemu as `qemu DOMAIN OP SUBOP EXTRA`
# with the domain XML on stdin, for every domain and many operations; the
# hook must read its stdin and be quick for all but the one case it slows.
hook=/etc/libvirt/hooks/qemu
hook_body=$(cat <<'HOOK'
#!/bin/sh
# Installed by govbmc's scripts/prepare-test-host.sh for the slow-operation
# benchmark (bench/slowop_libvirt_test.go): starting a domain whose name
# begins with govbmc-slow- takes 3 s longer ("prepare begin" runs before
# QEMU does); every other domain and operation passes straight through.
cat >/dev/null
case "$1" in
govbmc-slow-*)
  if [ "$2" = prepare ] && [ "$3" = begin ]; then
    sleep 3
  fi
  ;;
esac
exit 0
HOOK
)
hook_changed=no
if command -v libvirtd >/dev/null; then
  if [ ! -x "$hook" ] || [ "$(cat "$hook")" != "$hook_body" ]; then
    mkdir -p "$(dirname "$hook")"
    printf '%s\n' "$hook_body" >"$hook.tmp"
    chmod 0755 "$hook.tmp"
    mv -f "$hook.tmp" "$hook"
    hook_changed=yes
  fi
  # libvirtd looks for hook scripts only when it starts: one that started
  # before the hook was written does not call it.
  if pid=$(pgrep -xo libvirtd); then
    started=$(( $(date +%s) - $(ps -o etimes= -p "$pid") ))
    if [ "$started" -lt "$(stat -c %Y "$hook")" ]; then
      hook_changed=yes
    fi
  fi
fi

# daemon starts a daemon without the descriptors this script inherited:
# run under `flock /tmp/govbmc-libvirt.lock` (without -o), a libvirtd
# started here would hold the tests' lock for as long as it lives, and
# every test waiting for it would wait forever.
daemon() (
  for fd in /proc/self/fd/*; do
    n=${fd##*/}
    if [ "$n" -gt 2 ]; then eval "exec $n>&-"; fi
  done
  exec "$@"
)

if command -v libvirtd >/dev/null; then
  mkdir -p /run/libvirt
  pgrep -x virtlogd >/dev/null || daemon virtlogd -d
  if { [ "$kvm_changed" = yes ] || [ "$hook_changed" = yes ]; } && pgrep -x libvirtd >/dev/null; then
    # It probed QEMU without KVM access, or started without the hook:
    # start it again (running domains keep running; it reconnects to them).
    pkill -x libvirtd || true
    for _ in $(seq 50); do pgrep -x libvirtd >/dev/null || break; sleep 0.1; done
  fi
  pgrep -x libvirtd >/dev/null || daemon libvirtd -d
  for _ in $(seq 100); do [ -S /var/run/libvirt/libvirt-sock ] && break; sleep 0.1; done
  if command -v virsh >/dev/null; then
    timeout 300 virsh -c qemu:///system domcapabilities >/dev/null 2>&1 || \
      echo "prepare-test-host: warning: could not probe QEMU capabilities" >&2
  fi
fi
