// The hook call itself: which driver (from the name we were invoked by) and
// libvirt's four arguments.

export type Driver = "qemu" | "network" | "lxc" | "libxl" | "daemon";

export interface HookEvent {
  readonly driver: Driver;
  /** Domain or network name ("-" for daemon events). */
  readonly object: string;
  readonly op: string;
  readonly subop: string;
  readonly extra: string;
}

export const HOOK_DRIVERS: readonly Driver[] = ["qemu", "network", "lxc", "libxl", "daemon"];

export function hookEventFromArgv(driver: Driver, args: readonly string[]): HookEvent | undefined {
  if (args.length < 2) return undefined;
  const [object = "-", op = "-", subop = "-", extra = "-"] = args;
  return { driver, object, op, subop, extra };
}

export const formatEvent = (e: HookEvent) => `${e.driver} ${e.object} ${e.op} ${e.subop}${e.extra !== "-" ? ` ${e.extra}` : ""}`;
