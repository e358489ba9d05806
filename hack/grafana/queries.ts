/**
 * Every PromQL expression of a Grafana dashboard, ready to send to Prometheus.
 *
 * For the unit tests (metric names, windows, syntax via promtool) and for an
 * integration test that evaluates each query against a real Prometheus:
 *
 *   import { dashboardQueries, loadDashboard } from '../../hack/grafana/queries.ts';
 *   for (const q of dashboardQueries(loadDashboard(), { rateInterval: '20s', range: '5m' })) {
 *     // q.expr has every variable substituted; q.instant says /api/v1/query rather than query_range
 *   }
 *
 * It reads the dashboard JSON (not the generator), so it keeps working on a dashboard edited in Grafana.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const DASHBOARD_FILE = fileURLToPath(new URL('../../grafana/dashboards/ha-operator.json', import.meta.url));

export interface SubstituteOptions {
  /** Template variables by name; an "All" selection is `.*`. Defaults: `.*` for every variable. */
  variables?: Record<string, string>;
  /** `$__rate_interval`; Grafana makes it max(4 × scrape interval, step + scrape interval). Default 1m. */
  rateInterval?: string;
  /** `$__interval`: the step. Default 15s. */
  interval?: string;
  /** `$__range`: the dashboard's time range, for instant queries. Default 1h. */
  range?: string;
}

export interface PanelQuery {
  panelId: number;
  panelTitle: string;
  panelType: string;
  refId: string;
  /** As written in the dashboard, with its `$variables`. */
  rawExpr: string;
  /** With every variable substituted. */
  expr: string;
  legendFormat: string;
  /** Evaluated once at the end of the range (a stat over `$__range`) rather than over the range. */
  instant: boolean;
  format: string;
}

export interface VariableQuery {
  name: string;
  /** The raw `label_values(<selector>, <label>)`. */
  rawQuery: string;
  /** The series selector inside, variables substituted: for /api/v1/series or /api/v1/label/<label>/values. */
  selector: string;
  label: string;
}

/** Grafana's defaults for a dashboard whose every variable is "All". */
export const ALL = '.*';

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

export function loadDashboard(file: string = DASHBOARD_FILE): Json {
  const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
  if (!isObject(parsed)) throw new Error(`${file}: not a dashboard (a JSON object was expected)`);
  return parsed;
}

/** Every panel, rows' nested panels (collapsed rows keep theirs inside) included, in document order. */
export function allPanels(dashboard: Json): Json[] {
  const out: Json[] = [];
  const walk = (panels: unknown): void => {
    if (!Array.isArray(panels)) return;
    for (const p of panels) {
      if (!isObject(p)) continue;
      out.push(p);
      walk(p.panels);
    }
  };
  walk(dashboard.panels);
  return out;
}

export function variableNames(dashboard: Json): string[] {
  const templating = isObject(dashboard.templating) ? dashboard.templating : {};
  const list = Array.isArray(templating.list) ? templating.list : [];
  return list.filter(isObject).map((v) => String(v.name));
}

/**
 * Substitutes Grafana's built-in and template variables in a PromQL expression:
 * `$name`, `${name}`, `${name:format}`, `[[name]]`. Throws on a variable it
 * does not know, so that nothing Grafana would substitute reaches Prometheus raw.
 */
export function substitute(expr: string, options: SubstituteOptions = {}): string {
  const builtins: Record<string, string> = {
    __rate_interval: options.rateInterval ?? '1m',
    __interval: options.interval ?? '15s',
    __range: options.range ?? '1h',
  };
  const variables = options.variables ?? {};
  return expr.replace(/\$\{(\w+)(?::[\w-]+)?\}|\$(\w+)|\[\[(\w+)\]\]/g, (match, braced?: string, bare?: string, old?: string) => {
    const name = braced ?? bare ?? old ?? '';
    const value = builtins[name] ?? variables[name];
    if (value === undefined) throw new Error(`unknown variable ${match} in: ${expr}`);
    return value;
  });
}

function defaultVariables(dashboard: Json, given: Record<string, string> | undefined): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const name of variableNames(dashboard)) if (name !== 'datasource') vars[name] = ALL;
  return { ...vars, ...given };
}

