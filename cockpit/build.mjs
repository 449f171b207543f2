// Builds Cockpit's "Port forwards" page into dist/cockpit/: index.html,
// manifest.json (its condition names the binary: install.sh writes the path),
// index.js and index.css (React + PatternFly, bundled and minified by esbuild).
import { build } from "esbuild";
import { copyFileSync, mkdirSync, rmSync, statSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = resolve(here, "../dist/cockpit");
const t0 = Date.now();
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [join(here, "src/app.tsx")],
  bundle: true, minify: true, format: "iife", target: "es2020", jsx: "automatic",
  outfile: join(out, "index.js"),
  define: { "process.env.NODE_ENV": '"production"' },
  // No web fonts (the system sans-serif, as the rest of the host shows; no font files
  // in the package); the few images inline (the manifest allows img-src data:).
  loader: { ".woff": "empty", ".woff2": "empty", ".ttf": "empty", ".eot": "empty", ".svg": "dataurl", ".png": "dataurl", ".jpg": "dataurl" },
  assetNames: "assets/[name]-[hash]", legalComments: "none", logLevel: "warning",
  // react-table takes three helpers from react-core's index, which would pull in
  // every component's stylesheet: point that one import at the helpers alone.
  plugins: [{
    name: "pf-core-helpers",
    setup(b) {
      b.onResolve({ filter: /^@patternfly\/react-core$/ }, (a) =>
        b.resolve("@patternfly/react-core/dist/esm/helpers/index.js", { resolveDir: a.resolveDir, kind: a.kind }));
    },
  }],
});
for (const f of ["index.html", "manifest.json"]) copyFileSync(join(here, f), join(out, f));
const size = (d) => readdirSync(d, { withFileTypes: true }).reduce((n, e) => n + (e.isDirectory() ? size(join(d, e.name)) : statSync(join(d, e.name)).size), 0);
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
console.log(`  cockpit dist/cockpit  index.js ${kb(statSync(join(out, "index.js")).size)}, index.css ${kb(statSync(join(out, "index.css")).size)}, total ${kb(size(out))}  ${((Date.now() - t0) / 1000).toFixed(2)} s`);
