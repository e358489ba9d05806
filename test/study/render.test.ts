import { expect } from 'chai';
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { NO_LEASE, latencyByPhase } from '../../hack/study/analyze.ts';
import {
  HEAT_COLOURS,
  OVERLAP_COLOUR,
  REPLICA_COLOURS,
  bucketLabel,
  bucketOf,
  formatMs,
  heatColour,
  lanesChart,
  latencyHeatmap,
  tickStep,
} from '../../hack/study/charts.ts';
import { escapeMarkdown, escapeXml, safeHref, toMarkdown } from '../../hack/study/markup.ts';
import { chartFiles, renderReport } from '../../hack/study/render.ts';
import type { Change, Phase, ScenarioResult, StudyResults, Term } from '../../hack/study/types.ts';

const SAMPLE_DIR = resolve(import.meta.dirname, '..', '..', 'docs', 'study');
const HOSTILE = '<script>alert("x")</script> & \'q\'';

function change(name: string, sentAt: number, latencyMs: number | null, phase: Phase): Change {
  return { name, op: 'update', generation: 2, sentAt, answeredAt: sentAt + 5, convergedAt: latencyMs === null ? null : sentAt + latencyMs, phase };
}

function scenario(overrides: Partial<ScenarioResult> & Pick<ScenarioResult, 'number' | 'id' | 'title'>): ScenarioResult {
  const durationMs = overrides.durationMs ?? 60_000;
  const changes = overrides.changes ?? [];
  const base: Omit<ScenarioResult, 'number' | 'id' | 'title'> = {
    description: 'what it does',
    namespace: `study-${overrides.number}`,
    t0: '2026-01-01T00:00:00.000Z',
    durationMs,
    leaderElection: true,
    shards: 1,
    leases: ['ha-operator'],
    replicas: [
      { name: 'a', role: 'leader', spawnedAt: 500, readyAt: 1_500, exitedAt: 20_000, exit: 'SIGKILL', leaderElection: true },
      { name: 'b', role: 'standby', spawnedAt: 1_000, readyAt: 2_000, exitedAt: null, exit: null, leaderElection: true },
    ],
    terms: [],
    markers: [],
    spans: [],
    window: { start: 20_000, end: 35_000, label: 'crash to new leader' },
    load: { start: 1_000, end: 55_000, failedRequests: 0 },
    handovers: [],
    overlaps: [],
    writesOutsideTerms: 0,
    writes: { total: 3, byReplica: { a: 2, b: 1 }, bins: { binMs: 1_000, byReplica: { a: binsWith(durationMs, { 3: 2 }), b: binsWith(durationMs, { 40: 1 }) } } },
    duplicatesExpected: false,
    changes,
    latency: latencyByPhase(changes),
    reconcile: { steady: { count: 2, p50: 10, p95: 30, max: 30 }, event: { count: 0, p50: null, p95: null, max: null }, after: { count: 1, p50: 12, p95: 12, max: 12 } },
    final: { objects: 14, converged: 14, problems: [] },
    checks: [{ name: 'no writes by two replicas in overlapping terms', ok: true, detail: '0 writes' }],
  };
  return { ...base, ...overrides };
}

function binsWith(durationMs: number, counts: Record<number, number>): number[] {
  return Array.from({ length: Math.ceil(durationMs / 1_000) }, (_, i) => counts[i] ?? 0);
}

const term = (replica: string, lease: string, start: number, end: number, writes = 0): Term => ({ replica, lease, start, end, endReason: 'stopped', writes });

