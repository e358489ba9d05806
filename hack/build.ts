/**
 * Builds what ships: src/main.ts and everything it imports, node_modules
 * included, as ONE ES module, dist/main.mjs (+ source map). `tsc` only type-checks.
 *
 * Why a bundle: @kubernetes/client-node 2.x spreads its generated API over
 * about a thousand modules and loads all of them through its index. Loading the
 * operator file by file took ~0.9 s and ~170 MB before it did any work;
 * bundled, esbuild drops the API groups the operator never calls and Node
 * loads one file: ~0.2 s and ~85 MB (docs/BENCHMARKS.md, "Start-up and the
 * shipped bundle"). The image then needs no node_modules at all.
 *
 *   node hack/build.ts        (make build; the benchmarks call buildOperator())
 */
import { build, type Plugin } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The program the image runs. */
export const OPERATOR_BUNDLE = join(root, 'dist', 'main.mjs');

/**
 * The node flags the image starts the bundle with (the Dockerfile's CMD; a
 * test keeps them equal), so the benchmarks measure what the pod runs.
 *
 * --max-semi-space-size=16: Node 24 lets V8's young generation grow to
 * 2 × 64 MiB under a busy reconcile load, and keeps it. Nearly all of it is
 * short-lived request garbage; capped at 2 × 16 MiB, a leader that converged
 * 1,000 Websites held a quarter to a third less memory (VmRSS 200 against
 * 266 MiB), for 0–18 % more operator CPU (more, smaller scavenges), measured
 * in the same runs (docs/BENCHMARKS.md, "CPU"). Memory is what the pod's
 * limit enforces (an OOM kill); drop the flag for throughput if the limit
 * allows.
 */
export const OPERATOR_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=16'];

/**
 * Marks @kubernetes/client-node's modules free of side effects, so esbuild
 * leaves out the ones nothing reachable uses. The package does not say so
 * itself (no "sideEffects" in its package.json), and its index re-exports the
 * generated clients, a thousand models and the ObjectSerializer that lists
 * them all; the operator uses its KubeConfig (and types) and talks to the API
 * server through src/runtime/kube.ts. Its modules only declare classes and
 * functions, so dropping unused ones changes nothing that runs: 500 KB less to
 * parse and evaluate at every start (docs/BENCHMARKS.md, start-up).
 */
const clientNodeWithoutSideEffects: Plugin = {
  name: 'client-node-without-side-effects',
  setup(builder) {
    builder.onResolve({ filter: /.*/ }, async (args) => {
      if (args.pluginData === clientNodeWithoutSideEffects) return undefined;
      if (!args.path.startsWith('@kubernetes/client-node') && !args.importer.includes('/node_modules/@kubernetes/client-node/')) return undefined;
      const resolved = await builder.resolve(args.path, {
        kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: clientNodeWithoutSideEffects,
      });
      if (resolved.errors.length > 0 || !resolved.path.includes('/node_modules/@kubernetes/client-node/')) return resolved;
      return { ...resolved, sideEffects: false };
    });
  },
};

/** Builds OPERATOR_BUNDLE from the current sources; resolves with its path. */
export async function buildOperator(): Promise<string> {
  await build({
    entryPoints: [join(root, 'src', 'main.ts')],
    outfile: OPERATOR_BUNDLE,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22.19',
    // Stack traces map back to src/ with --enable-source-maps; the sources
    // themselves are left out of the map, which keeps it (and the memory Node
    // spends on it) small.
    sourcemap: true,
    sourcesContent: false,
    minifySyntax: true,
    // Without this the bundle keeps its dependencies' comments, some of them
    // not ASCII ("response’s"), and V8 then holds the whole 4 MB source as a
    // two-byte string: 8 MiB of heap for text. Whitespace-minified and ASCII,
    // it is 3 MB held as 3 MiB. Identifiers stay, so stack traces still name
    // the functions (all on line 1 without --enable-source-maps).
    minifyWhitespace: true,
    charset: 'ascii',
    // The licences of what is bundled, in dist/main.mjs.LEGAL.txt (shipped in the image).
    legalComments: 'external',
    plugins: [clientNodeWithoutSideEffects],
    // CommonJS dependencies (express, winston, prom-client) call require() for
    // Node's built-ins; an ES module has no require of its own.
    banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
    logLevel: 'warning',
  });
  return OPERATOR_BUNDLE;
}

if (import.meta.main) await buildOperator();
