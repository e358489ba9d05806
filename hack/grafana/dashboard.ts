/**
 * The operator's Grafana dashboard, built as data. `node hack/grafana/generate.ts`
 * writes it to grafana/dashboards/ha-operator.json (and the panel list of
 * docs/DASHBOARDS.md); test/grafana/dashboard.test.ts fails when either is stale.
 *
 * Conventions every panel follows (the tests check them):
 * - the data source is the `datasource` template variable, on the panel and on every query;
 * - every rate-like window is `$__rate_interval`; `$__range` only in instant queries of stats;
 * - heatmaps read classic Prometheus buckets: `sum by (le) (increase(<m>_bucket{…}[$__rate_interval]))`,
 *   target format "heatmap", legend `{{le}}`, `calculate: false`, y axis in seconds;
 * - every panel has a unit ("none" only where value mappings give the text).
 */

/** The dashboard JSON model version this file is written for (Grafana 10.3 and later; see docs/DASHBOARDS.md). */
export const SCHEMA_VERSION = 39;
export const DASHBOARD_UID = 'ha-operator';
export const DASHBOARD_TITLE = 'ha-operator';

export const DATASOURCE = { type: 'prometheus', uid: '${datasource}' } as const;
export type DatasourceRef = typeof DATASOURCE;

/** The scrape-target labels every query filters on; Prometheus Operator attaches them. */
const TARGET = 'namespace=~"$namespace", job=~"$job", pod=~"$pod"';
/** TARGET plus the controller: for controller_runtime_* and workqueue_* series. */
const CONTROLLER = `${TARGET}, controller=~"$controller"`;

