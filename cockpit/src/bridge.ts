// The page's only ways out: `virt-hooks … --json` through cockpit.spawn and the
// page's own drop-in file through cockpit.file, both with superuser "try" (root
// when the session has administrative access, the user otherwise: read-only).
import { OWN_FILE, RULES_DIR, parseDoc, type Check, type Plan, type Status } from "./model";

declare const cockpit: any;

// The binary lives in PREFIX/sbin: /usr/sbin from the packages, /usr/local/sbin from install.sh.
const PATH = "PATH=/usr/local/sbin:/usr/sbin:/sbin:/usr/local/bin:/usr/bin:/bin";
const opts = { superuser: "try", err: "message", environ: [PATH, "LC_ALL=C.UTF-8"] };

/** Runs virt-hooks ARGS; resolves with its stdout and exit status (a JSON command's status is in its document too). */
export function vh(args: string[]): Promise<{ out: string; rc: number }> {
  // The shell only carries the exit status out: cockpit.spawn rejects on a non-zero one.
  const p = cockpit.spawn(["sh", "-c", 'out=$(virt-hooks "$@" 2>&1); rc=$?; printf "%s\\n%s" "$rc" "$out"', "sh", ...args], opts);
  return Promise.resolve(p).then((s: string) => {
    const nl = s.indexOf("\n");
    return { rc: Number(nl < 0 ? s : s.slice(0, nl)), out: nl < 0 ? "" : s.slice(nl + 1) };
  });
}

export async function status(): Promise<Status> {
  const r = await vh(["status", "--json"]);
  return parseDoc<Status>(r.out, "status");
}

/**
 * `virt-hooks check --json` and `plan --json` of rules.d as it would be with
 * the page's file holding `content`: a staged copy in a private temporary
 * directory (the live rules.d is not touched), removed afterwards.
 */
const STAGE = `set -u
d=$(mktemp -d /tmp/virt-hooks-cockpit.XXXXXX) || exit 1
trap 'rm -rf "$d"' EXIT
for f in "$1"/*.rules; do [ -e "$f" ] && cp -p "$f" "$d/"; done
cat > "$d/$2"
printf '{"dir":"%s","check":' "$d"
virt-hooks check --json --rules-dir "$d"
printf ',"plan":'
virt-hooks plan --json --rules-dir "$d"
printf '}'
exit 0`;

export async function stage(content: string): Promise<{ dir: string; check: Check; plan: Plan }> {
  const name = OWN_FILE.slice(RULES_DIR.length + 1);
  const p = cockpit.spawn(["sh", "-c", STAGE, "stage", RULES_DIR, name], opts);
  p.input(content);
  const out: string = await Promise.resolve(p);
  const doc = JSON.parse(out);
  return { dir: doc.dir, check: parseDoc<Check>(JSON.stringify(doc.check), "check"), plan: parseDoc<Plan>(JSON.stringify(doc.plan), "plan") };
}

export interface Snapshot { content: string | null; tag: string }

/** The page's file and its tag (cockpit.file's change marker; "-" when absent). */
export function readOwn(): Promise<Snapshot> {
  const f = cockpit.file(OWN_FILE, { superuser: "try" });
  return new Promise((resolve, reject) => {
    f.read().then((content: string | null, tag?: string) => {
      if (tag !== undefined) { f.close(); resolve({ content, tag }); return; }
      // Versions whose read() resolves with the content alone: the watch callback carries the tag.
      const w = f.watch((c: string | null, t: string) => { w.remove(); f.close(); resolve({ content: c, tag: t }); }, { read: true });
    }, (e: any) => { f.close(); reject(e); });
  });
}

export class ConflictError extends Error {}

/** Replaces the page's file only if it still has `tag`: a concurrent edit is refused, never overwritten. */
export async function replaceOwn(content: string, tag: string): Promise<void> {
  const f = cockpit.file(OWN_FILE, { superuser: "try" });
  try {
    await Promise.resolve(f.replace(content, tag));
  } catch (e: any) {
    if (e && (e.problem === "change-conflict" || /change-conflict|changed/i.test(String(e.message))))
      throw new ConflictError(`${OWN_FILE} was changed by someone else since this page read it (its editor, another browser): nothing was written. Reload it and make the change again.`);
    throw new Error(`could not write ${OWN_FILE}: ${e?.message ?? e}`);
  } finally { f.close(); }
}

/**
 * Administrative access, by Cockpit's superuser model (its pkg/lib/superuser.js):
 * `allowed` when the bridge runs as root or a superuser bridge is on (Current is
 * neither "none" nor "init"; null while it starts); `configured` when a method
 * (sudo, pkexec) exists to turn it on: Cockpit's "Limited access".
 */
export interface Access { allowed: boolean | null; configured: boolean | null; methods: string[] }

export interface Superuser {
  /** Starts the first configured method; `prompt` is called for each question (a password), answered with `answer`. */
  start(prompt: (p: { message: string; prompt: string; echo: boolean; error: string }) => void): Promise<void>;
  answer(value: string): void;
  stop(): void;
}

export function watchAccess(cb: (a: Access) => void): Superuser {
  let uid0 = false;
  let proxy: any = null;
  const emit = () => {
    const cur = proxy?.valid ? proxy.Current : undefined;
    const bridges: string[] = proxy?.valid ? (proxy.Bridges ?? []) : [];
    const allowed = uid0 ? true : cur === undefined || cur === "init" ? null : cur !== "none";
    cb({ allowed, configured: cur === undefined || cur === "init" ? null : bridges.length > 0, methods: bridges });
  };
  Promise.resolve(cockpit.user()).then((u: any) => { uid0 = u?.id === 0; emit(); }).catch(() => emit());
  try {
    proxy = cockpit.dbus(null, { bus: "internal" }).proxy("cockpit.Superuser", "/superuser");
    proxy.addEventListener("changed", emit);
    Promise.resolve(proxy.wait()).then(emit).catch(() => { /* no superuser module: uid alone decides */ });
  } catch { /* as above */ }
  return {
    start(prompt) {
      if (!proxy?.valid || !(proxy.Bridges ?? []).length) return Promise.reject(new Error("No method to gain administrative access is configured (sudo, pkexec)."));
      const methods = proxy.Methods ? Object.keys(proxy.Methods) : [];
      const method = methods[0] ?? proxy.Bridges[0];
      const onPrompt = (_e: unknown, message: string, p: string, _def: string, echo: boolean, error: string) =>
        prompt({ message: message ?? "", prompt: p ?? "", echo: !!echo, error: error ?? "" });
      proxy.addEventListener("Prompt", onPrompt);
      return Promise.resolve(proxy.Start(method)).finally(() => proxy.removeEventListener("Prompt", onPrompt));
    },
    answer(value) { proxy?.Answer(value); },
    stop() { proxy?.Stop(); },
  };
}

/** The guest the page is narrowed to (`#/?guest=NAME`, a deep link), or null. */
export function locationGuest(): string | null {
  const g = cockpit.location.options?.guest;
  return typeof g === "string" && g ? g : null;
}
export function onLocation(cb: () => void): () => void {
  cockpit.addEventListener("locationchanged", cb);
  return () => cockpit.removeEventListener("locationchanged", cb);
}
export function showGuest(name: string | null): void {
  cockpit.location.go("/", name ? { guest: name } : {});
}
/** The guest's own page in cockpit-machines (system connection). */
export function jumpToMachine(name: string): void {
  cockpit.jump(`/machines#vm?name=${encodeURIComponent(name)}&connection=system`);
}
