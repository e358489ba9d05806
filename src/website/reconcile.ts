import type { EventsV1Event, KubernetesObject, V1ConfigMap, V1Deployment, V1Service } from '@kubernetes/client-node';
import { ensureChild, isConflict, staleCache, type Cache, type ChildWriter, type ObjectRef } from '../runtime/children.ts';
import type { Clock } from '../runtime/clock.ts';
import type { Reconcile, ReconcileContext } from '../runtime/controller.ts';
import { NotLeaderError, ReconcileError } from '../runtime/errors.ts';
import { buildEvent } from '../runtime/event-builder.ts';
import { objectKey } from '../runtime/informer.ts';
import { failureSummary, isStatus } from '../runtime/kube.ts';
import type { Logger } from '../runtime/logging.ts';
import type { ObjectTarget } from '../runtime/writer.ts';
import { desiredChildren } from './desired.ts';
import { conditionEvents, REPORTING_CONTROLLER, type WebsiteEvent } from './events.ts';
import { desiredStatus, statusEqual, type ReconcileOutcome } from './status.ts';
import { WEBSITE_API_VERSION, WEBSITE_KIND, type Website } from './types.ts';

/** The watch caches the reconcile reads; it never reads the API server directly. */
export interface WebsiteCaches {
  websites: Cache<Website>;
  configMaps: Cache<V1ConfigMap>;
  deployments: Cache<V1Deployment>;
  services: Cache<V1Service>;
}

/** What the reconcile may write: the runtime's FencedWriter has this shape. */
export interface WebsiteWriter extends ChildWriter {
  /** Writes sent so far. */
  readonly writes: number;
  applyStatus(target: ObjectTarget, status: unknown, resourceVersion?: string): Promise<void>;
}

/** How one reconcile went: for logs, and for tests that must know when a reconcile finished and what it wrote. */
export interface ReconcileReport {
  key: string;
  trigger: string;
  reconcileID: string;
  /** The clock's monotonic reading when the reconcile began. */
  startedAtMs: number;
  /**
   * NotFound: the Website is gone (its children go by ownerReference GC);
   * Deleting: it has a deletionTimestamp; NameTaken: a child's name belongs to
   * an object this Website does not control; Failed: any other error (a 409
   * from a cache that was behind, a lost lease).
   */
  outcome: 'NotFound' | 'Deleting' | 'Applied' | 'InvalidSpec' | 'ApplyFailed' | 'NameTaken' | 'Failed';
  /** Every write the pass sent through its fenced writer: creates, applies, the status (events go through the event sink). 0 for a converged Website. */
  writes: number;
  /** The children applied because their cached copy differed from the desired one: "Deployment ns/name (spec.replicas)". */
  applied: string[];
  statusWritten: boolean;
  /** The reasons of the events recorded (sent after the pass, in the background). */
  events: string[];
  error?: unknown;
}

/**
 * Everything a Website reconcile uses, injected (as kube-rs' controller-rs
 * passes a Context): the caches to read, the fenced writer for the pass, and
 * the clock for condition transition times. It holds no API client, so the
 * only way to write is through the writer, which checks the write gate and
 * the reconcile's AbortSignal on every call.
 */
export interface WebsiteContext {
  caches: WebsiteCaches;
  /** The manager's `writerFor`: one fenced writer per reconcile. */
  writerFor(key: string, signal: AbortSignal, logger: Logger): WebsiteWriter;
  /** The manager's `read`: one object from the API server, for the owner of a name a create found taken. */
  read(ref: ObjectRef, signal: AbortSignal): Promise<KubernetesObject | undefined>;
  /** The manager's event sink: returns at once, sends in the background under the key's term. */
  recordEvent(key: string, event: EventsV1Event): void;
  clock: Pick<Clock, 'wallNow' | 'monotonicMs'>;
  /** events.k8s.io `reportingInstance`: the pod name. */
  reportingInstance: string;
  /** Called once at the end of every reconcile, whatever its outcome. */
  onReconciled?: (report: ReconcileReport) => void;
}

export function makeReconcile(context: WebsiteContext): Reconcile {
  return (key, reconcileContext) => reconcileWebsite(context, key, reconcileContext);
}

/** One reconcile pass: what it needs and what it has done so far. */
interface Pass {
  context: WebsiteContext;
  key: string;
  writer: WebsiteWriter;
  signal: AbortSignal;
  logger: Logger;
  report: ReconcileReport;
}

/**
 * Brings the children of the Website at `key` to what its spec asks for and
 * records how they are doing in its status.
 *
 * - Everything is read from the caches. A Website missing from the cache has
 *   been deleted: there is nothing to do, because every child names it as its
 *   controlling owner and the garbage collector removes them. No finalizer is
 *   needed (nothing outside the cluster to clean up), and one would make every
 *   deletion — and every namespace deletion — hang while the operator is down.
 * - A child is applied (server-side apply, force, one field manager) only when
 *   its cached copy lacks something of the desired body, so a converged
 *   Website costs no write at all; the status is written only when statusEqual
 *   says it changed; events only mark real changes.
 * - An invalid spec or a failed apply is recorded in the status and then
 *   thrown as a ReconcileError, so the controller retries with per-key backoff.
 *   The retries write nothing while nothing changes.
 */