export interface GridPos {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface Target {
  datasource: DatasourceRef;
  refId: string;
  expr: string;
  legendFormat: string;
  range: boolean;
  instant: boolean;
  format: 'time_series' | 'heatmap';
  editorMode: 'code';
}

export interface Panel {
  id: number;
  type: string;
  title: string;
  description?: string;
  gridPos: GridPos;
  datasource?: DatasourceRef;
  targets?: Target[];
  fieldConfig?: { defaults: Record<string, unknown>; overrides: unknown[] };
  options?: Record<string, unknown>;
  collapsed?: boolean;
  panels?: Panel[];
}

export interface Variable {
  name: string;
  label: string;
  type: 'datasource' | 'query';
  [key: string]: unknown;
}

export interface Dashboard {
  id: null;
  uid: string;
  title: string;
  description: string;
  tags: string[];
  schemaVersion: number;
  version: number;
  editable: boolean;
  graphTooltip: number;
  liveNow: boolean;
  refresh: string;
  time: { from: string; to: string };
  timepicker: Record<string, unknown>;
  timezone: string;
  fiscalYearStartMonth: number;
  weekStart: string;
  links: unknown[];
  annotations: { list: unknown[] };
  templating: { list: Variable[] };
  panels: Panel[];
}

/** One query of a panel: its expression, its legend, and whether it is evaluated once (stats over the range). */
interface Query {
  expr: string;
  legend: string;
  instant?: boolean;
}

/** A panel before layout: its size, the rest of the panel model without id and position. */
interface Sized {
  w: number;
  h: number;
  panel: Omit<Panel, 'id' | 'gridPos'>;
}

interface Row {
  title: string;
  panels: Sized[];
}

type Threshold = { color: string; value: number | null };

const BASE_THRESHOLDS: Threshold[] = [{ color: 'green', value: null }];

function targets(queries: Query[], format: Target['format'] = 'time_series'): Target[] {
  return queries.map((q, i) => ({
    datasource: DATASOURCE,
    refId: String.fromCharCode(65 + i),
    expr: q.expr,
    legendFormat: q.legend,
    range: !q.instant,
    instant: q.instant === true,
    format,
    editorMode: 'code',
  }));
}

interface TimeseriesSpec {
  title: string;
  description: string;
  unit: string;
  queries: Query[];
  w?: number;
  h?: number;
  min?: number;
  max?: number;
  decimals?: number;
  draw?: 'line' | 'bars' | 'points';
  stack?: boolean;
  /** Drawn as a dashed line across the panel: the level an alert fires at. */
  thresholds?: Threshold[];
  overrides?: unknown[];
}

function timeseries(s: TimeseriesSpec): Sized {
  const draw = s.draw ?? 'line';
  return {
    w: s.w ?? 12,
    h: s.h ?? 8,
    panel: {
      type: 'timeseries',
      title: s.title,
      description: s.description,
      datasource: DATASOURCE,
      targets: targets(s.queries),
      fieldConfig: {
        defaults: {
          unit: s.unit,
          ...(s.min === undefined ? {} : { min: s.min }),
          ...(s.max === undefined ? {} : { max: s.max }),
          ...(s.decimals === undefined ? {} : { decimals: s.decimals }),
          color: { mode: 'palette-classic' },
          thresholds: { mode: 'absolute', steps: s.thresholds ?? BASE_THRESHOLDS },
          custom: {
            drawStyle: draw,
            lineWidth: 1,
            fillOpacity: draw === 'bars' ? 80 : s.stack ? 30 : 10,
            gradientMode: 'none',
            showPoints: draw === 'points' ? 'always' : 'never',
            pointSize: 5,
            spanNulls: false,
            axisSoftMin: 0,
            stacking: { mode: s.stack ? 'normal' : 'none', group: 'A' },
            thresholdsStyle: { mode: s.thresholds ? 'dashed' : 'off' },
          },
        },
        overrides: s.overrides ?? [],
      },
      options: {
        legend: { displayMode: 'list', placement: 'bottom', showLegend: true, calcs: [] },
        tooltip: { mode: 'multi', sort: 'desc' },
      },
    },
  };
}

interface StatSpec {
  title: string;
  description: string;
  unit: string;
  query: Query;
  w?: number;
  h?: number;
  decimals?: number;
  thresholds?: Threshold[];
}

function stat(s: StatSpec): Sized {
  return {
    w: s.w ?? 4,
    h: s.h ?? 4,
    panel: {
      type: 'stat',
      title: s.title,
      description: s.description,
      datasource: DATASOURCE,
      targets: targets([s.query]),
      fieldConfig: {
        defaults: {
          unit: s.unit,
          ...(s.decimals === undefined ? {} : { decimals: s.decimals }),
          color: { mode: 'thresholds' },
          thresholds: { mode: 'absolute', steps: s.thresholds ?? BASE_THRESHOLDS },
        },
        overrides: [],
      },
      options: {
        reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
        colorMode: 'value',
        graphMode: s.query.instant ? 'none' : 'area',
        justifyMode: 'auto',
        orientation: 'auto',
        textMode: 'auto',
      },
    },
  };
}

interface HeatmapSpec {
  title: string;
  description: string;
  /** The histogram's name without `_bucket`. */
  histogram: string;
  selector: string;
  w?: number;
  h?: number;
}

/** Classic Prometheus buckets as Grafana's heatmap wants them: per-interval counts, one row per `le`. */
function heatmap(s: HeatmapSpec): Sized {
  return {
    w: s.w ?? 12,
    h: s.h ?? 8,
    panel: {
      type: 'heatmap',
      title: s.title,
      description: s.description,
      datasource: DATASOURCE,
      targets: targets(
        [{ expr: `sum by (le) (increase(${s.histogram}_bucket{${s.selector}}[$__rate_interval]))`, legend: '{{le}}' }],
        'heatmap',
      ),
      fieldConfig: {
        defaults: {
          custom: {
            hideFrom: { legend: false, tooltip: false, viz: false },
            scaleDistribution: { type: 'linear' },
          },
        },
        overrides: [],
      },
      options: {
        calculate: false,
        cellGap: 1,
        cellValues: { unit: 'short' },
        color: {
          mode: 'scheme',
          scheme: 'Oranges',
          fill: 'dark-orange',
          scale: 'exponential',
          exponent: 0.5,
          steps: 64,
          reverse: false,
        },
        exemplars: { color: 'rgba(255,0,255,0.7)' },
        filterValues: { le: 1e-9 },
        legend: { show: true },
        rowsFrame: { layout: 'auto' },
        showValue: 'never',
        tooltip: { mode: 'single', yHistogram: true, showColorScale: false },
        yAxis: { axisPlacement: 'left', reverse: false, unit: 's' },
      },
    },
  };
}

interface StateTimelineSpec {
  title: string;
  description: string;
  query: Query;
  /** Value → [text, colour]. */
  states: Record<string, [string, string]>;
  w?: number;
  h?: number;
}

function stateTimeline(s: StateTimelineSpec): Sized {
  const options: Record<string, { text: string; color: string; index: number }> = {};
  Object.entries(s.states).forEach(([value, [text, color]], index) => {
    options[value] = { text, color, index };
  });
  return {
    w: s.w ?? 24,
    h: s.h ?? 8,
    panel: {
      type: 'state-timeline',
      title: s.title,
      description: s.description,
      datasource: DATASOURCE,
      targets: targets([s.query]),
      fieldConfig: {
        defaults: {
          // The states are named by the value mappings; there is no quantity to format.
          unit: 'none',
          mappings: [{ type: 'value', options }],
          color: { mode: 'thresholds' },
          thresholds: { mode: 'absolute', steps: BASE_THRESHOLDS },
          custom: { fillOpacity: 80, lineWidth: 0, hideFrom: { legend: false, tooltip: false, viz: false } },
        },
        overrides: [],
      },
      options: {
        mergeValues: true,
        showValue: 'never',
        alignValue: 'left',
        rowHeight: 0.9,
        legend: { displayMode: 'list', placement: 'bottom', showLegend: true },
        tooltip: { mode: 'single', sort: 'none' },
      },
    },
  };
}

/** Series whose display name matches `pattern` drawn in `color`. */
function colorOverride(pattern: string, color: string): unknown {
  return {
    matcher: { id: 'byRegexp', options: pattern },
    properties: [{ id: 'color', value: { mode: 'fixed', fixedColor: color } }],
  };
}

/** The 0.5, 0.9 and 0.99 quantiles of a histogram, by `by`. */
function quantiles(histogram: string, selector: string, by: string, legendPrefix: string): Query[] {
  return [0.5, 0.9, 0.99].map((q) => ({
    expr: `histogram_quantile(${q}, sum by (${by}, le) (rate(${histogram}_bucket{${selector}}[$__rate_interval])))`,
    legend: `${legendPrefix}p${Math.round(q * 100)}`,
  }));
}

const ERROR_RATIO_ALERT = 0.1;
const RECONCILE_P99_ALERT_SECONDS = 5;

/** `sum by (<by>) (<inner>)`, or `sum(<inner>)` when `by` is empty. */
const sumBy = (by: string, inner: string): string => (by ? `sum by (${by}) (${inner})` : `sum(${inner})`);
const reconcileRate = (by: string): string =>
  sumBy(by, `rate(controller_runtime_reconcile_total{${CONTROLLER}}[$__rate_interval])`);
const errorRatio = (by: string): string =>
  `${sumBy(by, `rate(controller_runtime_reconcile_errors_total{${CONTROLLER}}[$__rate_interval])`)} / ${reconcileRate(by)}`;

const rows: Row[] = [
  {
    title: 'Overview',
    panels: [
      stat({
        title: 'Replicas up',
        description: 'Scrape targets of the operator (one per replica, leader or standby) that answered their last scrape.',
        unit: 'short',
        decimals: 0,
        query: { expr: `sum(up{${TARGET}})`, legend: 'up' },
      }),
      stat({
        title: 'Leases without a leader',
        description:
          'Leases seen during the time range for which no replica reports leader_election_master_status = 1 now: ' +
          'those whose replicas all report 0 (the standbys of a leader that died, before one takes over) and those ' +
          'with no series left at all (every replica gone, or a lease removed on purpose).',
        unit: 'short',
        decimals: 0,
        thresholds: [
          { color: 'green', value: null },
          { color: 'red', value: 1 },
        ],
        query: {
          expr:
            `count(group by (name) (max_over_time(leader_election_master_status{${TARGET}}[$__range])) ` +
            `unless on (name) (sum by (name) (leader_election_master_status{${TARGET}}) > 0)) or vector(0)`,
          legend: 'leases',
          instant: true,
        },
      }),
      stat({
        title: 'Reconciles',
        description: 'Reconciles per second, all results, summed over replicas (only the leader of a key reconciles it).',
        unit: 'ops',
        query: { expr: reconcileRate(''), legend: 'reconciles' },
      }),
      stat({
        title: 'Reconcile error ratio',
        description: `Share of reconciles that returned an error. The HaOperatorReconcileErrorsHigh alert fires above ${ERROR_RATIO_ALERT * 100} % for 10 minutes.`,
        unit: 'percentunit',
        thresholds: [
          { color: 'green', value: null },
          { color: 'red', value: ERROR_RATIO_ALERT },
        ],
        query: { expr: errorRatio(''), legend: 'errors' },
      }),
      stat({
        title: 'Reconcile p99',
        description: `99th percentile of reconcile duration over all controllers. The HaOperatorReconcileSlow alert fires above ${RECONCILE_P99_ALERT_SECONDS} s for 15 minutes.`,
        unit: 's',
        thresholds: [
          { color: 'green', value: null },
          { color: 'red', value: RECONCILE_P99_ALERT_SECONDS },
        ],
        query: {
          expr: `histogram_quantile(0.99, sum by (le) (rate(controller_runtime_reconcile_time_seconds_bucket{${CONTROLLER}}[$__rate_interval])))`,
          legend: 'p99',
        },
      }),
      stat({
        title: 'Queue depth',
        description: 'Keys waiting in the work queues of all replicas.',
        unit: 'short',
        decimals: 0,
        query: { expr: `sum(workqueue_depth{${CONTROLLER}})`, legend: 'depth' },
      }),
    ],
  },
  {
    title: 'Leadership',
    panels: [
      stateTimeline({
        title: 'Leader of each lease',
        description:
          'leader_election_master_status by lease and pod: which replica led each lease when. ' +
          'Every replica reports 0 (standby) for each lease from the moment it starts campaigning (once its caches ' +
          'have synced), so a standby has a row before it ever leads; a blank stretch in a row means that replica ' +
          'was not scraped (or did not exist, or was not campaigning yet) then.',
        query: { expr: `max by (name, pod) (leader_election_master_status{${TARGET}})`, legend: '{{name}} · {{pod}}' },
        states: { '1': ['leader', 'green'], '0': ['standby', 'blue'] },
      }),
      timeseries({
        title: 'Replicas reporting leadership',
        description:
          'Sum of leader_election_master_status per lease: 1 is normal; 0 means no replica leads it (work stops); ' +
          'more than 1 means two replicas believe they lead (during a handover this can show for one scrape).',
        unit: 'short',
        decimals: 0,
        min: 0,
        queries: [{ expr: `sum by (name) (leader_election_master_status{${TARGET}})`, legend: '{{name}}' }],
        thresholds: [
          { color: 'green', value: null },
          { color: 'red', value: 2 },
        ],
      }),
      timeseries({
        title: 'Lease takeovers',
        description:
          'leader_election_transitions_total: each bar is a replica taking a lease over (creating it, or acquiring it ' +
          'free or expired). Every replica exports the counter at 0 from the moment it starts campaigning, so its ' +
          'first takeover counts like any other; only one made before Prometheus first scraped the replica is missed.',
        unit: 'short',
        decimals: 0,
        draw: 'bars',
        queries: [
          {
            expr: `sum by (name, pod) (increase(leader_election_transitions_total{${TARGET}}[$__rate_interval]))`,
            legend: '{{pod}} took {{name}}',
          },
        ],
      }),
      heatmap({
        title: 'Handover gap',
        description:
          'leader_election_handover_gap_seconds: from the moment the new leader saw the lease free (released or ' +
          'expired) until it held it; no replica reconciled in between. A released lease taken by a watching ' +
          'standby shows as milliseconds; an expired one as up to the lease duration. Every replica exports the ' +
          "histogram, empty, from the moment it starts campaigning, so a standby's first takeover shows too.",
        histogram: 'leader_election_handover_gap_seconds',
        selector: TARGET,
      }),
      timeseries({
        title: 'Handover gap per takeover',
        description: 'Mean handover gap of the takeovers in each interval, per lease and new leader.',
        unit: 's',
        draw: 'points',
        queries: [
          {
            expr:
              `sum by (name, pod) (increase(leader_election_handover_gap_seconds_sum{${TARGET}}[$__rate_interval])) / ` +
              `(sum by (name, pod) (increase(leader_election_handover_gap_seconds_count{${TARGET}}[$__rate_interval])) > 0)`,
            legend: '{{pod}} took {{name}}',
          },
        ],
      }),
      stat({
        title: 'Takeovers in range',
        description: 'Lease takeovers per lease over the whole time range (same caveat as Lease takeovers).',
        unit: 'short',
        decimals: 0,
        w: 6,
        h: 8,
        query: {
          expr: `sum by (name) (increase(leader_election_transitions_total{${TARGET}}[$__range]))`,
          legend: '{{name}}',
          instant: true,
        },
      }),
      stat({
        title: 'Handover gap p99 in range',
        description: '99th percentile of the handover gap over the whole time range.',
        unit: 's',
        w: 6,
        h: 8,
        query: {
          expr: `histogram_quantile(0.99, sum by (le) (increase(leader_election_handover_gap_seconds_bucket{${TARGET}}[$__range])))`,
          legend: 'p99',
          instant: true,
        },
      }),
      timeseries({
        title: 'Shutdown drain duration',
        description:
          'operator_shutdown_drain_seconds: how long a stopping replica waited for its reconciles in flight. ' +
          'Observed once, milliseconds before the process closes its HTTP server, so a scrape rarely catches it and ' +
          "an empty panel does not mean there was no shutdown. The replica's log always has it: the " +
          "'shutdown: drained work in flight' line (durationMs).",
        unit: 's',
        draw: 'points',
        queries: [
          {
            expr: `max by (pod) (operator_shutdown_drain_seconds_sum{${TARGET}} / (operator_shutdown_drain_seconds_count{${TARGET}} > 0))`,
            legend: '{{pod}}',
          },
        ],
      }),
      timeseries({
        title: 'Keys left queued at shutdown',
        description:
          'operator_shutdown_keys_left_queued of replicas that have drained: keys the replica did not reconcile ' +
          'before stopping, left to the successor (which queues every cached key when it takes the lease). ' +
          "Same scrape caveat as the drain duration; the replica's 'drain report' log line always has it (leftQueued).",
        unit: 'short',
        decimals: 0,
        draw: 'points',
        queries: [
          {
            expr:
              `max by (pod) (operator_shutdown_keys_left_queued{${TARGET}}) ` +
              `and on (pod) (max by (pod) (operator_shutdown_drain_seconds_count{${TARGET}}) > 0)`,
            legend: '{{pod}}',
          },
        ],
      }),
    ],
  },
  {
    title: 'Reconciliation',
    panels: [
      timeseries({
        title: 'Reconciles by result',
        description: 'controller_runtime_reconcile_total per second by controller and result (success, error, requeue, requeue_after).',
        unit: 'ops',
        stack: true,
        queries: [{ expr: reconcileRate('controller, result'), legend: '{{controller}} {{result}}' }],
        overrides: [colorOverride('.* error$', 'red'), colorOverride('.* success$', 'green')],
      }),
      timeseries({
        title: 'Reconcile error ratio',
        description:
          'controller_runtime_reconcile_errors_total over controller_runtime_reconcile_total, by controller. ' +
          `The dashed line is the alert threshold (${ERROR_RATIO_ALERT * 100} % for 10 minutes).`,
        unit: 'percentunit',
        min: 0,
        queries: [{ expr: errorRatio('controller'), legend: '{{controller}}' }],
        thresholds: [
          { color: 'green', value: null },
          { color: 'red', value: ERROR_RATIO_ALERT },
        ],
      }),
      heatmap({
        title: 'Reconcile time',
        description: 'controller_runtime_reconcile_time_seconds: reconciles per duration bucket in each interval.',
        histogram: 'controller_runtime_reconcile_time_seconds',
        selector: CONTROLLER,
      }),
      timeseries({
        title: 'Reconcile time p50 / p90 / p99',
        description:
          'Quantiles of controller_runtime_reconcile_time_seconds by controller, interpolated within ' +
          `controller-runtime's buckets. The dashed line is the p99 alert threshold (${RECONCILE_P99_ALERT_SECONDS} s).`,
        unit: 's',
        queries: quantiles('controller_runtime_reconcile_time_seconds', CONTROLLER, 'controller', '{{controller}} '),
        thresholds: [
          { color: 'green', value: null },
          { color: 'red', value: RECONCILE_P99_ALERT_SECONDS },
        ],
      }),
      timeseries({
        title: 'Panics, timeouts and terminal errors',
        description:
          'controller_runtime_reconcile_panics_total (a reconcile threw something that is not an Error), ' +
          'controller_runtime_reconcile_timeouts_total (a reconcile exceeded RECONCILE_TIMEOUT_SECONDS) and ' +
          'controller_runtime_terminal_reconcile_errors_total (a failure retrying cannot mend, such as an invalid spec: ' +
          'not retried until the object changes), per second.',
        unit: 'ops',
        w: 8,
        queries: [
          {
            expr: `sum by (controller) (rate(controller_runtime_reconcile_panics_total{${CONTROLLER}}[$__rate_interval]))`,
            legend: '{{controller}} panics',
          },
          {
            expr: `sum by (controller) (rate(controller_runtime_reconcile_timeouts_total{${CONTROLLER}}[$__rate_interval]))`,
            legend: '{{controller}} timeouts',
          },
          {
            expr: `sum by (controller) (rate(controller_runtime_terminal_reconcile_errors_total{${CONTROLLER}}[$__rate_interval]))`,
            legend: '{{controller}} terminal',
          },
        ],
      }),
      timeseries({
        title: 'Active workers',
        description:
          'controller_runtime_active_workers (reconciles running now) against controller_runtime_max_concurrent_reconciles, ' +
          'by pod. Standbys run workers too, but the write gate lets them start no reconcile, so they stay at 0.',
        unit: 'short',
        decimals: 0,
        min: 0,
        w: 8,
        queries: [
          { expr: `sum by (controller, pod) (controller_runtime_active_workers{${CONTROLLER}})`, legend: '{{pod}} active' },
          { expr: `sum by (controller, pod) (controller_runtime_max_concurrent_reconciles{${CONTROLLER}})`, legend: '{{pod}} max' },
        ],
        overrides: [
          {
            matcher: { id: 'byRegexp', options: '.* max$' },
            properties: [{ id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } }],
          },
        ],
      }),
      timeseries({
        title: 'Worker utilisation',
        description: 'Active workers / MAX_CONCURRENT_RECONCILES per pod. Near 100 % for long, the queue backs up.',
        unit: 'percentunit',
        min: 0,
        max: 1,
        w: 8,
        queries: [
          {
            expr:
              `sum by (controller, pod) (controller_runtime_active_workers{${CONTROLLER}}) / ` +
              `sum by (controller, pod) (controller_runtime_max_concurrent_reconciles{${CONTROLLER}})`,
            legend: '{{pod}}',
          },
        ],
      }),
    ],
  },
  {
    title: 'Work queue',
    panels: [
      timeseries({
        title: 'Queue depth',
        description:
          'workqueue_depth by queue and pod: keys waiting for a worker (keys waiting out a backoff are not counted ' +
          'until they are due). The HaOperatorWorkQueueGrowing alert fires when it stays above 10 and keeps rising.',
        unit: 'short',
        decimals: 0,
        min: 0,
        w: 8,
        queries: [{ expr: `sum by (name, pod) (workqueue_depth{${CONTROLLER}})`, legend: '{{name}} · {{pod}}' }],
      }),
      timeseries({
        title: 'Queue adds',
        description:
          'workqueue_adds_total per second by queue and pod. Standbys keep adding (their caches see every event) ' +
          'and drop each key at once because the write gate refuses it.',
        unit: 'ops',
        w: 8,
        queries: [
          { expr: `sum by (name, pod) (rate(workqueue_adds_total{${CONTROLLER}}[$__rate_interval]))`, legend: '{{name}} · {{pod}}' },
        ],
      }),
      timeseries({
        title: 'Retries',
        description: 'workqueue_retries_total per second: keys put back with a rate-limited delay after a failed reconcile.',
        unit: 'ops',
        w: 8,
        queries: [
          { expr: `sum by (name, pod) (rate(workqueue_retries_total{${CONTROLLER}}[$__rate_interval]))`, legend: '{{name}} · {{pod}}' },
        ],
      }),
      heatmap({
        title: 'Queue wait',
        description: 'workqueue_queue_duration_seconds: how long keys waited in the queue before a worker took them.',
        histogram: 'workqueue_queue_duration_seconds',
        selector: CONTROLLER,
      }),
      heatmap({
        title: 'Work duration',
        description:
          'workqueue_work_duration_seconds: how long a worker held a key. On standbys these are the microseconds ' +
          'it takes to refuse a key; on the leader, reconciles.',
        histogram: 'workqueue_work_duration_seconds',
        selector: CONTROLLER,
      }),
      timeseries({
        title: 'Longest running processor',
        description:
          'workqueue_longest_running_processor_seconds: age of the oldest reconcile still running. A line that ' +
          'climbs steadily is a stuck reconcile (RECONCILE_TIMEOUT_SECONDS should abort it).',
        unit: 's',
        min: 0,
        queries: [
          { expr: `max by (name, pod) (workqueue_longest_running_processor_seconds{${CONTROLLER}})`, legend: '{{name}} · {{pod}}' },
        ],
      }),
      timeseries({
        title: 'Unfinished work',
        description:
          'workqueue_unfinished_work_seconds: seconds of work in progress not yet observed by the work duration. ' +
          'Its rate of increase approximates the number of stuck workers.',
        unit: 's',
        min: 0,
        queries: [
          { expr: `sum by (name, pod) (workqueue_unfinished_work_seconds{${CONTROLLER}})`, legend: '{{name}} · {{pod}}' },
        ],
      }),
    ],
  },
  {
    title: 'Kubernetes API client',
    panels: [
      timeseries({
        title: 'API requests by code',
        description:
          'rest_client_requests_total per second by method and HTTP status; "<error>" means no response arrived. ' +
          'Lease reads and renewals are part of it: every replica polls its leases.',
        unit: 'reqps',
        queries: [
          { expr: `sum by (method, code) (rate(rest_client_requests_total{${TARGET}}[$__rate_interval]))`, legend: '{{method}} {{code}}' },
        ],
        overrides: [colorOverride('.* (5..|<error>)$', 'red')],
      }),
      timeseries({
        title: 'API non-2xx ratio',
        description:
          'Share of requests that got no 2xx answer, by method. Some are expected: 409 Conflict when two replicas ' +
          'race for a lease, 404 before a lease exists.',
        unit: 'percentunit',
        min: 0,
        queries: [
          {
            expr:
              `sum by (method) (rate(rest_client_requests_total{${TARGET}, code!~"2.."}[$__rate_interval])) / ` +
              `sum by (method) (rate(rest_client_requests_total{${TARGET}}[$__rate_interval]))`,
            legend: '{{method}}',
          },
        ],
      }),
      timeseries({
        title: 'API request latency by verb',
        description:
          'Quantiles of rest_client_request_duration_seconds by verb. client-go labels the latency histogram by ' +
          'verb and host only, so latency cannot be split by status code; see the requests panel for codes.',
        unit: 's',
        queries: quantiles('rest_client_request_duration_seconds', TARGET, 'verb', '{{verb}} '),
      }),
      heatmap({
        title: 'API request latency',
        description: 'rest_client_request_duration_seconds: requests per latency bucket in each interval, all verbs.',
        histogram: 'rest_client_request_duration_seconds',
        selector: TARGET,
      }),
      timeseries({
        title: 'Events by outcome',
        description:
          'operator_events_total per second: Kubernetes events the reconciles recorded, sent in the background. ' +
          'duplicate: the server already had that occurrence; failed: refused or unanswered; dropped: the sink was full, ' +
          'the term had ended, or shutdown came first. Events are best effort; a lasting rate of drops means a slow API server.',
        unit: 'ops',
        queries: [{ expr: `sum by (result) (rate(operator_events_total{${TARGET}}[$__rate_interval]))`, legend: '{{result}}' }],
        overrides: [colorOverride('^(failed|dropped)$', 'red')],
      }),
      timeseries({
        title: 'Informer relists',
        description:
          'operator_informer_relists_total per second by informer and where the API server answered: a list after the ' +
          "first, when a watch could not resume (410). 'watch cache' is cheap; 'etcd' is a consistent read of every object.",
        unit: 'ops',
        queries: [{ expr: `sum by (informer, from) (rate(operator_informer_relists_total{${TARGET}}[$__rate_interval]))`, legend: '{{informer}} · {{from}}' }],
      }),
    ],
  },
  {
    title: 'Node.js runtime',
    panels: [
      timeseries({
        title: 'CPU',
        description: 'process_cpu_seconds_total per second by pod: 100 % is one core busy. The event loop runs on one.',
        unit: 'percentunit',
        min: 0,
        w: 8,
        queries: [{ expr: `sum by (pod) (rate(process_cpu_seconds_total{${TARGET}}[$__rate_interval]))`, legend: '{{pod}}' }],
      }),
      timeseries({
        title: 'Memory',
        description: 'Resident set size, V8 heap used and total, and memory held outside the heap (buffers), by pod.',
        unit: 'bytes',
        min: 0,
        w: 8,
        queries: [
          { expr: `sum by (pod) (process_resident_memory_bytes{${TARGET}})`, legend: '{{pod}} rss' },
          { expr: `sum by (pod) (nodejs_heap_size_used_bytes{${TARGET}})`, legend: '{{pod}} heap used' },
          { expr: `sum by (pod) (nodejs_heap_size_total_bytes{${TARGET}})`, legend: '{{pod}} heap total' },
          { expr: `sum by (pod) (nodejs_external_memory_bytes{${TARGET}})`, legend: '{{pod}} external' },
        ],
      }),
      timeseries({
        title: 'Heap by space',
        description: 'nodejs_heap_space_size_used_bytes by V8 heap space; old space growing without bound is a leak.',
        unit: 'bytes',
        min: 0,
        w: 8,
        stack: true,
        queries: [{ expr: `sum by (pod, space) (nodejs_heap_space_size_used_bytes{${TARGET}})`, legend: '{{pod}} {{space}}' }],
      }),
      timeseries({
        title: 'Event-loop lag',
        description:
          'prom-client samples event-loop delay between scrapes: p50, p99 and max per pod. Lag delays lease renewals; ' +
          'one close to RENEW_DEADLINE_SECONDS costs the leader its lease.',
        unit: 's',
        min: 0,
        w: 8,
        queries: [
          { expr: `max by (pod) (nodejs_eventloop_lag_p50_seconds{${TARGET}})`, legend: '{{pod}} p50' },
          { expr: `max by (pod) (nodejs_eventloop_lag_p99_seconds{${TARGET}})`, legend: '{{pod}} p99' },
          { expr: `max by (pod) (nodejs_eventloop_lag_max_seconds{${TARGET}})`, legend: '{{pod}} max' },
        ],
      }),
      timeseries({
        title: 'GC time',
        description: 'Share of wall time spent in garbage collection (nodejs_gc_duration_seconds), by pod and GC kind.',
        unit: 'percentunit',
        min: 0,
        w: 8,
        stack: true,
        queries: [
          { expr: `sum by (pod, kind) (rate(nodejs_gc_duration_seconds_sum{${TARGET}}[$__rate_interval]))`, legend: '{{pod}} {{kind}}' },
        ],
      }),
      timeseries({
        title: 'GC runs',
        description: 'Garbage collections per second by pod and kind.',
        unit: 'ops',
        min: 0,
        w: 8,
        queries: [
          { expr: `sum by (pod, kind) (rate(nodejs_gc_duration_seconds_count{${TARGET}}[$__rate_interval]))`, legend: '{{pod}} {{kind}}' },
        ],
      }),
      timeseries({
        title: 'Handles and file descriptors',
        description: 'Active libuv handles (sockets, timers) and open file descriptors, by pod. Steady growth is a leak.',
        unit: 'short',
        decimals: 0,
        min: 0,
        queries: [
          { expr: `sum by (pod) (nodejs_active_handles_total{${TARGET}})`, legend: '{{pod}} handles' },
          { expr: `sum by (pod) (process_open_fds{${TARGET}})`, legend: '{{pod}} fds' },
        ],
      }),
      timeseries({
        title: 'Uptime',
        description: 'Seconds since each process started; a drop to zero is a restart.',
        unit: 's',
        min: 0,
        queries: [{ expr: `time() - max by (pod) (process_start_time_seconds{${TARGET}})`, legend: '{{pod}}' }],
      }),
    ],
  },
];

