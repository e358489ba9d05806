import { expect } from 'chai';
import type { V1Deployment, V1DeploymentStatus } from '@kubernetes/client-node';
import { desiredStatus, statusEqual, type ReconcileOutcome } from '../../src/website/status.ts';
import type { Website, WebsiteCondition, WebsiteStatus } from '../../src/website/types.ts';

const applied: ReconcileOutcome = { reason: 'Applied' };
const t0 = new Date('2026-01-01T00:00:00.250Z');
const t1 = new Date('2026-01-01T00:05:00Z');

function website(replicas = 3, status?: WebsiteStatus): Website {
  return {
    apiVersion: 'ha-operator.example.com/v1alpha1',
    kind: 'Website',
    metadata: { name: 'shop', namespace: 'prod', uid: 'uid-1', generation: 4 },
    spec: { replicas, image: 'nginxinc/nginx-unprivileged:1.27-alpine', html: '<p>shop</p>', serviceType: 'ClusterIP' },
    ...(status && { status }),
  };
}

/** A Deployment whose controller has caught up with generation 2 and reports `status`. */
function deployment(status: V1DeploymentStatus, generation = 2): V1Deployment {
  return { metadata: { name: 'shop', generation }, status: { observedGeneration: 2, ...status } };
}

const rolledOut = deployment({ replicas: 3, updatedReplicas: 3, readyReplicas: 3, availableReplicas: 3 });

/** type → [status, reason] of each condition, for compact expectations. */
function summary(status: WebsiteStatus): Record<string, [string, string]> {
  return Object.fromEntries((status.conditions ?? []).map((c) => [c.type, [c.status, c.reason]]));
}

/** The summary of a Website that cannot reach its spec, for `reason`. */
function failing(reason: string): Record<string, [string, string]> {
  return { Ready: ['False', reason], Progressing: ['False', reason], Degraded: ['True', reason] };
}

function condition(status: WebsiteStatus, type: string): WebsiteCondition {
  const found = status.conditions?.find((c) => c.type === type);
  if (found === undefined) throw new Error(`no ${type} condition`);
  return found;
}