/** Three scenarios: a crash with a hostile role and marker, a run without leader election with an overlap, and shards. */
function fixture(): StudyResults {
  const crash = scenario({
    number: 2,
    id: 'crash',
    title: 'Crash *of* the | leader <b>',
    replicas: [
      { name: 'a', role: HOSTILE, spawnedAt: 500, readyAt: 1_500, exitedAt: 20_000, exit: 'SIGKILL', leaderElection: true },
      { name: 'b', role: 'standby', spawnedAt: 1_000, readyAt: 2_000, exitedAt: null, exit: null, leaderElection: true },
    ],
    terms: [term('a', 'ha-operator', 2_000, 20_000, 10), term('b', 'ha-operator', 35_000, 60_000, 4)],
    markers: [{ at: 20_000, label: 'SIGKILL a & "friends"' }, { at: 59_500, label: 'load stopped at the right edge' }],
    spans: [{ start: 20_000, end: 30_000, label: 'API server down' }],
    handovers: [{ lease: 'ha-operator', cause: 'SIGKILL a', causeAt: 20_000, from: 'a', fromEndedAt: 20_000, to: 'b', leadAt: 35_000, firstWriteAt: 35_100, handoverMs: 15_000, leaderlessMs: 15_000 }],
    changes: [
      change('site-1', 1_000, 150, 'steady'),
      change('site-2', 1_200, 150, 'steady'),
      change('site-3', 1_500, 150, 'steady'),
      change('site-4', 21_000, 14_000, 'event'),
      change('site-5', 30_000, null, 'event'),
    ],
  });
  const noLease = scenario({
    number: 5,
    id: 'no-leader-election',
    title: 'Without leader election',
    leaderElection: false,
    leases: [NO_LEASE],
    duplicatesExpected: true,
    terms: [term('a', NO_LEASE, 1_500, 30_000, 50), term('b', NO_LEASE, 10_000, 60_000, 60)],
    overlaps: [{ lease: NO_LEASE, replicas: ['a', 'b'], start: 10_000, end: 30_000, keys: 7, writes: 42, sameTargetWithin1s: 30 }],
    checks: [{ name: 'duplicate writes', ok: true, detail: '42 writes' }, { name: 'something else', ok: false, detail: 'broken' }],
    changes: [change('site-1', 12_000, 300, 'event')],
  });
  const shards = scenario({
    number: 6,
    id: 'shards',
    title: 'Shards',
    shards: 6,
    leases: Array.from({ length: 6 }, (_, i) => `ha-operator-${i}`),
    terms: [term('a', 'ha-operator-0', 2_000, 60_000), term('a', 'ha-operator-3', 2_000, 60_000), term('b', 'ha-operator-5', 3_000, 60_000)],
  });
  return {
    schemaVersion: 2,
    startedAt: '2026-01-01T00:00:00.000Z',
    finishedAt: '2026-01-01T00:03:00.000Z',
    durationMs: 180_000,
    environment: {
      node: 'v24.0.0', controlPlane: 'kubernetes-v1.36.3-etcd-v3.6.8', cpus: 2, timingPreset: 'production',
      leaseDurationSeconds: 15, renewDeadlineSeconds: 10, retryPeriodSeconds: 2,
      load: { opsPerSecond: 3, createEvery: 4, initialObjects: 12 },
      workload: { kind: 'Widget', sample: 'a one-line spec.text', change: 'a spec.text update (merge patch)', converged: 'status.observedGeneration = metadata.generation' },
      steadyMs: 20_000, afterMs: 20_000,
    },
    scenarios: [crash, noLease, shards],
  };
}

