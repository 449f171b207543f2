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