describe('desiredStatus', () => {
  it('is Ready once every replica is updated and available', () => {
    const status = desiredStatus(website(), rolledOut, applied, t0);
    expect(summary(status)).to.deep.equal({
      Ready: ['True', 'Available'],
      Progressing: ['False', 'RolloutComplete'],
      Degraded: ['False', 'AsExpected'],
    });
    expect(condition(status, 'Ready').message).to.equal('3 of 3 replicas available');
  });

  it('reports the generation, the ready replicas and the in-cluster URL', () => {
    const status = desiredStatus(website(), deployment({ readyReplicas: 2 }), applied, t0);
    expect(status).to.include({ observedGeneration: 4, readyReplicas: 2, url: 'http://shop.prod.svc.cluster.local:80' });
    for (const c of status.conditions ?? []) expect(c.observedGeneration).to.equal(4);
  });

  it('lists the conditions in a fixed order', () => {
    const status = desiredStatus(website(), rolledOut, applied, t0);
    expect(status.conditions?.map((c) => c.type)).to.deep.equal(['Ready', 'Progressing', 'Degraded']);
  });

  it('writes transition times as metav1.Time does: UTC, whole seconds', () => {
    const status = desiredStatus(website(), rolledOut, applied, t0);
    expect(condition(status, 'Ready').lastTransitionTime).to.equal('2026-01-01T00:00:00Z');
  });

  it('is Ready with zero replicas, and says so', () => {
    const status = desiredStatus(website(0), deployment({}), applied, t0);
    expect(summary(status)['Ready']).to.deep.equal(['True', 'ScaledToZero']);
    expect(status.readyReplicas).to.equal(0);
  });

  const rollouts: [string, V1Deployment | undefined, string][] = [
    ['the Deployment does not exist yet', undefined, 'waiting for Deployment shop to be created'],
    [
      'the Deployment controller has not seen the new spec',
      deployment({ replicas: 3, updatedReplicas: 3, availableReplicas: 3 }, 3),
      'waiting for Deployment shop to observe generation 3',
    ],
    ['replicas are still being updated', deployment({ replicas: 4, updatedReplicas: 1 }), '1 of 3 replicas updated'],
    [
      'old replicas are still terminating',
      deployment({ replicas: 5, updatedReplicas: 3, availableReplicas: 3 }),
      '2 old replicas pending termination',
    ],
    [
      'updated replicas are not yet available',
      deployment({ replicas: 3, updatedReplicas: 3, availableReplicas: 1 }),
      '1 of 3 updated replicas available',
    ],
  ];
  for (const [situation, observed, message] of rollouts) {
    it(`is Progressing, not Ready, while ${situation}`, () => {
      const status = desiredStatus(website(), observed, applied, t0);
      expect(summary(status)).to.deep.equal({
        Ready: ['False', 'RollingOut'],
        Progressing: ['True', 'RollingOut'],
        Degraded: ['False', 'AsExpected'],
      });
      expect(condition(status, 'Progressing').message).to.equal(message);
    });
  }

  it('is Degraded when the rollout exceeds its progress deadline', () => {
    const stalled = deployment({
      replicas: 4,
      updatedReplicas: 1,
      conditions: [
        {
          type: 'Progressing',
          status: 'False',
          reason: 'ProgressDeadlineExceeded',
          message: 'ReplicaSet "shop-7d9f" has timed out progressing.',
        },
      ],
    });
    const status = desiredStatus(website(), stalled, applied, t0);
    expect(summary(status)).to.deep.equal(failing('RolloutStalled'));
    expect(condition(status, 'Degraded').message).to.equal('Deployment shop: ReplicaSet "shop-7d9f" has timed out progressing.');
  });

  it('is Degraded with the message when the spec is invalid, and has no URL', () => {
    const outcome: ReconcileOutcome = { reason: 'InvalidSpec', message: 'spec.image "nginx:" is not an image reference' };
    const status = desiredStatus(website(), undefined, outcome, t0);
    expect(summary(status)).to.deep.equal(failing('InvalidSpec'));
    for (const c of status.conditions ?? []) expect(c.message).to.equal(outcome.message);
    expect(status).not.to.have.property('url');
  });

  it('is Degraded with the message when the apply failed, keeping what still runs', () => {
    const outcome: ReconcileOutcome = { reason: 'ApplyFailed', message: 'apply Deployment prod/shop: 403 Forbidden' };
    const status = desiredStatus(website(), rolledOut, outcome, t0);
    expect(summary(status)).to.deep.equal(failing('ApplyFailed'));
    expect(condition(status, 'Degraded').message).to.equal(outcome.message);
    expect(status).to.include({ readyReplicas: 3, url: 'http://shop.prod.svc.cluster.local:80' });
  });

  it('cuts a message to the schema’s 32768 characters', () => {
    const status = desiredStatus(website(), undefined, { reason: 'ApplyFailed', message: 'x'.repeat(40000) }, t0);
    expect(condition(status, 'Degraded').message).to.have.length(32768);
  });

  it('keeps every transition time when nothing changed, so the status is identical', () => {
    const first = desiredStatus(website(), rolledOut, applied, t0);
    const second = desiredStatus(website(3, first), rolledOut, applied, t1);
    expect(second).to.deep.equal(first);
    expect(JSON.stringify(second)).to.equal(JSON.stringify(first));
  });

  it('keeps the transition time of a condition whose reason or message changed but not its status', () => {
    const first = desiredStatus(website(), deployment({ replicas: 3, updatedReplicas: 1 }), applied, t0);
    const second = desiredStatus(website(3, first), deployment({ replicas: 3, updatedReplicas: 2 }), applied, t1);
    expect(condition(second, 'Progressing').message).to.equal('2 of 3 replicas updated');
    expect(condition(second, 'Progressing').lastTransitionTime).to.equal('2026-01-01T00:00:00Z');
  });

  it('moves the transition time of exactly the conditions whose status changed', () => {
    const rolling = desiredStatus(website(), deployment({ replicas: 3, updatedReplicas: 1 }), applied, t0);
    const ready = desiredStatus(website(3, rolling), rolledOut, applied, t1);
    expect(condition(ready, 'Ready').lastTransitionTime).to.equal('2026-01-01T00:05:00Z');
    expect(condition(ready, 'Progressing').lastTransitionTime).to.equal('2026-01-01T00:05:00Z');
    expect(condition(ready, 'Degraded').lastTransitionTime).to.equal('2026-01-01T00:00:00Z');
  });

  it('returns the same status for the same input', () => {
    const previous = desiredStatus(website(), deployment({ replicas: 3, updatedReplicas: 1 }), applied, t0);
    const input = website(3, previous);
    expect(desiredStatus(input, rolledOut, applied, t1)).to.deep.equal(desiredStatus(input, rolledOut, applied, t1));
  });
});

describe('statusEqual', () => {
  const status = desiredStatus(website(), rolledOut, applied, t0);

  it('holds for a status and its JSON round trip', () => {
    expect(statusEqual(status, JSON.parse(JSON.stringify(status)) as WebsiteStatus)).to.equal(true);
  });

  it('ignores the order of the conditions', () => {
    expect(statusEqual(status, { ...status, conditions: [...(status.conditions ?? [])].reverse() })).to.equal(true);
  });

  it('compares transition times as instants', () => {
    const conditions = status.conditions?.map((c) => ({ ...c, lastTransitionTime: '2026-01-01T00:00:00.000+00:00' }));
    expect(statusEqual(status, { ...status, conditions })).to.equal(true);
  });

  it('treats an undefined field as absent', () => {
    expect(statusEqual({ url: undefined }, {})).to.equal(true);
    expect(statusEqual(undefined, {})).to.equal(true);
  });

  it('sees a change in any field', () => {
    const conditionChanges: Partial<WebsiteCondition>[] = [
      { status: 'False' },
      { reason: 'Other' },
      { message: 'other' },
      { lastTransitionTime: '2026-01-02T00:00:00Z' },
      { observedGeneration: 9 },
    ];
    const changed: WebsiteStatus[] = [
      { ...status, observedGeneration: 5 },
      { ...status, readyReplicas: 2 },
      { ...status, url: 'http://shop.prod.svc.cluster.local:8080' },
      { ...status, conditions: status.conditions?.slice(1) },
      ...conditionChanges.map((change) => ({
        ...status,
        conditions: status.conditions?.map((c, i) => (i === 0 ? { ...c, ...change } : c)),
      })),
    ];
    for (const other of changed) expect(statusEqual(status, other), JSON.stringify(other)).to.equal(false);
  });

  it('sees a status that is absent', () => {
    expect(statusEqual(status, undefined)).to.equal(false);
  });
});
