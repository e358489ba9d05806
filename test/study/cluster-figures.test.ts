import { expect } from 'chai';
import type { LogRecord } from '../../hack/study/analyze.ts';
import {
  auditHandover,
  auditTail,
  clipToScenario,
  kubeletReportAt,
  mergePatch,
  podDeletedAt,
  replicaName,
  waitingDuring,
  type ClusterAuditEvent,
  type LostPod,
} from '../../hack/study/cluster-figures.ts';
import { HOLDER_ANNOTATIONS } from '../../src/runtime/holder.ts';
import type { Change } from '../../hack/study/types.ts';

const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const iso = (ms: number): string => new Date(T0 + ms).toISOString().replace('Z', '123Z');
let rv = 100;

/** A committed Lease write of `holder` at `ms`, by the pod of `by`. */
function leaseWrite(ms: number, holder: string, by: string, started = 0): ClusterAuditEvent {
  return {
    auditID: `l${rv}`, stage: 'ResponseComplete', verb: 'update', userAgent: `ha-operator/0.1.0 (${by})`,
    objectRef: { resource: 'leases', namespace: 'ha-operator', name: 'ha-operator', apiGroup: 'coordination.k8s.io' },
    responseStatus: { code: 200 },
    responseObject: {
      metadata: {
        name: 'ha-operator', resourceVersion: String(rv++),
        ...(holder === '' ? {} : {
          annotations: {
            [HOLDER_ANNOTATIONS.identity]: holder, [HOLDER_ANNOTATIONS.startedAt]: new Date(T0 + started).toISOString(),
            [HOLDER_ANNOTATIONS.pod]: `ha-operator/${by}`, [HOLDER_ANNOTATIONS.podUid]: `uid-${by}`, [HOLDER_ANNOTATIONS.container]: 'operator',
          },
        }),
      },
      spec: { holderIdentity: holder },
    },
    stageTimestamp: iso(ms),
  };
}

/** A committed write by the replica in `pod` in a term of the lease, to an object in `namespace`. */
function termWrite(ms: number, pod: string, namespace = 'study', code = 200): ClusterAuditEvent {
  return {
    auditID: `w${rv}`, stage: 'ResponseComplete', verb: 'patch', userAgent: `ha-operator/0.1.0 (${pod}) term/ha-operator@120`,
    objectRef: { resource: 'configmaps', namespace, name: 'one-content' }, responseStatus: { code },
    responseObject: { metadata: { name: 'one-content', resourceVersion: String(rv++) } }, stageTimestamp: iso(ms),
  };
}

function podEvent(ms: number, verb: string, name: string, extra: Partial<ClusterAuditEvent> = {}, subresource?: string): ClusterAuditEvent {
  return {
    auditID: `p${rv++}`, stage: 'ResponseComplete', verb, objectRef: { resource: 'pods', namespace: 'ha-operator', name, ...(subresource ? { subresource } : {}) },
    responseStatus: { code: verb === 'create' ? 201 : 200 }, stageTimestamp: iso(ms), ...extra,
  };
}

function change(sentAt: number, convergedAt: number | null): Change {
  return { name: 'x', op: 'update', generation: 2, sentAt, answeredAt: sentAt + 5, convergedAt, phase: 'event' };
}

