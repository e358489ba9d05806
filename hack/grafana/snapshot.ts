/**
 * docs/images/reconcile-time-heatmap.svg and docs/images/leader-timeline.svg:
 * two panels of the dashboard drawn from real data.
 *
 *   node hack/grafana/snapshot.ts [--out docs/images]
 *
 * It starts a local control plane, applies the CRD of the sample kind
 * (hack/kinds.ts), runs two operator replicas (OS processes, production lease
 * timings: 15 s lease) and a Prometheus that scrapes them every second with
 * the labels Prometheus Operator would attach (job ha-operator-metrics,
 * namespace, pod). Then a scenario: objects created
 * in waves, some updated, the leader stopped by SIGTERM in the middle of a
 * wave so that the other replica takes over and finishes it, more updates.
 * The panels' own queries (hack/grafana/queries.ts, $__rate_interval = 4 s as
 * Grafana would make it for a 1 s scrape interval) are evaluated over the
 * scenario and drawn by hack/grafana/render.ts. Everything it started is
 * stopped at the end, also on failure. It takes about two minutes.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';

import { ControlPlane } from '../controlplane/plane.ts';
import { SAMPLE_KIND } from '../kinds.ts';
import { installCrd } from '../lib/kind-profile.ts';
import { Prometheus, type RangeOptions } from '../lib/prometheus.ts';
import { REPO_ROOT, Replica, type LogLine } from '../lib/replica.ts';
import { dashboardQueries, loadDashboard, type PanelQuery } from './queries.ts';
import { renderHeatmap, renderLeaderTimeline, type TimelineMarker } from './render.ts';

const NAMESPACE = 'ha-operator-snapshot';
const SCRAPE_S = 1;
const RATE_INTERVAL = `${4 * SCRAPE_S}s`;
const WAIT_MS = 30_000;
/** Production lease timings (client-go's defaults), as in `make run`. */
const LEASE_ENV = { LEASE_DURATION_SECONDS: '15', RENEW_DEADLINE_SECONDS: '10', RETRY_PERIOD_SECONDS: '2' };
const HEATMAP_FILE = 'reconcile-time-heatmap.svg';
const TIMELINE_FILE = 'leader-timeline.svg';

const { values } = parseArgs({ options: { out: { type: 'string', default: join(REPO_ROOT, 'docs', 'images') } } });
const outDir = resolve(values.out);

const log = (message: string): void => console.log(`[snapshot] ${message}`);
const now = (): number => Date.now() / 1000;
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

let plane: ControlPlane | undefined;
let prometheus: Prometheus | undefined;
const replicas: Replica[] = [];

try {
  await run();
} finally {
  await prometheus?.stop();
  await Promise.all(replicas.map((r) => r.stop(10_000)));
  await plane?.stop();
}

