/**
 * Two of the dashboard's panels drawn as SVG from Prometheus query_range
 * results, for docs/images/ (hack/grafana/snapshot.ts) — a picture of what the
 * panels show on real data, without a Grafana:
 *
 *   renderHeatmap(matrix, …)         the "Reconcile time" heatmap: the result of
 *                                    sum by (le) (increase(<histogram>_bucket[…])),
 *                                    de-cumulated as Grafana does for format "heatmap"
 *                                    (each bucket minus the one below), buckets × time,
 *                                    colour by count
 *   renderLeaderTimeline(matrix, …)  the "Leader of each lease" state timeline: one lane
 *                                    per replica, filled while leader_election_master_status is 1
 *
 * Pure functions of their input (no clock, no randomness): the same data gives
 * the same file.
 */
import type { MatrixSeries } from '../lib/prometheus.ts';

const FONT = "system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif";
const MONO = "ui-monospace, 'SFMono-Regular', Menlo, Consolas, monospace";
const TEXT = '#1f2328';
const MUTED = '#59636e';
const GRID = '#d1d9e0';
const EMPTY_CELL = '#f6f8fa';
// d3's Oranges, the scheme of Grafana's heatmap by default.
const ORANGES = ['#fff5eb', '#fee6ce', '#fdd0a2', '#fdae6b', '#fd8d3c', '#f16913', '#d94801', '#a63603', '#7f2704'];
// Grafana's classic palette, one colour per replica.
const LANE_COLOURS = ['#56a64b', '#3274d9', '#e0b400', '#a352cc', '#ff780a', '#37872d', '#1f60c4', '#c4162a'];

export interface TimeAxis {
  /** Unix seconds of the first point (the query's start). */
  start: number;
  /** Unix seconds of the last point (the query's end). */
  end: number;
  /** Seconds between points (the query's step). */
  step: number;
}

export interface TimelineMarker {
  /** Unix seconds. */
  at: number;
  label: string;
}

export interface HeatmapOptions extends TimeAxis {
  title: string;
  /** A line under the title (the query, say). */
  subtitle?: string;
  /** Width of the whole image in px; default 960. */
  width?: number;
  /** Vertical lines with a label: a signal sent, say. */
  markers?: TimelineMarker[];
}

export interface HeatmapData {
  /** Upper bounds of the buckets, ascending; the last may be Infinity (+Inf). */
  bounds: number[];
  /** Unix seconds of each column. */
  times: number[];
  /** counts[bucket][column]: observations in (bounds[bucket-1], bounds[bucket]] in that column's window. */
  counts: number[][];
}

/**
 * Turns `sum by (le) (increase(…_bucket[…]))` series (cumulative per `le`) into
 * per-bucket counts on the query's time grid. Prometheus' extrapolation makes
 * counts fractional; a negative difference (rounding) is taken as 0.
 */
export function heatmapData(series: MatrixSeries[], axis: TimeAxis): HeatmapData {
  const byBound = new Map<number, Map<number, number>>();
  for (const s of series) {
    const le = s.metric.le;
    if (le === undefined) throw new Error(`heatmap series without an le label: ${JSON.stringify(s.metric)}`);
    const bound = parseBound(le);
    const points = byBound.get(bound) ?? new Map<number, number>();
    for (const [t, v] of s.values) points.set(column(t, axis), (points.get(column(t, axis)) ?? 0) + finite(v));
    byBound.set(bound, points);
  }
  const bounds = [...byBound.keys()].sort((a, b) => a - b);
  const columns = Math.round((axis.end - axis.start) / axis.step) + 1;
  const times = Array.from({ length: columns }, (_, i) => axis.start + i * axis.step);
  const cumulative = bounds.map((b) => times.map((_, i) => byBound.get(b)!.get(i) ?? 0));
  const counts = cumulative.map((row, b) => row.map((v, i) => Math.max(0, v - (b === 0 ? 0 : cumulative[b - 1]![i]!))));
  return { bounds, times, counts };
}