describe('study on real nodes: figures from the audit log', () => {
  it('names a container instance by the last part of its pod name and its restart', () => {
    expect(replicaName('ha-operator-7d9c5b6f4-x2k8q', 0)).to.equal('x2k8q');
    expect(replicaName('ha-operator-7d9c5b6f4-x2k8q', 2)).to.equal('x2k8q#2');
    expect(replicaName('solo', 0)).to.equal('solo');
  });

  it('clips log records to the scenario, keeping from 0 a term that was open then', () => {
    const records: LogRecord[] = [
      { replica: 'a', at: -90_000, message: 'started leading', lease: 'ha-operator' },
      { replica: 'a', at: -5_000, message: 'write', key: 'old/x' },
      { replica: 'b', at: -80_000, message: 'started leading', lease: 'ha-operator' },
      { replica: 'b', at: -70_000, message: 'stopped leading', lease: 'ha-operator' },
      { replica: 'a', at: 1_000, message: 'write', key: 'study/x' },
      { replica: 'a', at: 3_000, message: 'stopped leading', lease: 'ha-operator' },
    ];
    expect(clipToScenario(records)).to.deep.equal([
      { replica: 'a', at: 0, message: 'started leading', lease: 'ha-operator' },
      { replica: 'a', at: 1_000, message: 'write', key: 'study/x' },
      { replica: 'a', at: 3_000, message: 'stopped leading', lease: 'ha-operator' },
    ]);
  });

  it('takes the changes that waited at any time in a span', () => {
    const changes = [change(0, 500), change(900, 4_000), change(2_000, 2_600), change(5_000, 5_200), change(1_500, null)];
    // Waiting in [1 000, 3 000]: the second and the third; the one never converged is left out.
    expect(waitingDuring(changes, 1_000, 3_000)).to.deep.equal({ count: 2, p50: 600, p95: 3_100, max: 3_100 });
  });

  it('times a handover by release: the last renewal, the release, the acquisition and the new term\'s first write', () => {
    const events = [
      leaseWrite(1_000, 'pod-a-11111111', 'pod-a'),
      leaseWrite(3_000, 'pod-a-11111111', 'pod-a'),
      termWrite(3_500, 'pod-a'),
      leaseWrite(4_000, '', 'pod-a'),
      leaseWrite(4_020, 'pod-b-22222222', 'pod-b'),
      termWrite(4_100, 'pod-b', 'elsewhere'),
      termWrite(4_150, 'pod-b', 'study', 409),
      termWrite(4_200, 'pod-b'),
      leaseWrite(6_000, 'pod-b-22222222', 'pod-b'),
    ];
    const h = auditHandover(events, { namespace: 'ha-operator', name: 'ha-operator' }, 'pod-a-11111111', 'study');
    expect([h.lastRenewalAt, h.releasedAt, h.acquiredAt, h.firstWriteAt].map((ms) => ms! - T0)).to.deep.equal([3_000, 4_000, 4_020, 4_200]);
    expect(h.toIdentity).to.equal('pod-b-22222222');
    expect(h.holder?.pod?.name).to.equal('pod-a');
  });

  it('times a takeover without a release, and the kubelet\'s report that the holder\'s process ended', () => {
    const events = [
      leaseWrite(1_000, 'pod-a-11111111', 'pod-a', -60_000),
      podEvent(2_500, 'patch', 'pod-a', { responseObject: { metadata: { uid: 'uid-pod-a' }, status: { containerStatuses: [{ name: 'operator', state: { running: { startedAt: iso(-60_000) } } }] } } }, 'status'),
      podEvent(3_200, 'patch', 'pod-a', {
        responseObject: { metadata: { uid: 'uid-pod-a' }, status: { containerStatuses: [{ name: 'operator', state: { terminated: { finishedAt: iso(2_000), reason: 'Error', exitCode: 137 } } }] } },
      }, 'status'),
      leaseWrite(3_900, 'pod-b-22222222', 'pod-b'),
    ];
    const h = auditHandover(events, { namespace: 'ha-operator', name: 'ha-operator' }, 'pod-a-11111111', 'study');
    expect([h.lastRenewalAt! - T0, h.releasedAt, h.acquiredAt! - T0, h.firstWriteAt]).to.deep.equal([1_000, null, 3_900, null]);
    expect(kubeletReportAt(events, h.holder, T0 + 2_000)! - T0).to.equal(3_200);
    expect(kubeletReportAt(events, undefined, T0)).to.equal(null);
    expect(auditHandover(events, { namespace: 'ha-operator', name: 'ha-operator' }, 'nobody', 'study').acquiredAt).to.equal(null);
  });

  it('follows a lost node\'s tail: Unknown, taint, each eviction and the replacement of the same owner', () => {
    const node = (ms: number, subresource: string | undefined, responseObject: ClusterAuditEvent['responseObject']): ClusterAuditEvent => ({
      auditID: `n${rv++}`, stage: 'ResponseComplete', verb: 'patch', objectRef: { resource: 'nodes', name: 'node-1', ...(subresource ? { subresource } : {}) },
      responseStatus: { code: 200 }, stageTimestamp: iso(ms), responseObject,
    });
    const created = (ms: number, name: string, owner: string): ClusterAuditEvent =>
      podEvent(ms, 'create', 'ignored', { objectRef: { resource: 'pods', namespace: 'ha-operator' }, responseObject: { metadata: { name, ownerReferences: [{ kind: 'ReplicaSet', name: owner }] } } });
    const events = [
      node(-1_000, 'status', { status: { conditions: [{ type: 'Ready', status: 'True' }] } }),
      node(50_000, 'status', { status: { conditions: [{ type: 'Ready', status: 'Unknown' }] } }),
      node(50_100, undefined, { spec: { taints: [{ key: 'node.kubernetes.io/unreachable', effect: 'NoSchedule' }] } }),
      node(50_200, undefined, { spec: { taints: [{ key: 'node.kubernetes.io/unreachable', effect: 'NoExecute' }] } }),
      podEvent(80_300, 'delete', 'op-old'),
      podEvent(80_310, 'delete', 'web-old-1'),
      created(80_320, 'web-new-1', 'web-rs'),
      created(80_330, 'op-new', 'op-rs'),
      podEvent(80_400, 'create', 'op-new', { requestObject: { target: { name: 'node-2' } } }, 'binding'),
      podEvent(81_000, 'patch', 'op-new', { responseObject: { status: { conditions: [{ type: 'Ready', status: 'False' }] } } }, 'status'),
      podEvent(84_000, 'patch', 'op-new', { responseObject: { status: { conditions: [{ type: 'Ready', status: 'True' }] } } }, 'status'),
    ];
    const pods: LostPod[] = [
      { namespace: 'ha-operator', name: 'op-old', owner: 'op-rs', workload: 'operator', tolerationSeconds: 30 },
      { namespace: 'ha-operator', name: 'web-old-1', owner: 'web-rs', workload: 'Website one', tolerationSeconds: 30 },
      { namespace: 'ha-operator', name: 'web-old-2', owner: 'web-rs', workload: 'Website one', tolerationSeconds: 300 },
    ];
    const tail = auditTail(events, 'node-1', T0, pods);
    expect([tail.unknownAt! - T0, tail.taintedAt! - T0]).to.deep.equal([50_000, 50_200]);
    const rel = (ms: number | null): number | null => (ms === null ? null : ms - T0);
    expect(tail.pods.map((p) => [p.pod, rel(p.evictedAt), p.replacement, p.replacementNode, rel(p.createdAt), rel(p.scheduledAt), rel(p.readyAt)])).to.deep.equal([
      ['op-old', 80_300, 'op-new', 'node-2', 80_330, 80_400, 84_000],
      ['web-old-1', 80_310, 'web-new-1', null, 80_320, null, null],
      ['web-old-2', null, null, null, null, null, null],
    ]);
    expect(podDeletedAt(events, 'ha-operator', 'op-old', T0 + 90_000)).to.equal(null);
  });

  it('merges a patch as the API server does a JSON merge patch', () => {
    const target = { metadata: { name: 'a', labels: { x: '1' } }, spec: { image: 'nginx', replicas: 2, list: [1, 2] } };
    expect(mergePatch(target, { metadata: { namespace: 'n', labels: { x: null } }, spec: { image: 'web', list: [3] } })).to.deep.equal({
      metadata: { name: 'a', labels: {}, namespace: 'n' }, spec: { image: 'web', replicas: 2, list: [3] },
    });
    expect(target.spec.image, 'the target is not changed').to.equal('nginx');
    expect(mergePatch({ a: 1 }, 'x')).to.equal('x');
  });
});
