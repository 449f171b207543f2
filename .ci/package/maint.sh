# Shared by every maintainer script of the .deb and scriptlet of the .rpm:
# .ci/package.sh puts install.sh's vh-lib block (vh_kind: what a hook is) and this in
# front of each deb.* and rpm.* body. The same rules as install.sh, for a
# package manager: an admin's own hook is moved to DRIVER.d/00-previous-hook
# (libvirt >= 6.5 runs it after ours, same arguments and input) and put back on
# removal; virt-hooks itself never is; systemctl only when systemd runs; the
# firewall is touched only when libvirt runs (never in a chroot or image build).
set -e
VH_HOOKS=/etc/libvirt/hooks
VH_BIN=/usr/sbin/virt-hooks
VH_UNITS="virt-hooks-apply.service virt-hooks-apply.timer virt-hooks-reapply.service virt-hooks-watch.service"
# apply.service runs at boot and after the firewall's and libvirt's services
# start (WantedBy=); the timer re-checks every minute; reapply follows their
# reloads; the watcher repairs a rebuilt firewall at once.
VH_STARTED="virt-hooks-apply.timer virt-hooks-reapply.service virt-hooks-watch.service"
VH_DAEMONS="libvirtd virtqemud virtnetworkd"

vh_exists() { [ -e "$1" ] || [ -L "$1" ]; }
vh_systemd() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null; }

# Before unpacking: dpkg and rpm would silently replace an admin's hook with
# ours. virt-hooks of any other install (install.sh under any prefix, a copy,
# one whose executable is gone) is replaced, never kept as a previous hook:
# there it would run a second time (in earlier releases: as the CLI, exit 2, refusing
# every guest start).
vh_hooks_aside() {
  for d in qemu network; do
    h=$VH_HOOKS/$d
    said=$(vh_drop_leftover "" "$h")
    [ -z "$said" ] || echo "virt-hooks: $said"
    kind=$(vh_kind "" "$h")
    case "$kind" in
      none|"virt-hooks $VH_BIN"|"leftover $VH_BIN") continue ;;
      "virt-hooks $h")
        echo "virt-hooks: $h was a copy of the virt-hooks executable; the package's hook replaces it" >&2
        continue ;;
      "virt-hooks "*|"leftover "*)
        target=${kind#* }
        # install.sh's executable lives in PREFIX's sbin directory (matched on
        # the directory: lintian takes a full such path in a maintainer
        # script for this package's own executable, misplaced).
        case ${target%/*} in
          */sbin) echo "virt-hooks: $h pointed at $target (an install.sh install); the package's hook replaces it: remove the rest of that install with its ./install.sh --uninstall --prefix ${target%/*/*}" >&2 ;;
          *) echo "virt-hooks: $h pointed at $target (virt-hooks); the package's hook replaces it" >&2 ;;
        esac
        continue ;;
    esac
    if vh_exists "$h.d/$VH_PREVIOUS"; then
      echo "virt-hooks: $h exists and $h.d/$VH_PREVIOUS too; move one of them aside and install again" >&2
      exit 1
    fi
    mkdir -p "$h.d"
    mv "$h" "$h.d/$VH_PREVIOUS"
    echo "virt-hooks: your existing $h now runs as $h.d/$VH_PREVIOUS"
  done
}

# After our files are gone: the admin's hook back where it was (a virt-hooks
# left there by an earlier install.sh is removed, not made the hook).
vh_hooks_restore() {
  for d in qemu network; do
    h=$VH_HOOKS/$d
    said=$(vh_drop_leftover "" "$h" restore)
    [ -z "$said" ] || echo "virt-hooks: $said"
    if vh_exists "$h.d/$VH_PREVIOUS" && ! vh_exists "$h"; then
      mv "$h.d/$VH_PREVIOUS" "$h"
      rmdir "$h.d" 2>/dev/null || true
      echo "virt-hooks: restored your previous $h"
    fi
  done
}

# After our unit files are gone: systemd drops what it still holds of them (a
# unit that failed once, or one still wanted by a target, stays listed as
# not-found until then).
vh_forget_units() {
  if vh_systemd; then
    systemctl --system daemon-reload >/dev/null 2>&1 || true
    systemctl reset-failed $VH_UNITS >/dev/null 2>&1 || true
  fi
}

vh_libvirt_pid() { [ -r "/run/$1.pid" ] && pid=$(cat "/run/$1.pid" 2>/dev/null) && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }
vh_libvirt_runs() {
  for d in $VH_DAEMONS; do
    if vh_systemd && systemctl is-active --quiet "$d" 2>/dev/null; then return 0; fi
    if vh_libvirt_pid "$d"; then return 0; fi
  done
  return 1
}

# libvirt finds its hooks when a daemon starts and on SIGHUP (their ExecReload).
# $1: how to call systemctl (deb-systemd-invoke on Debian).
vh_reload_libvirt() {
  for d in $VH_DAEMONS; do
    if vh_systemd; then
      if systemctl is-active --quiet "$d" 2>/dev/null; then $1 try-reload-or-restart "$d" || true; fi
    elif vh_libvirt_pid "$d"; then
      kill -HUP "$pid" || true
    fi
  done
}

vh_apply() {
  if vh_libvirt_runs; then
    virt-hooks apply >/dev/null || echo "virt-hooks: apply reported problems; see: virt-hooks status" >&2
  fi
}

# Our firewall chains, tables and rules; only where a firewall is ours to touch.
vh_flush() {
  if vh_libvirt_runs || vh_systemd; then
    virt-hooks flush >/dev/null || echo "virt-hooks: could not remove its firewall objects (see above)" >&2
  fi
}