export function renderHeatmap(series: MatrixSeries[], options: HeatmapOptions): string {
  const data = heatmapData(series, options);
  // Trim to the buckets that hold anything, with one empty bucket either side for context.
  const nonEmpty = data.counts.map((row, i) => (row.some((v) => v > 0) ? i : -1)).filter((i) => i >= 0);
  const first = nonEmpty.length ? Math.max(0, nonEmpty[0]! - 1) : 0;
  const last = nonEmpty.length ? Math.min(data.bounds.length - 1, nonEmpty.at(-1)! + 1) : Math.min(data.bounds.length - 1, 5);
  const rows = data.bounds.slice(first, last + 1).map((bound, i) => ({ bound, lower: first + i === 0 ? 0 : data.bounds[first + i - 1]!, counts: data.counts[first + i]! }));
  const max = Math.max(0, ...rows.flatMap((r) => r.counts));

  const rowHeight = 18;
  const { width, top, left, plotWidth, plotHeight, height } = chartLayout(options, rows.length * rowHeight);
  const cellWidth = plotWidth / data.times.length;

  const out = header(width, height, options.title, options.subtitle);
  // Cells: the row of bucket i spans (lower, bound]; the bottom row is the smallest bucket.
  rows.forEach((row, r) => {
    const y = top + plotHeight - (r + 1) * rowHeight;
    out.push(`<text x="${left - 8}" y="${y + rowHeight / 2 + 4}" text-anchor="end" font-size="11" fill="${MUTED}">${esc(bucketLabel(row.lower, row.bound))}</text>`);
    row.counts.forEach((v, c) => {
      const fill = v > 0 ? colour(Math.sqrt(v / max)) : EMPTY_CELL;
      out.push(`<rect x="${fmt(left + c * cellWidth)}" y="${y}" width="${fmt(cellWidth + 0.3)}" height="${rowHeight - 1}" fill="${fill}"><title>${esc(`${bucketLabel(row.lower, row.bound)} at ${clock(data.times[c]! - options.start)}: ${v.toFixed(2)}`)}</title></rect>`);
    });
  });
  if (max === 0) out.push(`<text x="${left + plotWidth / 2}" y="${top + plotHeight / 2}" text-anchor="middle" font-size="14" fill="${MUTED}">no observations in this range</text>`);
  out.push(...markerLines(options.markers ?? [], (t) => left + ((t - options.start) / (options.end - options.start)) * plotWidth, top, plotHeight));
  out.push(`<text x="${14}" y="${top + plotHeight / 2}" font-size="11" fill="${MUTED}" transform="rotate(-90 14 ${top + plotHeight / 2})" text-anchor="middle">reconcile time (bucket)</text>`);
  out.push(...timeAxis(options, left, plotWidth, top + plotHeight));

  // Colour scale.
  const scaleX = left + plotWidth + 24;
  const steps = 24;
  const scaleHeight = Math.min(plotHeight, 160);
  out.push(`<text x="${scaleX}" y="${top - 8}" font-size="11" fill="${MUTED}">reconciles</text>`);
  for (let i = 0; i < steps; i++) {
    const f = 1 - i / steps;
    out.push(`<rect x="${scaleX}" y="${fmt(top + (i * scaleHeight) / steps)}" width="14" height="${fmt(scaleHeight / steps + 0.3)}" fill="${colour(f)}"/>`);
  }
  out.push(`<text x="${scaleX + 20}" y="${top + 10}" font-size="11" fill="${MUTED}">${esc(count(max))}</text>`);
  out.push(`<text x="${scaleX + 20}" y="${top + scaleHeight}" font-size="11" fill="${MUTED}">0</text>`);
  out.push(`<text x="${scaleX}" y="${top + scaleHeight + 18}" font-size="10" fill="${MUTED}">√ scale</text>`);
  out.push('</svg>', '');
  return out.join('\n');
}

export interface TimelineOptions extends TimeAxis {
  title: string;
  subtitle?: string;
  width?: number;
  /** Lanes to draw, in this order, even those without any series (a standby that never led). */
  lanes?: string[];
  /** Vertical lines with a label: a signal sent, say. */
  markers?: TimelineMarker[];
}

export interface Term {
  /** Unix seconds of the first point at 1. */
  from: number;
  /** Unix seconds one step after the last point at 1 (or the end of the range). */
  to: number;
}

export interface Lane {
  name: string;
  /** Where the replica reported 1. */
  leading: Term[];
  /** Where it reported 0 (a series exists: it led earlier, or stopped leading). */
  standby: Term[];
}

/** The lane of a series: its pod, plus the lease name when there are several leases. */
function laneName(metric: Record<string, string>, severalLeases: boolean): string {
  const pod = metric.pod ?? metric.instance ?? '?';
  return severalLeases && metric.name ? `${pod} · ${metric.name}` : pod;
}

