// Which versions of libvirt's status files a hook's desired state would be
// computed from, without reading or parsing them (hook/coalesce.ts). Apart
// from the XML parser on purpose: a hook that turns out to be covered
// (hook/covered-early.ts) asks this before any of the parser is loaded.
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

/** The .xml names in a status directory (none when it is missing). */
export function xmlFiles(dir: string): string[] {
  try {
    return readdirSync(dir).filter((n) => n.endsWith(".xml"));
  } catch {
    return [];
  }
}

/**
 * Which status files readHostView(runDir, domains) (effects/libvirt-state.ts) would read, and which
 * version of each: name, inode, size and mtime (ns). libvirt replaces a
 * status file by rename, so any rewrite changes the inode. Cheap: one stat
 * per file, no read, no parse.
 */
export function statusIdentity(runDir: string, domains: ReadonlySet<string>): string {
  const lines: string[] = [];
  for (const sub of ["network", "qemu"] as const) {
    for (const file of xmlFiles(join(runDir, sub)).sort()) {
      if (sub === "qemu" && !domains.has(file.slice(0, -4))) continue;
      try {
        const st = statSync(join(runDir, sub, file), { bigint: true });
        lines.push(`${sub}/${file} ${st.ino} ${st.size} ${st.mtimeNs}`);
      } catch {
        lines.push(`${sub}/${file} gone`);
      }
    }
  }
  return lines.join("\n");
}

