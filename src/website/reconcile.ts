import { createHash } from 'node:crypto';
import type { EventsV1Event, KubernetesObject, V1ConfigMap, V1Deployment, V1Service } from '@kubernetes/client-node';
import type { Clock } from '../runtime/clock.ts';
import type { Reconcile, ReconcileContext } from '../runtime/controller.ts';
import { NotLeaderError, ReconcileError } from '../runtime/errors.ts';
import { objectKey } from '../runtime/informer.ts';
import { firstDifference } from '../runtime/compare.ts';
import { buildEvent } from '../runtime/event-builder.ts';
import { failureSummary, isStatus } from '../runtime/kube.ts';
import type { Logger } from '../runtime/logging.ts';
import type { ObjectTarget } from '../runtime/writer.ts';
import { desiredChildren } from './desired.ts';
import { childEvent, conditionEvents, REPORTING_CONTROLLER, type WebsiteEvent } from './events.ts';
import { desiredStatus, statusEqual, type ReconcileOutcome } from './status.ts';
import { WEBSITE_API_VERSION, WEBSITE_KIND, type Website } from './types.ts';

/** Read access to one informer's cache. */
export interface Cache<T> {
  get(key: string): T | undefined;
}

/** The watch caches the reconcile reads; it never reads the API server directly. */
export interface WebsiteCaches {
  websites: Cache<Website>;
  configMaps: Cache<V1ConfigMap>;
  deployments: Cache<V1Deployment>;
  services: Cache<V1Service>;
}

/** What the reconcile may write: the runtime's FencedWriter has this shape. */
export interface WebsiteWriter {
  /** Writes sent so far. */
  readonly writes: number;
  apply<T extends KubernetesObject>(desired: T, resourceVersion?: string): Promise<T>;
  create<T extends KubernetesObject>(desired: T): Promise<T>;
  replaceLists<T extends KubernetesObject>(desired: T, resourceVersion: string): Promise<T>;
  applyStatus(target: ObjectTarget, status: unknown, resourceVersion?: string): Promise<void>;
}

