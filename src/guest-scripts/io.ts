// The hook's output channels as the per-guest scripts see them: shared by the
// entry (hook.ts) and the runner (effects/guest-scripts-run.ts), which the
// entry loads lazily, so neither imports the other for it.
export interface ScriptsIo {
  /** libvirt reports a failing hook's stderr: the refusal reason goes here. */
  readonly stderr: (text: string) => void;
  /** The hook's stdout (libvirt's): only ever a migrate/restore script's replacement XML. */
  readonly stdout?: (text: string) => void;
}
