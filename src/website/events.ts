import type { RecordedEvent } from '../runtime/event-builder.ts';
import type { ConditionType, WebsiteCondition, WebsiteStatus } from './types.ts';

/** events.k8s.io/v1 `reportingController`: who wrote the Event. */
export const REPORTING_CONTROLLER = 'ha-operator.example.com/website';

/**
 * One thing worth telling `kubectl describe website` about. Reasons: Created,
 * Updated, Ready, NotReady, Recovered, InvalidSpec, ApplyFailed, NameTaken,
 * RolloutStalled; actions: Create, Update, Apply, Validate, Rollout, Reconcile.
 */
export type WebsiteEvent = RecordedEvent;

const FAILURE_ACTIONS: Record<string, string> = { InvalidSpec: 'Validate', ApplyFailed: 'Apply', NameTaken: 'Create', RolloutStalled: 'Rollout' };

/**
 * The event, if any, for how the conditions change from `previous` to `next`:
 * a Warning when the Website becomes Degraded or is Degraded for a new reason
 * or message (InvalidSpec, ApplyFailed, RolloutStalled); otherwise a Normal
 * event when Ready flips (Ready, NotReady) or Degraded clears (Recovered). A
 * new Website that is not Ready yet is no news. Repeating a pass with the same
 * previous status yields the same occurrence, hence the same Event name.
 */
export function conditionEvents(previous: WebsiteStatus | undefined, next: WebsiteStatus): WebsiteEvent[] {
  const before = (type: ConditionType): WebsiteCondition | undefined => previous?.conditions?.find((c) => c.type === type);
  const after = (type: ConditionType): WebsiteCondition | undefined => next.conditions?.find((c) => c.type === type);
  const degraded = after('Degraded');
  const wasDegraded = before('Degraded');
  const ready = after('Ready');
  const wasReady = before('Ready');
  const occurrence = (type: ConditionType, was: WebsiteCondition | undefined, now: WebsiteCondition): string[] =>
    [type, ...identity(was), ...identity(now)];

  if (degraded?.status === 'True') {
    if (wasDegraded?.status === 'True' && wasDegraded.reason === degraded.reason && wasDegraded.message === degraded.message) return [];
    return [{
      type: 'Warning',
      reason: degraded.reason,
      action: FAILURE_ACTIONS[degraded.reason] ?? 'Reconcile',
      note: degraded.message,
      occurrence: occurrence('Degraded', wasDegraded, degraded),
    }];
  }
  if (ready !== undefined && ready.status !== wasReady?.status && (wasReady !== undefined || ready.status === 'True')) {
    return [{
      type: 'Normal',
      reason: ready.status === 'True' ? 'Ready' : 'NotReady',
      action: 'Reconcile',
      note: `${ready.reason}: ${ready.message}`,
      occurrence: occurrence('Ready', wasReady, ready),
    }];
  }
  if (wasDegraded?.status === 'True' && degraded !== undefined && ready !== undefined) {
    return [{
      type: 'Normal',
      reason: 'Recovered',
      action: 'Reconcile',
      note: `no longer ${wasDegraded.reason}; ${ready.reason}: ${ready.message}`,
      occurrence: occurrence('Degraded', wasDegraded, degraded),
    }];
  }
  return [];
}

function identity(condition: WebsiteCondition | undefined): string[] {
  if (condition === undefined) return ['absent'];
  return [condition.status, condition.reason, condition.message, condition.lastTransitionTime];
}