function labelValuesVariable(name: string, label: string, selector: string): Variable {
  const query = `label_values(${selector}, ${name})`;
  return {
    name,
    label,
    type: 'query',
    datasource: DATASOURCE,
    definition: query,
    query,
    refresh: 2,
    sort: 1,
    multi: true,
    includeAll: true,
    // "All" matches every value and also an absent label, so the dashboard works outside Kubernetes too.
    allValue: '.*',
    current: { selected: true, text: ['All'], value: ['$__all'] },
    options: [],
    regex: '',
    hide: 0,
    skipUrlSync: false,
  };
}

function variables(): Variable[] {
  return [
    {
      name: 'datasource',
      label: 'Data source',
      type: 'datasource',
      query: 'prometheus',
      current: {},
      options: [],
      refresh: 1,
      regex: '',
      hide: 0,
      includeAll: false,
      multi: false,
      skipUrlSync: false,
    },
    labelValuesVariable('namespace', 'Namespace', 'controller_runtime_reconcile_total'),
    labelValuesVariable('job', 'Job', 'controller_runtime_reconcile_total{namespace=~"$namespace"}'),
    labelValuesVariable('pod', 'Pod', 'controller_runtime_reconcile_total{namespace=~"$namespace", job=~"$job"}'),
    labelValuesVariable('controller', 'Controller', 'controller_runtime_reconcile_total{namespace=~"$namespace", job=~"$job"}'),
  ];
}

