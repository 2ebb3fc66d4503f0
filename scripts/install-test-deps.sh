#!/usr/bin/env bash
# Installs the system packages govbmc's tests drive (the real IPMI clients),
# when they are missing. Idempotent; uses apt as root (or through sudo).
set -euo pipefail

# command -> Debian package
declare -A need=(
  [ipmitool]=ipmitool
  [ipmipower]=freeipmi-tools
  [ipmi-chassis]=freeipmi-tools
  [ipmi-chassis-config]=freeipmi-tools
  [libvirtd]=libvirt-daemon-system
  [virsh]=libvirt-clients
  [qemu-system-x86_64]=qemu-system-x86
  [sshd]=openssh-server
  [ssh-keygen]=openssh-client
  [setpriv]=util-linux
  [pgrep]=procps
  [script]=bsdutils
  [ssh-agent]=openssh-client
  [saslpasswd2]=sasl2-bin
  [sasldblistusers2]=sasl2-bin
  [ipmi_sim]=openipmi
  [fakebmc]=python3-pyghmi
)

missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("${need[$cmd]}")
done
# iPXE ROMs for the virtio NIC a test VM PXE-boots from.
[ -e /usr/lib/ipxe/qemu/efi-virtio.rom ] || [ -e /usr/share/qemu/efi-virtio.rom ] || missing+=(ipxe-qemu)
# Cyrus SASL plugins the SASL libvirtd harness uses (DIGEST-MD5 over TCP,
# SCRAM-SHA-256 over TLS, users in a sasldb).
compgen -G '/usr/lib/*/sasl2/libdigestmd5.so*' >/dev/null || missing+=(libsasl2-modules)
compgen -G '/usr/lib/*/sasl2/libscram.so*' >/dev/null || missing+=(libsasl2-modules)
compgen -G '/usr/lib/*/sasl2/libsasldb.so*' >/dev/null || missing+=(libsasl2-modules-db)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
mapfile -t pkgs < <(printf '%s\n' "${missing[@]}" | sort -u)

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-test-deps: missing ${pkgs[*]} and no apt-get to install them" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-test-deps: missing ${pkgs[*]}; run as root or install them" >&2
    exit 1
  fi
fi
echo "install-test-deps: installing ${pkgs[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${pkgs[@]}"