/** Which object to read. */
export interface ObjectRef {
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
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

/** An apply the server refused or that failed; its message names the child and carries the server's. */
class ApplyError extends Error {
  override name = 'ApplyError';
}

/** A child's name is taken by an object this Website does not control; the message names it and its owner. */
class NameTakenError extends Error {
  override name = 'NameTakenError';
}

/** The server holds a newer version of an object than the cache the reconcile read (409): retried, never recorded. */
function staleCache(what: string, cause: unknown): ReconcileError {
  return new ReconcileError('Conflict', `${what}: the cache was behind the server (${failureSummary(cause)}); retrying`, { cause });
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
    await ensureChild(pass, website, children.configMap, caches.configMaps);
    deployment = await ensureChild(pass, website, children.deployment, caches.deployments);
    await ensureChild(pass, website, children.service, caches.services);
  } catch (error) {
    const failure = error instanceof ApplyError ? 'ApplyFailed' : error instanceof NameTakenError ? 'NameTaken' : undefined;
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

/**
 * Brings one child to `desired` unless the cached copy already holds every
 * field of it. Returns the child as it now is (the write's answer, or the
 * cached copy).
 *
 * - A cached child that this Website does not control is someone else's:
 *   nothing is written to it (NameTaken).
 * - A child missing from the cache is created (POST): if the name is taken —
 *   by an object the label-filtered cache cannot see, a user's say — the
 *   server answers 409 AlreadyExists and the object is left alone.
 * - A cached child is applied conditional on its cached resourceVersion, so a
 *   late write from an earlier term cannot overwrite a newer one (409).
 */
async function ensureChild<T extends KubernetesObject>(pass: Pass, website: Website, desired: T, cache: Cache<T>): Promise<T> {
  const key = objectKey(desired);
  const what = `${desired.kind} ${key}`;
  const cached = cache.get(key);
  if (cached !== undefined) {
    const foreign = notControlledBy(cached, website);
    if (foreign) throw new NameTakenError(nameTaken(what, foreign));
  }
  const difference = cached === undefined ? 'absent' : firstDifference(cached, desired);
  if (difference === undefined) return cached!;

  const written = await write(pass, website, desired, cached, what);
  pass.report.applied.push(`${what} (${difference})`);
  const digest = createHash('sha256').update(JSON.stringify(desired)).digest('hex');
  const event = childEvent(written, cached, difference, digest);
  if (event !== undefined) record(pass, website, event);
  return written;
}

/** Creates a missing child, or applies a cached one conditional on its cached version. */
async function write<T extends KubernetesObject>(pass: Pass, website: Website, desired: T, cached: T | undefined, what: string): Promise<T> {
  try {
    return cached === undefined ? await pass.writer.create(desired) : await pass.writer.apply(desired, cached.metadata?.resourceVersion);
  } catch (error) {
    if (error instanceof NotLeaderError) throw error;
    if (cached === undefined && isStatus(error, 409)) return await nameTakenOrOurs(pass, website, desired, what, error);
    if (isConflict(error)) throw staleCache(`apply of ${what}`, error);
    if (cached !== undefined && isStatus(error, 422)) return await applyOverForeignListItems(pass, desired, cached, `apply of ${what} failed: ${failureSummary(error)}`);
    throw new ApplyError(`${cached === undefined ? 'create' : 'apply'} of ${what} failed: ${failureSummary(error)}`, { cause: error });
  }
}

/**
 * A create found the name taken. Someone else's: NameTaken, and nothing is
 * written to it. Ours after all — the cache had not seen our own create yet,
 * or the child lost the label the cache selects on — then apply to it,
 * conditional on the version just read (which also puts the label back).
 */
async function nameTakenOrOurs<T extends KubernetesObject>(pass: Pass, website: Website, desired: T, what: string, error: unknown): Promise<T> {
  const { apiVersion = '', kind = '' } = desired;
  const existing = await pass.context.read({ apiVersion, kind, namespace: website.metadata.namespace, name: desired.metadata?.name ?? '' }, pass.signal);
  if (existing === undefined) throw staleCache(`create of ${what}`, error);
  const foreign = notControlledBy(existing, website);
  if (foreign) throw new NameTakenError(nameTaken(what, foreign));
  try {
    return await pass.writer.apply(desired, existing.metadata?.resourceVersion);
  } catch (applyError) {
    if (isStatus(applyError, 409)) throw staleCache(`apply of ${what}`, applyError);
    throw applyError;
  }
}

/** Who controls `child` instead of `website`, in words; undefined when the Website does. */
function notControlledBy(child: KubernetesObject, website: Website): string | undefined {
  const controller = child.metadata?.ownerReferences?.find((ref) => ref.controller === true);
  if (controller?.uid === website.metadata.uid) return undefined;
  if (!controller) return 'it has no controller';
  if (controller.kind === WEBSITE_KIND && controller.name === website.metadata.name) return 'it is controlled by an earlier Website of the same name';
  return `it is controlled by ${controller.kind} ${controller.name}`;
}

function nameTaken(what: string, foreign: string): string {
  return `${what} already exists and this Website does not control it (${foreign}); the operator leaves it alone: rename or remove it, or give the Website another name`;
}

function isConflict(error: unknown): boolean {
  return isStatus(error, 409) || (error instanceof ReconcileError && error.reason === 'Conflict');
}

/**
 * The apply of an existing child was refused as invalid. One cause the
 * operator can mend: list items someone else added by hand (a Service port
 * number changed by hand is a new item of `ports`, keyed by port and
 * protocol), which clash with the applied ones and which server-side apply
 * will not remove. A merge patch of the desired child, conditional on the
 * cached resourceVersion, replaces those lists; the apply then takes the
 * fields back. If the patch is refused too (or the cached copy is stale: 409),
 * the reconcile fails with both refusals and is retried with backoff.
 */
async function applyOverForeignListItems<T extends KubernetesObject>(pass: Pass, desired: T, cached: T, applyFailure: string): Promise<T> {
  try {
    const patched = await pass.writer.replaceLists(desired, cached.metadata?.resourceVersion ?? '');
    return await pass.writer.apply(desired, patched.metadata?.resourceVersion);
  } catch (error) {
    if (error instanceof NotLeaderError) throw error;
    if (isStatus(error, 409)) throw staleCache(`merge-patch of ${desired.kind} ${objectKey(desired)}`, error);
    throw new ApplyError(`${applyFailure}; replacing its lists failed too: ${failureSummary(error)}`, { cause: error });
  }
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
