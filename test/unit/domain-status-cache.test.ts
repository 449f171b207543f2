// readHostView keeps what each domain status file said in the state directory
// (effects/domain-status-cache.ts) and uses it only for that very version of
// the file: a rewrite (libvirt's rename), a damaged cache or one written by
// another executable are read afresh, and the view is always what parsing
// the files would give.
import { chmodSync, statSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { readHostView } from "../../src/effects/libvirt-state.js";

const FIXTURE = readFileSync(resolve(__dirname, "../fixtures/libvirt-11.3/status-qemu-vm1.xml"), "utf8");
const MAC = /<mac address='([0-9a-f:]+)'\/>/.exec(FIXTURE)?.[1] ?? "";
const named = (name: string, mac = MAC) => FIXTURE.replaceAll("<name>vm1</name>", `<name>${name}</name>`).replaceAll(MAC, mac);

describe("the domain status cache", () => {
  let root = "";
  let run = "";
  let state = "";
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), "vh-status-cache-"));
    run = join(root, "run/libvirt");
    state = join(root, "run/virt-hooks");
    mkdirSync(join(run, "qemu"), { recursive: true });
    mkdirSync(join(run, "network"), { recursive: true });
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  /** As libvirt writes a status file: a new file renamed over the old (a new inode). */
  const write = (name: string, text: string) => {
    const tmp = join(run, "qemu", `.${name}.new`);
    writeFileSync(tmp, text);
    renameSync(tmp, join(run, "qemu", `${name}.xml`));
  };
  const view = () => readHostView(run, undefined, state).view.domains;
  const cacheFile = () => join(state, "domain-status.json");
  /** The cache as written, with every entry saying its domain has no NIC (what a parse never gives here); `writer` as given. */
  const forge = (writer?: string) => {
    const good = JSON.parse(readFileSync(cacheFile(), "utf8"));
    const entries = good.entries.map(([n, e]: [string, { info: object }]) => [n, { ...e, info: { name: n, interfaces: [] } }]);
    writeFileSync(cacheFile(), JSON.stringify({ ...good, ...(writer ? { writer } : {}), entries }));
    return good.writer as string;
  };
  const macs = () => Object.fromEntries([...view()].map(([n, d]) => [n, d.interfaces.map((i) => i.mac)]));

  it("gives the view parsing gives, and keeps it for the next reader", () => {
    write("a", named("a"));
    write("b", named("b", "52:54:00:00:00:0b"));
    const parsed = readHostView(run).view.domains;
    expect(view()).toEqual(parsed);
    expect(readFileSync(cacheFile(), "utf8")).toContain('"b"');
    expect(view()).toEqual(parsed);
  });

  it("answers from an entry for that very version of the file, and only for it", () => {
    write("a", named("a"));
    view();
    // An entry that says otherwise, for the same version: it is what the view shows (no parse).
    forge();
    expect(macs()).toEqual({ a: [] });
    // libvirt rewrites it (same text, a new inode): parsed again.
    write("a", named("a"));
    expect(macs()).toEqual({ a: [MAC] });
  });

  it("reads a rewritten status file afresh", () => {
    write("a", named("a"));
    expect(macs()).toEqual({ a: [MAC] });
    write("a", named("a", "52:54:00:00:00:aa"));
    expect(macs()).toEqual({ a: ["52:54:00:00:00:aa"] });
  });

  it("forgets a domain whose status file is gone", () => {
    write("a", named("a"));
    write("b", named("b", "52:54:00:00:00:0b"));
    view();
    rmSync(join(run, "qemu", "b.xml"));
    expect(Object.keys(macs())).toEqual(["a"]);
    expect(readFileSync(cacheFile(), "utf8")).not.toContain('"b"');
  });

  it("keeps the entries of domains a reader did not ask for", () => {
    write("a", named("a"));
    write("b", named("b", "52:54:00:00:00:0b"));
    view();
    readHostView(run, new Set(["a"]), state);
    expect(readFileSync(cacheFile(), "utf8")).toContain('"b"');
  });

  it("never uses a damaged cache, or one another executable wrote, and rewrites it", () => {
    write("a", named("a"));
    view();
    // Same version of the file, other facts: used only if the writer matched.
    const writer = forge("/usr/bin/elsewhere 1 2 3");
    expect(macs()).toEqual({ a: [MAC] });
    writeFileSync(cacheFile(), "{not json");
    expect(macs()).toEqual({ a: [MAC] });
    expect(JSON.parse(readFileSync(cacheFile(), "utf8")).writer).toBe(writer);
  });

  it("never uses a cache that others may write, and replaces it with one only root may", () => {
    write("a", named("a"));
    view();
    forge();
    chmodSync(cacheFile(), 0o666);
    expect(macs()).toEqual({ a: [MAC] });
    // Written afresh by rename: root's alone again.
    expect(statSync(cacheFile()).mode & 0o077).toBe(0);
  });

  it("holds a domain named __proto__ as data", () => {
    write("__proto__", named("__proto__"));
    expect(Object.keys(macs())).toEqual(["__proto__"]);
    expect(Object.keys(macs())).toEqual(["__proto__"]);
  });
});
