/**
 * Where a bundle's CPU time went: a V8 CPU profile (`node --cpu-prof`) of
 * dist/main.mjs, its self time attributed to packages through the bundle's
 * source map (node:module's SourceMap), for the CPU benchmark (issue 17).
 *
 *   const summary = summarizeProfile(readFileSync(profilePath, 'utf8'), bundlePath);
 *   console.log(formatSummary(summary));
 */
import { readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { pathToFileURL } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  /** Microseconds sampled, idle included. */
  totalUs: number;
  idleUs: number;
  /** Self time per package (undici, @kubernetes/client-node, src/runtime, node internals, GC, …), busiest first. */
  byPackage: { name: string; us: number }[];
  /** The busiest functions by self time, with their package. */
  topFunctions: { name: string; pkg: string; us: number }[];
}

/** The package a source path belongs to: the node_modules package, or src/<folder> of this project. */
function packageOf(source: string): string {
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(source);
  if (modules) return modules[1]!;
  const own = /\/(src\/[^/]+)\//.exec(source);
  if (own) return own[1]!;
  return /\/src\/[^/]+$/.test(source) ? 'src' : source;
}

export function summarizeProfile(profileJson: string, bundlePath: string): ProfileSummary {
  const profile = JSON.parse(profileJson) as CpuProfile;
  const map = new SourceMap(JSON.parse(readFileSync(`${bundlePath}.map`, 'utf8')) as ConstructorParameters<typeof SourceMap>[0]);
  const bundleUrl = pathToFileURL(bundlePath).href;
  const selfUs = new Map<number, number>();
  for (const [i, id] of profile.samples.entries()) selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));

  const byPackage = new Map<string, number>();
  const byFunction = new Map<string, { name: string; pkg: string; us: number }>();
  let totalUs = 0;
  let idleUs = 0;
  for (const node of profile.nodes) {
    const us = selfUs.get(node.id) ?? 0;
    if (us === 0) continue;
    totalUs += us;
    const { functionName, url, lineNumber, columnNumber } = node.callFrame;
    let pkg: string;
    let name = functionName || '(anonymous)';
    if (functionName === '(idle)') {
      idleUs += us;
      continue;
    } else if (functionName === '(garbage collector)') pkg = 'GC';
    else if (functionName === '(program)') pkg = 'V8 (program)';
    else if (url === bundleUrl) {
      const entry = map.findEntry(lineNumber, columnNumber) as { originalSource?: string; name?: string };
      pkg = entry.originalSource ? packageOf(entry.originalSource) : 'bundle (unmapped)';
      name = functionName || entry.name || '(anonymous)';
    } else if (url.startsWith('node:')) pkg = 'node internals';
    else if (url === '') pkg = 'V8 builtins and native';
    else pkg = url;
    byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + us);
    const key = `${pkg} ${name}`;
    const row = byFunction.get(key) ?? { name, pkg, us: 0 };
    row.us += us;
    byFunction.set(key, row);
  }
  return {
    totalUs,
    idleUs,
    byPackage: [...byPackage].map(([name, us]) => ({ name, us })).sort((a, b) => b.us - a.us),
    topFunctions: [...byFunction.values()].sort((a, b) => b.us - a.us).slice(0, 15),
  };
}

/** A markdown table of the busy time per package (share of busy time), then the busiest functions. */
export function formatSummary(summary: ProfileSummary, packages = 12): string {
  const busyUs = summary.totalUs - summary.idleUs;
  const pct = (us: number): string => `${((100 * us) / busyUs).toFixed(1)} %`;
  const lines = [
    `busy ${(busyUs / 1e6).toFixed(2)} s of ${(summary.totalUs / 1e6).toFixed(2)} s sampled`,
    '',
    '| package | self time | share of busy |',
    '| --- | ---: | ---: |',
    ...summary.byPackage.slice(0, packages).map((p) => `| ${p.name} | ${(p.us / 1000).toFixed(0)} ms | ${pct(p.us)} |`),
    `| everything else | ${(summary.byPackage.slice(packages).reduce((n, p) => n + p.us, 0) / 1000).toFixed(0)} ms | ${pct(summary.byPackage.slice(packages).reduce((n, p) => n + p.us, 0))} |`,
    '',
    'busiest functions: ' + summary.topFunctions.slice(0, 10).map((f) => `${f.name} (${f.pkg}) ${pct(f.us)}`).join(', '),
  ];
  return lines.join('\n');
}
