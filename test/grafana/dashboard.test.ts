import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { TARGET_LABELS, exportedSeries, type Catalog } from '../../hack/grafana/catalog.ts';
import { DATASOURCE, SCHEMA_VERSION, buildDashboard, panelUnit, renderDashboard, type Panel } from '../../hack/grafana/dashboard.ts';
import { DOCS_FILE, staleFiles } from '../../hack/grafana/generate.ts';
import { promtool } from '../../hack/grafana/promtool.ts';
import {
  ALL,
  DASHBOARD_FILE,
  allPanels,
  dashboardQueries,
  groupingLabels,
  loadDashboard,
  matcherLabels,
  metricNames,
  rangeWindows,
  substitute,
  variableQueries,
  type PanelQuery,
} from '../../hack/grafana/queries.ts';

type Json = Record<string, unknown>;

const dashboard = loadDashboard();
const panels = allPanels(dashboard) as unknown as Panel[];
const visible = panels.filter((p) => p.type !== 'row');
/** Substitution throws on a variable the dashboard does not declare; that is a test failure, not a load error. */
let substitutionError: unknown;
const queries: PanelQuery[] = ((): PanelQuery[] => {
  try {
    return dashboardQueries(dashboard);
  } catch (error) {
    substitutionError = error;
    return [];
  }
})();

/** Every object in `value` that has a `key` property, with its path. */
function objectsWithKey(value: unknown, key: string, path = '$'): { path: string; value: unknown }[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => objectsWithKey(v, key, `${path}[${i}]`));
  if (typeof value !== 'object' || value === null) return [];
  const own = key in value ? [{ path: `${path}.${key}`, value: (value as Json)[key] }] : [];
  return [...own, ...Object.entries(value).flatMap(([k, v]) => objectsWithKey(v, key, `${path}.${k}`))];
}

const where = (q: PanelQuery): string => `panel ${q.panelId} "${q.panelTitle}" query ${q.refId}: ${q.rawExpr}`;

