#!/usr/bin/env bash
# Prepares this machine for govbmc's end-to-end tests the way a normal
# Debian host with systemd and udev would be: /dev/kvm usable by the kvm
# group (libvirt's qemu user is in it), virtlogd and libvirtd running, and
# libvirt's QEMU capabilities probed once (the first probe takes tens of
# seconds, longer than a test should wait for a domain definition). It also
# installs a libvirt qemu hook that makes starting and destroying a domain
# named govbmc-slow-* take 3 s each (the slow-operation benchmark and the
# Chassis Control acknowledgement test; every other domain is untouched).
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
# benchmark (bench/slowop_libvirt_test.go) and the Chassis Control test
# (bench/control_libvirt_test.go): starting a domain whose name begins with
# govbmc-slow- takes 3 s longer ("prepare begin" runs before QEMU does), and
# so does destroying it ("stopped end" runs inside virDomainDestroy, after
# QEMU is gone); every other domain and operation passes straight through.
cat >/dev/null
case "$1" in
govbmc-slow-*)
  if { [ "$2" = prepare ] && [ "$3" = begin ]; } || { [ "$2" = stopped ] && [ "$3" = end ]; }; then
    sleep 3
  fi
  ;;
esac
exit 0
HOOK
)
# libvirtd looks for the hook only when it starts, then runs the file at
# each call: a new hook needs a libvirtd restart, new contents do not, and
# keep the file's old mtime (older checkouts of this script restart
# libvirtd when the hook looks newer than it).
hook_created=no
if command -v libvirtd >/dev/null; then
  if [ ! -x "$hook" ] || [ "$(cat "$hook")" != "$hook_body" ]; then
    mkdir -p "$(dirname "$hook")"
    printf '%s\n' "$hook_body" >"$hook.tmp"
    chmod 0755 "$hook.tmp"
    if [ -x "$hook" ]; then touch -r "$hook" "$hook.tmp"; else hook_created=yes; fi
    mv -f "$hook.tmp" "$hook"
  fi
fi

# daemon starts a daemon without this script's descriptors: run under
# `flock LOCK make test` (how the tests share this machine's libvirtd), a
# libvirtd that kept the lock's descriptor would hold the lock for as long
# as it runs, and under `make test | tee LOG` it would hold the pipe open.
daemon() {
  (
    for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}
      if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
    done
    exec "$@" </dev/null >/dev/null 2>&1
  )
}

# system_libvirtd prints the pid of the system libvirtd (the one owning
# /run/libvirtd.pid; the tests' private libvirtds are also called libvirtd).
system_libvirtd() {
  local pid
  pid=$(cat /run/libvirtd.pid 2>/dev/null) || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = libvirtd ] || return 1
  echo "$pid"
}

if command -v libvirtd >/dev/null; then
  mkdir -p /run/libvirt
  pgrep -x virtlogd >/dev/null || daemon virtlogd -d
  # This file holds the pid of a libvirtd this script started with the hook
  # in place; one started by anyone else may have started before the hook
  # existed.
  stamp=/run/libvirt/govbmc-hook-seen-by
  if pid=$(system_libvirtd) && { [ "$kvm_changed" = yes ] || [ "$hook_created" = yes ] || [ "$(cat "$stamp" 2>/dev/null)" != "$pid" ]; }; then
    # It probed QEMU without KVM access, or may have started without the
    # hook: start it again (running domains keep running; it reconnects to
    # them).
    echo "prepare-test-host: restarting libvirtd (pid $pid) for the KVM permissions or the hook" >&2
    kill "$pid"
    for _ in $(seq 300); do [ -e "/proc/$pid" ] || break; sleep 0.1; done
    if [ -e "/proc/$pid" ]; then
      echo "prepare-test-host: libvirtd (pid $pid) still running 30 s after SIGTERM" >&2
      exit 1
    fi
  fi
  if ! system_libvirtd >/dev/null; then
    daemon libvirtd -d
    for _ in $(seq 100); do system_libvirtd >/dev/null && [ -S /var/run/libvirt/libvirt-sock ] && break; sleep 0.1; done
    pid=$(system_libvirtd) || { echo "prepare-test-host: libvirtd did not start" >&2; exit 1; }
    echo "$pid" >"$stamp"
  fi
  if command -v virsh >/dev/null; then
    timeout 300 virsh -c qemu:///system domcapabilities >/dev/null 2>&1 || \
      echo "prepare-test-host: warning: could not probe QEMU capabilities" >&2
  fi
fi
