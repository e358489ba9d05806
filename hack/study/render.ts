/**
 * Renders the study's results (results.json) into a report: report.md,
 * report.html (the same blocks) and two SVG charts per scenario. Pure and
 * deterministic: the same results give byte-identical files, so the sample
 * report in docs/study/ can be checked against its own results.json.
 */
import { formatMs, latencyHeatmap, lanesChart, type Chart } from './charts.ts';
import { toHtml, toMarkdown, type Block, type Inline } from './markup.ts';
import { clusterMethodItems, clusterScenarioBlocks, clusterSettingsRows, clusterSummaryBlocks, onNodes } from './render-nodes.ts';
import { PHASES, type Handover, type Phase, type ScenarioResult, type Stats, type StudyResults, type Workload } from './types.ts';

export const REPORT_TITLE = 'ha-operator high-availability study';

/** The files of a report, by name (no directories), in a stable order. */
export type ReportFiles = Record<string, string>;

export function chartFiles(scenario: ScenarioResult): { lanes: string; latency: string } {
  const base = `${scenario.number}-${scenario.id.replace(/[^a-z0-9-]/gi, '-')}`;
  return { lanes: `lanes-${base}.svg`, latency: `latency-${base}.svg` };
}

export function renderReport(results: StudyResults): ReportFiles {
  const files: ReportFiles = {};
  const charts = new Map<ScenarioResult, { lanes: Chart; latency: Chart }>();
  for (const scenario of results.scenarios) {
    const lanes = lanesChart(scenario);
    const latency = latencyHeatmap(scenario);
    charts.set(scenario, { lanes, latency });
    const names = chartFiles(scenario);
    files[names.lanes] = lanes.svg;
    files[names.latency] = latency.svg;
  }
  const blocks = reportBlocks(results, charts);
  files['report.md'] = toMarkdown(blocks);
  files['report.html'] = toHtml(blocks, REPORT_TITLE);
  return files;
}

