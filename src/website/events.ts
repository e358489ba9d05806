import { createHash } from 'node:crypto';
import { V1MicroTime, type EventsV1Event, type KubernetesObject, type V1ObjectReference } from '@kubernetes/client-node';
import type { ConditionType, Website, WebsiteCondition, WebsiteStatus } from './types.ts';

/** events.k8s.io/v1 `reportingController`: who wrote the Event. */
export const REPORTING_CONTROLLER = 'ha-operator.example.com/website';

// The API server's limits for events.k8s.io/v1 (pkg/apis/core/validation/events.go), in bytes.
const NOTE_LIMIT = 1024;
const REPORTING_INSTANCE_LIMIT = 128;
const NAME_LIMIT = 253;
const DIGEST_LENGTH = 16;

/** One thing worth telling `kubectl describe website` about. */
export interface WebsiteEvent {
  type: 'Normal' | 'Warning';
  /** CamelCase, as in status conditions: Created, Updated, Ready, NotReady, Recovered, InvalidSpec, ApplyFailed, NameTaken, RolloutStalled. */
  reason: string;
  /** What the operator did or failed to do: Create, Update, Apply, Validate, Rollout, Reconcile. */
  action: string;
  note: string;
  /** The child the event is about, if any. */
  related?: V1ObjectReference;
  /**
   * What makes this occurrence unique. It names the Event, so a reconcile that
   * repeats the occurrence (a retry after a failed status write, a pass that read
   * a cache not yet showing its predecessor's writes) gets 409 AlreadyExists
   * instead of recording it twice, while a new occurrence gets a new name.
   */
  occurrence: readonly string[];
}

/** The events.k8s.io/v1 Event that records `event` about `website`. */
export function buildEvent(website: Website, event: WebsiteEvent, now: Date, reportingInstance: string): EventsV1Event {
  const { name, namespace, uid, resourceVersion } = website.metadata;
  return {
    apiVersion: 'events.k8s.io/v1',
    kind: 'Event',
    metadata: { name: eventName(website, event.occurrence), namespace },
    // A plain Date would serialise with milliseconds, which the server rejects for MicroTime.
    eventTime: new V1MicroTime(now.getTime()),
    reportingController: REPORTING_CONTROLLER,
    reportingInstance: truncateUtf8(reportingInstance, REPORTING_INSTANCE_LIMIT, ''),
    action: event.action,
    reason: event.reason,
    type: event.type,
    note: truncateUtf8(event.note, NOTE_LIMIT, '…'),
    regarding: { apiVersion: website.apiVersion, kind: website.kind, name, namespace, uid, ...(resourceVersion ? { resourceVersion } : {}) },
    ...(event.related ? { related: event.related } : {}),
  };
}

/**
 * `<website>.<16 hex digits>`: the digest of the Website's uid and the
 * occurrence, so the same occurrence always gets the same name and different
 * ones (or a Website deleted and created again) get different names.
 */
export function eventName(website: Website, occurrence: readonly string[]): string {
  const digest = createHash('sha256').update(JSON.stringify([website.metadata.uid, ...occurrence])).digest('hex').slice(0, DIGEST_LENGTH);
  // The Website's name is a valid object name, so it only needs shortening (and no trailing '-' or '.') to leave room.
  const prefix = website.metadata.name.slice(0, NAME_LIMIT - DIGEST_LENGTH - 1).replace(/[-.]+$/, '');
  return `${prefix}.${digest}`;
}

/**
 * The event for a child the reconcile just applied, or undefined when the apply
 * changed nothing (the server returned the resourceVersion the cache held).
 * `difference` says what differed, `desiredDigest` identifies the body applied.
 */
export function childEvent(
  applied: KubernetesObject,
  cached: KubernetesObject | undefined,
  difference: string,
  desiredDigest: string,
): WebsiteEvent | undefined {
  const resourceVersion = applied.metadata?.resourceVersion;
  if (cached !== undefined && cached.metadata?.resourceVersion === resourceVersion) return undefined;
  const what = `${applied.kind ?? 'object'} ${applied.metadata?.name ?? ''}`;
  const related = objectReference(applied);
  // The uid tells a re-created child from the one before; the cached version
  // tells one repair of drift from the next; the digest tells spec changes apart.
  // A child missing from the cache only because someone removed its managed-by
  // label gets the occurrence of its creation back, so that repair is not recorded:
  // the apply's answer does not say whether it created the object.
  const occurrence = [applied.kind ?? '', applied.metadata?.name ?? '', applied.metadata?.uid ?? '',
    cached?.metadata?.resourceVersion ?? 'absent', desiredDigest];
  return cached === undefined
    ? { type: 'Normal', reason: 'Created', action: 'Create', note: `created ${what}`, related, occurrence }
    : { type: 'Normal', reason: 'Updated', action: 'Update', note: `updated ${what}: ${difference} differed from the Website's spec`, related, occurrence };
}

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

function objectReference(object: KubernetesObject): V1ObjectReference {
  const { name, namespace, uid } = object.metadata ?? {};
  return { apiVersion: object.apiVersion, kind: object.kind, name, namespace, uid };
}

/** `text` cut to at most `limit` UTF-8 bytes (the unit of the server's limits), on a character boundary. */
function truncateUtf8(text: string, limit: number, ellipsis: string): string {
  if (Buffer.byteLength(text) <= limit) return text;
  const budget = limit - Buffer.byteLength(ellipsis);
  let out = '';
  let bytes = 0;
  for (const char of text) {
    const size = Buffer.byteLength(char);
    if (bytes + size > budget) break;
    out += char;
    bytes += size;
  }
  return out + ellipsis;
}
