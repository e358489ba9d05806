import type { EventsV1Event, KubernetesObject } from '@kubernetes/client-node';
import { ensureChild, staleCache, type Cache, type ChildWriter, type ObjectRef } from '../runtime/children.ts';
import type { Clock } from '../runtime/clock.ts';
import { conditionsEqual } from '../runtime/conditions.ts';
import type { Reconcile, ReconcileContext } from '../runtime/controller.ts';
import { NotLeaderError, ReconcileError } from '../runtime/errors.ts';
import { buildEvent, type RecordedEvent } from '../runtime/event-builder.ts';
import { failureSummary, isStatus } from '../runtime/kube.ts';
import type { Logger } from '../runtime/logging.ts';
import type { ObjectTarget } from '../runtime/writer.ts';
import { desiredChild, desiredStatus, type Outcome } from './desired.ts';
import { __KIND___API_VERSION, __KIND___GROUP, __KIND___KIND, type __Kind__ } from './types.ts';

/** events.k8s.io/v1 `reportingController`: who wrote the Event. */
export const REPORTING_CONTROLLER = `${__KIND___GROUP}/__kind__`;

/** What the reconcile may write: the runtime's FencedWriter has this shape. */
export interface __Kind__Writer extends ChildWriter {
  applyStatus(target: ObjectTarget, status: unknown, resourceVersion?: string): Promise<void>;
}

/**
 * Everything a __Kind__ reconcile uses, injected: the caches it reads, a fenced
 * writer per pass (the only way it writes: every call checks the write gate
 * and the pass's AbortSignal), the event sink and the clock.
 */
export interface __Kind__Context {
  caches: { __plural__: Cache<__Kind__>; children: Cache<KubernetesObject> };
  writerFor(key: string, signal: AbortSignal, logger: Logger): __Kind__Writer;
  /** One object from the API server: whose a name is that a create found taken. */
  read(ref: ObjectRef, signal: AbortSignal): Promise<KubernetesObject | undefined>;
  recordEvent(key: string, event: EventsV1Event): void;
  clock: Pick<Clock, 'wallNow'>;
  /** events.k8s.io `reportingInstance`: the pod name. */
  reportingInstance: string;
}

export function makeReconcile(context: __Kind__Context): Reconcile {
  return (key, pass) => reconcile__Kind__(context, key, pass);
}

/**
 * Brings the __ChildKind__ of the __Kind__ at `key` to what its spec asks for
 * and records how that went in its status. Reads only the caches; writes the
 * child only when its cached copy differs (runtime/children.ts: never to an
 * object the __Kind__ does not control), the status only when it changed. A
 * refused apply or a name taken is recorded (Degraded, one Warning) and then
 * thrown, so the controller retries with backoff.
 */
async function reconcile__Kind__(context: __Kind__Context, key: string, { signal, logger }: ReconcileContext): Promise<void> {
  const object = context.caches.__plural__.get(key);
  // Deleted: its __ChildKind__ goes by ownerReference garbage collection. Being deleted: nothing to apply.
  if (object === undefined || object.metadata.deletionTimestamp !== undefined) return;
  const writer = context.writerFor(key, signal, logger);
  const record = (event: RecordedEvent): void => context.recordEvent(key, buildEvent(object, event, context.clock.wallNow(), {
    reportingController: REPORTING_CONTROLLER, reportingInstance: context.reportingInstance,
  }));

  let outcome: Outcome = { reason: 'Applied' };
  let failure: ReconcileError | undefined;
  try {
    const read = (ref: ObjectRef, s: AbortSignal): Promise<KubernetesObject | undefined> => context.read(ref, s);
    const child = await ensureChild({ writer, read, signal }, object, desiredChild(object), context.caches.children);
    if (child.event) record(child.event);
  } catch (error) {
    if (!(error instanceof ReconcileError) || (error.reason !== 'ApplyFailed' && error.reason !== 'NameTaken')) throw error;
    outcome = { reason: error.reason, message: error.message };
    failure = error;
  }

  const status = desiredStatus(object, outcome, context.clock.wallNow());
  const degraded = status.conditions?.find((c) => c.type === 'Degraded');
  const wasDegraded = object.status?.conditions?.find((c) => c.type === 'Degraded');
  if (degraded?.status === 'True' && (wasDegraded?.status !== 'True' || wasDegraded.message !== degraded.message)) {
    // Named after the occurrence: a retry that finds the same failure records no second Warning.
    record({ type: 'Warning', reason: degraded.reason, action: 'Apply', note: degraded.message, occurrence: [degraded.reason, degraded.message, degraded.lastTransitionTime] });
  }
  if (object.status?.observedGeneration !== status.observedGeneration || !conditionsEqual(object.status?.conditions, status.conditions)) {
    const { name, namespace, resourceVersion } = object.metadata;
    try {
      // Conditional on the __Kind__ this status was computed from.
      await writer.applyStatus({ apiVersion: __KIND___API_VERSION, kind: __KIND___KIND, namespace, name }, status, resourceVersion);
    } catch (error) {
      if (error instanceof NotLeaderError) throw error;
      if (isStatus(error, 409)) throw staleCache(`apply of the status of __Kind__ ${key}`, error);
      throw new ReconcileError('StatusFailed', `apply of the status of __Kind__ ${key} failed: ${failureSummary(error)}`, { cause: error });
    }
  }
  if (failure) throw failure;
}
