// One measured libvirtd restart inside the booted host, timed there (one clock):
// `systemctl stop libvirtd` (timed apart: no hook runs then, and stopping a daemon
// that had started without hooks a few seconds before sometimes hung 30 s, until
// libvirtd's forced shutdown), then t0, `systemctl start libvirtd` (synchronous), then `virsh list
// --name` (active guests: the bench's are paused, as the host tier's are) every 50 ms until it lists all N: wall = that
// moment - t0 (a poll that blocks on libvirtd counts from t0). Then our journal
// lines of that restart (virt-hooks logs one line per hook run, with its own ms),
// and for virt-hooks `status --json`.

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** What breaks our forwards: flush our DNAT (iptables chain VIRT_HOOKS_PRE / nft table virt_hooks). */
export const FLUSH = {
  iptables: "iptables -w -t nat -F VIRT_HOOKS_PRE",
  nftables: "nft flush table ip virt_hooks",
};

/**
 * @param {"none"|"before"|"during"} flush  our DNAT flushed right before t0, or 200 ms after it
 * @param {boolean} waitHooks  also wait until no hook process runs (off: return when the guests are listed)
 * @returns {{ wall: number, restartMs: number, hooksDone: number, flushAt: number|null, t0: number, t2: number, cursor: string, polls: number }}
 * hooksDone: ms after t0 when the last hook process was seen (polled every 50 ms; wall if none was)
 */
/**
 * A hook process, by its command line: a script's process is named after its
 * interpreter once `#!/usr/bin/env python3` ran, so the Python hook's
 * reconnects were missed by name (counted done while its rules were still
 * being added, and running into the next variant's restart).
 */
const HOOK_PROCS = "^([^ ]*python3 )?/etc/libvirt/hooks/(qemu|network|lxc|hooks)( |$)";

export function restartOnce(host, n, backend, flush = "none", waitHooks = true, limitS = 300) {
  const f = FLUSH[backend];
  const r = host.execSync(`set -e
HOOK_PROCS='${HOOK_PROCS}'
cursor=$(journalctl -n 0 --show-cursor -q | sed -n 's/^-- cursor: //p')
${flush === "before" ? f : ":"}
t0=$(date +%s%3N)
systemctl stop libvirtd
ts=$(date +%s%3N)
${flush === "during" ? `( sleep 0.2; ${f}; date +%s%3N > /tmp/flush-at ) & fp=$!` : "rm -f /tmp/flush-at"}
systemctl start libvirtd
t1=$(date +%s%3N)
polls=0
while :; do
  polls=$((polls+1))
  k=$(virsh -q list --name 2>/dev/null | grep -c . || true)
  [ "$k" -ge ${n} ] && break
  [ $(( $(date +%s%3N) - t0 )) -gt ${limitS * 1000} ] && { echo "timeout: $k of ${n} listed" >&2; exit 3; }
  sleep 0.05
done
t2=$(date +%s%3N)
# Hooks still running after the guests are listed (libvirt's reconnects run in their
# own threads): the last poll that saw one, until none is seen for 1.5 s.
t3=$t2; now=$t2
${waitHooks ? "" : "now=$((t2 + 1500))"}
while [ $(( now - t3 )) -lt 1500 ] && [ $(( now - t0 )) -lt ${limitS * 1000} ]; do
  pgrep -f "$HOOK_PROCS" >/dev/null && t3=$now
  sleep 0.05; now=$(date +%s%3N)
done
${flush === "during" ? "wait $fp" : ":"}
echo "$cursor|$t0|$t1|$t2|$(cat /tmp/flush-at 2>/dev/null)|$polls|$t3|$ts"`);
  if (r.code !== 0) throw new Error(`restart: exit ${r.code}: ${r.stderr.slice(-2000)}`);
  const [cursor, t0, t1, t2, fa, polls, t3, ts] = r.stdout.trim().split("\n").pop().split("|");
  // Times are from the start (ts): no hook runs while libvirtd stops; wall and stopMs keep the whole restart.
  return { cursor, t0: +ts, t2: +t2, start: +t2 - +ts, wall: +t2 - +t0, stopMs: +ts - +t0, restartMs: +t1 - +ts, hooksDone: +t3 - +ts, flushAt: fa ? +fa - +ts : null, polls: +polls };
}