/** Places the rows on Grafana's 24-column grid, left to right, and numbers the panels from 1. */
function layout(input: Row[]): Panel[] {
  const panels: Panel[] = [];
  let id = 1;
  let y = 0;
  for (const row of input) {
    panels.push({ id: id++, type: 'row', title: row.title, collapsed: false, panels: [], gridPos: { x: 0, y, w: 24, h: 1 } });
    y += 1;
    let x = 0;
    let lineHeight = 0;
    for (const { w, h, panel } of row.panels) {
      if (x + w > 24) {
        y += lineHeight;
        x = 0;
        lineHeight = 0;
      }
      panels.push({ id: id++, ...panel, gridPos: { x, y, w, h } });
      x += w;
      lineHeight = Math.max(lineHeight, h);
    }
    y += lineHeight;
  }
  return panels;
}

export function buildDashboard(): Dashboard {
  return {
    id: null,
    uid: DASHBOARD_UID,
    title: DASHBOARD_TITLE,
    description:
      'ha-operator: leadership of each lease, handovers, reconciles, work queues, Kubernetes API calls and the Node.js runtime of every replica.',
    tags: ['ha-operator', 'controller-runtime', 'kubernetes'],
    schemaVersion: SCHEMA_VERSION,
    version: 1,
    editable: true,
    graphTooltip: 1,
    liveNow: false,
    refresh: '30s',
    time: { from: 'now-3h', to: 'now' },
    timepicker: {},
    timezone: '',
    fiscalYearStartMonth: 0,
    weekStart: '',
    links: [],
    annotations: { list: [] },
    templating: { list: variables() },
    panels: layout(rows),
  };
}

