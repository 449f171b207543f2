#!/usr/bin/env bash
# make-root.sh ROOT [CACHE_DIR]: build (or reuse) a bootable Debian root for the
# host tier. ROOT: stock (Debian 12: libvirt 9.0, iptables backend), backports
# (Debian 12 + bookworm-backports: libvirt 11.3, nftables backend) or trixie
# (Debian 13: libvirt 11.3 on its default iptables backend; the host tier boots
# the same root once more with network.conf saying nftables, test/host/lab/targets.ts).
# Prints the root's path on stdout (last line).
# The mirror URI comes from the machine's own apt sources: no host name here.
set -euo pipefail
target=${1:?usage: make-root.sh stock|backports|trixie [CACHE_DIR]}
cache=${2:-${VH_HOST_CACHE:-/var/cache/virt-hooks-test/roots}}
case $target in stock|backports) suite=bookworm;; trixie) suite=trixie;; *) echo "make-root: unknown target $target" >&2; exit 2;; esac

need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v systemd-nspawn >/dev/null || need+=(systemd-container)
if [ ${#need[@]} -gt 0 ]; then apt-get install -y "${need[@]}" >&2; fi

uri=$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)
[ -n "$uri" ] || uri=$(grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null | grep -v security | awk '{print $2}' | head -n1 || true)
[ -n "$uri" ] || { echo "make-root: cannot find the machine's Debian mirror in /etc/apt" >&2; exit 2; }

vers=$(apt-cache policy libvirt-daemon firewalld systemd nodejs 2>/dev/null | grep -E '^[^ ]|Candidate' | tr -d ' ' | tr '\n' ' ')
key=$( { sha256sum "$0" | cut -d' ' -f1; echo "$target $vers"; } | sha256sum | cut -c1-16)
root="$cache/$target-$key"
if [ -f "$root/.complete" ]; then echo "$root"; exit 0; fi

mkdir -p "$cache"
tmp=$(mktemp -d "$cache/.build-$target-XXXXXX")
trap 'rm -rf --one-file-system "$tmp"' EXIT
debootstrap --variant=minbase \
  --include=systemd,systemd-sysv,dbus,libpam-systemd,ca-certificates,iproute2,procps \
  "$suite" "$tmp" "$uri" >&2

printf '#!/bin/sh\nexit 101\n' > "$tmp/usr/sbin/policy-rc.d"; chmod +x "$tmp/usr/sbin/policy-rc.d"
cat > "$tmp/etc/apt/sources.list" <<SRC
deb $uri $suite main
deb $uri $suite-updates main
SRC
extra=(); opts=()
if [ "$target" = backports ]; then
  echo "deb $uri bookworm-backports main" >> "$tmp/etc/apt/sources.list"
  extra=(-t bookworm-backports); opts=(-o Dpkg::Options::=--force-confold)
fi
for d in proc sys dev; do mount --bind /$d "$tmp/$d"; done
umountall() { for d in dev sys proc; do umount -l "$tmp/$d" 2>/dev/null || true; done; }
trap 'umountall; rm -rf --one-file-system "$tmp"' EXIT
chroot "$tmp" apt-get update >&2
DEBIAN_FRONTEND=noninteractive chroot "$tmp" apt-get install -y --no-install-recommends "${opts[@]}" \
  firewalld iptables nftables dnsmasq-base qemu-system-x86 nodejs npm iproute2 cockpit-ws cockpit-bridge cockpit-system >&2
DEBIAN_FRONTEND=noninteractive chroot "$tmp" apt-get install -y --no-install-recommends "${extra[@]}" "${opts[@]}" \
  libvirt-daemon-system libvirt-clients libvirt-daemon-driver-qemu >&2 || \
DEBIAN_FRONTEND=noninteractive chroot "$tmp" apt-get install -y --no-install-recommends "${extra[@]}" "${opts[@]}" \
  libvirt-daemon-system libvirt-clients >&2

# npm inside the root: the machine's CA certificates and npmrc.
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
  cp /usr/local/share/ca-certificates/*.crt "$tmp/usr/local/share/ca-certificates/"
  chroot "$tmp" update-ca-certificates >&2
fi
[ -f "$HOME/.npmrc" ] && cp "$HOME/.npmrc" "$tmp/root/.npmrc"
echo 'NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' >> "$tmp/etc/environment"

# libvirt in a container: no namespaces, no cgroups, no security driver.
cat >> "$tmp/etc/libvirt/qemu.conf" <<CONF
namespaces = [ ]
cgroup_controllers = [ ]
security_driver = "none"
CONF
if [ "$target" = backports ]; then echo 'firewall_backend = "nftables"' >> "$tmp/etc/libvirt/network.conf"; fi
# libvirt's nftables backend runs `tc ... action csum` when a network starts, and this
# kernel lacks the act_csum module: a tc that skips only that. Debian 13's root has
# it too, for its boots with firewall_backend = "nftables"; the iptables backend never
# asks tc for csum, so there it changes nothing.
if [ "$target" != stock ]; then
  printf '#!/bin/sh\ncase "$*" in *"action csum"*) exit 0;; esac\nexec /usr/sbin/tc "$@"\n' > "$tmp/usr/local/sbin/tc"
  chmod +x "$tmp/usr/local/sbin/tc"
fi
echo "virt-hooks-$target" > "$tmp/etc/hostname"
rm -f "$tmp/usr/sbin/policy-rc.d" "$tmp/etc/machine-id"; : > "$tmp/etc/machine-id"
chroot "$tmp" apt-get clean >&2
umountall
touch "$tmp/.complete"
# Atomic: rename the finished root into place, then drop stale roots of this target.
mv -T "$tmp" "$root"; trap - EXIT
for old in "$cache/$target"-*; do [ "$old" = "$root" ] || rm -rf --one-file-system "$old"; done
echo "$root"