describe('grafana/dashboards/ha-operator.json', () => {
  it('is what hack/grafana/generate.ts writes (and so are alerts/prometheusrule.yaml and the panel list of docs/DASHBOARDS.md)', () => {
    expect(readFileSync(DASHBOARD_FILE, 'utf8')).to.equal(renderDashboard());
    expect(staleFiles(), 'stale: run `node hack/grafana/generate.ts`').to.deep.equal([]);
  });

  it('pins its schemaVersion, stated in docs/DASHBOARDS.md', () => {
    expect(dashboard.schemaVersion).to.equal(SCHEMA_VERSION);
    expect(SCHEMA_VERSION).to.equal(39);
    expect(readFileSync(DOCS_FILE, 'utf8')).to.include(`**schemaVersion ${SCHEMA_VERSION}.**`);
  });

  it('has a stable uid and no __inputs (a provisioned dashboard cannot resolve ${DS_…})', () => {
    expect(dashboard.uid).to.equal('ha-operator');
    expect(dashboard).not.to.have.property('__inputs');
    expect(JSON.stringify(dashboard)).not.to.include('${DS_');
  });

  it('gives every panel a unique id', () => {
    const ids = panels.map((p) => p.id);
    expect(ids.every((id) => Number.isInteger(id) && id > 0)).to.equal(true);
    expect(new Set(ids).size, `duplicate ids in ${ids.join(',')}`).to.equal(ids.length);
  });

  it('lays the panels out on the 24-column grid without overlaps', () => {
    for (const p of panels) {
      expect(p.gridPos.x + p.gridPos.w, p.title).to.be.at.most(24);
      expect(p.gridPos.w, p.title).to.be.greaterThan(0);
      expect(p.gridPos.h, p.title).to.be.greaterThan(0);
    }
    const overlap = (a: Panel, b: Panel): boolean =>
      a.gridPos.x < b.gridPos.x + b.gridPos.w &&
      b.gridPos.x < a.gridPos.x + a.gridPos.w &&
      a.gridPos.y < b.gridPos.y + b.gridPos.h &&
      b.gridPos.y < a.gridPos.y + a.gridPos.h;
    for (const [i, a] of panels.entries()) {
      for (const b of panels.slice(i + 1)) expect(overlap(a, b), `"${a.title}" overlaps "${b.title}"`).to.equal(false);
    }
  });

  it('gives every panel a unit, "none" only where value mappings name the values', () => {
    for (const p of visible) {
      const unit = panelUnit(p);
      expect(unit, `panel "${p.title}" has no unit`).to.be.a('string').and.not.equal('');
      if (unit === 'none') expect(p.fieldConfig?.defaults.mappings, `"${p.title}": unit none without value mappings`).to.be.an('array').that.is.not.empty;
    }
  });

  it('gives every panel a title, a description and at least one query', () => {
    for (const p of visible) {
      expect(p.title, `panel ${p.id}`).to.be.a('string').and.not.equal('');
      expect(p.description, `panel "${p.title}"`).to.be.a('string').and.not.equal('');
      expect(p.targets, `panel "${p.title}"`).to.be.an('array').that.is.not.empty;
    }
  });

  it('uses only variables it declares, and Grafana built-ins', () => {
    expect(substitutionError).to.equal(undefined);
  });

  it('declares the datasource, namespace, job, pod and controller variables', () => {
    const list = (dashboard.templating as { list: Json[] }).list;
    expect(list.map((v) => v.name)).to.deep.equal(['datasource', 'namespace', 'job', 'pod', 'controller']);
    expect(list[0]).to.include({ type: 'datasource', query: 'prometheus' });
    for (const v of list.slice(1)) expect(v, String(v.name)).to.include({ type: 'query', includeAll: true, allValue: ALL });
  });

  it('names its data source only through the datasource variable: panels, queries and variables', () => {
    const refs = objectsWithKey(dashboard, 'datasource').filter((r) => r.path !== '$.templating.list[0].query');
    expect(refs.length).to.be.greaterThan(visible.length);
    for (const ref of refs) expect(ref.value, ref.path).to.deep.equal(DATASOURCE);
    for (const p of visible) {
      expect(p.datasource, `panel "${p.title}"`).to.deep.equal(DATASOURCE);
      for (const t of p.targets ?? []) expect(t.datasource, `panel "${p.title}" ${t.refId}`).to.deep.equal(DATASOURCE);
    }
    const variables = (dashboard.templating as { list: Json[] }).list.filter((v) => v.type === 'query');
    for (const v of variables) expect(v.datasource, `variable ${String(v.name)}`).to.deep.equal(DATASOURCE);
  });

  it('uses $__rate_interval for every window, $__range only in instant queries', () => {
    for (const q of queries) {
      for (const window of rangeWindows(q.rawExpr)) {
        expect(['$__rate_interval', '$__range'], `fixed window [${window}] in ${where(q)}`).to.include(window);
        if (window === '$__range') expect(q.instant, `[$__range] in a range query: ${where(q)}`).to.equal(true);
      }
      expect(q.rawExpr, where(q)).not.to.match(/\$__interval|\$interval/);
    }
  });

  it('filters every series selector on the namespace, job and pod variables', () => {
    for (const q of queries) {
      const selectors = matcherLabels(q.rawExpr);
      expect(selectors.size, `no selector with matchers: ${where(q)}`).to.be.greaterThan(0);
      for (const [metric, labels] of selectors) {
        expect([...labels], `${metric} in ${where(q)}`).to.include.members(['namespace', 'job', 'pod']);
      }
      for (const name of metricNames(q.rawExpr)) expect(selectors.has(name), `${name} unfiltered in ${where(q)}`).to.equal(true);
    }
  });

  it('draws every heatmap from classic buckets as Grafana expects them', () => {
    const heatmaps = visible.filter((p) => p.type === 'heatmap');
    expect(heatmaps.map((p) => p.title)).to.include.members(['Reconcile time', 'Queue wait', 'Work duration']);
    for (const p of heatmaps) {
      expect(p.options, p.title).to.deep.include({ calculate: false });
      expect((p.options?.yAxis as Json).unit, p.title).to.equal('s');
      expect(p.targets, p.title).to.have.length(1);
      const [t] = p.targets ?? [];
      expect(t, p.title).to.include({ format: 'heatmap', legendFormat: '{{le}}', instant: false });
      expect(t?.expr, p.title).to.match(/^sum by \(le\) \(increase\([a-z_]+_bucket\{[^}]*\}\[\$__rate_interval\]\)\)$/);
    }
  });

  it('covers every family src/runtime/metrics.ts adds, and the Node.js runtime', () => {
    const used = new Set(queries.flatMap((q) => metricNames(q.rawExpr)));
    for (const family of [
      'leader_election_master_status',
      'leader_election_transitions_total',
      'leader_election_handover_gap_seconds_bucket',
      'operator_shutdown_drain_seconds_count',
      'operator_shutdown_keys_left_queued',
      'controller_runtime_reconcile_total',
      'controller_runtime_reconcile_errors_total',
      'controller_runtime_terminal_reconcile_errors_total',
      'controller_runtime_reconcile_time_seconds_bucket',
      'controller_runtime_active_workers',
      'controller_runtime_max_concurrent_reconciles',
      'workqueue_depth',
      'workqueue_queue_duration_seconds_bucket',
      'workqueue_work_duration_seconds_bucket',
      'workqueue_retries_total',
      'workqueue_longest_running_processor_seconds',
      'rest_client_requests_total',
      'operator_events_total',
      'operator_informer_relists_total',
      'rest_client_request_duration_seconds_bucket',
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_heap_size_used_bytes',
      'nodejs_eventloop_lag_p99_seconds',
      'nodejs_gc_duration_seconds_sum',
    ]) {
      expect(used.has(family), family).to.equal(true);
    }
  });

  describe('against a fresh OperatorMetrics scrape', () => {
    let catalog: Catalog;
    before(async () => {
      catalog = await exportedSeries();
    });

    it('uses only metric names the operator exports (prom-client defaults included) or Prometheus writes (up)', () => {
      for (const q of queries) {
        const names = metricNames(q.rawExpr);
        expect(names, `no metric found in ${where(q)}`).not.to.be.empty;
        for (const name of names) expect(catalog.has(name), `unknown metric ${name} in ${where(q)}`).to.equal(true);
      }
      for (const v of variableQueries(dashboard)) {
        for (const name of metricNames(v.selector)) expect(catalog.has(name), `variable ${v.name}: ${name}`).to.equal(true);
      }
    });

    it('uses only label names those series carry, or target labels', () => {
      for (const q of queries) {
        for (const [metric, labels] of matcherLabels(q.rawExpr)) {
          const known = new Set([...(catalog.get(metric) ?? []), ...TARGET_LABELS]);
          for (const label of labels) expect(known.has(label), `${metric} has no label ${label}: ${where(q)}`).to.equal(true);
        }
        const available = new Set([...metricNames(q.rawExpr).flatMap((m) => [...(catalog.get(m) ?? [])]), ...TARGET_LABELS]);
        for (const label of groupingLabels(q.rawExpr)) {
          expect(available.has(label), `no series in the query has label ${label}: ${where(q)}`).to.equal(true);
        }
      }
      for (const v of variableQueries(dashboard)) {
        const known = new Set([...metricNames(v.selector).flatMap((m) => [...(catalog.get(m) ?? [])]), ...TARGET_LABELS]);
        expect(known.has(v.label), `variable ${v.name}: label ${v.label}`).to.equal(true);
      }
    });
  });

  it('has queries that all parse (promtool check rules on each as a recording rule)', function () {
    this.timeout(30_000);
    const rules = [
      ...queries.map((q) => ({ record: `dashboard:panel_${q.panelId}:${q.refId}`, expr: q.expr })),
      ...variableQueries(dashboard).map((v) => ({ record: `dashboard:variable:${v.name}`, expr: v.selector })),
    ];
    const dir = mkdtempSync(join(tmpdir(), 'ha-operator-dashboard-'));
    try {
      // JSON is YAML: promtool reads it as a rules file.
      writeFileSync(join(dir, 'queries.json'), JSON.stringify({ groups: [{ name: 'dashboard', rules }] }));
      const { status, output } = promtool(['check', 'rules', 'queries.json'], dir);
      expect(status, output).to.equal(0);
      expect(output).to.include(`SUCCESS: ${rules.length} rules found`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('hack/grafana/queries.ts', () => {
  it('lists every target of every panel, variables substituted', () => {
    const targets = visible.flatMap((p) => p.targets ?? []);
    expect(queries).to.have.length(targets.length);
    for (const q of queries) expect(q.expr, where(q)).not.to.include('$');
    expect(queries.filter((q) => q.instant).every((q) => q.panelType === 'stat')).to.equal(true);
  });

  it('substitutes built-ins and every variable syntax, and throws on unknown variables', () => {
    const options = { rateInterval: '2m', range: '6h', variables: { pod: 'op-a|op-b', job: 'x' } };
    expect(substitute('rate(m{pod=~"$pod", job=~"${job}", n=~"[[pod]]", j=~"${job:regex}"}[$__rate_interval])', options)).to.equal(
      'rate(m{pod=~"op-a|op-b", job=~"x", n=~"op-a|op-b", j=~"x"}[2m])',
    );
    expect(substitute('increase(m[$__range])', options)).to.equal('increase(m[6h])');
    expect(() => substitute('m{a=~"$nope"}')).to.throw(/unknown variable \$nope/);
  });

  it('defaults every variable to "All" and narrows the ones given', () => {
    const narrowed = dashboardQueries(dashboard, { variables: { pod: 'op-a' } });
    const first = narrowed[0];
    expect(first?.expr).to.include('pod=~"op-a"').and.include('namespace=~".*"');
  });

  it('reads metric and label names from PromQL', () => {
    const expr =
      'histogram_quantile(0.99, sum by (le, controller) (rate(a_bucket{job=~"x", code!~"2.."}[5m]))) / ' +
      'on (pod) group_left () (b_total offset 1m > bool 1e-3) or vector(0) unless time() - c:recorded';
    expect(metricNames(expr)).to.deep.equal(['a_bucket', 'b_total', 'c:recorded']);
    expect([...(matcherLabels(expr).get('a_bucket') ?? [])]).to.deep.equal(['job', 'code']);
    expect(groupingLabels(expr)).to.deep.equal(['controller', 'le', 'pod']);
    expect(rangeWindows(expr)).to.deep.equal(['5m']);
  });

  it('is what the generator builds (the JSON is its only input)', () => {
    expect(dashboardQueries(buildDashboard() as unknown as Json)).to.deep.equal(queries);
  });
});