/** The dashboard file as written: two-space JSON with a final newline. */
export function renderDashboard(): string {
  return `${JSON.stringify(buildDashboard(), null, 2)}\n`;
}

export const PANEL_DOCS_START = '<!-- panels: generated by `node hack/grafana/generate.ts` from the panel descriptions; edit those -->';
export const PANEL_DOCS_END = '<!-- /panels -->';

/** The unit a panel displays in: the heatmap's y axis, else the field default. */
export function panelUnit(panel: Panel): string | undefined {
  if (panel.type === 'heatmap') {
    const yAxis = panel.options?.yAxis as { unit?: string } | undefined;
    return yAxis?.unit;
  }
  const unit = panel.fieldConfig?.defaults.unit;
  return typeof unit === 'string' ? unit : undefined;
}

/** docs/DASHBOARDS.md's panel list: one section per row, one line per panel. */
export function renderPanelDocs(dashboard: Dashboard = buildDashboard()): string {
  const out: string[] = [PANEL_DOCS_START];
  for (const panel of dashboard.panels) {
    if (panel.type === 'row') {
      out.push('', `#### ${panel.title}`, '');
      continue;
    }
    out.push(`- **${panel.title}** (${panel.type}, unit \`${panelUnit(panel) ?? '?'}\`): ${panel.description ?? ''}`);
  }
  out.push('', PANEL_DOCS_END);
  return out.join('\n');
}

/** `doc` with its generated panel list replaced by the current one. */
export function withPanelDocs(doc: string, dashboard: Dashboard = buildDashboard()): string {
  const start = doc.indexOf(PANEL_DOCS_START);
  const end = doc.indexOf(PANEL_DOCS_END);
  if (start < 0 || end < start) throw new Error(`docs/DASHBOARDS.md: no "${PANEL_DOCS_START}" … "${PANEL_DOCS_END}" section`);
  return doc.slice(0, start) + renderPanelDocs(dashboard) + doc.slice(end + PANEL_DOCS_END.length);
}