/** Every query target of every panel, with the variables substituted. */
export function dashboardQueries(dashboard: Json, options: SubstituteOptions = {}): PanelQuery[] {
  const resolved = { ...options, variables: defaultVariables(dashboard, options.variables) };
  const out: PanelQuery[] = [];
  for (const panel of allPanels(dashboard)) {
    if (!Array.isArray(panel.targets)) continue;
    for (const target of panel.targets) {
      if (!isObject(target) || typeof target.expr !== 'string') continue;
      out.push({
        panelId: Number(panel.id),
        panelTitle: String(panel.title),
        panelType: String(panel.type),
        refId: String(target.refId),
        rawExpr: target.expr,
        expr: substitute(target.expr, resolved),
        legendFormat: typeof target.legendFormat === 'string' ? target.legendFormat : '',
        instant: target.instant === true && target.range !== true,
        format: typeof target.format === 'string' ? target.format : 'time_series',
      });
    }
  }
  return out;
}

/** The `label_values(selector, label)` queries of the template variables. */
export function variableQueries(dashboard: Json, options: SubstituteOptions = {}): VariableQuery[] {
  const resolved = { ...options, variables: defaultVariables(dashboard, options.variables) };
  const templating = isObject(dashboard.templating) ? dashboard.templating : {};
  const list = Array.isArray(templating.list) ? templating.list.filter(isObject) : [];
  const out: VariableQuery[] = [];
  for (const v of list) {
    if (v.type !== 'query') continue;
    const raw = isObject(v.query) ? v.query.query : v.query;
    if (typeof raw !== 'string') throw new Error(`variable ${String(v.name)}: no query`);
    const m = /^label_values\((.*),\s*(\w+)\)$/s.exec(raw.trim());
    if (!m?.[1] || !m[2]) throw new Error(`variable ${String(v.name)}: not a label_values(selector, label) query: ${raw}`);
    out.push({ name: String(v.name), rawQuery: raw, selector: substitute(m[1], resolved), label: m[2] });
  }
  return out;
}

// --- A small PromQL reader: enough to list metric and label names, not a parser. ---

const KEYWORDS = new Set([
  'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'atan2', 'inf', 'nan',
]);

/** Replaces every string literal by "" so that nothing inside a matcher value is read as a name. */
function blankStrings(expr: string): string {
  return expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
}

/** The metric names an expression reads (series selectors, not functions or keywords). */
export function metricNames(expr: string): string[] {
  const bare = blankStrings(expr)
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    // Numbers and durations (0.99, 1e-3, 0x1f, 1m30s): anything that starts with a digit.
    .replace(/(?<![\w:])\d[\w.]*/g, ' ');
  const names = new Set<string>();
  for (const m of bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const after = bare.slice(m.index + m[0].length).trimStart();
    if (after.startsWith('(')) continue; // a function or an aggregation
    if (KEYWORDS.has(m[0].toLowerCase())) continue;
    names.add(m[0]);
  }
  return [...names].sort();
}

/** Label names in the matchers of each selector: `metric{a="x", b=~"y"}` → metric → {a, b}. */
export function matcherLabels(expr: string): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const m of blankStrings(expr).matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}/g)) {
    const [, metric = '', matchers = ''] = m;
    const labels = out.get(metric) ?? new Set<string>();
    for (const l of matchers.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)) labels.add(l[1] ?? '');
    out.set(metric, labels);
  }
  return out;
}

/** Label names in `by (…)`, `without (…)`, `on (…)` and `ignoring (…)` clauses. */
export function groupingLabels(expr: string): string[] {
  const labels = new Set<string>();
  for (const m of blankStrings(expr).matchAll(/\b(?:by|without|on|ignoring)\s*\(([^)]*)\)/g)) {
    for (const l of (m[1] ?? '').split(',')) if (l.trim()) labels.add(l.trim());
  }
  return [...labels].sort();
}

/** The contents of every `[…]` (range selectors and subqueries). */
export function rangeWindows(expr: string): string[] {
  return [...blankStrings(expr).matchAll(/\[([^\]]*)\]/g)].map((m) => (m[1] ?? '').trim());
}
