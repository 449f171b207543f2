// What every read-only admin command starts from: the rule files compiled, the
// running host as libvirt's status files show it, the backend libvirt uses,
// and (for check/plan/status/explain) the lint warnings. Read once, here.
import { readTextIfAny } from "../effects/read-text.js";
import type { Paths } from "../config/paths.js";
import { readHostView } from "../effects/libvirt-state.js";
import { readRuleFiles } from "../effects/rules-files.js";
import { chooseBackend, type BackendChoice } from "../host/backend.js";
import type { HostView } from "../host/view.js";
import { hostWarnings } from "../plan/resolve.js";
import { compileRules, type Compiled } from "../rules/compile.js";
import { hasErrors, type Diagnostic } from "../rules/diagnostic.js";
import type { SourceFile } from "../rules/source.js";
import { lintRules } from "../lint/lint.js";
import { readHostFacts } from "../lint/facts.js";
import { withLocalAddresses } from "../effects/host-addresses.js";

export interface Context {
  readonly files: readonly SourceFile[];
  readonly compiled: Compiled;
  readonly view: HostView;
  readonly backend: BackendChoice;
  /** Compile diagnostics, host warnings, then lint warnings. */
  readonly diagnostics: readonly Diagnostic[];
  /** Problems reading files (rules.d, libvirt's status files). */
  readonly problems: readonly string[];
  /** Rule files unreadable or with errors. */
  readonly ruleErrors: boolean;
}


export function loadContext(paths: Paths, o: { lint: boolean }): Context {
  const files = readRuleFiles(paths.rulesDir);
  const compiled = compileRules(files.files);
  const read = readHostView(paths.libvirtRunDir, undefined, paths.stateDir);
  const view = withLocalAddresses(read.view, compiled.rules);
  const lint = o.lint ? lintRules(compiled.rules, readHostFacts(paths, read.view, compiled.rules)) : [];
  return {
    files: files.files,
    compiled,
    view,
    backend: chooseBackend(compiled.rules.settings.backend, read.view, readTextIfAny(paths.networkConf)),
    diagnostics: [...compiled.diagnostics, ...hostWarnings(read.view), ...lint],
    problems: [...files.problems, ...read.problems],
    ruleErrors: files.problems.length > 0 || hasErrors(compiled.diagnostics),
  };
}
