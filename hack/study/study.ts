/**
 * The high-availability study (`make study`): real operator replicas on a
 * local control plane, under a steady load, through six disruptions; with
 * --nodes (`make study-nodes`, as root) also five on a local cluster of real
 * nodes, dealt by the Deployment controller and the kubelets
 * (hack/study/nodes.ts). Writes results.json, report.md, report.html and the
 * SVG charts into a folder.
 *
 *   node hack/study/study.ts [--out DIR] [--timings production|fast] [--only 1,4] [--ops 3] [--nodes]
 *   node hack/study/study.ts --nodes --only 7,8,9,10,11 --into DIR   # replace those scenarios in DIR's report, keep the rest
 *   node hack/study/study.ts --render DIR      # re-render DIR/results.json into DIR
 *
 * Default folder: study-results/<timestamp>/ (git-ignored). Exits 1 when a
 * check failed (the report is written first), 2 on bad arguments.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { ControlPlane } from '../controlplane/plane.ts';
import { Replica, REPO_ROOT } from '../lib/replica.ts';
import { SAMPLE_KIND } from '../kinds.ts';
import { installCrd } from '../lib/kind-profile.ts';
import { renderReport } from './render.ts';
import { mergeResults } from './merge.ts';
import { NODE_SCENARIOS, runNodeScenarios } from './nodes.ts';
import { reportChecks, runScenario, SCENARIOS, ScenarioRun, TIMING_PRESETS, type StudyContext, type StudySettings } from './scenarios.ts';
import { READABLE_SCHEMA_VERSIONS, RESULTS_SCHEMA_VERSION, type ScenarioResult, type StudyResults } from './types.ts';

const { values } = parseArgs({
  options: {
    out: { type: 'string' },
    timings: { type: 'string', default: 'production' },
    only: { type: 'string' },
    ops: { type: 'string', default: '3' },
    steady: { type: 'string', default: '20' },
    after: { type: 'string', default: '20' },
    render: { type: 'string' },
    nodes: { type: 'boolean', default: false },
    into: { type: 'string' },
  },
});

function usage(message: string): never {
  process.stderr.write(`study: ${message}\nusage: node hack/study/study.ts [--out DIR | --into DIR] [--timings ${Object.keys(TIMING_PRESETS).join('|')}] [--only 1,2] [--ops N] [--steady S] [--after S] [--nodes]\n`
    + '       node hack/study/study.ts --render DIR\n');
  process.exit(2);
}

/** JSON with one-space indentation, and every object or array that holds no other on one line (a change, a stats record, a bin row). */
function formatJson(value: unknown): string {
  const collapsed = JSON.stringify(value, null, 1).replace(/([{[])\n\s*([^{}[\]]*?)\n\s*([}\]])/g,
    (_m, open: string, body: string, close: string) => `${open}${body.replace(/\n\s*/g, ' ')}${close}`);
  return `${collapsed}\n`;
}

async function writeReport(dir: string, results: StudyResults): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'results.json'), formatJson(results));
  for (const [name, content] of Object.entries(renderReport(results))) await writeFile(join(dir, name), content);
}

/** DIR/results.json, of a version this study reads. */
async function readResults(dir: string): Promise<StudyResults> {
  const results = JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')) as StudyResults;
  const version: unknown = results.schemaVersion;
  if (!READABLE_SCHEMA_VERSIONS.includes(version as number)) {
    usage(`${dir}/results.json has schemaVersion ${JSON.stringify(version)}, expected one of ${READABLE_SCHEMA_VERSIONS.join(', ')}`);
  }
  return results;
}

if (values.render !== undefined) {
  const dir = resolve(values.render);
  const results = await readResults(dir);
  await writeReport(dir, results);
  console.log(`rendered ${join(dir, 'report.md')}`);
  process.exit(0);
}

