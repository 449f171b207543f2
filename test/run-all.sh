#!/usr/bin/env bash
# The one test command: every tier, from a clean clone. Needs root for the
# kernel and end-to-end tiers (they run in private namespaces they create).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"

if [ ! -d node_modules ]; then npm ci --no-audit --no-fund; export PATH="$PWD/node_modules/.bin:$PATH"; fi
if [ "$(id -u)" != 0 ]; then
  echo "test/run-all.sh: the kernel and end-to-end tiers need root (they create private namespaces): run it with sudo" >&2
  exit 2
fi
bash test/e2e/install-deps.sh
npm run -s typecheck
npm run -s build
vitest run --project unit --project kernel --project binary --project hostile --project e2e "$@"
# Booted Debian 13 and 12 hosts (systemd, journald, D-Bus, firewalld, Debian's own libvirt
# and Node) in systemd-nspawn, the product installed by the README's command. Their roots
# are cached under /var/cache/virt-hooks-test (test/host/make-root.sh; ~4-6 min each when
# cold: trixie, stock, backports). Its browser tier (test/host/cockpit.test.ts) drives
# Debian's own Chromium.
command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y --no-install-recommends chromium; }
vitest run --project host "$@"
