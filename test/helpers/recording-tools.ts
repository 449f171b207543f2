// A recording fake of the firewall tools for in-process tests of the reconcile
// loop (issue 27), as knftables' Fake and libvirt's virCommandSetDryRun: every
// call is recorded (argv and stdin), and iptables-save/-restore answer from a
// small model of the tables that applies a restore script the way the kernel
// tool does (each table commits at its COMMIT, all of it or nothing). It
// stands in for the tools only in the unit tier; the kernel and e2e tiers run
// the real ones.
import type { RunTool, ToolResult } from "../../src/effects/exec.js";

type Tables = Map<string, Map<string, string[]>>;

const BUILTIN: Record<string, string[]> = {
  filter: ["INPUT", "FORWARD", "OUTPUT"],
  nat: ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
};

export interface Call {
  readonly tool: string;
  readonly args: readonly string[];
  readonly input: string;
}

export class RecordingIptables {
  readonly calls: Call[] = [];
  /** Makes the named table's COMMIT fail (exit 1), as a kernel refusal would. */
  refuseTable: string | undefined;
  private tables: Tables = new Map(Object.entries(BUILTIN).map(([t, chains]) => [t, new Map(chains.map((c) => [c, []]))]));

  readonly run: RunTool = async (tool, args, input = "") => {
    this.calls.push({ tool, args: [...args], input });
    if (tool === "iptables-save") return ok(this.save());
    if (tool === "iptables-restore") return this.restore(input);
    // Nothing else of ours in IPv4-only tests: the IPv6 tools and nft are "missing".
    return { exitCode: 127, stdout: "", stderr: `${tool}: not in this fake` };
  };

  /** The calls that changed something (restore transactions). */
  transactions(): string[] {
    return this.calls.filter((c) => c.tool === "iptables-restore").map((c) => c.input);
  }

  /** Someone else's hand on the tables: `iptables -t TABLE -F CHAIN`, or libvirt inserting at the top. */
  flush(table: string, chain: string): void {
    this.tables.get(table)?.set(chain, []);
  }

  insertFirst(table: string, chain: string, spec: string): void {
    this.tables.get(table)?.get(chain)?.unshift(spec);
  }

  rules(table: string, chain: string): readonly string[] {
    return this.tables.get(table)?.get(chain) ?? [];
  }

  private save(): string {
    const out: string[] = [];
    for (const [table, chains] of this.tables) {
      out.push(`*${table}`);
      for (const name of chains.keys()) out.push(`:${name} ${BUILTIN[table]?.includes(name) ? "ACCEPT" : "-"} [0:0]`);
      for (const [name, rules] of chains) for (const r of rules) out.push(`-A ${name} ${r}`);
      out.push("COMMIT");
    }
    return out.join("\n") + "\n";
  }

  private restore(script: string): ToolResult {
    let table: string | undefined;
    let work: Map<string, string[]> | undefined;
    const fail = (why: string): ToolResult => ({ exitCode: 1, stdout: "", stderr: `iptables-restore: ${why}` });
    for (const raw of script.split("\n")) {
      const line = raw.trim();
      if (!line || line.startsWith("#")) continue;
      if (line.startsWith("*")) {
        table = line.slice(1);
        const current = this.tables.get(table);
        if (!current) return fail(`table ${table} does not exist`);
        work = new Map([...current].map(([c, r]) => [c, [...r]]));
        continue;
      }
      if (!table || !work) return fail(`no table for "${line}"`);
      if (line === "COMMIT") {
        if (this.refuseTable === table) return fail(`line ${line}: COMMIT failed`);
        this.tables.set(table, work);
        table = undefined;
        work = undefined;
        continue;
      }
      if (line.startsWith(":")) {
        // --noflush: declaring a chain creates or empties it.
        const name = line.slice(1).split(" ")[0] as string;
        if (!BUILTIN[table]?.includes(name)) work.set(name, []);
        continue;
      }
      const m = /^-([ADIFX]) (\S+)(?: (.*))?$/.exec(line);
      if (!m) return fail(`cannot parse "${line}"`);
      const [, op, chain, rest = ""] = m as unknown as [string, string, string, string | undefined];
      const rules = work.get(chain);
      if (!rules && op !== "X") return fail(`chain ${chain} does not exist`);
      if (op === "A") rules!.push(rest);
      else if (op === "I") {
        const n = /^(\d+) (.*)$/.exec(rest);
        rules!.splice(n ? Number(n[1]) - 1 : 0, 0, n ? (n[2] as string) : rest);
      } else if (op === "D") {
        const i = rules!.indexOf(rest);
        if (i < 0) return fail(`rule "${rest}" not in ${chain}`);
        rules!.splice(i, 1);
      } else if (op === "F") rules!.length = 0;
      else if (op === "X") work.delete(chain);
    }
    return ok("");
  }
}

const ok = (stdout: string): ToolResult => ({ exitCode: 0, stdout, stderr: "" });
