// How long to wait before restarting a source whose child died, or retrying a
// reconcile that failed: doubling from `firstMs` to `maxMs`, reset by a
// success. Pure, so "never a tight loop" is a tested property.
export interface Backoff {
  next(): number;
  reset(): void;
}

export function createBackoff(firstMs = 1000, maxMs = 60_000): Backoff {
  let current = 0;
  return {
    next() {
      current = current === 0 ? firstMs : Math.min(maxMs, current * 2);
      return current;
    },
    reset() {
      current = 0;
    },
  };
}