const NUMBER_WORDS = ['no', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten'];

const PHASE_LABEL: Record<Phase, string> = { steady: 'steady state (before)', event: 'during the event', after: 'after' };

function reportBlocks(results: StudyResults, charts: Map<ScenarioResult, { lanes: Chart; latency: Chart }>): Block[] {
  const env = results.environment;
  const nodes = onNodes(results);
  const processes = results.scenarios.length - nodes.length;
  const blocks: Block[] = [
    { kind: 'heading', level: 1, text: REPORT_TITLE },
    ...(processes > 0 ? [{
      kind: 'paragraph' as const,
      content: [
        'Real operator replicas (separate Node.js processes running ', { code: 'src/main.ts' }, ') against a local control plane (etcd, kube-apiserver, kube-controller-manager), '
        + `under a steady load, through six disruptions. Run by `, { code: 'make study' }, ` from ${results.startedAt} to ${results.finishedAt} (${formatMs(results.durationMs)}).`,
      ],
    }] : []),
    ...(nodes.length > 0 ? [{
      kind: 'paragraph' as const,
      content: [
        `${processes > 0 ? 'Then the operator' : 'The operator'} as pods on a local cluster of real nodes, deployed by `, { code: 'kubectl apply -k manifests/' },
        `, through ${NUMBER_WORDS[nodes.length] ?? nodes.length} disruptions dealt by the Deployment controller, the kubelets and the harness, under the same load (scenarios ${nodes.map((s) => s.number).join(', ')}; `,
        { code: 'make study-nodes' }, `, from ${env.cluster?.startedAt ?? '?'} to ${env.cluster?.finishedAt ?? '?'}).`,
      ],
    }] : []),
    {
      kind: 'table',
      head: ['setting', 'value'],
      align: ['left', 'left'],
      rows: [
        [['lease timings'], [
          { code: `LEASE_DURATION_SECONDS=${env.leaseDurationSeconds}` }, ', ', { code: `RENEW_DEADLINE_SECONDS=${env.renewDeadlineSeconds}` }, ', ',
          { code: `RETRY_PERIOD_SECONDS=${env.retryPeriodSeconds}` }, ` (${env.timingPreset === 'production' ? 'the production defaults' : `${env.timingPreset}: shortened`})`,
        ]],
        [['load'], [`${env.load.opsPerSecond} changes per second throughout each scenario, every ${ordinal(env.load.createEvery)} a new ${env.workload.kind} with ${env.workload.sample}, `
          + `the others ${env.workload.change} of an existing one; ${env.load.initialObjects} created before the replicas start`]],
        [['phases'], [`${formatMs(env.steadyMs)} under load before each event, ${formatMs(env.afterMs)} after it`]],
        [['machine'], [`${env.cpus} CPUs shared with other work, Node ${env.node}, control plane ${env.controlPlane}`]],
        [['replicas'], [{ code: 'LOG_LEVEL=debug' }, ' (one ', { code: 'write' }, ' line per fenced write), everything else at its default']],
        ...(env.cluster ? clusterSettingsRows(env.cluster) : []),
      ],
    },
    { kind: 'heading', level: 2, text: 'Results at a glance' },
    {
      kind: 'table',
      head: ['#', 'scenario', 'handover', 'nobody leading', 'out-of-term writes (audit log)', 'writes in overlapping terms (own logs)', 'convergence p95: before → during → after', 'changes lost', 'converged at the end', 'checks'],
      align: ['right', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'left'],
      rows: results.scenarios.map((s) => headlineRow(s)),
    },
    {
      kind: 'paragraph',
      content: [
        'Handover: from the cause (signal sent, proxy cut, API server restarted) until a replica logged ', { code: 'started leading' },
        '. Nobody leading: from the old leader\'s ', { code: 'stopped leading' }, ' (or its death) until then. Out-of-term writes: what the API server\'s '
        + 'audit log recorded — writes of an earlier term that committed after a later term\'s write on the same object, of all the writes made under a term (0 expected). '
        + 'Writes in overlapping terms: from the replicas\' own logs, a cross-check: '
        + 'writes by two replicas to the same keys while both were entitled to write them — 0 expected with the lease, above 0 without it (scenario 5). '
        + 'Convergence: from the load generator\'s create or update until its watch saw status.observedGeneration reach the new generation; '
        + 'before, during and after the event window (a change counts as during when it was waiting at any time inside the window).',
      ],
    },
  ];
  blocks.push(...clusterSummaryBlocks(results));
  for (const scenario of results.scenarios) blocks.push(...scenarioBlocks(scenario, charts.get(scenario)!));
  blocks.push(...methodBlocks(env.workload, nodes.length > 0));
  return blocks;
}

function ordinal(n: number): string {
  const suffix = n % 100 >= 11 && n % 100 <= 13 ? 'th' : ['th', 'st', 'nd', 'rd'][n % 10] ?? 'th';
  return `${n}${suffix}`;
}

function headlineRow(s: ScenarioResult): Inline[][] {
  const duplicateWrites = s.overlaps.reduce((sum, o) => sum + o.writes, 0);
  const keys = s.overlaps.reduce((sum, o) => sum + o.keys, 0);
  const lost = s.changes.filter((c) => c.convergedAt === null).length;
  const passed = s.checks.filter((c) => c.ok).length;
  const handovers = s.handovers;
  return [
    [String(s.number)],
    [{ link: s.title, href: `#${anchor(s)}` }],
    [s.leaderElection ? summarise(handovers, (h) => h.handoverMs) : 'no lease'],
    [s.leaderElection ? summarise(handovers, (h) => h.leaderlessMs) : 'no lease'],
    [!s.leaderElection ? 'no terms' : s.audit ? `${s.audit.outOfTerm} of ${s.audit.writes}` : 'not recorded'],
    [duplicateWrites === 0 ? '0' : `${duplicateWrites} (${keys} keys)`],
    [PHASES.map((phase) => formatMs(s.latency[phase].p95)).join(' → ')],
    [`${lost} of ${s.changes.length}`],
    [`${s.final.converged} of ${s.final.objects}`],
    [passed === s.checks.length ? `${passed}/${s.checks.length} pass` : { strong: `${s.checks.length - passed} of ${s.checks.length} FAIL` }],
  ];
}

/** One handover's value, or "max X (n shards)" for several. */
function summarise(handovers: readonly Handover[], value: (h: Handover) => number | null): string {
  const values = handovers.map(value);
  if (values.length === 0) return '–';
  if (values.some((v) => v === null)) return 'never';
  const numbers = values as number[];
  if (numbers.length === 1) return formatMs(numbers[0]!);
  if (numbers.length <= 2) return numbers.map(formatMs).join(', ');
  return `max ${formatMs(Math.max(...numbers))} (${numbers.length})`;
}

function anchor(s: ScenarioResult): string {
  return `${s.number}-${s.title}`.toLowerCase().replace(/[^\p{L}\p{N}\s-]/gu, '').trim().replace(/\s/g, '-');
}

function at(ms: number | null): string {
  return ms === null ? '–' : `+${(ms / 1000).toFixed(1)} s`;
}

function statsCells(stats: Stats): Inline[][] {
  return [[String(stats.count)], [formatMs(stats.p50)], [formatMs(stats.p95)], [formatMs(stats.max)]];
}

function scenarioBlocks(s: ScenarioResult, charts: { lanes: Chart; latency: Chart }): Block[] {
  const files = chartFiles(s);
  const failed = s.load.failedRequests;
  const blocks: Block[] = [
    { kind: 'heading', level: 2, text: `${s.number}. ${s.title}` },
    { kind: 'paragraph', content: [s.description] },
    {
      kind: 'paragraph',
      content: [
        'Namespace ', { code: s.namespace }, `, time 0 = ${s.t0}, ${formatMs(s.durationMs)} in all; `
        + `${s.changes.length} changes sent from ${at(s.load.start)} to ${at(s.load.end)}${failed > 0 ? `, ${failed} more requests failed or were skipped` : ''}; `
        + `event window ${at(s.window.start)} – ${at(s.window.end)} (${s.window.label}).`,
      ],
    },
  ];
  if (s.error) blocks.push({ kind: 'paragraph', content: [{ strong: 'The scenario did not run to its end: ' }, s.error] });
  blocks.push(
    { kind: 'image', src: files.lanes, alt: `Scenario ${s.number}, leadership lanes: who led which lease when, and writes per second`, width: charts.lanes.width, height: charts.lanes.height },
    { kind: 'image', src: files.latency, alt: `Scenario ${s.number}, convergence latency heatmap over time`, width: charts.latency.width, height: charts.latency.height },
    { kind: 'heading', level: 3, text: 'Events' },
    { kind: 'list', items: timeline(s) },
  );
  if (s.handovers.length > 0) {
    blocks.push(
      { kind: 'heading', level: 3, text: 'Handover' },
      {
        kind: 'table',
        head: ['lease', 'cause', 'at', 'led by', 'stopped leading', 'then led by', 'led after', 'first write after', 'nobody leading'],
        align: ['left', 'left', 'right', 'left', 'right', 'left', 'right', 'right', 'right'],
        rows: s.handovers.map((h) => [
          [h.lease], [h.cause], [at(h.causeAt)], [h.from ?? '–'], [at(h.fromEndedAt)], [h.to ?? 'nobody'],
          [formatMs(h.handoverMs)], [h.firstWriteAt === null ? '–' : formatMs(h.firstWriteAt - h.causeAt)], [formatMs(h.leaderlessMs)],
        ]),
      },
    );
  }
  blocks.push(...clusterScenarioBlocks(s));
  blocks.push(
    { kind: 'heading', level: 3, text: 'Latency' },
    {
      kind: 'table',
      head: ['phase', 'changes', 'convergence p50', 'p95', 'max', 'reconciles', 'reconcile p50', 'p95', 'max'],
      align: ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
      rows: PHASES.map((phase) => [[PHASE_LABEL[phase]], ...statsCells(s.latency[phase]), ...statsCells(s.reconcile[phase])]),
    },
    { kind: 'heading', level: 3, text: 'Terms and writes' },
    {
      kind: 'table',
      head: ['replica', 'lease', 'from', 'to', 'writes', 'ended'],
      align: ['left', 'left', 'right', 'right', 'right', 'left'],
      rows: s.terms.map((t) => [[t.replica], [t.lease], [at(t.start)], [at(t.end)], [String(t.writes)], [t.endReason]]),
    },
    {
      kind: 'paragraph',
      content: [
        s.audit ? `The API server recorded ${s.audit.writes} committed writes in ${s.audit.terms} terms: ${s.audit.outOfTerm} out of term, ${s.audit.lateCommits} committed after their term ended, `
          + `${s.audit.overlaps} objects written by overlapping terms, ${s.audit.conflicts} refused with 409 (a stale cache or a late write meeting its precondition). ` : '',
        `Writes logged: ${s.writes.total} (${Object.entries(s.writes.byReplica).map(([name, count]) => `${name} ${count}`).join(', ')})`
        + `${s.leaderElection ? `; outside any term of their replica: ${s.writesOutsideTerms}` : ''}. `,
        s.overlaps.length === 0 ? 'No two replicas were entitled to write the same keys at the same time.' : `${s.overlaps.length} overlapping ${s.overlaps.length === 1 ? 'term' : 'terms'}:`,
      ],
    },
  );
  if (s.overlaps.length > 0) {
    blocks.push({
      kind: 'table',
      head: ['replicas', 'lease', 'from', 'to', 'keys both wrote', 'writes to them', 'same target by the other within 1 s'],
      align: ['left', 'left', 'right', 'right', 'right', 'right', 'right'],
      rows: s.overlaps.map((o) => [[o.replicas.join(' & ')], [o.lease], [at(o.start)], [at(o.end)], [String(o.keys)], [String(o.writes)], [String(o.sameTargetWithin1s)]]),
    });
  }
  blocks.push(
    {
      kind: 'paragraph',
      content: [
        `At the end: ${s.final.objects} objects, ${s.final.converged} converged`
        + `${s.final.problems.length > 0 ? `; not converged: ${s.final.problems.join(', ')}` : ''}.`,
      ],
    },
    { kind: 'heading', level: 3, text: 'Checks' },
    { kind: 'list', items: s.checks.map((c) => [{ strong: c.ok ? 'pass' : 'FAIL' }, ` — ${c.name}: ${c.detail}`]) },
  );
  return blocks;
}

/** Markers, replica starts, readiness and exits, and terms, in time order. */
function timeline(s: ScenarioResult): Inline[][] {
  const entries: { at: number; order: number; text: string }[] = [];
  for (const r of s.replicas) {
    entries.push({ at: r.spawnedAt, order: 0, text: `replica ${r.name} (${r.role}${r.note ? `, ${r.note}` : ''}) started` });
    if (r.readyAt !== null) entries.push({ at: r.readyAt, order: 1, text: `${r.name} ready` });
    if (r.exitedAt !== null) entries.push({ at: r.exitedAt, order: 5, text: `${r.name} exited (${r.exit ?? '?'})` });
  }
  for (const m of s.markers) entries.push({ at: m.at, order: 2, text: m.label });
  for (const t of s.terms) {
    if (t.lease === '(no lease)') continue;
    entries.push({ at: t.start, order: 3, text: `${t.replica} started leading ${t.lease}` });
    if (!t.endReason.startsWith('exited') && t.endReason !== 'end of scenario') entries.push({ at: t.end, order: 4, text: `${t.replica} stopped leading ${t.lease}: ${t.endReason}` });
  }
  entries.sort((a, b) => a.at - b.at || a.order - b.order || (a.text < b.text ? -1 : a.text > b.text ? 1 : 0));
  return entries.map((e) => [{ code: at(e.at) }, ` ${e.text}`]);
}

function methodBlocks(workload: Workload, onNodes: boolean): Block[] {
  return [
    { kind: 'heading', level: 2, text: 'How it was measured' },
    {
      kind: 'list',
      items: [
        ['Every scenario has its own namespace, Lease(s) and fresh replicas (', { code: 'hack/lib/replica.ts' }, '); the control plane is shared. Times are on the one wall clock of the machine: the replicas\' own log timestamps and the harness\'s Date.now().'],
        ['Terms come from the replicas\' ', { code: 'started leading' }, ' / ', { code: 'stopped leading' }, ' lines (their ', { code: 'lease' }, ' field); a term still open ends at the replica\'s exit. Without leader election a replica\'s term runs from ', { code: 'caches synced' }, ' (its workers start) to its exit.'],
        ['Safety is judged from the API server\'s audit log (', { code: 'hack/lib/audit.ts' }, '): a term is a committed Lease write that changed its holder; every write names its replica and term in its User-Agent; per object, the committed writes in resourceVersion order must never show a write of an earlier term after one of a later term.'],
        ['Writes in the lanes and the term tables are the ', { code: 'write' }, ' debug lines the fenced writer logs before each write (key and target), a cross-check of the audit log. A write belongs to the lease of its key (FNV-1a of namespace/name mod SHARDS). Two terms overlap when two replicas held the same lease at once; the writes counted are those both replicas made, within the overlap, to keys both of them wrote.'],
        [`Convergence latency: the load generator records the generation the API server answered each create or update with; a watch on the ${workload.kind} objects (the project's Informer, reconnecting with a short backoff) records when status.observedGeneration reached it. A change counts as `, { strong: 'during the event' }, ' when it was waiting at any time inside the event window, as lost when it was never seen converged.'],
        ['Reconcile durations are the ', { code: 'durationMs' }, ' of the replicas\' ', { code: 'reconciled' }, ' lines, by the time of the line.'],
        [`At the end the load stops, the harness waits for every object to converge (up to 90 s), lists them and checks that each is converged (${workload.converged}), then stops the replicas with SIGTERM.`],
        ...(onNodes ? clusterMethodItems() : []),
      ],
    },
  ];
}
