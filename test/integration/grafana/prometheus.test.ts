import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { CustomObjectsApi, PatchStrategy, loadYaml, setHeaderOptions } from '@kubernetes/client-node';

import { RULES_FILE } from '../../../hack/grafana/alerts.ts';
import { dashboardQueries, loadDashboard, variableQueries, type PanelQuery } from '../../../hack/grafana/queries.ts';
import { heatmapData, leaderLanes } from '../../../hack/grafana/render.ts';
import { DEFAULT_JOB, Prometheus, type ApiResponse, type MatrixSeries, type QueryData, type RangeOptions } from '../../../hack/lib/prometheus.ts';
import { Replica, type LogLine } from '../../../hack/lib/replica.ts';
import { SAMPLE_KIND } from '../../../hack/kinds.ts';
import { adminKubeConfig, cluster, freshNamespace } from '../support/cluster.ts';
import { installKind } from '../support/operator.ts';

/**
 * The dashboard and the alert rules against a real Prometheus scraping two
 * real replicas (OS processes) through a scenario: objects of the sample
 * kind (hack/kinds.ts) created and updated, and a failover by SIGTERM of the leader. Every dashboard query and
 * every alert expression must run; the core panels must show the scenario.
 *
 * Waits are for log lines of the replicas and for Prometheus having scraped
 * (its `up` timestamps), never fixed sleeps.
 */

const START_MS = 30_000;
/**
 * Production lease timings (client-go's defaults): on two shared cores the
 * tests' 2 s renew deadline can cost the leader its lease at random, and the
 * handover here is a release, which the standby sees at once through its watch.
 */
const LEASE_ENV = { LEASE_DURATION_SECONDS: '15', RENEW_DEADLINE_SECONDS: '10', RETRY_PERIOD_SECONDS: '2' };
const STEP_MS = 30_000;
/** Prometheus scrapes (and evaluates the rules) every second. */
const SCRAPE_S = 1;
/** Grafana's $__rate_interval: max(4 × scrape interval, step + scrape interval), with step = scrape interval. */
const RATE_INTERVAL = `${Math.max(4 * SCRAPE_S, 2 * SCRAPE_S)}s`;
const SCRAPE_WAIT_MS = 15_000;
const FIRST = Array.from({ length: 10 }, (_, i) => `object-${String(i).padStart(2, '0')}`);
const SECOND = Array.from({ length: 10 }, (_, i) => `object-${String(i + 10).padStart(2, '0')}`);

interface Rule {
  alert?: string;
  expr: string;
}

interface Evaluated {
  query: PanelQuery;
  response: ApiResponse<QueryData>;
}

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

