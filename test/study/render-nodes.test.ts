import { expect } from 'chai';
import { latencyByPhase } from '../../hack/study/analyze.ts';
import { renderReport } from '../../hack/study/render.ts';
import { between } from '../../hack/study/render-nodes.ts';
import type { ClusterHandover, ScenarioResult, Stats, StudyResults } from '../../hack/study/types.ts';

const NONE: Stats = { count: 0, p50: null, p95: null, max: null };

function handover(overrides: Partial<ClusterHandover>): ClusterHandover {
  return {
    cause: 'SIGKILL', causeAt: 20_000, from: 'x2k8q', to: 'q7w9z', fromIdentity: 'ha-operator-6c-x2k8q-0a1b2c3d', toIdentity: 'ha-operator-6c-q7w9z-4e5f6a7b',
    podDeletedAt: null, sigtermAt: null, kubeletReportAt: 20_900, lastRenewalAt: 19_000, releasedAt: null, acquiredAt: 21_100, byEvidence: true,
    firstWriteAt: 21_300, noHolderMs: 2_100, waiting: { count: 3, p50: 900, p95: 1_400, max: 1_400 }, ...overrides,
  };
}

function scenario(number: number, title: string, cluster: ScenarioResult['cluster']): ScenarioResult {
  return {
    id: `nodes-${number}`, number, title, description: 'on real nodes', namespace: `study-${number}`, t0: '2026-01-01T00:00:00.000Z', durationMs: 60_000,
    leaderElection: true, shards: 1, leases: ['ha-operator'],
    replicas: [
      { name: 'x2k8q', role: 'node-1', spawnedAt: 0, readyAt: 0, exitedAt: 20_000, exit: 'SIGKILL', leaderElection: true },
      { name: 'q7w9z', role: 'node-2', spawnedAt: 0, readyAt: 0, exitedAt: null, exit: null, leaderElection: true },
    ],
    terms: [{ replica: 'x2k8q', lease: 'ha-operator', start: 0, end: 20_000, endReason: 'exited (SIGKILL)', writes: 40 }],
    markers: [{ at: 20_000, label: 'SIGKILL x2k8q' }], spans: [], window: { start: 20_000, end: 21_100, label: 'crash to new leader' },
    load: { start: 0, end: 50_000, failedRequests: 0 },
    handovers: [{ lease: 'ha-operator', cause: 'SIGKILL x2k8q', causeAt: 20_000, from: 'x2k8q', fromEndedAt: 20_000, to: 'q7w9z', leadAt: 21_100, firstWriteAt: 21_300, handoverMs: 1_100, leaderlessMs: 1_100 }],
    overlaps: [], writesOutsideTerms: 0, writes: { total: 40, byReplica: { x2k8q: 40, q7w9z: 0 }, bins: { binMs: 1_000, byReplica: { x2k8q: new Array<number>(60).fill(1), q7w9z: new Array<number>(60).fill(0) } } },
    duplicatesExpected: false, changes: [], latency: latencyByPhase([]), reconcile: { steady: NONE, event: NONE, after: NONE },
    final: { objects: 16, converged: 16, problems: [] }, checks: [], cluster,
  };
}