/** The first element of `svg` whose <title> starts with `title`, as its opening tag's attributes. */
function elementTitled(svg: string, title: string): Record<string, string> {
  const match = new RegExp(`<(rect|path) ([^>]*)><title>${escapeRegExp(escapeXml(title))}`).exec(svg);
  expect(match, `no element titled "${title}"`).to.not.equal(null);
  return Object.fromEntries([...match![2]!.matchAll(/([\w-]+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * A strict well-formedness check of the XML the charts are made of: tags nest
 * and close, attribute values are quoted and hold no '<', text holds no raw
 * '<' and only the five predefined entities or numeric ones.
 */
function assertWellFormedXml(xml: string, what: string): void {
  const stack: string[] = [];
  const tag = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/y;
  let position = 0;
  while (position < xml.length) {
    const next = xml.indexOf('<', position);
    const textEnd = next === -1 ? xml.length : next;
    const content = xml.slice(position, textEnd);
    expect(content.replace(/&(amp|lt|gt|quot|apos|#\d+);/g, ''), `${what}: stray '&' or '>' in text "${content}"`).to.not.match(/[&]/);
    if (next === -1) break;
    tag.lastIndex = next;
    const m = tag.exec(xml);
    expect(m, `${what}: malformed tag at ${next}: ${xml.slice(next, next + 80)}`).to.not.equal(null);
    const [, closing, name, , selfClosing] = m!;
    if (closing) expect(stack.pop(), `${what}: </${name}> closes the wrong element`).to.equal(name);
    else if (!selfClosing) stack.push(name!);
    position = tag.lastIndex;
  }
  expect(stack, `${what}: unclosed elements`).to.deep.equal([]);
}

describe('study report rendering', () => {
  it('formats durations, ticks and latency buckets', () => {
    expect([formatMs(0), formatMs(999.4), formatMs(1_000), formatMs(12_345), formatMs(null)]).to.deep.equal(['0 ms', '999 ms', '1.0 s', '12.3 s', '–']);
    expect([tickStep(10_000), tickStep(60_000), tickStep(100_000), tickStep(600_000)]).to.deep.equal([1_000, 5_000, 10_000, 60_000]);
    expect([bucketOf(0), bucketOf(99), bucketOf(100), bucketOf(150), bucketOf(30_000)]).to.deep.equal([0, 0, 1, 1, 9]);
    expect([bucketLabel(0), bucketLabel(1), bucketLabel(9)]).to.deep.equal(['< 100 ms', '100 ms – 200 ms', '≥ 25.6 s']);
    expect([heatColour(1, 7), heatColour(7, 7), heatColour(3, 3)]).to.deep.equal([HEAT_COLOURS[0], HEAT_COLOURS.at(-1), HEAT_COLOURS.at(-1)]);
  });

  it('draws a lane per replica with a bar per term at its time, in the replica\'s colour', () => {
    const s = fixture().scenarios[0]!;
    const { svg, width } = lanesChart(s);
    expect(width).to.equal(960);
    // The plot spans x 150 … 936 for 60 s.
    const a = elementTitled(svg, 'a leads ha-operator 2.0 s – 20.0 s: 10 writes');
    expect([a.x, a.width, a.fill]).to.deep.equal(['176.2', '235.8', REPLICA_COLOURS[0]]);
    const b = elementTitled(svg, 'b leads ha-operator 35.0 s – 60.0 s: 4 writes');
    expect([b.x, b.width, b.fill]).to.deep.equal(['608.5', '327.5', REPLICA_COLOURS[1]]);
    expect(Number(b.y)).to.be.greaterThan(Number(a.y));
    // The process's life, its exit, writes per second, the outage span, the marker.
    elementTitled(svg, 'a: process from 500 ms, ready at 1.5 s, exited at 20.0 s (SIGKILL)');
    elementTitled(svg, 'a exited at 20.0 s: SIGKILL');
    expect(elementTitled(svg, 'a: 2 writes in 3.0 s – 4.0 s').fill).to.equal(REPLICA_COLOURS[0]);
    elementTitled(svg, 'API server down: 20.0 s – 30.0 s');
    expect(svg).to.include('>SIGKILL a &amp; &quot;friends&quot;</text>');
    expect(svg).to.include('text-anchor="end" fill="#333333">load stopped at the right edge</text>');
    expect(svg).to.include('event window: crash to new leader (15.0 s)');
    expect(svg, 'no overlap in this scenario').to.not.include(`stroke="${OVERLAP_COLOUR}" stroke-width="1.5"`);
  });

  it('draws one row per shard lease, and overlapping terms in red', () => {
    const [, noLease, shards] = fixture().scenarios;
    const sharded = lanesChart(shards!).svg;
    for (let i = 0; i < 6; i++) expect(sharded.split(`>shard ${i}</text>`)).to.have.length(3, `shard ${i} labelled in both lanes`);
    const s0 = elementTitled(sharded, 'a leads ha-operator-0');
    const s3 = elementTitled(sharded, 'a leads ha-operator-3');
    expect(Number(s3.y) - Number(s0.y)).to.equal(27);

    const overlapping = lanesChart(noLease!).svg;
    const overlap = elementTitled(overlapping, 'a and b both entitled to write (no lease) keys for 20.0 s: 42 writes to 7 keys both wrote');
    expect(overlap.stroke).to.equal(OVERLAP_COLOUR);
    expect(elementTitled(overlapping, 'a works without a lease').fill).to.equal(REPLICA_COLOURS[0]);
  });

  it('draws the latency heatmap: a cell per time bin and latency bucket, shaded by count, never-converged in red', () => {
    const { svg } = latencyHeatmap(fixture().scenarios[0]!);
    const dense = elementTitled(svg, '0 ms – 2.0 s: 3 changes converged in 100 ms – 200 ms');
    expect(dense.fill).to.equal(HEAT_COLOURS.at(-1));
    const slow = elementTitled(svg, '20.0 s – 22.0 s: 1 change converged in 12.8 s – 25.6 s');
    expect(slow.fill).to.equal(heatColour(1, 3));
    expect(Number(slow.y)).to.be.lessThan(Number(dense.y), 'slower rows are higher');
    expect(elementTitled(svg, '30.0 s – 32.0 s: 1 change never converged').fill).to.equal('#d62728');
    expect(svg.match(/<rect [^>]*><title>[^<]*(changes?) (converged|never)/g)).to.have.length(3);
    for (const label of ['< 100 ms', '100 ms – 200 ms', '≥ 25.6 s', 'never converged']) expect(svg).to.include(`>${escapeXml(label)}</text>`);
  });

  it('escapes every text: in the SVGs, the Markdown and the HTML', () => {
    const files = renderReport(fixture());
    const lanes = files[chartFiles(fixture().scenarios[0]!).lanes]!;
    expect(lanes).to.include('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39;');
    for (const [name, content] of Object.entries(files)) {
      expect(content, name).to.not.include('<script');
      expect(content, name).to.not.include('<b>');
      if (name.endsWith('.svg')) assertWellFormedXml(content, name);
    }
    expect(files['report.md']).to.include('[Crash \\*of\\* the \\| leader &lt;b&gt;](#2-crash-of-the--leader-b)');
    expect(files['report.md']).to.include('## 2. Crash \\*of\\* the \\| leader &lt;b&gt;');
    expect(files['report.html']).to.include('<h2 id="2-crash-of-the--leader-b">2. Crash *of* the | leader &lt;b&gt;</h2>');
  });

  it('escapes Markdown and HTML text in isolation', () => {
    expect(escapeXml(`<a href="x">'&'</a>`)).to.equal('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
    expect(escapeMarkdown('a|b *c* _d_ [e](f) `g` <h> & ~i~ \\')).to.equal('a\\|b \\*c\\* \\_d\\_ \\[e\\](f) \\`g\\` &lt;h&gt; &amp; \\~i\\~ \\\\');
    const paragraph = (text: string): string => toMarkdown([{ kind: 'paragraph', content: [text] }]);
    expect(paragraph('# not a heading')).to.equal('\\# not a heading\n');
    expect(paragraph('- not a list')).to.equal('\\- not a list\n');
    expect(paragraph('12. not a list')).to.equal('12\\. not a list\n');
    expect(paragraph('12.5 s is text')).to.equal('12.5 s is text\n');
    expect(toMarkdown([{ kind: 'list', items: [['1. nested?']] }])).to.equal('- 1\\. nested?\n');
    expect(toMarkdown([{ kind: 'paragraph', content: [{ code: 'a `b` c' }] }])).to.equal('``a `b` c``\n');
    expect(safeHref('javascript:alert(1)')).to.equal('#');
    expect(safeHref('lanes-1-x.svg')).to.equal('lanes-1-x.svg');
  });

  it('links every chart from the report and summarises each scenario in the headline table', () => {
    const results = fixture();
    const files = renderReport(results);
    const svgs = Object.keys(files).filter((f) => f.endsWith('.svg')).sort();
    expect(svgs).to.deep.equal(results.scenarios.flatMap((s) => Object.values(chartFiles(s))).sort());
    const linked = [...files['report.md']!.matchAll(/!\[[^\]]*\]\(([^)]+)\)/g)].map((m) => m[1]).sort();
    expect(linked).to.deep.equal(svgs);
    const html = files['report.html']!;
    expect([...html.matchAll(/<img src="([^"]+)"/g)].map((m) => m[1]).sort()).to.deep.equal(svgs);
    expect(files['report.md']).to.include('| 2 | [Crash \\*of\\* the \\| leader &lt;b&gt;](#2-crash-of-the--leader-b) | 15.0 s | 15.0 s | not recorded | 0 | 150 ms → 14.0 s → – | 1 of 5 | 14 of 14 | 1/1 pass |');
    expect(files['report.md']).to.include('| 5 | [Without leader election](#5-without-leader-election) | no lease | no lease | no terms | 42 (7 keys) |');
    expect(files['report.md']).to.include('**1 of 2 FAIL**');
    expect(files['report.md']).to.include('- **FAIL** — something else: broken');
  });

  it('shows what the audit log recorded, in the headline table and the scenario', () => {
    const results = fixture();
    const scenario = results.scenarios.find((s) => s.leaderElection)!;
    scenario.audit = { terms: 3, writes: 120, outOfTerm: 0, lateCommits: 2, overlaps: 0, conflicts: 7, unattributed: 0, examples: [] };
    const report = renderReport(results)['report.md']!;
    expect(report).to.match(new RegExp(`\\| ${scenario.number} \\| \\[[^\\]]+\\]\\([^)]+\\) \\| [^|]+ \\| [^|]+ \\| 0 of 120 \\|`));
    expect(report).to.include('The API server recorded 120 committed writes in 3 terms: 0 out of term, 2 committed after their term ended, 0 objects written by overlapping terms, 7 refused with 409');
  });

  it('is deterministic: the same results give the same files, byte for byte', () => {
    const first = renderReport(fixture());
    const second = renderReport(JSON.parse(JSON.stringify(fixture())) as StudyResults);
    expect(Object.keys(second)).to.deep.equal(Object.keys(first));
    for (const name of Object.keys(first)) expect(second[name], name).to.equal(first[name]);
    for (const [name, content] of Object.entries(first)) expect(content, name).to.not.match(/NaN|undefined|Infinity|\[object /);
  });

  it('reproduces the committed sample report in docs/study from its results.json', () => {
    let committed: string[];
    try {
      committed = readdirSync(SAMPLE_DIR).filter((f) => f !== 'results.json').sort();
    } catch {
      throw new Error(`no sample report in ${SAMPLE_DIR}: run \`make study\` and copy its folder there`);
    }
    const results = JSON.parse(readFileSync(join(SAMPLE_DIR, 'results.json'), 'utf8')) as StudyResults;
    const files = renderReport(results);
    expect(committed, 'files in docs/study').to.deep.equal(Object.keys(files).sort());
    for (const [name, content] of Object.entries(files)) {
      expect(readFileSync(join(SAMPLE_DIR, name), 'utf8') === content,
        `docs/study/${name} is not what the renderer makes of docs/study/results.json: run \`node hack/study/study.ts --render docs/study\``).to.be.true;
    }
  });
});
