import { createHash } from 'node:crypto';
import { ApiException, type EventsV1Event, type KubernetesObject, type V1ConfigMap, type V1Deployment, type V1Service } from '@kubernetes/client-node';
import type { Clock } from '../runtime/clock.ts';
import type { Reconcile, ReconcileContext } from '../runtime/controller.ts';
import { NotLeaderError, ReconcileError } from '../runtime/errors.ts';
import { objectKey } from '../runtime/informer.ts';
import type { Logger } from '../runtime/logging.ts';
import type { StatusTarget } from '../runtime/writer.ts';
import { desiredChildren } from './desired.ts';
import { buildEvent, childEvent, conditionEvents, type WebsiteEvent } from './events.ts';
import { desiredStatus, statusEqual, type ReconcileOutcome } from './status.ts';
import { WEBSITE_GROUP, WEBSITE_KIND, WEBSITE_PLURAL, WEBSITE_VERSION, type Website } from './types.ts';

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
  apply<T extends KubernetesObject>(desired: T): Promise<T>;
  replaceLists<T extends KubernetesObject>(desired: T, resourceVersion: string): Promise<T>;
  applyStatus(target: StatusTarget, status: unknown): Promise<void>;
  createEvent(event: EventsV1Event): Promise<void>;
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
   * Deleting: it has a deletionTimestamp; Failed: an error other than the spec's or an apply's.
   */
  outcome: 'NotFound' | 'Deleting' | 'Applied' | 'InvalidSpec' | 'ApplyFailed' | 'Failed';
  /** Every write sent through the fenced writer: applies, the status, events. 0 for a converged Website. */
  writes: number;
  /** The children applied because their cached copy differed from the desired one: "Deployment ns/name (spec.replicas)". */
  applied: string[];
  statusWritten: boolean;
  /** The reasons of the events recorded. */
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
  logger: Logger;
  report: ReconcileReport;
}

/** An apply the server refused or that failed; its message names the child and carries the server's. */
class ApplyError extends Error {
  override name = 'ApplyError';
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
  const pass: Pass = { context, key, writer, logger: reconcile.logger, report };
  try {
    await run(pass);
  } catch (error) {
    report.error = error;
    if (error instanceof ReconcileError && (error.reason === 'InvalidSpec' || error.reason === 'ApplyFailed')) report.outcome = error.reason;
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
    throw new ReconcileError('InvalidSpec', `Website ${pass.key}: ${children.message}`);
  }

  let deployment = caches.deployments.get(deploymentKey);
  try {
    // The ConfigMap first: the Deployment's pods mount it.
    await ensureChild(pass, website, children.configMap, caches.configMaps);
    deployment = await ensureChild(pass, website, children.deployment, caches.deployments);
    await ensureChild(pass, website, children.service, caches.services);
  } catch (error) {
    if (!(error instanceof ApplyError)) throw error;
    const failure = new ReconcileError('ApplyFailed', `Website ${pass.key}: ${error.message}`, { cause: error.cause });
    try {
      await settle(pass, website, deployment, { reason: 'ApplyFailed', message: error.message });
    } catch (statusError) {
      if (statusError instanceof NotLeaderError) throw statusError;
      pass.logger.warn('could not record ApplyFailed in the status', { error: statusError });
    }
    throw failure;
  }

  // The Deployment the apply returned, when there was one: its generation is the one just applied.
  await settle(pass, website, deployment, { reason: 'Applied' });
  pass.report.outcome = 'Applied';
}

/**
 * Applies `desired` unless the cached child already holds every field of it.
 * Returns the child as it now is (the apply's answer, or the cached copy).
 */
