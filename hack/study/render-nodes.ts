/**
 * The report's parts for the scenarios on real nodes (those with `cluster`
 * figures): a row of the settings table, a summary of every handover and
 * node-loss tail as the API server's audit log timed them, a section per
 * scenario with its pods, handovers and tail, and how it was measured.
 * Pure, like hack/study/render.ts, which places them.
 */
import { formatMs } from './charts.ts';
import type { Block, Inline } from './markup.ts';
import type { ClusterEnvironment, ClusterHandover, NodeLossTail, ScenarioResult, TailPod } from './types.ts';

/** b − a, or null when either is missing. */
export function between(a: number | null | undefined, b: number | null | undefined): number | null {
  return a === null || a === undefined || b === null || b === undefined ? null : b - a;
}

const span = (a: number | null | undefined, b: number | null | undefined): string => formatMs(between(a, b));
const at = (ms: number | null): string => (ms === null ? '–' : `+${(ms / 1000).toFixed(1)} s`);
/** To the millisecond, for a handover's steps (often within one tenth of a second). */
const exactly = (ms: number): string => `+${(ms / 1000).toFixed(3)} s`;

export function onNodes(results: { scenarios: readonly ScenarioResult[] }): ScenarioResult[] {
  return results.scenarios.filter((s) => s.cluster !== undefined);
}

export function clusterSettingsRows(env: ClusterEnvironment): Inline[][][] {
  return [
    [['real nodes'], [
      `${env.nodes.length} nodes (${env.nodes.join(', ')}; hack/cluster/: containerd and a kubelet each, one network namespace with no route out), `
      + `${env.nodeBinaries}, control plane ${env.controlPlane} with kube-scheduler and every controller; the operator's image built from commit ${env.commit}; `
      + `run from ${env.startedAt} to ${env.finishedAt} (${formatMs(env.durationMs)}); load average ${env.loadBefore} before, ${env.loadAfter} after`
      + `${env.concurrent.length > 0 ? `; also running at the start: ${env.concurrent.join('; ')}` : '; no other measuring work running at the start'}`,
    ]],
    [['operator on the nodes'], [env.deployment]],
    [['pods beside the load'], [env.samples]],
  ];
}

function rowOf(s: ScenarioResult, h: ClusterHandover): Inline[][] {
  return [
    [String(s.number)],
    [h.cause],
    [`${h.from ?? '?'} → ${h.to ?? 'nobody'}${h.byEvidence ? ' (pod status)' : ''}`],
    [span(h.podDeletedAt, h.sigtermAt)],
    [span(h.sigtermAt, h.releasedAt)],
    [span(h.causeAt, h.kubeletReportAt)],
    [formatMs(h.noHolderMs)],
    [span(h.causeAt, h.acquiredAt)],
    [span(h.acquiredAt, h.firstWriteAt)],
    [span(h.causeAt, h.firstWriteAt)],
    [`${formatMs(h.waiting.p95)} / ${formatMs(h.waiting.max)} (${h.waiting.count})`],
  ];
}

const HANDOVER_HEAD = ['#', 'cause', 'from → to', 'pod deleted → SIGTERM', 'SIGTERM → released', 'cause → kubelet\'s report', 'no holder',
  'cause → acquired', 'acquired → first write', 'cause → first write', 'changes waiting: p95 / max (n)'];
