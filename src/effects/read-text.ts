// Reading a file without letting it stall or swamp us. A FIFO, a socket or a
// device where a file should be (a mistake, or someone's bind mount) blocks a
// plain open() forever, and libvirt waits for its hook with no time limit; a
// huge file would be read whole into memory. So: only regular files, opened
// non-blocking (a FIFO swapped in after our look cannot block either), never
// as a controlling terminal, and at most `maxBytes` read.
import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from "node:fs";

/** libvirt's own XML and dnsmasq's lease files are far below this. */
export const MAX_TEXT_BYTES = 16 * 1024 * 1024;

export interface ReadOptions {
  readonly maxBytes?: number;
  /** Refuse a symbolic link in the last hop (the caller resolved and checked the path). */
  readonly noFollow?: boolean;
  /** Called with the descriptor's stat before anything is read: a string refuses. */
  readonly check?: (st: Stats) => string | undefined;
}

export type ReadResult = { readonly text: string; readonly stat: Stats } | { readonly problem: string; readonly missing?: boolean };

const MISSING = new Set(["ENOENT", "ENOTDIR"]);

export function readRegularFile(path: string, o: ReadOptions = {}): ReadResult {
  const maxBytes = o.maxBytes ?? MAX_TEXT_BYTES;
  try {
    // Looked at first so that a device node is never even opened (opening some has effects).
    if (!statSync(path).isFile()) return { problem: `${path}: refused: not a regular file` };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "";
    return { problem: `cannot read ${path}: ${(e as Error).message}`, ...(MISSING.has(code) ? { missing: true } : {}) };
  }
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY | (o.noFollow ? constants.O_NOFOLLOW : 0));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "";
    return { problem: `cannot read ${path}: ${(e as Error).message}`, ...(MISSING.has(code) ? { missing: true } : {}) };
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return { problem: `${path}: refused: not a regular file` };
    const why = o.check?.(st);
    if (why) return { problem: why };
    if (st.size > maxBytes) return { problem: `${path}: refused: ${st.size} bytes is more than the ${maxBytes} it may have` };
    const buf = Buffer.alloc(Math.min(st.size, maxBytes) + 1);
    let got = 0;
    for (let n; got < buf.length && (n = readSync(fd, buf, got, buf.length - got, got)) > 0; ) got += n;
    if (got > maxBytes) return { problem: `${path}: refused: more than the ${maxBytes} bytes it may have` };
    return { text: buf.subarray(0, got).toString("utf8"), stat: st };
  } catch (e) {
    return { problem: `cannot read ${path}: ${(e as Error).message}` };
  } finally {
    closeSync(fd);
  }
}

/**
 * A file's text, or undefined when it cannot be read: for the optional files
 * (network.conf, domain definitions, libvirt's status files) whose absence is
 * an answer, not an error. Bounded as above.
 */
export function readTextIfAny(path: string, maxBytes = MAX_TEXT_BYTES): string | undefined {
  const r = readRegularFile(path, { maxBytes });
  return "text" in r ? r.text : undefined;
}
