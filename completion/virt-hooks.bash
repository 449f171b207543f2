# bash completion for virt-hooks(8)                         -*- shell-script -*-
# Installed as $prefix/share/bash-completion/completions/virt-hooks, which
# bash-completion loads the first time `virt-hooks <TAB>` is pressed.
#
# Domain and network names come from libvirt's persistent definitions
# (/etc/libvirt/qemu/*.xml, /etc/libvirt/qemu/networks/*.xml), read directly:
# no virsh call, so completing never waits on libvirtd. Those directories are
# root's, so names complete under sudo -i or as root.

# The <name> of each libvirt XML file in $1, one per line.
_virt_hooks_names() {
    local f line
    for f in "$1"/*.xml; do
        [[ -r $f ]] || continue
        while IFS= read -r line; do
            if [[ $line =~ \<name\>(.*)\</name\> ]]; then
                line=${BASH_REMATCH[1]}
                # Quoted replacements: bash >= 5.2 would expand a bare & to the match.
                line=${line//'&lt;'/"<"}; line=${line//'&gt;'/">"}; line=${line//'&quot;'/'"'}
                line=${line//'&apos;'/"'"}; line=${line//'&amp;'/"&"}
                printf '%s\n' "$line"
                break
            fi
        done <"$f"
    done
}

# COMPREPLY = the names from $1 (one per line) that start with $cur, quoted
# for the shell (libvirt names may hold spaces and quotes).
_virt_hooks_reply_names() {
    local name quoted
    COMPREPLY=()
    while IFS= read -r name; do
        [[ -n $name && $name == "$cur"* ]] || continue
        printf -v quoted '%q' "$name"
        COMPREPLY+=("$quoted")
    done <<<"$1"
}

_virt_hooks() {
    local cur prev words cword
    if declare -F _init_completion >/dev/null; then
        _init_completion || return
    else
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD - 1]}
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
    fi

    # VIRT_HOOKS_QEMU_DIR: for tests only.
    local qemu_dir=${VIRT_HOOKS_QEMU_DIR:-/etc/libvirt/qemu}
    local commands="check plan apply status explain host flush watch version help"

    case $prev in
        --rules-dir)
            if declare -F _filedir >/dev/null; then
                _filedir -d
            else
                COMPREPLY=($(compgen -d -- "$cur"))
            fi
            return
            ;;
        --event)
            # One quoted argument, "DRIVER OBJECT OP SUBOP": nothing sensible
            # to offer inside the quotes, and never file names.
            COMPREPLY=()
            return
            ;;
    esac

    # The command and, for host, its subcommand: the first words that are
    # not options (or an option's value).
    local i w command= sub= args=0
    for ((i = 1; i < cword; i++)); do
        w=${words[i]}
        case $w in
            --rules-dir | --event) ((i++)) ;;
            -*) ;;
            *)
                if [[ -z $command ]]; then
                    command=$w
                elif [[ $command == host && -z $sub ]]; then
                    sub=$w
                else
                    ((args++))
                fi
                ;;
        esac
    done

    if [[ $cur == -* ]]; then
        local opts="--help"
        case $command in
            "") opts="--help --version --rules-dir --verbose" ;;
            check) opts="--rules-dir --json --verbose --help" ;;
            plan) opts="--rules-dir --event --json --verbose --help" ;;
            apply) opts="--rules-dir --verbose --help" ;;
            status) opts="--rules-dir --json --help" ;;
            explain) opts="--rules-dir --help" ;;
        esac
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return
    fi

    case $command in
        "")
            COMPREPLY=($(compgen -W "$commands" -- "$cur"))
            ;;
        help)
            ((args == 0)) && COMPREPLY=($(compgen -W "$commands" -- "$cur"))
            ;;
        explain)
            ((args == 0)) && _virt_hooks_reply_names "$(_virt_hooks_names "$qemu_dir")"
            ;;
        host)
            if [[ -z $sub ]]; then
                COMPREPLY=($(compgen -W "add del" -- "$cur"))
            elif ((args == 0)); then
                _virt_hooks_reply_names "$(_virt_hooks_names "$qemu_dir/networks")"
            elif [[ $sub == add ]] && ((args == 3)); then
                # NAME: usually the guest's own name.
                _virt_hooks_reply_names "$(_virt_hooks_names "$qemu_dir")"
            fi
            ;;
    esac
} &&
    complete -F _virt_hooks virt-hooks

# ex: filetype=sh
