// Turns a reconcile into what an admin reads: one summary line, problem lines
// with file:line:col, and whether the event should be refused.
import { formatEvent, type HookEvent } from "../libvirt/event.js";
import type { ReconcileResult } from "../apply/result.js";
import { formatDiagnostic, type Diagnostic } from "../rules/diagnostic.js";
import { countStates } from "../plan/intents.js";
import { BACKEND_TEXT } from "../host/backend.js";

export function summaryLine(label: string, result: ReconcileResult | undefined, ms: number, note?: string): string {
  if (!result) return `${label}: ${note ?? "nothing to do"}; ${ms} ms`;
  const changes = result.families.map((f) => {
    const name = `${BACKEND_TEXT[f.backend].prefix}ipv${f.family}`;
    if (f.error) return `${name} FAILED`;
    if (f.transaction === undefined) return `${name} unchanged`;
    // Same rules, but a jump or libvirt-side accept had to be put back first.
    return f.added + f.removed === 0 ? `${name} re-asserted` : `${name} +${f.added} -${f.removed}`;
  });
  if (result.removedFrom.length) changes.push(`removed leftovers from ${result.removedFrom.join(", ")}`);
  const c = result.counts ?? countStates(result.plan.states);
  return `${label}: ${changes.join(", ") || "no firewall change"}; rules ${c.live} live, ${c.waiting} waiting, ${c.failed} failed${note ? `; ${note}` : ""}; ${ms} ms`;
}

export const eventLabel = (e: HookEvent) => formatEvent(e);

/** Every problem as printable lines: rule diagnostics, failed rules, failed transactions. */
export function problemLines(diagnostics: readonly Diagnostic[], result: Pick<ReconcileResult, "plan" | "families"> | undefined): string[] {
  const lines = diagnostics.map(formatDiagnostic);
  for (const s of result?.plan.states ?? []) if (s.state === "failed") lines.push(formatDiagnostic(s.diagnostic));
  for (const f of result?.families ?? []) if (f.error) lines.push(`ipv${f.family}: ${f.error}`);
  return lines;
}