const timings = TIMING_PRESETS[values.timings] ?? usage(`unknown --timings ${values.timings}`);
const opsPerSecond = Number(values.ops);
if (!(opsPerSecond > 0 && opsPerSecond <= 20)) usage(`--ops must be in (0, 20], got ${values.ops}`);
const only = values.only?.split(',').map((n) => Number(n.trim()));
const selected = SCENARIOS.filter((s) => !only || only.includes(s.number));
const selectedOnNodes = values.nodes ? NODE_SCENARIOS.filter((s) => !only || only.includes(s.number)) : [];
if (selected.length + selectedOnNodes.length === 0) {
  usage(`--only ${values.only} selects no scenario (1–${SCENARIOS.length}${values.nodes ? `, and ${NODE_SCENARIOS.map((s) => s.number).join(', ')} on real nodes` : '; 7 and up need --nodes'})`);
}
if (values.into !== undefined && values.out !== undefined) usage('--out and --into: one folder or the other');
/** With --into, the report this run's scenarios go into (those it does not run stay as they are). */
const into = values.into === undefined ? undefined : await readResults(resolve(values.into));
const settings: StudySettings = {
  timings,
  load: { opsPerSecond, createEvery: 4, initialObjects: 12 },
  steadyMs: Number(values.steady) * 1000,
  afterMs: Number(values.after) * 1000,
  outageMs: 20_000,
  overlapMs: 20_000,
};
if (!(settings.steadyMs >= 5_000 && settings.afterMs >= 5_000)) usage('--steady and --after must be at least 5 (seconds)');

const startedAt = new Date();
const outDir = resolve(values.into ?? values.out ?? join(REPO_ROOT, 'study-results', startedAt.toISOString().replace(/[:.]/g, '-')));
const progress = (line: string): void => console.log(line);

console.log(`study: ${selected.length} scenarios on a control plane, lease ${timings.leaseDurationSeconds} s / renew deadline ${timings.renewDeadlineSeconds} s / retry ${timings.retryPeriodSeconds} s, `
  + `${selectedOnNodes.length} on real nodes (the manifests' timings), ${opsPerSecond} changes/s; results in ${outDir}`);
const results: StudyResults = {
  schemaVersion: RESULTS_SCHEMA_VERSION,
  startedAt: startedAt.toISOString(),
  finishedAt: startedAt.toISOString(),
  durationMs: 0,
  environment: {
    node: process.version,
    controlPlane: '',
    cpus: availableParallelism(),
    timingPreset: timings.preset,
    leaseDurationSeconds: timings.leaseDurationSeconds,
    renewDeadlineSeconds: timings.renewDeadlineSeconds,
    retryPeriodSeconds: timings.retryPeriodSeconds,
    load: settings.load,
    workload: { kind: SAMPLE_KIND.resource.kind, ...SAMPLE_KIND.described },
    steadyMs: settings.steadyMs,
    afterMs: settings.afterMs,
  },
  scenarios: [],
};

/** Adds a scenario's result and writes the report so far (with --into, merged into that report). */
async function record(scenario: ScenarioResult): Promise<void> {
  results.scenarios.push(scenario);
  results.finishedAt = new Date().toISOString();
  results.durationMs = Date.now() - startedAt.getTime();
  await writeReport(outDir, into ? mergeResults(into, results, selected.length > 0) : results);
}

if (selected.length > 0) {
  // The audit log is the witness of every scenario's safety checks.
  const plane = await ControlPlane.start({ controllerManager: true, audit: true });
  results.environment.controlPlane = basename(plane.binDir);
  try {
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(plane.kubeconfigPath);
    await installCrd(kubeConfig, SAMPLE_KIND.crd);
    const context: StudyContext = { plane, kubeConfig, profile: SAMPLE_KIND, settings, progress };
    for (const definition of selected) {
      const run = new ScenarioRun(context, definition);
      const scenario = await runScenario(run, definition.run);
      for (const replica of Replica.running()) replica.sigkill();
      await record(scenario);
      reportChecks(run, scenario);
    }
  } finally {
    await plane.stop();
  }
}

if (selectedOnNodes.length > 0) {
  await runNodeScenarios({
    selected: selectedOnNodes,
    profile: SAMPLE_KIND,
    settings,
    progress,
    record: async (scenario, cluster) => {
      results.environment.cluster = cluster;
      if (results.environment.controlPlane === '') results.environment.controlPlane = cluster.controlPlane;
      await record(scenario);
    },
  });
}

const failed = results.scenarios.flatMap((s) => s.checks.filter((c) => !c.ok).map((c) => `${s.number}. ${s.title}: ${c.name} (${c.detail})`));
console.log(`\nstudy finished in ${(results.durationMs / 1000).toFixed(0)} s: ${join(outDir, 'report.md')}`);
if (failed.length > 0) {
  console.log(`${failed.length} checks failed:\n${failed.map((f) => `  ${f}`).join('\n')}`);
  process.exit(1);
}