async function ensureChild<T extends KubernetesObject>(pass: Pass, website: Website, desired: T, cache: Cache<T>): Promise<T> {
  const key = objectKey(desired);
  const cached = cache.get(key);
  const difference = cached === undefined ? 'absent' : firstDifference(cached, desired);
  if (difference === undefined) return cached!;

  const what = `${desired.kind} ${key}`;
  let applied: T;
  try {
    applied = await pass.writer.apply(desired);
  } catch (error) {
    if (error instanceof NotLeaderError) throw error;
    if (!(cached !== undefined && error instanceof ApiException && error.code === 422)) {
      throw new ApplyError(`apply of ${what} failed: ${serverMessage(error)}`, { cause: error });
    }
    applied = await applyOverForeignListItems(pass, desired, cached, `apply of ${what} failed: ${serverMessage(error)}`);
  }
  pass.report.applied.push(`${what} (${difference})`);
  const digest = createHash('sha256').update(JSON.stringify(desired)).digest('hex');
  const event = childEvent(applied, cached, difference, digest);
  if (event !== undefined) await record(pass, website, event);
  return applied;
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
    await pass.writer.replaceLists(desired, cached.metadata?.resourceVersion ?? '');
    return await pass.writer.apply(desired);
  } catch (error) {
    if (error instanceof NotLeaderError) throw error;
    throw new ApplyError(`${applyFailure}; replacing its lists failed too: ${serverMessage(error)}`, { cause: error });
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
  for (const event of conditionEvents(website.status, status)) await record(pass, website, event);
  if (statusEqual(website.status, status)) return;
  const { name, namespace } = website.metadata;
  const target: StatusTarget = { group: WEBSITE_GROUP, version: WEBSITE_VERSION, plural: WEBSITE_PLURAL, kind: WEBSITE_KIND, namespace, name };
  try {
    await pass.writer.applyStatus(target, status);
  } catch (error) {
    if (error instanceof NotLeaderError) throw error;
    throw new ReconcileError('StatusFailed', `apply of the status of Website ${pass.key} failed: ${serverMessage(error)}`, { cause: error });
  }
  pass.report.statusWritten = true;
}

/** Records an event; best effort, like client-go's recorder, except that a refused write (lost lease) still stops the pass. */
async function record(pass: Pass, website: Website, event: WebsiteEvent): Promise<void> {
  const body = buildEvent(website, event, pass.context.clock.wallNow(), pass.context.reportingInstance);
  try {
    await pass.writer.createEvent(body);
    pass.report.events.push(event.reason);
  } catch (error) {
    if (error instanceof NotLeaderError) throw error;
    if (error instanceof ApiException && error.code === 409) {
      pass.logger.debug('event already recorded', { event: body.metadata?.name, reason: event.reason });
      return;
    }
    pass.logger.warn('could not record an event', { reason: event.reason, note: event.note, error: serverMessage(error) });
  }
}

/**
 * Where `actual` fails to hold `desired`, as a path ("spec.replicas",
 * "spec.ports[0]"), or undefined when it holds all of it. Deep inclusion:
 * fields the body does not set (server defaults, a Service's cluster IP,
 * status, other managers' fields) are ignored. Lists of objects — the
 * associative lists of the API, keyed by name, port or uid — must contain an
 * item holding each desired item; lists of scalars are atomic and compared
 * whole. That is what server-side apply would change, so an apply is sent
 * exactly when it would do something.
 */
export function firstDifference(actual: unknown, desired: unknown, path = ''): string | undefined {
  if (Array.isArray(desired)) {
    if (!Array.isArray(actual)) return path || '.';
    const wanted = desired as unknown[];
    const have = actual as unknown[];
    if (wanted.every((item) => item === null || typeof item !== 'object')) {
      return have.length === wanted.length && wanted.every((item, i) => item === have[i]) ? undefined : path || '.';
    }
    for (const [index, item] of wanted.entries()) {
      if (have.some((candidate) => firstDifference(candidate, item) === undefined)) continue;
      // Name the field inside the item when an item of the same name exists, for a clearer event.
      const name = (item as { name?: unknown }).name;
      const namesake = name === undefined ? undefined : have.find((candidate) => (candidate as { name?: unknown } | null)?.name === name);
      return namesake === undefined ? `${path}[${index}]` : firstDifference(namesake, item, `${path}[${index}]`);
    }
    return undefined;
  }
  if (desired !== null && typeof desired === 'object') {
    if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) return path || '.';
    for (const [field, value] of Object.entries(desired)) {
      if (value === undefined) continue;
      const difference = firstDifference((actual as Record<string, unknown>)[field], value, path ? `${path}.${field}` : field);
      if (difference !== undefined) return difference;
    }
    return undefined;
  }
  return actual === desired ? undefined : path || '.';
}

/** The API server's own message for a failed call ("422 Invalid: Service \"x\" is invalid: …"), else the error's. */
export function serverMessage(error: unknown): string {
  if (error instanceof ApiException) {
    const raw: unknown = error.body;
    const body = typeof raw === 'string' ? parseJson(raw) ?? raw : raw;
    if (body !== null && typeof body === 'object') {
      const { reason, message } = body as { reason?: unknown; message?: unknown };
      if (typeof message === 'string') return `${error.code}${typeof reason === 'string' ? ` ${reason}` : ''}: ${message}`;
    }
    return `${error.code}: ${typeof body === 'string' && body !== '' ? body : 'no message'}`;
  }
  return error instanceof Error ? error.message : String(error);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
