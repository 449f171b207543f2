import { defineConfig } from "vitest/config";

// Five tiers (and the booted hosts), one runner. unit: the pure core, no root. kernel: rendered rules
// applied by the real iptables/nft inside `unshare -n`. binary: the compiled
// executable run as a hook. e2e: a real libvirtd, real guests, real traffic.
export default defineConfig({
  test: {
    projects: [
      { test: { name: "unit", include: ["test/unit/**/*.test.ts"] } },
      { test: { name: "kernel", include: ["test/kernel/**/*.test.ts"], testTimeout: 60_000, fileParallelism: false } },
      { test: { name: "binary", include: ["test/binary/**/*.test.ts"], testTimeout: 60_000 } },
      // hostile: an unprivileged uid (65534), a guest's choices and stray files
      // against the compiled executable, in private namespaces (README Security).
      { test: { name: "hostile", include: ["test/hostile/**/*.test.ts"], testTimeout: 120_000, hookTimeout: 120_000 } },
      // host: booted Debian hosts in systemd-nspawn (test/host/make-root.sh caches the roots).
      { test: { name: "host", include: ["test/host/**/*.test.ts"], testTimeout: 600_000, hookTimeout: 900_000, fileParallelism: false } },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          testTimeout: 180_000,
          hookTimeout: 180_000,
          // Each file builds its own lab in private namespaces, so files can run
          // side by side; most of their time is spent waiting on libvirtd and guests.
          fileParallelism: true,
          maxWorkers: 3,
        },
      },
    ],
  },
});
