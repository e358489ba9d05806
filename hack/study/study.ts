/**
 * The high-availability study (`make study`): real operator replicas on a
 * local control plane, under a steady load, through six disruptions. Writes
 * results.json, report.md, report.html and the SVG charts into a folder.
 *
 *   node hack/study/study.ts [--out DIR] [--timings production|fast] [--only 1,4] [--ops 3]
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
import { SCENARIOS, ScenarioRun, TIMING_PRESETS, type StudyContext, type StudySettings } from './scenarios.ts';
import { RESULTS_SCHEMA_VERSION, type ScenarioResult, type StudyResults } from './types.ts';

const { values } = parseArgs({
  options: {
    out: { type: 'string' },
    timings: { type: 'string', default: 'production' },
    only: { type: 'string' },
    ops: { type: 'string', default: '3' },
    steady: { type: 'string', default: '20' },
    after: { type: 'string', default: '20' },
    render: { type: 'string' },
  },
});

function usage(message: string): never {
  process.stderr.write(`study: ${message}\nusage: node hack/study/study.ts [--out DIR] [--timings ${Object.keys(TIMING_PRESETS).join('|')}] [--only 1,2] [--ops N] [--steady S] [--after S]\n`
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

if (values.render !== undefined) {
  const dir = resolve(values.render);
  const results = JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')) as StudyResults;
  const version: unknown = results.schemaVersion;
  if (version !== RESULTS_SCHEMA_VERSION) usage(`${dir}/results.json has schemaVersion ${JSON.stringify(version)}, expected ${RESULTS_SCHEMA_VERSION}`);
  await writeReport(dir, results);
  console.log(`rendered ${join(dir, 'report.md')}`);
  process.exit(0);
}

const timings = TIMING_PRESETS[values.timings] ?? usage(`unknown --timings ${values.timings}`);
const opsPerSecond = Number(values.ops);
if (!(opsPerSecond > 0 && opsPerSecond <= 20)) usage(`--ops must be in (0, 20], got ${values.ops}`);
const only = values.only?.split(',').map((n) => Number(n.trim()));
const selected = SCENARIOS.filter((s) => !only || only.includes(s.number));
if (selected.length === 0) usage(`--only ${values.only} selects no scenario (1–${SCENARIOS.length})`);
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
const outDir = resolve(values.out ?? join(REPO_ROOT, 'study-results', startedAt.toISOString().replace(/[:.]/g, '-')));
const progress = (line: string): void => console.log(line);

console.log(`study: ${selected.length} scenarios, lease ${timings.leaseDurationSeconds} s / renew deadline ${timings.renewDeadlineSeconds} s / retry ${timings.retryPeriodSeconds} s, `
  + `${opsPerSecond} changes/s; results in ${outDir}`);
// The audit log is the witness of every scenario's safety checks.
const plane = await ControlPlane.start({ controllerManager: true, audit: true });
const results: StudyResults = {
  schemaVersion: RESULTS_SCHEMA_VERSION,
  startedAt: startedAt.toISOString(),
  finishedAt: startedAt.toISOString(),
  durationMs: 0,
  environment: {
    node: process.version,
    controlPlane: basename(plane.binDir),
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
try {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(plane.kubeconfigPath);
  await installCrd(kubeConfig, SAMPLE_KIND.crd);
  const context: StudyContext = { plane, kubeConfig, profile: SAMPLE_KIND, settings, progress };
  for (const definition of selected) {
    const run = new ScenarioRun(context, definition);
    run.progress(`${definition.title} (namespace ${run.namespace})`);
    let error: string | undefined;
    try {
      await definition.run(run);
    } catch (e) {
      error = e instanceof Error ? e.message : String(e);
      run.progress(`FAILED: ${error}`);
    }
    let scenario: ScenarioResult;
    try {
      const final = await run.finish();
      scenario = run.result(final, error, await run.audit());
    } catch (e) {
      // Even the clean-up failed: record what there is.
      const message = e instanceof Error ? e.message : String(e);
      scenario = run.result({ objects: 0, converged: 0, problems: [] }, error ? `${error}; then: ${message}` : message);
    }
    for (const replica of Replica.running()) replica.sigkill();
    results.scenarios.push(scenario);
    results.finishedAt = new Date().toISOString();
    results.durationMs = Date.now() - startedAt.getTime();
    await writeReport(outDir, results);
    for (const check of scenario.checks) run.progress(`${check.ok ? 'pass' : 'FAIL'}: ${check.name} (${check.detail})`);
  }
} finally {
  await plane.stop();
}

const failed = results.scenarios.flatMap((s) => s.checks.filter((c) => !c.ok).map((c) => `${s.number}. ${s.title}: ${c.name} (${c.detail})`));
console.log(`\nstudy finished in ${(results.durationMs / 1000).toFixed(0)} s: ${join(outDir, 'report.md')}`);
if (failed.length > 0) {
  console.log(`${failed.length} checks failed:\n${failed.map((f) => `  ${f}`).join('\n')}`);
  process.exit(1);
}