/** Runs of 1 and of 0 per replica from `leader_election_master_status` series (by pod, and name). */
export function leaderLanes(series: MatrixSeries[], axis: TimeAxis, lanes: string[] = []): Lane[] {
  const severalLeases = new Set(series.map((s) => s.metric.name)).size > 1;
  const out = new Map<string, Lane>(lanes.map((name) => [name, { name, leading: [], standby: [] }]));
  for (const s of series) {
    const name = laneName(s.metric, severalLeases);
    const lane = out.get(name) ?? { name, leading: [], standby: [] };
    out.set(name, lane);
    for (const [t, v] of s.values) {
      const runs = Number(v) >= 1 ? lane.leading : lane.standby;
      const to = Math.min(t + axis.step, axis.end);
      const open = runs.at(-1);
      if (open && Math.abs(open.to - t) < axis.step / 2) open.to = to;
      else runs.push({ from: t, to });
    }
  }
  return [...out.values()];
}

export function renderLeaderTimeline(series: MatrixSeries[], options: TimelineOptions): string {
  const lanes = leaderLanes(series, options, options.lanes);
  const laneHeight = 34;
  const { width, top, left, plotWidth, plotHeight, height } = chartLayout(options, lanes.length * laneHeight);
  const x = (t: number): number => left + ((t - options.start) / (options.end - options.start)) * plotWidth;

  const out = header(width, height, options.title, options.subtitle);
  lanes.forEach((lane, i) => {
    const y = top + i * laneHeight;
    const fill = LANE_COLOURS[i % LANE_COLOURS.length]!;
    out.push(`<rect x="${left}" y="${y + 4}" width="${plotWidth}" height="${laneHeight - 8}" fill="${EMPTY_CELL}"/>`);
    out.push(`<text x="${left - 8}" y="${y + laneHeight / 2 + 4}" text-anchor="end" font-size="12" fill="${TEXT}">${esc(lane.name)}</text>`);
    for (const run of lane.standby) {
      out.push(`<rect x="${fmt(x(run.from))}" y="${y + laneHeight / 2 - 2}" width="${fmt(x(run.to) - x(run.from))}" height="4" fill="${GRID}"><title>${esc(`${lane.name}: 0 (not leading) ${clock(run.from - options.start)}–${clock(run.to - options.start)}`)}</title></rect>`);
    }
    for (const run of lane.leading) {
      const w = x(run.to) - x(run.from);
      out.push(`<rect x="${fmt(x(run.from))}" y="${y + 4}" width="${fmt(w)}" height="${laneHeight - 8}" fill="${fill}" rx="2"><title>${esc(`${lane.name} leads ${clock(run.from - options.start)}–${clock(run.to - options.start)}`)}</title></rect>`);
      if (w > 60) out.push(`<text x="${fmt(x(run.from) + 6)}" y="${y + laneHeight / 2 + 4}" font-size="11" fill="#ffffff">leader</text>`);
    }
  });
  out.push(...markerLines(options.markers ?? [], x, top, plotHeight));
  out.push(...timeAxis(options, left, plotWidth, top + plotHeight));
  // Legend.
  const lx = left + plotWidth + 20;
  out.push(`<rect x="${lx}" y="${top + 4}" width="14" height="14" fill="${LANE_COLOURS[0]}" rx="2"/>`, `<text x="${lx + 20}" y="${top + 15}" font-size="11" fill="${MUTED}">1: leader</text>`);
  out.push(`<rect x="${lx}" y="${top + 29}" width="14" height="4" fill="${GRID}"/>`, `<text x="${lx + 20}" y="${top + 35}" font-size="11" fill="${MUTED}">0: standby</text>`);
  out.push(`<rect x="${lx}" y="${top + 44}" width="14" height="14" fill="${EMPTY_CELL}" stroke="${GRID}"/>`, `<text x="${lx + 20}" y="${top + 55}" font-size="11" fill="${MUTED}">no series</text>`);
  out.push('</svg>', '');
  return out.join('\n');
}

// --- shared pieces ---

/** Where a chart's plot sits: room above for the title, subtitle and marker labels, 110 px each side for labels, 56 px below for the time axis. */
function chartLayout(options: { width?: number; subtitle?: string; markers?: TimelineMarker[] }, plotHeight: number) {
  const width = options.width ?? 960;
  const top = (options.subtitle ? 64 : 44) + (options.markers?.length ? 18 : 0);
  const left = 110;
  const right = 110;
  return { width, top, left, plotWidth: width - left - right, plotHeight, height: top + plotHeight + 56 };
}

