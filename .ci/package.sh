#!/usr/bin/env bash
# npm run package: the artefacts admins install, built offline from this tree
# into dist/ with Debian's own tools:
#   dist/virt-hooks_VERSION-1_amd64.deb          (dpkg-deb)
#   dist/virt-hooks-VERSION-linux-x64.tar.gz     (the executable + install.sh: no Node needed)
# Both are staged exactly as `DESTDIR=… ./install.sh --prefix /usr` lays them out.
# Never stripped: any strip of the single executable makes it segfault
# (the injected JavaScript lives in a segment strip shrinks; postject#90).
set -euo pipefail
cd "$(dirname "$0")/.."
here=$PWD
version=$(node -p 'require("./package.json").version')
rev=1
arch=amd64
out=dist
say() { echo "package: $*"; }

[ -x dist/virt-hooks ] && [ -z "$(find src package.json -newer dist/virt-hooks -print -quit)" ] || npm run -s build
command -v dpkg-deb >/dev/null || { echo "package: dpkg-deb is missing (apt-get install dpkg)" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/virt-hooks-package.XXXXXX")
trap 'rm -rf "$work"' EXIT

# --- .deb ---------------------------------------------------------------------
stage="$work/deb"
# Debian 12's debhelper and dpkg look for units under /lib/systemd/system.
DESTDIR="$stage" ./install.sh --no-build --prefix /usr --unit-dir /lib/systemd/system >/dev/null
install -d -m 0755 "$stage/DEBIAN" "$stage/usr/share/doc/virt-hooks"
gzip -9nc README.md >"$stage/usr/share/doc/virt-hooks/README.md.gz"
printf 'virt-hooks\n\nCopyright: the virt-hooks authors\nLicense: MIT\n' >"$stage/usr/share/doc/virt-hooks/copyright"
for s in preinst postinst prerm postrm; do
  install -m 0755 ".ci/package/deb.$s" "$stage/DEBIAN/$s"
done
# The shipped examples live under /etc: the admin's once installed.
(cd "$stage" && find etc -type f -printf '/%p\n' | sort) >"$stage/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
# libc6 (>= 2.28): the executable's highest symbol version is GLIBC_2.28
# (objdump -T); dpkg-shlibdeps would say 2.34 and shut out Debian 11 and
# Ubuntu 20.04/22.04, where it runs.
cat >"$stage/DEBIAN/control" <<CONTROL
Package: virt-hooks
Version: $version-$rev
Architecture: $arch
Maintainer: virt-hooks maintainers <root@localhost>
Installed-Size: $size
Depends: libc6 (>= 2.28), iptables | nftables, iproute2
Recommends: libvirt-daemon-system
Section: admin
Priority: optional
Description: declarative port forwards and network glue for libvirt hosts
 virt-hooks is installed as libvirt's qemu and network hooks. It reads rule
 files from /etc/libvirt/hooks/rules.d and keeps the host's firewall, bridges
 and routes as they declare: guest ports published through NAT networks,
 masquerade, cross-network accepts, uplinks of routed networks, re-attaching
 guests' taps when a network restarts. One self-contained executable.
CONTROL
deb="$out/virt-hooks_${version}-${rev}_${arch}.deb"
t0=$(date +%s)
# -z1: xz at its default level takes ~170 s on the 120 MB executable here for
# 4 MB less (packaging.md); a fleet pays the difference once, a build every time.
dpkg-deb --root-owner-group -Zxz -z1 --build "$stage" "$deb.tmp" >/dev/null
mv -f "$deb.tmp" "$deb"
say "built $deb ($(du -h "$deb" | cut -f1), $(( $(date +%s) - t0 )) s)"

# --- tarball ------------------------------------------------------------------
name="virt-hooks-$version-linux-x64"
tdir="$work/$name"
install -d "$tdir/dist" "$tdir/docs"
cp -a dist/virt-hooks "$tdir/dist/"
cp -a install.sh README.md hooks rules.d systemd completion "$tdir/"
cp -a docs/man "$tdir/docs/"
tar -C "$work" --owner=0 --group=0 --numeric-owner -czf "$out/$name.tar.gz.tmp" "$name"
mv -f "$out/$name.tar.gz.tmp" "$out/$name.tar.gz"
say "built $out/$name.tar.gz ($(du -h "$out/$name.tar.gz" | cut -f1)): tar xf it, then sudo ./install.sh (no Node needed)"