function fixture(): StudyResults {
  const crash = scenario(8, 'Real nodes: SIGKILL', {
    deployment: ['LOG_LEVEL=debug'],
    pods: [{ replica: 'x2k8q', pod: 'ha-operator-6c-x2k8q', node: 'node-1', restartCount: 0, identity: 'ha-operator-6c-x2k8q-0a1b2c3d' },
      { replica: 'q7w9z', pod: 'ha-operator-6c-q7w9z', node: 'node-2', restartCount: 0, identity: null }],
    handovers: [handover({})],
  });
  const loss = scenario(10, 'Real nodes: node lost <b>', {
    deployment: ['LOG_LEVEL=debug', 'tolerations … tolerationSeconds 30'],
    pods: [],
    handovers: [handover({ cause: 'node lost', kubeletReportAt: null, byEvidence: false, acquiredAt: 34_000, noHolderMs: 15_000 })],
    tail: {
      node: 'node-1', lostAt: 20_000, unknownAt: 70_000, taintedAt: 70_100,
      pods: [
        { pod: 'ha-operator-6c-x2k8q', workload: 'operator', tolerationSeconds: 30, evictedAt: 100_200, replacement: 'ha-operator-6c-n3m4b', replacementNode: 'node-2', createdAt: 100_210, scheduledAt: 100_250, readyAt: 106_000 },
        { pod: 'team-page-5d-aaaaa', workload: 'Website team-page', tolerationSeconds: 300, evictedAt: null, replacement: null, replacementNode: null, createdAt: null, scheduledAt: null, readyAt: null },
      ],
    },
  });
  return {
    schemaVersion: 3, startedAt: '2026-01-01T00:00:00.000Z', finishedAt: '2026-01-01T00:20:00.000Z', durationMs: 1_200_000,
    environment: {
      node: 'v24.0.0', controlPlane: 'kubernetes-v1.36.3-etcd-v3.6.8', cpus: 2, timingPreset: 'production', leaseDurationSeconds: 15, renewDeadlineSeconds: 10, retryPeriodSeconds: 2,
      load: { opsPerSecond: 3, createEvery: 4, initialObjects: 12 },
      workload: { kind: 'Website', sample: 'a page', change: 'a page update', converged: 'observed' }, steadyMs: 20_000, afterMs: 20_000,
      cluster: {
        startedAt: '2026-01-01T00:00:00.000Z', finishedAt: '2026-01-01T00:20:00.000Z', durationMs: 1_200_000, commit: 'abc1234', nodes: ['node-1', 'node-2'],
        nodeBinaries: 'kubernetes-v1.36.3-containerd-v2.4.2', controlPlane: 'kubernetes-v1.36.3-etcd-v3.6.8', deployment: 'kubectl apply -k manifests/',
        samples: 'samples/*.yaml', loadBefore: '0.50 0.40 0.30', loadAfter: '1.50 1.40 1.30', concurrent: [],
      },
    },
    scenarios: [crash, loss],
  };
}

describe('study report: the scenarios on real nodes', () => {
  it('subtracts times that are known, and only those', () => {
    expect([between(1_000, 3_500), between(null, 3_500), between(1_000, undefined)]).to.deep.equal([2_500, null, null]);
  });

  it('summarises every handover and the node-loss tail as the audit log timed them', () => {
    const report = renderReport(fixture())['report.md']!;
    expect(report).to.include('## On real nodes: what the audit log shows');
    // cause, from → to, pod deleted → SIGTERM, SIGTERM → released, → kubelet's report, no holder, → acquired, → first write, cause → first write, waiting.
    expect(report).to.include('| 8 | SIGKILL | x2k8q → q7w9z (pod status) | – | – | 900 ms | 2.1 s | 1.1 s | 200 ms | 1.3 s | 1.4 s / 1.4 s (3) |');
    // tolerationSeconds, lost → acquired, → Unknown, → tainted, → evicted, → scheduled, → Ready.
    expect(report).to.include('| 10 | 30 s | 14.0 s | 50.0 s | 50.1 s | 80.2 s | 80.3 s | 86.0 s |');
    expect(report).to.include('| `team-page-5d-aaaaa` | Website team-page | 300 | – | not by the end |');
    expect(report).to.include('real nodes | 2 nodes (node-1, node-2;');
    expect(report).to.include('- `+20.900 s` the kubelet\'s pod status shows its process ended (audit)');
    expect(report).to.include('### On the nodes');
    expect(report).to.include('Real nodes: node lost &lt;b&gt;');
  });

  it('leaves a report without scenarios on real nodes as it was', () => {
    const results = fixture();
    results.scenarios = [];
    delete results.environment.cluster;
    const report = renderReport(results)['report.md']!;
    expect(report).to.not.include('real nodes');
    expect(report).to.not.include('On the nodes');
  });
});
