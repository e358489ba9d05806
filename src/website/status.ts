import type { V1Deployment } from '@kubernetes/client-node';
import { conditionsEqual, nextConditions, type ConditionState } from '../runtime/conditions.ts';
import { websiteUrl, type InvalidSpec } from './desired.ts';
import type { ConditionType, Website, WebsiteStatus } from './types.ts';

/** What this reconcile did with the Website's spec. */
export type ReconcileOutcome = { reason: 'Applied' } | InvalidSpec | { reason: 'ApplyFailed' | 'NameTaken'; message: string };

type Assessment = Omit<ConditionState, 'type'>;

type Assessments = Record<ConditionType, Assessment>;

const CONDITION_TYPES: readonly ConditionType[] = ['Ready', 'Progressing', 'Degraded'];

const NOT_DEGRADED: Assessment = { status: 'False', reason: 'AsExpected', message: 'nothing is wrong' };

/**
 * The status the Website should have after a reconcile. `deployment` is best the
 * one the apply returned: its generation is then the one just applied, so a
 * rollout that the Deployment controller has not started yet still counts as one.
 * `now` is written only into conditions whose status changes, so a converged
 * Website gets the same status on every pass and the write can be skipped.
 */
export function desiredStatus(
  website: Website,
  deployment: V1Deployment | undefined,
  outcome: ReconcileOutcome,
  now: Date,
): WebsiteStatus {
  const assessments = assess(website, deployment, outcome);
  const generation = website.metadata.generation;
  return {
    observedGeneration: generation,
    readyReplicas: deployment?.status?.readyReplicas ?? 0,
    // An invalid spec may name no Service at all.
    ...(outcome.reason === 'InvalidSpec' ? {} : { url: websiteUrl(website) }),
    conditions: nextConditions(website.status?.conditions, CONDITION_TYPES.map((type) => ({ type, ...assessments[type] })), generation, now),
  };
}

/**
 * Whether two statuses say the same: absent and undefined fields alike, conditions
 * in any order, transition times compared as instants.
 */
export function statusEqual(a: WebsiteStatus | undefined, b: WebsiteStatus | undefined): boolean {
  return canonical(a) === canonical(b) && conditionsEqual(a?.conditions, b?.conditions);
}

function assess(website: Website, deployment: V1Deployment | undefined, outcome: ReconcileOutcome): Assessments {
  switch (outcome.reason) {
    case 'InvalidSpec':
    case 'ApplyFailed':
    case 'NameTaken':
      return failed(outcome.reason, outcome.message);
    case 'Applied':
      return assessRollout(website, deployment);
  }
}

function assessRollout(website: Website, deployment: V1Deployment | undefined): Assessments {
  const name = website.metadata.name;
  if (deployment === undefined) return rollingOut(`waiting for Deployment ${name} to be created`);

  const generation = deployment.metadata?.generation ?? 0;
  const { observedGeneration = 0, replicas = 0, updatedReplicas = 0, availableReplicas = 0 } = deployment.status ?? {};
  // Until the Deployment controller has seen the latest spec, its counts describe the previous one.
  if (observedGeneration < generation) {
    return rollingOut(`waiting for Deployment ${name} to observe generation ${generation}`);
  }
  const stalled = deployment.status?.conditions?.find(
    (condition) => condition.type === 'Progressing' && condition.reason === 'ProgressDeadlineExceeded',
  );
  if (stalled !== undefined) return failed('RolloutStalled', `Deployment ${name}: ${stalled.message ?? 'progress deadline exceeded'}`);

  // The same steps as `kubectl rollout status`.
  const wanted = website.spec.replicas;
  if (updatedReplicas < wanted) return rollingOut(`${updatedReplicas} of ${wanted} replicas updated`);
  if (replicas > updatedReplicas) return rollingOut(`${replicas - updatedReplicas} old replicas pending termination`);
  if (availableReplicas < wanted) return rollingOut(`${availableReplicas} of ${wanted} updated replicas available`);

  return {
    Ready:
      wanted === 0
        ? { status: 'True', reason: 'ScaledToZero', message: 'spec.replicas is 0: no pod serves the page' }
        : { status: 'True', reason: 'Available', message: `${wanted} of ${wanted} replicas available` },
    Progressing: { status: 'False', reason: 'RolloutComplete', message: `Deployment ${name} has rolled out` },
    Degraded: NOT_DEGRADED,
  };
}

function rollingOut(message: string): Assessments {
  return {
    Ready: { status: 'False', reason: 'RollingOut', message },
    Progressing: { status: 'True', reason: 'RollingOut', message },
    Degraded: NOT_DEGRADED,
  };
}

function failed(reason: string, message: string): Assessments {
  return {
    Ready: { status: 'False', reason, message },
    Progressing: { status: 'False', reason, message },
    Degraded: { status: 'True', reason, message },
  };
}

function canonical(status: WebsiteStatus | undefined): string {
  return JSON.stringify([status?.observedGeneration, status?.readyReplicas, status?.url]);
}
