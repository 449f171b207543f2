// A file's text, or undefined when it cannot be read: for the optional files
// (network.conf, domain definitions) whose absence is an answer, not an error.
import { readFileSync } from "node:fs";

export function readTextIfAny(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}
