import { createHash } from 'node:crypto';
import { V1MicroTime, type EventsV1Event, type KubernetesObject, type V1ObjectReference } from '@kubernetes/client-node';

/**
 * events.k8s.io/v1 Events as a controller should write them: named after
 * the occurrence they record, so a repeated reconcile gets 409 AlreadyExists
 * instead of a duplicate (the sink, events.ts, counts it as such), and cut to
 * the API server's limits instead of being refused.
 */

// The API server's limits for events.k8s.io/v1 (pkg/apis/core/validation/events.go), in bytes.
const NOTE_LIMIT = 1024;
const REPORTING_INSTANCE_LIMIT = 128;
const NAME_LIMIT = 253;
const DIGEST_LENGTH = 16;

/** One thing worth telling `kubectl describe` about. */
export interface RecordedEvent {
  type: 'Normal' | 'Warning';
  /** CamelCase, as in status conditions: Created, Updated, Ready, … */
  reason: string;
  /** What the controller did or failed to do: Create, Update, Apply, Reconcile, … */
  action: string;
  note: string;
  /** Another object the event is about (a child), if any. */
  related?: V1ObjectReference;
  /**
   * What makes this occurrence unique. It names the Event, so a reconcile that
   * repeats the occurrence (a retry after a failed status write, a pass that read
   * a cache not yet showing its predecessor's writes) gets 409 AlreadyExists
   * instead of recording it twice, while a new occurrence gets a new name.
   */
  occurrence: readonly string[];
}

/** Who writes the Events: the controller's name (`example.com/kind`) and this replica. */
export interface EventSource {
  reportingController: string;
  reportingInstance: string;
}

/** The events.k8s.io/v1 Event that records `event` about `regarding`, at `now`. */
export function buildEvent(regarding: KubernetesObject, event: RecordedEvent, now: Date, source: EventSource): EventsV1Event {
  const { namespace, resourceVersion } = regarding.metadata ?? {};
  return {
    apiVersion: 'events.k8s.io/v1',
    kind: 'Event',
    metadata: { name: eventName(regarding, event.occurrence), namespace },
    // A plain Date would serialise with milliseconds, which the server rejects for MicroTime.
    eventTime: new V1MicroTime(now.getTime()),
    reportingController: source.reportingController,
    reportingInstance: truncateUtf8(source.reportingInstance, REPORTING_INSTANCE_LIMIT, ''),
    action: event.action,
    reason: event.reason,
    type: event.type,
    note: truncateUtf8(event.note, NOTE_LIMIT, '…'),
    regarding: { ...objectReference(regarding), ...(resourceVersion ? { resourceVersion } : {}) },
    ...(event.related ? { related: event.related } : {}),
  };
}

/**
 * `<name>.<16 hex digits>`: the digest of the object's uid and the
 * occurrence, so the same occurrence always gets the same name and different
 * ones (or an object deleted and created again) get different names.
 */
export function eventName(regarding: KubernetesObject, occurrence: readonly string[]): string {
  const { name = '', uid } = regarding.metadata ?? {};
  const digest = createHash('sha256').update(JSON.stringify([uid, ...occurrence])).digest('hex').slice(0, DIGEST_LENGTH);
  // The object's name is a valid object name, so it only needs shortening (and no trailing '-' or '.') to leave room.
  const prefix = name.slice(0, NAME_LIMIT - DIGEST_LENGTH - 1).replace(/[-.]+$/, '');
  return `${prefix}.${digest}`;
}

export function objectReference(object: KubernetesObject): V1ObjectReference {
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
