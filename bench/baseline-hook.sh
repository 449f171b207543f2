#!/bin/bash
# The baseline every reader knows (issue 15): a hand-written libvirt qemu hook
# that publishes a guest's ports by calling `iptables` once per rule, as the
# libvirt wiki's "Forwarding Incoming Connections" hook does. Written here from
# that page's documented behaviour, not copied: for the one guest it is
# configured for, on `stopped` and `reconnect` delete each port's DNAT (nat
# PREROUTING) and its FORWARD accept, on `start` and `reconnect` insert them
# again; two iptables processes per port and event direction, no lock, no
# state, no look at what the kernel holds, no other event handled.
#
# The wiki keeps the settings at the top of the script; here they are in
# BASELINE_DIR/GUEST.conf (sourced: a bash builtin, no process), one per guest,
# so the bench can give each of its guests its own ports:
#   Guest_ipaddr=192.168.122.21
#   Host_ipaddr=192.168.1.100
#   Host_port=( 20000 20001 )
#   Guest_port=( 22 23 )
# BASELINE_DIR defaults to the hook's own directory + /baseline.d.
conf="${BASELINE_DIR:-${0%/*}/baseline.d}/${1}.conf"
[ -f "$conf" ] || exit 0
. "$conf"

length=$(( ${#Host_port[@]} - 1 ))
if [ "${2}" = "stopped" ] || [ "${2}" = "reconnect" ]; then
  for i in $(seq 0 $length); do
    iptables -t nat -D PREROUTING -d "${Host_ipaddr}" -p tcp --dport "${Host_port[$i]}" -j DNAT --to "${Guest_ipaddr}:${Guest_port[$i]}"
    iptables -D FORWARD -d "${Guest_ipaddr}/32" -p tcp -m state --state NEW -m tcp --dport "${Guest_port[$i]}" -j ACCEPT
  done
fi
if [ "${2}" = "start" ] || [ "${2}" = "reconnect" ]; then
  for i in $(seq 0 $length); do
    iptables -t nat -A PREROUTING -d "${Host_ipaddr}" -p tcp --dport "${Host_port[$i]}" -j DNAT --to "${Guest_ipaddr}:${Guest_port[$i]}"
    iptables -I FORWARD -d "${Guest_ipaddr}/32" -p tcp -m state --state NEW -m tcp --dport "${Guest_port[$i]}" -j ACCEPT
  done
fi
