#!/usr/bin/env bash
# Installs what the end-to-end tier needs on a Debian 12 machine, as root:
# libvirt 11.3 from bookworm-backports (both firewall backends), qemu, dnsmasq,
# iptables, nftables, iproute2, and a D-Bus daemon with python3-dbus (the
# hostile tier's private system bus). The backports source is derived from the
# machine's existing Debian sources, so no mirror host is written here.
set -euo pipefail

need_pkgs=(libvirt-daemon libvirt-daemon-driver-network libvirt-daemon-driver-qemu
           libvirt-clients dnsmasq-base iptables nftables qemu-system-x86 iproute2 util-linux conntrack
           dbus-daemon dbus-bin python3-dbus)

have_all() {
  command -v libvirtd >/dev/null && command -v virsh >/dev/null &&
  command -v qemu-system-x86_64 >/dev/null && command -v nft >/dev/null &&
  command -v iptables-restore >/dev/null && command -v conntrack >/dev/null &&
  { command -v dnsmasq >/dev/null 2>&1 || [ -x /usr/sbin/dnsmasq ]; } &&
  libvirtd --version 2>/dev/null | grep -Eq ' (1[1-9]|[2-9][0-9])\.' &&
  # The hostile tier's private system bus: the real daemon, and a firewalld stand-in in Python.
  command -v dbus-daemon >/dev/null && command -v dbus-monitor >/dev/null && /usr/bin/python3 -c 'import dbus' 2>/dev/null
}

if have_all; then
  echo "install-deps: libvirt $(libvirtd --version | awk '{print $NF}') and tools already present"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-deps: missing libvirt >= 11 / qemu / nftables / iptables; run as root to install them" >&2
  exit 2
fi

src=/etc/apt/sources.list.d/virt-hooks-backports.sources
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  uri=$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)
  if [ -z "$uri" ]; then
    uri=$(grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null | grep -v security | awk '{print $2}' | head -n1 || true)
  fi
  if [ -z "$uri" ]; then
    echo "install-deps: cannot find the machine's Debian mirror in /etc/apt to derive bookworm-backports from" >&2
    exit 2
  fi
  printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$uri" > "$src"
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq -o Dpkg::Options::=--force-confold -t bookworm-backports "${need_pkgs[@]}" >/dev/null
echo "install-deps: installed libvirt $(libvirtd --version | awk '{print $NF}')"
