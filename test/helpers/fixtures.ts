// The XML libvirt 11.3 really sent to its hooks (copied from shared/fixtures).
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

export const FIXTURES = join(import.meta.dirname, "..", "fixtures", "libvirt-11.3");

export interface CapturedEvent {
  readonly id: string;
  readonly driver: string;
  readonly args: string[];
  readonly xml: string;
}

export function capturedEvents(): CapturedEvent[] {
  return readdirSync(FIXTURES)
    .filter((f) => /^\d\d-.*\.argv$/.test(f))
    .sort()
    .map((f) => {
      const [driver = "", ...args] = readFileSync(join(FIXTURES, f), "utf8").trim().split(/\s+/);
      return { id: f.slice(0, -5), driver, args, xml: readFileSync(join(FIXTURES, f.replace(/\.argv$/, ".xml")), "utf8") };
    });
}

export const fixture = (name: string) => readFileSync(join(FIXTURES, name), "utf8");
