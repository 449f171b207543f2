// What each running domain's status file said, kept between events in the
// state directory. Every event that acts reads the status file of every
// running guest the rules name; parsing them was most of its cost on a busy
// host (--cpu-prof, a reconnect with 50 guests running: 28 of 76 ms, and most
// of the 10 ms of GC after it; bench/, issue 15), while a status file changes
// only when libvirt rewrites it for that guest.
//
// An entry is used only for the very version of the file it was read from:
// inode, size and mtime (ns) of the descriptor the text was read through
// (libvirt replaces a status file by rename, so a rewrite is a new inode;
// fstat of the open descriptor, so the text and its identity always belong
// together). And only by the executable that wrote it: an upgraded one, whose
// DomainInfo may have another shape, starts afresh. Read like every other
// file of the state directory, root's alone (trust/ownership.ts): what it
// says reaches ip and the firewall as a parsed status file would. A damaged,
// foreign, distrusted or stale cache is never used, only replaced; the state
// directory is a tmpfs, gone at boot. It can make an event cheaper, never
// decide differently.
import { closeSync, constants, fstatSync, openSync, readFileSync, statSync } from "node:fs";
import type { DomainInfo } from "../libvirt/domain.js";
import { MAX_TEXT_BYTES } from "./read-text.js";
import { readJsonRecord, writeRecord } from "./state-dir.js";
import { validDomainInfo } from "../plan/record-values.js";

const FILE = "domain-status.json";
/** The layout of the file (the writer check keeps releases apart). */
const FORMAT = 1;
/** Far above 1,000 guests' entries. */
const MAX_BYTES = 8 << 20;

interface Entry {
  /** `ino size mtimeNs` of the status file the entry was read from. */
  readonly id: string;
  readonly pid?: number;
  readonly info: DomainInfo;
}

interface Stored {
  readonly format: number;
  readonly writer: string;
  /** [domain name, entry] pairs (a Map's: any name, "__proto__" too, is only data). */
  readonly entries: readonly (readonly [string, Entry])[];
}

/** A status file's text with the identity of the version it is; or the cached facts of that version. */
export type StatusRead = { readonly cached: Omit<Entry, "id"> } | { readonly text: string; readonly id: string };

export interface DomainStatusCache {
  /** Reads `path` (a domain status file, known to the cache by `name`): the cached facts when they are of this very version. */
  read(name: string, path: string): StatusRead;
  remember(name: string, id: string, entry: Omit<Entry, "id">): void;
  /** Writes the cache when it changed, keeping only `present` (the status files that exist now). */
  save(present: ReadonlySet<string>): void;
}

/** Who wrote a cache: this executable's file, as it is now (an upgrade replaces it). */
function writer(): string {
  try {
    const st = statSync(process.execPath, { bigint: true });
    return `${process.execPath} ${st.ino} ${st.size} ${st.mtimeNs}`;
  } catch {
    return "";
  }
}

export function openDomainStatusCache(stateDir: string): DomainStatusCache {
  const me = writer();
  let entries = new Map<string, Entry>();
  try {
    const s = (readJsonRecord(stateDir, FILE, MAX_BYTES) ?? {}) as Stored;
    if (me && s.format === FORMAT && s.writer === me && Array.isArray(s.entries)) entries = new Map(s.entries.filter((e) => Array.isArray(e) && typeof e[0] === "string"));
  } catch {
    // None yet, or unreadable: every status file is parsed, and the cache rewritten.
  }
  let changed = false;
  return {
    read(name, path) {
      // Non-blocking, a regular file, bounded: whatever sits at that name cannot stall the hook (read-text.ts).
      const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
      try {
        const st = fstatSync(fd, { bigint: true });
        if (!st.isFile()) throw new Error(`${path}: not a regular file`);
        if (st.size > BigInt(MAX_TEXT_BYTES)) throw new Error(`${path}: ${st.size} bytes is more than the ${MAX_TEXT_BYTES} it may have`);
        const id = `${st.ino} ${st.size} ${st.mtimeNs}`;
        const e = entries.get(name);
        // What the cache says reaches iptables, nft and ip as parsed XML would: only values parsing could give.
        if (e && e.id === id && validDomainInfo(e.info) && (e.pid === undefined || Number.isInteger(e.pid))) return { cached: e.pid === undefined ? { info: e.info } : { pid: e.pid, info: e.info } };
        return { text: readFileSync(fd, "utf8"), id };
      } finally {
        closeSync(fd);
      }
    },
    remember(name, id, entry) {
      entries.set(name, { id, ...entry });
      changed = true;
    },
    save(present) {
      for (const name of [...entries.keys()]) {
        if (!present.has(name)) {
          entries.delete(name);
          changed = true;
        }
      }
      if (!changed || !me) return;
      const stored: Stored = { format: FORMAT, writer: me, entries: [...entries] };
      // Only an optimisation: unrecorded, the next event parses again.
      if (writeRecord(stateDir, FILE, JSON.stringify(stored) + "\n") === undefined) changed = false;
    },
  };
}
