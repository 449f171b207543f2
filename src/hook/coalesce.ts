// Coalescing before the host is read. On a libvirtd restart every running
// guest's `reconnect` hook starts at once and queues on our lock; reconcile
// (apply/reconcile.ts) already lets a hook skip the kernel when a reconcile
// that started after it verified the same desired state, but each hook still
// read and parsed every status file and planned everything to find out.
//
// This check comes first, right after the lock, and reads almost nothing: a
// hook is covered when the last clean reconcile
//   - started looking after this hook started (the argument in reconcile.ts),
//   - computed its desired state from nothing but rules.d, libvirt's status
//     files and network.conf, and those are byte-for-byte the same now: the
//     same rules text, the same status file versions (statusIdentity), and
//   - this event adds nothing to them: its own corrections are only
//     "domain X is up" with exactly the domain X's status file already holds
//     (a reconnect: libvirt hands the hook the live XML it also wrote there).
// Then this hook's desired state is the one that reconcile made true, and it
// is done. Anything else (other corrections, links, re-attach, a vetoable
// event, a reconcile with failed rules or errors) takes the full path.
import { digest } from "../apply/digest.js";
import type { Correction } from "../host/view.js";
import type { DomainInfo } from "../libvirt/domain.js";
import type { SourceFile } from "../rules/source.js";
import type { Verified } from "../effects/state-store.js";

/** The log line's note of a covered hook (bench/ and the tests count these). */
export const COVERED_NOTE = "verified by a hook that started after this one";

/** The note of a covered hook: by a later-started reconcile, or by the watcher's quiet record. */
export function coveredNote(r: { readonly quietSince?: string }): string {
  return r.quietSince !== undefined ? `unchanged since the watcher verified it at ${r.quietSince} (no change heard since)` : COVERED_NOTE;
}

export interface CoalesceInputs {
  readonly rules: readonly SourceFile[];
  /** statusIdentity() of the status files this event's reconcile would read. */
  readonly statusIdentity: string;
  readonly networkConf: string | undefined;
}

/** The key a clean reconcile records and a later hook compares with. */
export function inputsKey(i: CoalesceInputs): string {
  return digest(...i.rules.flatMap((f) => [f.path, f.text]), "status", i.statusIdentity, "conf", i.networkConf ?? "(none)");
}

/**
 * True when applying `corrections` to the status files' view changes nothing:
 * each is a domain-up whose domain equals what its status file holds.
 */
export function correctionsRedundant(corrections: readonly Correction[], statusOf: (name: string) => DomainInfo | undefined): boolean {
  return corrections.every((c) => {
    if (c.kind !== "domain-up") return false;
    const recorded = statusOf(c.domain.name);
    return recorded !== undefined && JSON.stringify(recorded) === JSON.stringify(c.domain);
  });
}

/** Covered: the recorded reconcile started after this hook and saw exactly these inputs. */
export function coveredBefore(v: Verified | undefined, startedAt: bigint, key: string): v is Verified & { counts: NonNullable<Verified["counts"]> } {
  return v !== undefined && v.at > startedAt && v.inputs === key && v.counts !== undefined;
}