const HOOK_LINE = /^(network \S+ port-created|qemu \S+ reconnect) begin: (.*); (\d+) ms$/;

/**
 * Our hook lines since the cursor: kind, end (ms after t0), start (end - its own ms), ms, text.
 * Lines of `virt-hooks apply` (its unit runs when libvirtd starts) and of the watcher are counted apart.
 */
export function hookLines(host, cursor, t0) {
  const r = host.execSync(`journalctl -t virt-hooks -o json --after-cursor='${cursor}' --output-fields=MESSAGE,_SYSTEMD_UNIT,__REALTIME_TIMESTAMP`);
  const hooks = [], other = [];
  for (const l of r.stdout.split("\n")) {
    if (!l.trim()) continue;
    let j;
    try { j = JSON.parse(l); } catch { continue; }
    const msg = Array.isArray(j.MESSAGE) ? Buffer.from(j.MESSAGE).toString() : String(j.MESSAGE ?? "");
    const first = msg.split("\n")[0];
    const end = Number(j.__REALTIME_TIMESTAMP) / 1000 - t0;
    const m = HOOK_LINE.exec(first);
    if (m) hooks.push({ kind: m[1].startsWith("network") ? "port-created" : "reconnect", end, ms: +m[3], start: end - +m[3], text: first });
    else other.push({ end, unit: j._SYSTEMD_UNIT ?? "", text: first });
  }
  return { hooks, other };
}

/** `virt-hooks status --json`: are all our rules live? */
export function statusLive(host) {
  const r = host.execSync("virt-hooks status --json");
  try {
    const j = JSON.parse(r.stdout);
    const rules = j.rules ?? [];
    const live = rules.filter((x) => x.state === "live").length;
    return { ok: rules.length > 0 && live === rules.length, live, total: rules.length, ms: r.ms, drift: (j.drift ?? []).map((d) => d.kind) };
  } catch {
    return { ok: false, live: 0, total: 0, ms: r.ms, drift: [`unreadable status (exit ${r.code}): ${r.stderr.slice(0, 200)}`] };
  }
}

/**
 * After a restart that broke our rules: `status --json` from the restart's end
 * until all rules are live. Returns the ms from the end of the restart (t2) to
 * the end of the first all-live status (so it includes that status's own run),
 * and the first status's own ms.
 */
export async function timeToLive(host, t2, limitMs = 60_000) {
  let first;
  for (;;) {
    const s = statusLive(host);
    first ??= s;
    const now = Date.now(); // the booted host shares this machine's clock
    if (s.ok) return { ms: now - t2, firstOk: first.ok, firstMs: first.ms, drift: first.drift };
    if (now - t2 > limitMs) return { ms: Infinity, firstOk: false, firstMs: first.ms, drift: s.drift };
    await sleep(100);
  }
}

/**
 * Waits until no hook process runs (their comm is the hook's name) and libvirt's apply unit is done; then 1 s.
 * Also until libvirtd's node device driver has enumerated the host (its API waits for that): a stop
 * while it still runs was seen to hang 30 s, until libvirtd's forced shutdown.
 */
export async function settle(host) {
  host.execSync("timeout 60 virsh nodedev-list >/dev/null 2>&1; true");
  for (let i = 0; i < 600; i++) {
    const r = host.execSync(`pgrep -f '${HOOK_PROCS}' >/dev/null && echo busy; ` + "systemctl is-active virt-hooks-apply.service 2>/dev/null | grep -q activating && echo busy; true");
    if (!r.stdout.includes("busy")) break;
    await sleep(100);
  }
  await sleep(1000);
}
