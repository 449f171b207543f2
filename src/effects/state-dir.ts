// Our records on disk (the state directory /run/virt-hooks, and the persistent
// record of our DHCP host entries): the one way they are read and written.
//
// A record steers root: what a stop puts back on an uplink (`ip -batch`), which
// DHCP entries are ours to delete, whether a reconcile may be skipped. So a
// record is believed only when every directory from / down to it, and the file
// itself, is root's alone (trust/whole-path.ts); in a directory that fails that
// check nothing is read AND nothing is written (a predictable temporary name in
// a directory others can write is a symlink attack). Writes go to a fresh
// O_EXCL|O_NOFOLLOW temporary file, then rename(2): a reader sees the old
// record or the new one, never half of either. Failing to write is reported,
// never thrown: no record is worth skipping the firewall for (issue 25, case 5).
import { closeSync, constants, fsyncSync, mkdirSync, openSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { trustPolicy, type TrustPolicy } from "../trust/ownership.js";
import { trustWholePath } from "../trust/whole-path.js";
import { readTrusted } from "./rules-files.js";

/** Our records are small; a bigger one is not ours. */
export const MAX_RECORD_BYTES = 16 * 1024 * 1024;

/**
 * The directory, created root-only when missing; undefined when it may be
 * used, else why not (with the fix). Asked afresh on every use: the watcher
 * lives for weeks, and an admin's `chmod` must take effect without a restart.
 */
export function recordDirProblem(dir: string, policy: TrustPolicy = trustPolicy()): string | undefined {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    return `cannot use ${dir}: ${(e as Error).message}`;
  }
  try {
    const where = trustWholePath(dir, policy);
    if ("problem" in where) return `${where.problem}; its records are neither read nor written until then`;
    return where.stat.isDirectory() ? undefined : `${dir}: refused: not a directory`;
  } catch (e) {
    return `cannot check ${dir}: ${(e as Error).message}`;
  }
}

export type RecordRead = { readonly text: string } | { readonly missing: true } | { readonly problem: string };

/** A record's text; `missing` when there is none; `problem` when it must not be believed. */
export function readRecordAt(path: string, maxBytes = MAX_RECORD_BYTES, policy: TrustPolicy = trustPolicy()): RecordRead {
  const dirProblem = recordDirProblem(dirname(path), policy);
  if (dirProblem) return { problem: dirProblem };
  const r = readTrusted(path, policy, maxBytes, true);
  if (typeof r === "string") return { text: r };
  return r.missing ? { missing: true } : { problem: r.problem };
}

/** The record's text, or undefined (none, or not to be believed: then it is rewritten by the next write). */
export function readRecord(dir: string, name: string, maxBytes = MAX_RECORD_BYTES): string | undefined {
  const r = readRecordAt(join(dir, name), maxBytes);
  return "text" in r ? r.text : undefined;
}

/** JSON of a record, or undefined when there is none, it is not to be believed, or it is not JSON. */
export function readJsonRecord(dir: string, name: string, maxBytes = MAX_RECORD_BYTES): unknown {
  const text = readRecord(dir, name, maxBytes);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

export interface WriteOptions {
  /** fsync before the rename (records that outlive a reboot; /run is tmpfs). */
  readonly durable?: boolean;
  readonly policy?: TrustPolicy;
}

/** Replaces the record whole, root-only (0600); undefined, or why it was not written. */
export function writeRecordAt(path: string, text: string, o: WriteOptions = {}): string | undefined {
  const dir = dirname(path);
  const dirProblem = recordDirProblem(dir, o.policy);
  if (dirProblem) return dirProblem;
  // O_EXCL|O_NOFOLLOW: nothing planted under this name (there cannot be, in a checked directory) is followed or reused.
  const tmp = join(dir, `.${process.pid}.${process.hrtime.bigint()}.tmp`);
  let fd: number | undefined;
  try {
    fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    const buf = Buffer.from(text, "utf8");
    for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off);
    if (o.durable) fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
    return undefined;
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      /* never created */
    }
    return `cannot record ${path}: ${(e as Error).message}`;
  }
}

export const writeRecord = (dir: string, name: string, text: string, o: WriteOptions = {}): string | undefined => writeRecordAt(join(dir, name), text, o);
