// Compiles rule text held in memory, for tests of the pure core.
import { compileRules } from "../../src/rules/compile.js";
import { formatDiagnostic } from "../../src/rules/diagnostic.js";

export function compileText(text: string, path = "/etc/libvirt/hooks/rules.d/10-test.rules") {
  return compileRules([{ path, text }]);
}

/** "10-test.rules:1:9 unknown-protocol" for each diagnostic: compact table-test output. */
export function diagnosticsOf(text: string): string[] {
  return compileText(text).diagnostics.map((d) => {
    const first = formatDiagnostic(d).split("\n")[0] as string;
    const where = /^[^:]*\/([^/]+:\d+:\d+):/.exec(first)?.[1] ?? "-";
    return `${where} ${d.code}`;
  });
}
