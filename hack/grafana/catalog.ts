/**
 * The series the operator exports, as src/runtime/metrics.ts renders them:
 * every sample name (histograms as _bucket/_sum/_count) with the label names it
 * carries, read from the scrape of a fresh OperatorMetrics whose every instrument
 * has been used once. prom-client's default Node.js and process metrics are part
 * of that scrape.
 */
import { OperatorMetrics } from '../../src/runtime/metrics.ts';

/** Labels Prometheus attaches to every scraped series (Prometheus Operator's target labels). */
export const TARGET_LABELS: readonly string[] = ['namespace', 'job', 'pod', 'instance', 'service', 'endpoint', 'container'];

/** Series Prometheus itself writes for each target. */
export const SYNTHETIC_SERIES: readonly string[] = ['up', 'scrape_duration_seconds', 'scrape_samples_scraped'];

/** Sample name → label names, from one scrape. */
export type Catalog = Map<string, Set<string>>;

const SUFFIXES: Record<string, string[]> = { histogram: ['_bucket', '_sum', '_count'], summary: ['_sum', '_count', ''] };

function parse(body: string): Catalog {
  const catalog: Catalog = new Map();
  for (const line of body.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      const [, family = '', kind = ''] = type;
      for (const suffix of SUFFIXES[kind] ?? ['']) if (!catalog.has(family + suffix)) catalog.set(family + suffix, new Set());
      continue;
    }
    if (line === '' || line.startsWith('#')) continue;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? /.exec(line);
    if (!sample) continue;
    const [, name = '', labels = ''] = sample;
    const set = catalog.get(name) ?? new Set<string>();
    for (const m of labels.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"/g)) set.add(m[1] ?? '');
    catalog.set(name, set);
  }
  for (const name of SYNTHETIC_SERIES) catalog.set(name, new Set());
  return catalog;
}

/** Allocates until V8 has run a garbage collection, so that nodejs_gc_duration_seconds has a sample (and its labels). */
async function provokeGc(metrics: OperatorMetrics): Promise<void> {
  for (let round = 0; round < 50; round++) {
    if (/^nodejs_gc_duration_seconds_count\{/m.test((await metrics.render()).body)) return;
    const garbage: object[] = [];
    for (let i = 0; i < 200_000; i++) garbage.push({ i });
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export async function exportedSeries(): Promise<Catalog> {
  const metrics = new OperatorMetrics();
  const controller = metrics.controllerMetrics('example');
  controller.reconciled('success');
  controller.errored();
  controller.panicked();
  controller.timedOut();
  controller.reconcileTime(0.1);
  controller.activeWorkers(1);
  controller.maxConcurrentReconciles(2);
  const queue = metrics.queueMetrics('example', 'example', { unfinishedWorkSeconds: () => 0, longestRunningProcessorSeconds: () => 0 });
  queue.added();
  queue.depth(1);
  queue.queueLatency(0.01);
  queue.workDuration(0.1);
  queue.retried();
  metrics.eventMetrics().event('sent');
  metrics.informerMetrics('examples.example.com').relisted('watch cache');
  const leader = metrics.leaderMetrics();
  leader.leading('ha-operator', true);
  leader.transitioned('ha-operator');
  leader.handoverGap('ha-operator', 0.5);
  leader.drainDuration(1);
  leader.keysLeftQueued(0);
  metrics.restClientMetrics().observe('GET', 'kubernetes.default.svc', '200', 0.01);
  await provokeGc(metrics);
  return parse((await metrics.render()).body);
}