function header(width: number, height: number, title: string, subtitle: string | undefined): string[] {
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT}">`,
    `<title>${esc(title)}</title>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="14" y="26" font-size="16" font-weight="600" fill="${TEXT}">${esc(title)}</text>`,
  ];
  if (subtitle) out.push(`<text x="14" y="46" font-size="11" font-family="${MONO}" fill="${MUTED}">${esc(subtitle)}</text>`);
  return out;
}

function markerLines(markers: TimelineMarker[], x: (t: number) => number, top: number, plotHeight: number): string[] {
  return markers.flatMap((marker) => {
    const mx = fmt(x(marker.at));
    return [
      `<line x1="${mx}" y1="${top - 6}" x2="${mx}" y2="${top + plotHeight}" stroke="${TEXT}" stroke-width="1" stroke-dasharray="4 3"/>`,
      `<text x="${mx}" y="${top - 10}" text-anchor="middle" font-size="11" fill="${TEXT}">${esc(marker.label)}</text>`,
    ];
  });
}

/** Ticks every 5 s … 10 min, at most about 12, labelled as time since the start of the range. */
function timeAxis(axis: TimeAxis, left: number, plotWidth: number, y: number): string[] {
  const span = axis.end - axis.start;
  const every = [5, 10, 15, 30, 60, 120, 300, 600].find((s) => span / s <= 12) ?? 600;
  const out = [`<line x1="${left}" y1="${y + 1}" x2="${left + plotWidth}" y2="${y + 1}" stroke="${GRID}"/>`];
  for (let s = 0; s <= span + 1e-9; s += every) {
    const x = fmt(left + (s / span) * plotWidth);
    out.push(`<line x1="${x}" y1="${y + 1}" x2="${x}" y2="${y + 6}" stroke="${MUTED}"/>`);
    out.push(`<text x="${x}" y="${y + 20}" text-anchor="middle" font-size="11" fill="${MUTED}">${clock(s)}</text>`);
  }
  out.push(`<text x="${left + plotWidth / 2}" y="${y + 42}" text-anchor="middle" font-size="11" fill="${MUTED}">time since the start of the scenario (step ${axis.step}s)</text>`);
  return out;
}

function column(t: number, axis: TimeAxis): number {
  return Math.round((t - axis.start) / axis.step);
}

function parseBound(le: string): number {
  if (le === '+Inf') return Number.POSITIVE_INFINITY;
  const n = Number(le);
  if (Number.isNaN(n)) throw new Error(`not a bucket bound: le="${le}"`);
  return n;
}

function finite(v: string): number {
  const n = Number(v);
  return Number.isFinite(n) ? n : 0;
}

function colour(fraction: number): string {
  const f = Math.min(1, Math.max(0, fraction));
  // Start one step in, so the smallest count is visible against the empty cells.
  const pos = 1 + f * (ORANGES.length - 2);
  const i = Math.min(ORANGES.length - 2, Math.floor(pos));
  return mix(ORANGES[i]!, ORANGES[i + 1]!, pos - i);
}

function mix(a: string, b: string, t: number): string {
  const pa = [1, 3, 5].map((o) => parseInt(a.slice(o, o + 2), 16));
  const pb = [1, 3, 5].map((o) => parseInt(b.slice(o, o + 2), 16));
  return `#${pa.map((v, k) => Math.round(v + (pb[k]! - v) * t).toString(16).padStart(2, '0')).join('')}`;
}

/** "≤ 5ms", "10–25ms", "> 60s". */
function bucketLabel(lower: number, upper: number): string {
  if (upper === Number.POSITIVE_INFINITY) return `> ${seconds(lower)}`;
  return lower === 0 ? `≤ ${seconds(upper)}` : `${seconds(lower)}–${seconds(upper)}`;
}

function seconds(s: number): string {
  if (s >= 1) return `${+s.toPrecision(3)}s`;
  if (s >= 1e-3) return `${+(s * 1e3).toPrecision(3)}ms`;
  if (s >= 1e-6) return `${+(s * 1e6).toPrecision(3)}µs`;
  return `${+(s * 1e9).toPrecision(3)}ns`;
}

function clock(s: number): string {
  const total = Math.round(s);
  const m = Math.floor(total / 60);
  const rest = total % 60;
  return m === 0 ? `${rest}s` : rest === 0 ? `${m}m` : `${m}m${rest}s`;
}

function count(v: number): string {
  return v >= 10 ? v.toFixed(0) : v.toFixed(1);
}

function fmt(n: number): string {
  return String(Math.round(n * 10) / 10);
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
