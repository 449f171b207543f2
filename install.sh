#!/usr/bin/env bash
# Installs virt-hooks as libvirt's qemu and network hooks, and as the
# `virt-hooks` command. Idempotent; `--uninstall` removes what it added.
#
#   sudo ./install.sh                  build if needed, install, reload libvirt, apply
#   DESTDIR=/tmp/pkg ./install.sh      stage for a package (no reload, no apply)
#   sudo ./install.sh --uninstall      remove hooks, binary, examples and our firewall chains
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: ./install.sh [--prefix DIR] [--hooks-dir DIR] [--no-reload] [--uninstall]

  --prefix DIR      install the binary as DIR/sbin/virt-hooks (default /usr/local)
  --hooks-dir DIR   libvirt's hooks directory (default /etc/libvirt/hooks)
  --no-reload       do not signal libvirt's daemons and do not apply now
  --uninstall       remove what install.sh added (rule files you wrote are kept)
Environment: DESTDIR stages everything below that directory (implies --no-reload).
USAGE
}

prefix=/usr/local
hooks_dir=/etc/libvirt/hooks
reload=1
action=install
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
    --prefix=*) prefix=${1#*=}; shift ;;
    --hooks-dir) hooks_dir=${2:?--hooks-dir needs a directory}; shift 2 ;;
    --hooks-dir=*) hooks_dir=${1#*=}; shift ;;
    --no-reload) reload=0; shift ;;
    --uninstall) action=uninstall; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

here=$(cd "$(dirname "$0")" && pwd)
destdir=${DESTDIR:-}
[ -n "$destdir" ] && reload=0
bin="$prefix/sbin/virt-hooks"           # where it runs from
bin_staged="$destdir$bin"               # where we write it
hooks="$destdir$hooks_dir"
drivers=(qemu network)
previous_name=00-previous-hook          # an admin's own hook, kept working under DRIVER.d/

say() { echo "install.sh: $*"; }

# libvirt finds hooks when its daemons start and on SIGHUP (systemctl reload).
# Monolithic libvirtd, or the split virtqemud + virtnetworkd.
reload_libvirt() {
  [ "$reload" = 1 ] || return 0
  local d pid reloaded=0
  for d in libvirtd virtqemud virtnetworkd; do
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null && systemctl is-active --quiet "$d" 2>/dev/null; then
      systemctl reload "$d" && say "reloaded $d (systemctl reload)" && reloaded=1
    elif [ -r "/run/$d.pid" ] && pid=$(cat "/run/$d.pid" 2>/dev/null) && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill -HUP "$pid" && say "reloaded $d (SIGHUP to pid $pid)" && reloaded=1
    fi
  done
  [ "$reloaded" = 1 ] || say "no running libvirt daemon found; the hooks take effect when it starts"
}

is_ours() { [ -L "$1" ] && [ "$(readlink "$1")" = "$bin" ]; }

do_install() {
  local src="$here/dist/virt-hooks"
  if [ ! -x "$src" ] || [ -n "$(find "$here/src" "$here/package.json" -newer "$src" -print -quit 2>/dev/null)" ]; then
    command -v npm >/dev/null || { echo "install.sh: dist/virt-hooks is missing or stale and npm is not installed to build it (apt-get install nodejs npm)" >&2; exit 1; }
    say "building dist/virt-hooks"
    (cd "$here" && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && npm run -s build)
  fi

  install -d -m 0755 "$(dirname "$bin_staged")"
  # Replace atomically: a hook may be running the old binary right now.
  install -m 0755 "$src" "$bin_staged.new.$$"
  mv -f "$bin_staged.new.$$" "$bin_staged"
  say "installed $bin"

  install -d -m 0755 "$hooks"
  for d in "${drivers[@]}"; do
    local hook="$hooks/$d"
    if [ -e "$hook" ] || [ -L "$hook" ]; then
      if ! is_ours "$hook"; then
        # Never clobber an admin's hook: libvirt (>= 6.5) runs DRIVER.d/* after
        # the main hook with the same arguments and input, so it keeps working there.
        install -d -m 0755 "$hooks/$d.d"
        if [ -e "$hooks/$d.d/$previous_name" ]; then
          echo "install.sh: $hook exists and $hooks/$d.d/$previous_name too; move one of them aside and run again" >&2
          exit 1
        fi
        mv "$hook" "$hooks/$d.d/$previous_name"
        say "your existing $hook now runs as $hooks_dir/$d.d/$previous_name (libvirt runs $d.d/* after the main hook)"
      fi
    fi
    ln -sfn "$bin" "$hook"
  done
  say "hooks: $hooks_dir/qemu and $hooks_dir/network -> $bin"

  install -d -m 0755 "$hooks/rules.d"
  local ex
  for ex in "$here"/rules.d/*.rules; do
    [ -e "$ex" ] || continue
    install -m 0644 "$ex" "$hooks/rules.d/$(basename "$ex").example"
  done
  say "examples in $hooks_dir/rules.d/*.rules.example (inactive: copy one to NAME.rules to use it)"

  reload_libvirt
  if [ "$reload" = 1 ]; then
    if "$bin" apply; then :; else say "virt-hooks apply reported problems (see above); fix the rules, then run: virt-hooks apply"; fi
  fi
}

do_uninstall() {
  if [ "$reload" = 1 ] && [ -x "$bin_staged" ]; then
    "$bin_staged" flush || say "could not remove our firewall chains (see above)"
  fi
  for d in "${drivers[@]}"; do
    local hook="$hooks/$d"
    if is_ours "$hook"; then rm -f "$hook"; fi
    if [ -e "$hooks/$d.d/$previous_name" ] && [ ! -e "$hook" ]; then
      mv "$hooks/$d.d/$previous_name" "$hook"
      rmdir "$hooks/$d.d" 2>/dev/null || true
      say "restored your previous $hook"
    fi
  done
  rm -f "$hooks"/rules.d/*.rules.example
  if rmdir "$hooks/rules.d" 2>/dev/null; then :; elif [ -d "$hooks/rules.d" ]; then say "kept $hooks_dir/rules.d: it holds your rule files"; fi
  rm -f "$bin_staged"
  rm -rf "$destdir/run/virt-hooks"
  reload_libvirt
  say "uninstalled"
}

if [ -z "$destdir" ] && [ "$(id -u)" != 0 ]; then
  echo "install.sh: run as root (sudo ./install.sh), or stage with DESTDIR=..." >&2
  exit 1
fi
"do_$action"