describe('the dashboard and the alerts against a live Prometheus (two replicas, a failover)', function () {
  this.timeout(60_000);
  let namespace: string;
  const replicas: Replica[] = [];
  let prometheus: Prometheus | undefined;
  let leader: Replica;
  let successor: Replica;
  let range: RangeOptions;
  let evaluated: Evaluated[];
  let failed = false;

  const custom = (): CustomObjectsApi => adminKubeConfig().makeApiClient(CustomObjectsApi);
  const { group, version, plural } = SAMPLE_KIND.resource;
  const key = (name: string): string => `${namespace}/${name}`;
  const isKey = (message: string, name: string) => (l: LogLine): boolean => l.message === message && l.json?.key === key(name);
  const now = (): number => Date.now() / 1000;

  async function createObjects(names: string[]): Promise<void> {
    const api = custom();
    await Promise.all(names.map((name) => api.createNamespacedCustomObject({ group, version, namespace, plural, body: SAMPLE_KIND.sample(namespace, name) })));
  }

  /** Each object is updated once: to its second version. */
  async function updateObjects(names: string[]): Promise<void> {
    const api = custom();
    await Promise.all(names.map((name) => api.patchNamespacedCustomObject({ group, version, namespace, plural, name, body: SAMPLE_KIND.change(name, 2) }, mergePatch)));
  }

  /** Resolves once `replica` logged 'reconciled' for every one of `names` after line `after`. */
  async function reconciledAll(replica: Replica, names: string[], after: number): Promise<void> {
    await Promise.all(names.map((name) => replica.waitForLog(isKey('reconciled', name), STEP_MS, { after, description: `'reconciled' of ${name}` })));
  }

  async function startReplica(name: string): Promise<{ replica: Replica; port: number }> {
    const replica = await Replica.start({ name, kubeconfig: cluster().kubeconfigPath, leaseNamespace: namespace, watchNamespace: namespace, env: LEASE_ENV });
    replicas.push(replica);
    return { replica, port: await replica.running(START_MS) };
  }

  /** The evaluated query of a panel that is not a stat (titles repeat between a stat and its graph). */
  function byRef(panelTitle: string, refId = 'A'): Evaluated {
    const found = evaluated.find((e) => e.query.panelTitle === panelTitle && e.query.panelType !== 'stat' && e.query.refId === refId);
    if (!found) throw new Error(`no query ${refId} of panel "${panelTitle}" in the dashboard`);
    return found;
  }

  function matrixOf(panelTitle: string, refId = 'A'): MatrixSeries[] {
    const { query, response } = byRef(panelTitle, refId);
    expect(response.status, `${panelTitle} ${refId}: ${JSON.stringify(response)}`).to.equal('success');
    if (response.status !== 'success' || response.data.resultType !== 'matrix') throw new Error(`${query.expr}: not a matrix`);
    return response.data.result;
  }

  before(async function () {
    this.timeout(150_000);
    await installKind(SAMPLE_KIND);
    namespace = await freshNamespace('grafana');

    const started = await Promise.all([startReplica('replica-a'), startReplica('replica-b')]);
    prometheus = await Prometheus.start({
      scrapeIntervalSeconds: SCRAPE_S,
      targets: started.map(({ replica, port }) => ({ address: `127.0.0.1:${port}`, labels: { pod: replica.name, namespace } })),
      ruleFiles: [RULES_FILE],
    });
    const prom = prometheus;
    const start = Math.floor(now());
    // Both replicas scraped before any object exists: their counters are seen at 0 first.
    await prom.waitFor(`up{job="${DEFAULT_JOB}"} == 1`, (r) => r.length === 2, SCRAPE_WAIT_MS, 'successful scrape of both replicas');
    leader = await Promise.race(replicas.map(async (r) => (await r.waitForMessage('started leading', START_MS), r)));
    successor = replicas.find((r) => r !== leader)!;

    // 1. Ten objects, reconciled by the leader, and scraped.
    let mark = leader.lines.length - 1;
    await createObjects(FIRST);
    await reconciledAll(leader, FIRST, mark);
    await prom.scrapedAfter(now(), SCRAPE_WAIT_MS, 2);

    // 2. Half of them updated.
    mark = leader.lines.length - 1;
    await updateObjects(FIRST.slice(0, 5));
    await reconciledAll(leader, FIRST.slice(0, 5), mark);
    await prom.scrapedAfter(now(), SCRAPE_WAIT_MS, 2);

    // 3. Ten more; SIGTERM of the leader while it writes them. The other replica takes over and finishes.
    mark = leader.lines.length - 1;
    await createObjects(SECOND);
    await leader.waitForLog((l) => l.message === 'write' && SECOND.some((n) => l.json?.key === key(n)), STEP_MS, { after: mark, description: 'a write for the second batch' });
    leader.sigterm();
    const exit = await leader.exited;
    expect(exit.code, `${leader.name} exited with ${exit.signal ?? exit.code}:\n${leader.tail()}`).to.equal(0);
    const led = await successor.waitForMessage('started leading', STEP_MS);
    await reconciledAll(successor, SECOND, led.index);
    await prom.scrapedAfter(now(), SCRAPE_WAIT_MS, 2);

    // 4. The other half updated, reconciled by the new leader.
    mark = successor.lines.length - 1;
    await updateObjects(FIRST.slice(5));
    await reconciledAll(successor, FIRST.slice(5), mark);
    await prom.scrapedAfter(now(), SCRAPE_WAIT_MS, 2);
    const end = Math.ceil(now());

    range = { start, end, step: SCRAPE_S };
    const queries = dashboardQueries(loadDashboard(), { rateInterval: RATE_INTERVAL, interval: `${SCRAPE_S}s`, range: `${end - start}s` });
    evaluated = await Promise.all(queries.map(async (query) => ({
      query,
      response: query.instant ? await prom.query(query.expr, end) : await prom.queryRange(query.expr, range),
    })));
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') failed = true;
  });

  after(async function () {
    this.timeout(30_000);
    if (failed || replicas.length === 0 || !evaluated) {
      for (const r of replicas) console.log(r.tail(40));
      if (prometheus) console.log(prometheus.tail());
    }
    await prometheus?.stop();
    await Promise.all(replicas.map((r) => r.stop(5_000)));
    for (const p of [prometheus, ...replicas]) expect(p?.isRunning ?? false, 'a process outlived the test').to.be.false;
  });

  it('runs every dashboard query without error (range queries over the scenario, stats at its end)', () => {
    expect(evaluated.length).to.be.greaterThan(40);
    const failures = evaluated.filter((e) => e.response.status !== 'success' || (e.response.warnings?.length ?? 0) > 0)
      .map((e) => `${e.query.panelTitle} ${e.query.refId}: ${JSON.stringify(e.response)}\n  ${e.query.expr}`);
    expect(failures, failures.join('\n')).to.be.empty;
    // Not failures: what a reader of the dashboard would see after such a scenario.
    const name = (e: Evaluated): string => `${e.query.panelTitle} ${e.query.refId}`;
    const empty = evaluated.filter((e) => e.response.status === 'success' && !hasData(e.response.data)).map(name);
    const flat = evaluated.filter((e) => e.response.status === 'success' && hasData(e.response.data) && !hasNonZero(e.response.data)).map(name);
    const terms = replicas.map((r) => `${r.name} ${r.messages('started leading').length}×`).join(', ');
    console.log(`      ${evaluated.length} queries over ${range.end - range.start}s (leadership terms: ${terms}); no series: ${empty.join(', ') || 'none'}; only 0 or NaN: ${flat.join(', ') || 'none'}`);
  });

  it('answers every template variable query with the scraped labels', async () => {
    const values = new Map<string, string[]>();
    for (const v of variableQueries(loadDashboard())) {
      const response = await prometheus!.labelValues(v.label, v.selector);
      expect(response.status, `${v.name}: ${JSON.stringify(response)}`).to.equal('success');
      if (response.status === 'success') values.set(v.name, response.data);
    }
    expect(values.get('namespace')).to.include(namespace);
    expect(values.get('job')).to.deep.equal([DEFAULT_JOB]);
    expect(values.get('pod')).to.have.members(replicas.map((r) => r.name));
    expect(values.get('controller')).to.have.length.greaterThan(0);
  });

  it('evaluates every alert expression without error, and the rules loaded into Prometheus are healthy', async () => {
    const rules = loadYaml<{ groups: { rules: Rule[] }[] }>(readFileSync(RULES_FILE, 'utf8')).groups.flatMap((g) => g.rules);
    const alerts = rules.filter((r): r is Rule & { alert: string } => r.alert !== undefined);
    expect(alerts.length).to.be.greaterThan(0);
    const results = new Map<string, number>();
    for (const rule of alerts) {
      const response = await prometheus!.query(rule.expr, range.end);
      expect(response.status, `${rule.alert}: ${JSON.stringify(response)}`).to.equal('success');
      if (response.status === 'success' && response.data.resultType === 'vector') results.set(rule.alert, response.data.result.length);
    }
    // After a clean handover: one leader, the stopped replica's target down, the job up.
    expect(results.get('HaOperatorNoLeader'), 'HaOperatorNoLeader after a handover').to.equal(0);
    expect(results.get('HaOperatorMultipleLeaders'), 'HaOperatorMultipleLeaders after a handover').to.equal(0);
    expect(results.get('HaOperatorDown'), 'HaOperatorDown with one replica up').to.equal(0);
    const down = await prometheus!.vector(alerts.find((a) => a.alert === 'HaOperatorTargetDown')!.expr, range.end);
    expect(down.map((s) => s.metric.pod), 'HaOperatorTargetDown selects the stopped replica').to.deep.equal([leader.name]);

    const loaded = await prometheus!.rules();
    expect(loaded.map((r) => r.name)).to.have.members(alerts.map((a) => a.alert));
    const unhealthy = loaded.filter((r) => r.health !== 'ok').map((r) => `${r.name}: ${r.health} ${r.lastError ?? ''}`);
    expect(unhealthy, unhealthy.join('\n')).to.be.empty;
  });

  it('shows reconciles in the reconcile-time heatmap', () => {
    const series = matrixOf('Reconcile time');
    expect(series.map((s) => s.metric.le)).to.include.members(['0.005', '60', '+Inf']);
    const data = heatmapData(series, range);
    const observed = data.counts.flat().reduce((a, b) => a + b, 0);
    expect(observed, 'no reconcile in any bucket').to.be.greaterThan(0);
    // Every reconcile on a local API server takes under a minute.
    expect(data.counts.at(-1)!.every((v) => v === 0), 'reconciles in the +Inf bucket').to.be.true;
  });

  it('shows successful reconciles in the reconcile rate', () => {
    const success = matrixOf('Reconciles by result').filter((s) => s.metric.result === 'success');
    expect(success, 'no result="success" series').to.have.length.greaterThan(0);
    expect(success.some((s) => s.values.some(([, v]) => Number(v) > 0)), 'the success rate is 0 throughout').to.be.true;
  });

  it('shows the handover in the leader series: two pods led, the old leader first, the successor at the end', () => {
    const lanes = leaderLanes(matrixOf('Leader of each lease'), range);
    const led = lanes.filter((l) => l.leading.length > 0);
    expect(led.map((l) => l.name), 'pods with leader_election_master_status 1').to.have.members([leader.name, successor.name]);
    const old = led.find((l) => l.name === leader.name)!;
    const next = led.find((l) => l.name === successor.name)!;
    expect(old.leading[0]!.from, 'the successor led before the first leader').to.be.lessThan(next.leading[0]!.from);
    expect(next.leading.at(-1)!.to, 'the successor does not lead at the end').to.equal(range.end);
    expect(old.leading.at(-1)!.to, 'the stopped replica still leads at the end').to.be.lessThan(range.end);
    const leaders = matrixOf('Replicas reporting leadership');
    expect(leaders.map((s) => s.values.at(-1)?.[1]), 'replicas reporting leadership at the end').to.deep.equal(['1']);
  });

  it('shows the work queue depth of both replicas', () => {
    const depth = matrixOf('Queue depth');
    expect(depth.map((s) => s.metric.pod)).to.have.members(replicas.map((r) => r.name));
    expect(depth.every((s) => s.values.length > 0)).to.be.true;
  });
});

function hasNonZero(data: QueryData): boolean {
  const values = data.resultType === 'matrix' ? data.result.flatMap((s) => s.values.map(([, v]) => v))
    : data.resultType === 'vector' ? data.result.map((s) => s.value[1])
      : [data.result[1]];
  return values.some((v) => Number(v) !== 0 && !Number.isNaN(Number(v)));
}

function hasData(data: QueryData): boolean {
  switch (data.resultType) {
    case 'vector':
    case 'matrix':
      return data.result.length > 0;
    case 'scalar':
    case 'string':
      return true;
  }
}
