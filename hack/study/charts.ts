/**
 * The study's SVG charts, pure functions of one ScenarioResult: leadership
 * lanes (who led which lease when, with writes per second underneath) and a
 * heatmap of convergence latency over time. Both share the horizontal scale,
 * so in the report the heatmap sits under the lanes it explains. Output is a
 * standalone SVG 1.1 document: deterministic (fixed number formatting, no
 * clock, no randomness) and every text escaped.
 */
import { escapeXml } from './markup.ts';
import type { Marker, ScenarioResult, Span } from './types.ts';

export const CHART_WIDTH = 960;
const LEFT = 150;
const RIGHT = 24;
const PLOT_WIDTH = CHART_WIDTH - LEFT - RIGHT;
const FONT = 'font-family="Helvetica, Arial, sans-serif"';
const MARKER_ROW_HEIGHT = 13;
const MAX_MARKER_ROWS = 4;

/** Replica colours, by the replica's position in the scenario (red is kept for overlaps, amber for outages). */
export const REPLICA_COLOURS = ['#1f77b4', '#2ca02c', '#9467bd', '#17becf', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22'];
export const OVERLAP_COLOUR = '#d62728';
const SPAN_COLOUR = '#f5b041';
const WINDOW_COLOUR = '#1f77b4';
/** Sequential blues for heatmap counts, lightest first. */
export const HEAT_COLOURS = ['#c6dbef', '#9ecae1', '#6baed6', '#4292c6', '#2171b5', '#08519c', '#08306b'];
const NEVER_COLOUR = '#d62728';

export interface Chart {
  svg: string;
  width: number;
  height: number;
}

/** A number for an SVG attribute: at most one decimal, no trailing ".0", no "-0". */
export function num(value: number): string {
  const rounded = Math.round(value * 10) / 10;
  return Object.is(rounded, -0) ? '0' : String(rounded);
}

/** "850 ms", "12.3 s". */
export function formatMs(ms: number | null): string {
  if (ms === null) return '–';
  if (Math.abs(ms) < 1_000) return `${Math.round(ms)} ms`;
  return `${(ms / 1_000).toFixed(1)} s`;
}

/** A tick step (ms) that gives at most `maxTicks` ticks over `durationMs`. */
export function tickStep(durationMs: number, maxTicks = 12): number {
  for (const step of [1_000, 2_000, 5_000, 10_000, 15_000, 20_000, 30_000, 60_000, 120_000, 300_000, 600_000]) {
    if (durationMs / step <= maxTicks) return step;
  }
  return 1_200_000;
}

class TimeScale {
  readonly durationMs: number;
  constructor(durationMs: number) {
    this.durationMs = Math.max(1, durationMs);
  }

  x(ms: number): number {
    return LEFT + (Math.min(Math.max(ms, 0), this.durationMs) / this.durationMs) * PLOT_WIDTH;
  }
}

function text(x: number, y: number, content: string, attrs = ''): string {
  return `<text x="${num(x)}" y="${num(y)}"${attrs ? ` ${attrs}` : ''}>${escapeXml(content)}</text>`;
}

function rect(x: number, y: number, width: number, height: number, attrs: string, title?: string): string {
  const body = `x="${num(x)}" y="${num(y)}" width="${num(Math.max(width, 0))}" height="${num(height)}" ${attrs}`;
  return title === undefined ? `<rect ${body}/>` : `<rect ${body}><title>${escapeXml(title)}</title></rect>`;
}

function line(x1: number, y1: number, x2: number, y2: number, attrs: string): string {
  return `<line x1="${num(x1)}" y1="${num(y1)}" x2="${num(x2)}" y2="${num(y2)}" ${attrs}/>`;
}

function document(width: number, height: number, title: string, body: string[]): Chart {
  const svg = [
    `<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="${width}" height="${num(height)}" viewBox="0 0 ${width} ${num(height)}" ${FONT} font-size="11">`,
    `<title>${escapeXml(title)}</title>`,
    rect(0, 0, width, height, 'fill="#ffffff"'),
    ...body,
    '</svg>',
    '',
  ].join('\n');
  return { svg, width, height };
}

/** Approximate width of `content` at font-size 11 (no font metrics here: an estimate that errs wide). */
function textWidth(content: string): number {
  return content.length * 6.2;
}

/**
 * Marker labels in rows above the plot, each in the first row where it does
 * not collide with the label before it (the last row takes the rest); a
 * label that would run off the right edge ends at its line instead.
 */
function layoutMarkers(markers: readonly Marker[], scale: TimeScale): { marker: Marker; x: number; row: number; flip: boolean }[] {
  const rowEnds: number[] = [];
  return [...markers].sort((a, b) => a.at - b.at || (a.label < b.label ? -1 : 1)).map((marker) => {
    const x = scale.x(marker.at);
    const width = textWidth(marker.label);
    const flip = x + 3 + width > CHART_WIDTH - 2;
    const left = flip ? x - 3 - width : x;
    let row = rowEnds.findIndex((end) => end + 6 <= left);
    if (row === -1) row = rowEnds.length < MAX_MARKER_ROWS ? rowEnds.length : MAX_MARKER_ROWS - 1;
    rowEnds[row] = Math.max(rowEnds[row] ?? 0, flip ? x : x + 3 + width);
    return { marker, x, row, flip };
  });
}

function markerRows(markers: readonly Marker[], scale: TimeScale): number {
  return Math.max(1, ...layoutMarkers(markers, scale).map((m) => m.row + 1));
}

/** Marker labels at `top`, and their dashed lines from there down to `bottom`. */
function drawMarkers(markers: readonly Marker[], scale: TimeScale, top: number, bottom: number): string[] {
  const out: string[] = [];
  for (const { marker, x, row, flip } of layoutMarkers(markers, scale)) {
    const y = top + row * MARKER_ROW_HEIGHT + 10;
    out.push(line(x, y + 3, x, bottom, 'stroke="#555555" stroke-width="1" stroke-dasharray="3,3"'));
    out.push(flip ? text(x - 3, y, marker.label, 'text-anchor="end" fill="#333333"') : text(x + 3, y, marker.label, 'fill="#333333"'));
  }
  return out;
}

function drawAxis(scale: TimeScale, y: number, label: string): string[] {
  const out = [line(LEFT, y, LEFT + PLOT_WIDTH, y, 'stroke="#333333"')];
  const step = tickStep(scale.durationMs);
  for (let ms = 0; ms <= scale.durationMs; ms += step) {
    const x = scale.x(ms);
    out.push(line(x, y, x, y + 4, 'stroke="#333333"'));
    out.push(text(x, y + 15, `${ms / 1000} s`, 'text-anchor="middle" fill="#333333"'));
  }
  out.push(text(LEFT + PLOT_WIDTH / 2, y + 30, label, 'text-anchor="middle" fill="#555555"'));
  return out;
}

/** The event window as a bar under the axis, labelled. */
function drawWindow(window: Span, scale: TimeScale, y: number): string[] {
  const x1 = scale.x(window.start);
  const x2 = Math.max(scale.x(window.end), x1 + 2);
  return [
    rect(x1, y, x2 - x1, 5, `fill="${WINDOW_COLOUR}"`, `event window: ${window.label}, ${formatMs(window.start)} – ${formatMs(window.end)}`),
    text(x1, y + 16, `event window: ${window.label} (${formatMs(window.end - window.start)})`, `fill="${WINDOW_COLOUR}"`),
  ];
}

function legendItem(x: number, y: number, swatch: string, label: string): { svg: string[]; width: number } {
  return { svg: [swatch, text(x + 16, y + 9, label, 'fill="#333333"')], width: 16 + textWidth(label) + 18 };
}

/** Lays out legend items left to right from LEFT, wrapping; returns the SVG and the height used. */
function legend(y: number, items: ((x: number, y: number) => { svg: string[]; width: number })[]): { svg: string[]; height: number } {
  const out: string[] = [];
  let x = LEFT;
  let row = 0;
  for (const item of items) {
    let drawn = item(x, y + row * 16);
    if (x > LEFT && x + drawn.width > CHART_WIDTH - RIGHT) {
      row++;
      x = LEFT;
      drawn = item(x, y + row * 16);
    }
    out.push(...drawn.svg);
    x += drawn.width;
  }
  return { svg: out, height: (row + 1) * 16 };
}

/**
 * Leadership lanes: one lane per replica, one row per lease in it (six for
 * six shards), a bar where the replica led the lease (without leader
 * election: where it worked), the process's life in grey behind, writes per
 * second underneath; red where two replicas were entitled to the same keys
 * at once, amber for outages, dashed lines for events.
 */
export function lanesChart(scenario: ScenarioResult): Chart {
  const scale = new TimeScale(scenario.durationMs);
  const leases = scenario.leases.length > 0 ? scenario.leases : ['(none)'];
  const rowHeight = leases.length === 1 ? 16 : 9;
  const stripHeight = 12;
  const laneGap = 10;
  const laneHeight = leases.length * rowHeight + 3 + stripHeight;
  const rows = markerRows(scenario.markers, scale);
  const titleHeight = 24;
  const lanesTop = titleHeight + rows * MARKER_ROW_HEIGHT + 8;
  const lanesBottom = lanesTop + scenario.replicas.length * (laneHeight + laneGap) - laneGap;
  const axisY = lanesBottom + 8;
  const legendY = axisY + 60;
  const colour = new Map(scenario.replicas.map((r, i) => [r.name, REPLICA_COLOURS[i % REPLICA_COLOURS.length]!]));
  const maxBin = Math.max(1, ...Object.values(scenario.writes.bins.byReplica).flat());

  const body: string[] = [text(8, 16, `${scenario.number}. ${scenario.title}: leadership`, 'font-size="13" font-weight="bold" fill="#1f2328"')];
  // Backgrounds: outages and the like, then overlaps, across every lane.
  for (const span of scenario.spans) {
    const x1 = scale.x(span.start);
    body.push(rect(x1, lanesTop - 4, scale.x(span.end) - x1, lanesBottom - lanesTop + 8, `fill="${SPAN_COLOUR}" fill-opacity="0.22"`,
      `${span.label}: ${formatMs(span.start)} – ${formatMs(span.end)}`));
  }
  scenario.replicas.forEach((replica, index) => {
    const top = lanesTop + index * (laneHeight + laneGap);
    const fill = colour.get(replica.name)!;
    const end = replica.exitedAt ?? scenario.durationMs;
    body.push(text(8, top + Math.min(leases.length * rowHeight, 24) / 2 + 4, replica.name, 'font-size="13" font-weight="bold" fill="#1f2328"'));
    body.push(text(8, top + Math.min(leases.length * rowHeight, 24) / 2 + 17, `${replica.role}${replica.note ? `, ${replica.note}` : ''}`, 'fill="#555555"'));
    const lifeTitle = `${replica.name}: process from ${formatMs(replica.spawnedAt)}${replica.readyAt !== null ? `, ready at ${formatMs(replica.readyAt)}` : ''}`
      + `${replica.exitedAt !== null ? `, exited at ${formatMs(replica.exitedAt)} (${replica.exit ?? '?'})` : ''}`;
    body.push(rect(scale.x(replica.spawnedAt), top, scale.x(end) - scale.x(replica.spawnedAt), leases.length * rowHeight, 'fill="#e6e6e6"', lifeTitle));
    leases.forEach((lease, row) => {
      const y = top + row * rowHeight;
      if (leases.length > 1) body.push(text(LEFT - 6, y + rowHeight - 1.5, lease.replace(/^.*-(\d+)$/, 'shard $1'), 'text-anchor="end" font-size="8" fill="#555555"'));
      for (const term of scenario.terms.filter((t) => t.replica === replica.name && t.lease === lease)) {
        const x1 = scale.x(term.start);
        body.push(rect(x1, y + 1, Math.max(scale.x(term.end) - x1, 1), rowHeight - 2, `fill="${fill}"`,
          `${replica.name} ${lease === '(no lease)' ? 'works without a lease' : `leads ${lease}`} ${formatMs(term.start)} – ${formatMs(term.end)}: ${term.writes} writes; ended: ${term.endReason}`));
      }
    });
    if (replica.readyAt !== null) {
      const x = scale.x(replica.readyAt);
      body.push(`<path d="M${num(x)} ${num(top - 1)} l-4 -5 h8 z" fill="#333333"><title>${escapeXml(`${replica.name} ready at ${formatMs(replica.readyAt)}`)}</title></path>`);
    }
    if (replica.exitedAt !== null) {
      const x = scale.x(replica.exitedAt);
      const y = top + (leases.length * rowHeight) / 2;
      body.push(`<path d="M${num(x - 4)} ${num(y - 4)} l8 8 m0 -8 l-8 8" stroke="#1f2328" stroke-width="2"><title>${escapeXml(`${replica.name} exited at ${formatMs(replica.exitedAt)}: ${replica.exit ?? '?'}`)}</title></path>`);
    }
    // Writes per bin, as bars from the strip's baseline.
    const stripBottom = top + leases.length * rowHeight + 3 + stripHeight;
    const bins = scenario.writes.bins.byReplica[replica.name] ?? [];
    const binWidth = (scale.x(scenario.writes.bins.binMs) - scale.x(0));
    bins.forEach((count, i) => {
      if (count === 0) return;
      const h = Math.max(1, (count / maxBin) * stripHeight);
      const at = i * scenario.writes.bins.binMs;
      const width = Math.min(binWidth, scale.x(scenario.durationMs) - scale.x(at)) - 0.5;
      body.push(rect(scale.x(at), stripBottom - h, Math.max(width, 0.5), h, `fill="${fill}" fill-opacity="0.55"`,
        `${replica.name}: ${count} writes in ${formatMs(at)} – ${formatMs(at + scenario.writes.bins.binMs)}`));
    });
    body.push(line(LEFT, stripBottom, LEFT + PLOT_WIDTH, stripBottom, 'stroke="#cccccc"'));
  });
  for (const overlap of scenario.overlaps) {
    const x1 = scale.x(overlap.start);
    body.push(rect(x1, lanesTop - 4, Math.max(scale.x(overlap.end) - x1, 2), lanesBottom - lanesTop + 8,
      `fill="${OVERLAP_COLOUR}" fill-opacity="0.12" stroke="${OVERLAP_COLOUR}" stroke-width="1.5"`,
      `${overlap.replicas.join(' and ')} both entitled to write ${overlap.lease} keys for ${formatMs(overlap.end - overlap.start)}: `
      + `${overlap.writes} writes to ${overlap.keys} keys both wrote`));
  }
  body.push(...drawMarkers(scenario.markers, scale, titleHeight, lanesBottom + 4));
  body.push(...drawAxis(scale, axisY, 'seconds since the scenario started'));
  body.push(...drawWindow(scenario.window, scale, axisY + 36));
  const firstColour = REPLICA_COLOURS[0]!;
  const items = [
    (x: number, y: number) => legendItem(x, y, rect(x, y, 12, 10, `fill="${firstColour}"`), scenario.leaderElection ? 'leads the lease' : 'works (no lease)'),
    (x: number, y: number) => legendItem(x, y, rect(x, y, 12, 10, 'fill="#e6e6e6"'), 'process running'),
    (x: number, y: number) => legendItem(x, y, rect(x, y + 4, 12, 6, `fill="${firstColour}" fill-opacity="0.55"`), 'writes per second (under each lane)'),
    (x: number, y: number) => legendItem(x, y, `<path d="M${num(x + 6)} ${num(y + 10)} l-4 -5 h8 z" fill="#333333"/>`, 'ready'),
    (x: number, y: number) => legendItem(x, y, `<path d="M${num(x + 2)} ${num(y + 1)} l8 8 m0 -8 l-8 8" stroke="#1f2328" stroke-width="2"/>`, 'exited'),
    (x: number, y: number) => legendItem(x, y, rect(x, y, 12, 10, `fill="${OVERLAP_COLOUR}" fill-opacity="0.12" stroke="${OVERLAP_COLOUR}"`), 'two replicas may write the same keys'),
    ...(scenario.spans.length > 0
      ? [(x: number, y: number) => legendItem(x, y, rect(x, y, 12, 10, `fill="${SPAN_COLOUR}" fill-opacity="0.4"`), scenario.spans.map((s) => s.label).join(', '))]
      : []),
  ];
  const drawn = legend(legendY, items);
  body.push(...drawn.svg);
  return document(CHART_WIDTH, legendY + drawn.height + 6, `${scenario.number}. ${scenario.title}: leadership lanes`, body);
}

/** Latency rows of the heatmap: upper bounds in ms (doubling from 100 ms), the last open-ended. */
export const LATENCY_BUCKETS_MS = [100, 200, 400, 800, 1_600, 3_200, 6_400, 12_800, 25_600, Number.POSITIVE_INFINITY];

export function bucketLabel(index: number): string {
  const upper = LATENCY_BUCKETS_MS[index]!;
  const lower = index === 0 ? 0 : LATENCY_BUCKETS_MS[index - 1]!;
  if (index === 0) return `< ${formatMs(upper)}`;
  if (!Number.isFinite(upper)) return `≥ ${formatMs(lower)}`;
  return `${formatMs(lower)} – ${formatMs(upper)}`;
}

export function bucketOf(latencyMs: number): number {
  return LATENCY_BUCKETS_MS.findIndex((upper) => latencyMs < upper);
}

/** Column width of the heatmap: 2 s, or wider so that there are at most 90 columns. */
export function heatmapBinMs(durationMs: number): number {
  for (const bin of [2_000, 5_000, 10_000, 30_000]) if (durationMs / bin <= 90) return bin;
  return 60_000;
}

export function heatColour(count: number, max: number): string {
  const index = Math.min(HEAT_COLOURS.length - 1, Math.max(0, Math.ceil((count / Math.max(max, 1)) * HEAT_COLOURS.length) - 1));
  return HEAT_COLOURS[index]!;
}

/**
 * Convergence latency over time: a column per time bin (by when the change
 * was sent), a row per latency bucket (time until status.observedGeneration
 * caught up), shade by the number of changes; a red row on top for changes
 * never seen converged.
 */
export function latencyHeatmap(scenario: ScenarioResult): Chart {
  const scale = new TimeScale(scenario.durationMs);
  const binMs = heatmapBinMs(scenario.durationMs);
  const columns = Math.max(1, Math.ceil(scenario.durationMs / binMs));
  const buckets = LATENCY_BUCKETS_MS.length;
  // counts[column][row]; row `buckets` is "never".
  const counts = Array.from({ length: columns }, () => new Array<number>(buckets + 1).fill(0));
  for (const change of scenario.changes) {
    const column = Math.min(columns - 1, Math.max(0, Math.floor(change.sentAt / binMs)));
    const row = change.convergedAt === null ? buckets : bucketOf(change.convergedAt - change.sentAt);
    counts[column]![row]!++;
  }
  const max = Math.max(1, ...counts.flatMap((c) => c.slice(0, buckets)));
  const cellHeight = 16;
  const rows = markerRows(scenario.markers, scale);
  const titleHeight = 24;
  const plotTop = titleHeight + rows * MARKER_ROW_HEIGHT + 8;
  const neverTop = plotTop;
  const gridTop = plotTop + cellHeight + 6;
  const gridBottom = gridTop + buckets * cellHeight;
  const axisY = gridBottom + 4;
  const legendY = axisY + 60;
  const rowTop = (row: number): number => (row === buckets ? neverTop : gridTop + (buckets - 1 - row) * cellHeight);

  const body: string[] = [
    text(8, 16, `${scenario.number}. ${scenario.title}: time from a change to its status.observedGeneration`, 'font-size="13" font-weight="bold" fill="#1f2328"'),
    rect(LEFT, gridTop, PLOT_WIDTH, buckets * cellHeight, 'fill="#f7f7f7"'),
    rect(LEFT, neverTop, PLOT_WIDTH, cellHeight, 'fill="#fbeaea"'),
    text(LEFT - 6, neverTop + 12, 'never converged', 'text-anchor="end" fill="#555555"'),
  ];
  for (let row = 0; row < buckets; row++) body.push(text(LEFT - 6, rowTop(row) + 12, bucketLabel(row), 'text-anchor="end" fill="#555555"'));
  const load = scenario.load;
  const xStart = scale.x(load.start);
  body.push(rect(xStart, gridTop - 2, scale.x(load.end) - xStart, 2, 'fill="#999999"', `load from ${formatMs(load.start)} to ${formatMs(load.end)}`));
  for (const span of scenario.spans) {
    const x1 = scale.x(span.start);
    body.push(rect(x1, neverTop, scale.x(span.end) - x1, gridBottom - neverTop, `fill="${SPAN_COLOUR}" fill-opacity="0.18"`, span.label));
  }
  for (let column = 0; column < columns; column++) {
    const from = column * binMs;
    const x1 = scale.x(from);
    const x2 = scale.x(Math.min(from + binMs, scenario.durationMs));
    for (let row = 0; row <= buckets; row++) {
      const count = counts[column]![row]!;
      if (count === 0) continue;
      const fill = row === buckets ? NEVER_COLOUR : heatColour(count, max);
      const what = row === buckets ? 'never converged' : `converged in ${bucketLabel(row)}`;
      body.push(rect(x1 + 0.5, rowTop(row) + 0.5, Math.max(x2 - x1 - 1, 0.5), cellHeight - 1, `fill="${fill}"`,
        `${formatMs(from)} – ${formatMs(from + binMs)}: ${count} ${count === 1 ? 'change' : 'changes'} ${what}`));
    }
  }
  const wx1 = scale.x(scenario.window.start);
  body.push(rect(wx1, neverTop - 2, Math.max(scale.x(scenario.window.end) - wx1, 2), gridBottom - neverTop + 4,
    `fill="none" stroke="${WINDOW_COLOUR}" stroke-width="1.5" stroke-dasharray="5,3"`));
  body.push(...drawMarkers(scenario.markers, scale, titleHeight, gridBottom));
  body.push(...drawAxis(scale, axisY, `seconds since the scenario started (when the change was sent; columns of ${binMs / 1000} s)`));
  body.push(...drawWindow(scenario.window, scale, axisY + 36));
  const steps = HEAT_COLOURS.map((colour, i) => {
    const low = Math.floor((i / HEAT_COLOURS.length) * max) + 1;
    const high = Math.max(low, Math.floor(((i + 1) / HEAT_COLOURS.length) * max));
    return { colour, label: low === high ? `${low}` : `${low}–${high}` };
  }).filter((step, i, all) => i === all.findIndex((s) => s.label === step.label));
  const items = [
    ...steps.map((step) => (x: number, y: number) => legendItem(x, y, rect(x, y, 12, 10, `fill="${step.colour}"`), step.label)),
    (x: number, y: number) => legendItem(x, y, '', 'changes per cell'),
    (x: number, y: number) => legendItem(x, y, rect(x, y, 12, 10, `fill="none" stroke="${WINDOW_COLOUR}" stroke-dasharray="5,3"`), 'event window'),
    (x: number, y: number) => legendItem(x, y, rect(x, y + 4, 12, 2, 'fill="#999999"'), 'load running'),
  ];
  const drawn = legend(legendY, items);
  body.push(...drawn.svg);
  return document(CHART_WIDTH, legendY + drawn.height + 6, `${scenario.number}. ${scenario.title}: convergence latency heatmap`, body);
}