async function run(): Promise<void> {
  plane = await ControlPlane.start({ controllerManager: true });
  log(`control plane ${plane.server} is up`);
  const kc = new KubeConfig();
  kc.loadFromFile(plane.kubeconfigPath);
  await installCrd(kc, SAMPLE_KIND.crd);
  await plane.kubectl(['create', 'namespace', NAMESPACE]);
  const api = kc.makeApiClient(CustomObjectsApi);
  const { group, version, plural } = SAMPLE_KIND.resource;

  // a first, so that it leads; then b, the standby.
  const start = async (name: string): Promise<number> => {
    const replica = await Replica.start({ name, kubeconfig: plane!.kubeconfigPath, leaseNamespace: NAMESPACE, watchNamespace: NAMESPACE, env: LEASE_ENV });
    replicas.push(replica);
    return replica.running(WAIT_MS);
  };
  const portA = await start('replica-a');
  const [a] = replicas as [Replica];
  await a.waitForMessage('started leading', WAIT_MS);
  const portB = await start('replica-b');
  const b = replicas[1]!;

  const prom = (prometheus = await Prometheus.start({
    scrapeIntervalSeconds: SCRAPE_S,
    targets: [
      { address: `127.0.0.1:${portA}`, labels: { pod: a.name, namespace: NAMESPACE } },
      { address: `127.0.0.1:${portB}`, labels: { pod: b.name, namespace: NAMESPACE } },
    ],
  }));
  log(`prometheus ${prom.url} scrapes ${a.name} (:${portA}) and ${b.name} (:${portB})`);
  // Prometheus starts scraping a few seconds after it is ready (its target discovery sends updates every 5 s).
  await prom.waitFor(`up{job="${prom.jobName}"} == 1`, (r) => r.length === 2, WAIT_MS, 'successful scrape of both replicas');
  const begin = Math.floor(now());
  /** Paces the scenario by Prometheus' scrapes: every target scraped at least `seconds` from now. */
  const pause = (seconds: number): Promise<void> => prom.scrapedAfter(now() + seconds, WAIT_MS + seconds * 1000, 2);
  await pause(4);

  const key = (name: string): string => `${NAMESPACE}/${name}`;
  const reconciled = (replica: Replica, names: string[], after: number): Promise<LogLine[]> =>
    Promise.all(names.map((name) => replica.waitForLog((l) => l.message === 'reconciled' && l.json?.key === key(name), WAIT_MS, { after, description: `'reconciled' of ${name}` })));
  const create = (names: string[]): Promise<unknown> => Promise.all(names.map((name) => api.createNamespacedCustomObject({
    group, version, namespace: NAMESPACE, plural, body: SAMPLE_KIND.sample(NAMESPACE, name),
  })));
  // Each object is updated once: to its second version.
  const update = (names: string[]): Promise<unknown> => Promise.all(names.map((name) => api.patchNamespacedCustomObject(
    { group, version, namespace: NAMESPACE, plural, name, body: SAMPLE_KIND.change(name, 2) },
    mergePatch,
  )));
  const objects = Array.from({ length: 20 }, (_, i) => `object-${String(i).padStart(2, '0')}`);
  const wave = (from: number, to: number): string[] => objects.slice(from, to);

  // Waves of objects created and updated on the first leader.
  const firstUpdates = wave(0, 4);
  for (const [kind, names] of [['create', wave(0, 5)], ['create', wave(5, 10)], ['update', firstUpdates], ['create', wave(10, 15)]] as const) {
    const mark = a.lines.length - 1;
    await (kind === 'create' ? create(names) : update(names));
    await reconciled(a, names, mark);
    log(`${a.name} reconciled ${kind}d ${names.join(', ')}`);
    await pause(5);
  }

  // The last wave of creates; SIGTERM of the leader once it writes for it.
  const last = wave(15, 20);
  let mark = a.lines.length - 1;
  await create(last);
  await a.waitForLog((l) => l.message === 'write' && last.some((n) => l.json?.key === key(n)), WAIT_MS, { after: mark, description: 'a write for the last wave' });
  const sigterm = now();
  a.sigterm();
  const exit = await a.exited;
  if (exit.code !== 0) throw new Error(`${a.name} exited with ${exit.signal ?? exit.code}\n${a.tail()}`);
  const led = await b.waitForMessage('started leading', WAIT_MS);
  log(`SIGTERM: ${a.name} exited 0; ${b.name} leads ${led.loggedAt! - Math.round(sigterm * 1000)} ms after the signal`);
  await reconciled(b, last, led.index);
  log(`${b.name} reconciled created ${last.join(', ')}`);
  await pause(5);

  // Updates on the new leader.
  const laterUpdates = [wave(4, 8), wave(15, 18)];
  for (const names of laterUpdates) {
    mark = b.lines.length - 1;
    await update(names);
    await reconciled(b, names, mark);
    log(`${b.name} reconciled updated ${names.join(', ')}`);
    await pause(5);
  }
  const end = Math.ceil(now());
  await prom.scrapedAfter(end, WAIT_MS, 2);

  const range: RangeOptions = { start: begin, end, step: SCRAPE_S };
  const queries = dashboardQueries(loadDashboard(), { rateInterval: RATE_INTERVAL, interval: `${SCRAPE_S}s`, range: `${end - begin}s` });
  const panel = (title: string, type: string): PanelQuery => {
    const q = queries.find((p) => p.panelTitle === title && p.panelType === type);
    if (!q) throw new Error(`the dashboard has no ${type} panel "${title}"`);
    return q;
  };
  const heatmapQuery = panel('Reconcile time', 'heatmap');
  const timelineQuery = panel('Leader of each lease', 'state-timeline');
  const markers: TimelineMarker[] = [{ at: sigterm, label: `SIGTERM ${a.name}` }];

  mkdirSync(outDir, { recursive: true });
  const heatmapFile = join(outDir, HEATMAP_FILE);
  writeFileSync(heatmapFile, renderHeatmap(await prom.matrix(heatmapQuery.expr, range), {
    ...range,
    title: `Reconcile time — ${objects.length} ${SAMPLE_KIND.resource.kind} objects created, ${firstUpdates.length + laterUpdates.flat().length} updated, the leader stopped by SIGTERM`,
    subtitle: shorten(heatmapQuery.rawExpr),
    markers,
  }));
  const timelineFile = join(outDir, TIMELINE_FILE);
  writeFileSync(timelineFile, renderLeaderTimeline(await prom.matrix(timelineQuery.expr, range), {
    ...range,
    title: 'Leader of each lease — handover on SIGTERM of the leader',
    subtitle: shorten(timelineQuery.rawExpr),
    lanes: replicas.map((r) => r.name),
    markers,
  }));
  log(`wrote ${relative(process.cwd(), heatmapFile)} and ${relative(process.cwd(), timelineFile)} (${end - begin} s of data)`);

  // What the picture leaves out, for whoever reads the images.
  const logged = replicas.reduce((n, r) => n + r.messages('reconciled').length, 0);
  const counted = await prom.vector(`sum(max_over_time(controller_runtime_reconcile_time_seconds_count{job="${prom.jobName}"}[${end - begin}s]))`, end);
  const shown = await prom.vector(`sum(increase(controller_runtime_reconcile_time_seconds_count{job="${prom.jobName}"}[${end - begin}s]))`, end);
  log(`reconciles: ${logged} logged, ${counted[0]?.value[1] ?? 0} counted by the replicas (last scrape of each), ${Number(shown[0]?.value[1] ?? 0).toFixed(1)} by increase() over the range`);
  const gaps = await prom.vector(`max_over_time(leader_election_handover_gap_seconds_count{job="${prom.jobName}"}[${end - begin}s])`, end);
  log(`handover gap observations exported: ${gaps.map((g) => `${g.metric.pod}=${g.value[1]}`).join(', ') || 'none'}`);
}

/** The raw panel expression with its label matchers elided, to fit one line. */
function shorten(expr: string): string {
  return expr.replace(/\{[^}]*\}/g, '{…}').replace(/\s+/g, ' ');
}