const HANDOVER_ALIGN = ['right', 'left', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'] as const;

function operatorPod(tail: NodeLossTail): TailPod | undefined {
  return tail.pods.find((p) => p.workload === 'operator');
}

/** The summary after the headline table: every handover, every node-loss tail. */
export function clusterSummaryBlocks(results: { scenarios: readonly ScenarioResult[]; environment: { cluster?: ClusterEnvironment } }): Block[] {
  const scenarios = onNodes(results);
  if (scenarios.length === 0) return [];
  const tails = scenarios.filter((s) => s.cluster!.tail !== undefined);
  const blocks: Block[] = [
    { kind: 'heading', level: 2, text: 'On real nodes: what the audit log shows' },
    {
      kind: 'paragraph',
      content: [
        `Scenarios ${scenarios.map((s) => s.number).join(', ')} ran on a local cluster of real nodes: the operator as `, { code: 'kubectl apply -k manifests/' },
        ' deploys it, its disruptions dealt by the Deployment controller and the kubelets (or by the harness: a SIGKILL, a node lost). Each handover, timed by '
        + 'the API server\'s audit log (its stageTimestamps; the operator\'s own log for when SIGTERM reached it): ',
        { strong: 'no holder' }, ' is from the old holder\'s release (or, when it did not release, its last renewal) until the successor\'s first committed Lease write; '
        + 'the first write is the new term\'s first committed write in the scenario\'s namespace; the changes waiting are those pending at any time from the cause until that write.',
      ],
    },
    {
      kind: 'table',
      head: HANDOVER_HEAD,
      align: [...HANDOVER_ALIGN],
      rows: scenarios.flatMap((s) => s.cluster!.handovers.map((h) => rowOf(s, h))),
    },
  ];
  if (tails.length > 0) {
    blocks.push(
      {
        kind: 'paragraph',
        content: ['A lost node\'s tail: from the loss until the node controller marked it Unknown, tainted it ', { code: 'node.kubernetes.io/unreachable:NoExecute' },
          ', evicted the operator\'s pod there once its toleration ran out, and the Deployment\'s replacement was scheduled and Ready on the other node — '
          + 'until then one replica runs, and the next failure has no warm standby.'],
      },
      {
        kind: 'table',
        head: ['#', 'tolerationSeconds', 'lost → acquired', '→ node Unknown', '→ tainted', '→ operator pod evicted', '→ replacement scheduled', '→ replacement Ready: no standby until then'],
        align: ['right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
        rows: tails.map((s) => {
          const tail = s.cluster!.tail!;
          const pod = operatorPod(tail);
          const acquired = s.cluster!.handovers[0]?.acquiredAt ?? null;
          return [
            [String(s.number)], [pod?.tolerationSeconds === null || pod === undefined ? '–' : `${pod.tolerationSeconds} s`],
            [span(tail.lostAt, acquired)], [span(tail.lostAt, tail.unknownAt)], [span(tail.lostAt, tail.taintedAt)], [span(tail.lostAt, pod?.evictedAt)],
            [span(tail.lostAt, pod?.scheduledAt)], [span(tail.lostAt, pod?.readyAt)],
          ];
        }),
      },
    );
  }
  return blocks;
}

/** A scenario's own part: its pods, its handovers on the audit log's timeline, its tail pod by pod. */
export function clusterScenarioBlocks(s: ScenarioResult): Block[] {
  const cluster = s.cluster;
  if (!cluster) return [];
  const blocks: Block[] = [
    { kind: 'heading', level: 3, text: 'On the nodes' },
    {
      kind: 'paragraph',
      content: ['The Deployment: manifests/base with ', cluster.deployment.join('; '), '. The replicas are its container instances:'],
    },
    {
      kind: 'table',
      head: ['replica', 'pod', 'node', 'restarts', 'holder identity'],
      align: ['left', 'left', 'left', 'right', 'left'],
      rows: cluster.pods.map((p) => [[p.replica], [{ code: p.pod }], [p.node], [String(p.restartCount)], [p.identity ? { code: p.identity } : '–']]),
    },
  ];
  for (const h of cluster.handovers) {
    const events: [number | null, string][] = [
      [h.causeAt, `${h.cause}: ${h.from ?? '?'} (${h.fromIdentity})`],
      [h.podDeletedAt, 'its pod deleted (audit)'],
      [h.sigtermAt, 'SIGTERM reached it (its shutting down line)'],
      [h.kubeletReportAt, 'the kubelet\'s pod status shows its process ended (audit)'],
      [h.lastRenewalAt, 'its last renewal: the last committed Lease write that named it (audit)'],
      [h.releasedAt, 'it released the Lease (audit)'],
      [h.acquiredAt, `${h.to ?? '?'} acquired it${h.byEvidence ? ', from the pod\'s status' : ''} (audit)`],
      [h.firstWriteAt, `the new term's first committed write (audit)`],
    ];
    blocks.push({
      kind: 'list',
      items: events.filter(([time]) => time !== null).sort((a, b) => a[0]! - b[0]!).map(([time, text]) => [{ code: exactly(time!) }, ` ${text}`]),
    });
  }
  const tail = cluster.tail;
  if (tail) {
    blocks.push(
      {
        kind: 'paragraph',
        content: [`${tail.node} lost at ${at(tail.lostAt)}; Ready Unknown at ${at(tail.unknownAt)} (${span(tail.lostAt, tail.unknownAt)} later), `
          + `tainted unreachable:NoExecute at ${at(tail.taintedAt)}. Its pods:`],
      },
      {
        kind: 'table',
        head: ['pod', 'of', 'tolerationSeconds', 'evicted', 'replacement', 'on', 'created', 'scheduled', 'Ready'],
        align: ['left', 'left', 'right', 'right', 'left', 'left', 'right', 'right', 'right'],
        rows: tail.pods.map((p) => [[{ code: p.pod }], [p.workload], [p.tolerationSeconds === null ? '–' : String(p.tolerationSeconds)], [at(p.evictedAt)],
          [p.replacement ? { code: p.replacement } : 'not by the end'], [p.replacementNode ?? '–'], [at(p.createdAt)], [at(p.scheduledAt)], [at(p.readyAt)]]),
      },
    );
  }
  return blocks;
}

export function clusterMethodItems(): Inline[][] {
  return [
    ['On real nodes (', { code: 'hack/study/nodes.ts' }, '): one local cluster for all those scenarios, ', { code: 'kubectl apply -k manifests/' },
      ' once, each scenario\'s change to the Deployment one patch whose rollout is awaited (', { code: 'kubectl rollout status' },
      ', then two Ready pods on two nodes, none terminating) before its time 0. A replica is a container instance, its lines followed with ', { code: 'kubectl logs -f' },
      '; lines from before time 0 are dropped but for a term still open then, which starts at 0. Its process starts at its first line, ends at its last line on a clean exit, '
      + 'else when the watch showed it ended or the harness ended it.'],
    ['The load and its namespace as elsewhere, plus ', { code: 'samples/' }, ' with the kind\'s patch for these nodes (their pods run); the namespace is deleted after the scenario.'],
    ['Handovers and tails from the audit log: the Lease\'s committed writes in resourceVersion order, the delete of a pod, the kubelet\'s pods/status write whose pod '
      + 'shows the holder\'s process ended (as the standbys judge it), the node controller\'s nodes/status write with Ready Unknown and its taint, a replacement\'s create '
      + '(the next pod of the same ReplicaSet), its binding and its first Ready status. A lost node is brought back after its scenario.'],
  ];
}