export async function reconcileWebsite(context: WebsiteContext, key: string, reconcile: ReconcileContext): Promise<void> {
  const report: ReconcileReport = {
    key,
    trigger: reconcile.trigger,
    reconcileID: reconcile.reconcileID,
    startedAtMs: context.clock.monotonicMs(),
    outcome: 'Failed',
    writes: 0,
    applied: [],
    statusWritten: false,
    events: [],
  };
  const writer = context.writerFor(key, reconcile.signal, reconcile.logger);
  const pass: Pass = { context, key, writer, signal: reconcile.signal, logger: reconcile.logger, report };
  try {
    await run(pass);
  } catch (error) {
    report.error = error;
    if (error instanceof ReconcileError && (error.reason === 'InvalidSpec' || error.reason === 'ApplyFailed' || error.reason === 'NameTaken')) report.outcome = error.reason;
    throw error;
  } finally {
    report.writes = writer.writes;
    pass.logger.debug('website pass', {
      outcome: report.outcome, writes: report.writes, applied: report.applied, statusWritten: report.statusWritten, events: report.events,
    });
    context.onReconciled?.(report);
  }
}

async function run(pass: Pass): Promise<void> {
  const { caches } = pass.context;
  const website = caches.websites.get(pass.key);
  if (website === undefined) {
    pass.report.outcome = 'NotFound';
    return;
  }
  if (website.metadata.deletionTimestamp !== undefined) {
    // Applying children to an owner on its way out would only race the garbage collector.
    pass.report.outcome = 'Deleting';
    return;
  }
  const deploymentKey = `${website.metadata.namespace}/${website.metadata.name}`;
  const children = desiredChildren(website);

  if ('reason' in children) {
    // Existing children are left as they are: the last valid spec keeps serving.
    await settle(pass, website, caches.deployments.get(deploymentKey), children);
    // Terminal: retrying the same spec cannot help; the next change of the Website queues it again.
    throw new ReconcileError('InvalidSpec', `Website ${pass.key}: ${children.message}`, { terminal: true });
  }

  let deployment = caches.deployments.get(deploymentKey);
  try {
    // The ConfigMap first: the Deployment's pods mount it.
    await ensure(pass, website, children.configMap, caches.configMaps);
    deployment = await ensure(pass, website, children.deployment, caches.deployments);
    await ensure(pass, website, children.service, caches.services);
  } catch (error) {
    const failure = error instanceof ReconcileError && (error.reason === 'ApplyFailed' || error.reason === 'NameTaken') ? error.reason : undefined;
    if (failure === undefined) throw error;
    const message = (error as Error).message;
    try {
      // A child of someone else's is no Deployment of ours to report on.
      await settle(pass, website, failure === 'NameTaken' ? undefined : deployment, { reason: failure, message });
    } catch (statusError) {
      if (statusError instanceof NotLeaderError || isConflict(statusError)) throw statusError;
      pass.logger.warn(`could not record ${failure} in the status`, { error: (statusError as Error).message });
    }
    throw new ReconcileError(failure, `Website ${pass.key}: ${message}`, { cause: (error as Error).cause });
  }

  // The Deployment the apply returned, when there was one: its generation is the one just applied.
  await settle(pass, website, deployment, { reason: 'Applied' });
  pass.report.outcome = 'Applied';
}

/** One child through the runtime's ensureChild; what it wrote goes into the report and an event. */
async function ensure<T extends KubernetesObject>(pass: Pass, website: Website, desired: T, cache: Cache<T>): Promise<T> {
  const read = (ref: ObjectRef, signal: AbortSignal): Promise<KubernetesObject | undefined> => pass.context.read(ref, signal);
  const outcome = await ensureChild({ writer: pass.writer, read, signal: pass.signal }, website, desired, cache);
  if (outcome.difference !== undefined) pass.report.applied.push(`${desired.kind} ${objectKey(desired)} (${outcome.difference})`);
  if (outcome.event) record(pass, website, outcome.event);
  return outcome.object;
}

/**
 * Computes the status for `outcome`, records the events its condition changes
 * call for, then writes it if it differs from the cached one. Events go first:
 * their names are deterministic, so if the status write fails, the retry's
 * events are refused as duplicates rather than recorded twice.
 */
async function settle(pass: Pass, website: Website, deployment: V1Deployment | undefined, outcome: ReconcileOutcome): Promise<void> {
  const status = desiredStatus(website, deployment, outcome, pass.context.clock.wallNow());
  for (const event of conditionEvents(website.status, status)) record(pass, website, event);
  if (statusEqual(website.status, status)) return;
  const { name, namespace, resourceVersion } = website.metadata;
  const target: ObjectTarget = { apiVersion: WEBSITE_API_VERSION, kind: WEBSITE_KIND, namespace, name };
  try {
    // Conditional on the Website this status was computed from.
    await pass.writer.applyStatus(target, status, resourceVersion);
  } catch (error) {
    if (error instanceof NotLeaderError) throw error;
    if (isStatus(error, 409)) throw staleCache(`apply of the status of Website ${pass.key}`, error);
    throw new ReconcileError('StatusFailed', `apply of the status of Website ${pass.key} failed: ${failureSummary(error)}`, { cause: error });
  }
  pass.report.statusWritten = true;
}

/**
 * Records an event: it is sent in the background (like client-go's
 * recorder, best effort), so the pass does not wait for it. Its name is
 * deterministic per occurrence: a repeated pass records a duplicate the
 * server refuses, not a second event.
 */
function record(pass: Pass, website: Website, event: WebsiteEvent): void {
  const source = { reportingController: REPORTING_CONTROLLER, reportingInstance: pass.context.reportingInstance };
  pass.context.recordEvent(pass.key, buildEvent(website, event, pass.context.clock.wallNow(), source));
  pass.report.events.push(event.reason);
}
