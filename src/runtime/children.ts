import { createHash } from 'node:crypto';
import type { KubernetesObject } from '@kubernetes/client-node';
import { firstDifference } from './compare.ts';
import { NotLeaderError, ReconcileError } from './errors.ts';
import { objectReference, type RecordedEvent } from './event-builder.ts';
import { objectKey } from './informer.ts';
import { failureSummary, isStatus } from './kube.ts';

/**
 * Owned children, written the one safe way: only when the cached copy lacks
 * something of the desired body, never to an object the owner does not
 * control, and never over a newer version than the cache held. Every kind's
 * reconcile brings its children to their desired state through
 * `ensureChild`; what the owner's status makes of a failure stays with the
 * kind.
 */

/**
 * Every child carries this label: the informers of child kinds select on it,
 * so the operator caches its children and not every ConfigMap of the cluster.
 */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'ha-operator';

/** The label selector of an informer of children. */
export const MANAGED_BY_SELECTOR = `${MANAGED_BY_LABEL}=${MANAGED_BY}`;

/** Read access to one informer's cache. */
export interface Cache<T> {
  get(key: string): T | undefined;
}

/** The writes `ensureChild` makes: the runtime's FencedWriter has this shape. */
export interface ChildWriter {
  apply<T extends KubernetesObject>(desired: T, resourceVersion?: string): Promise<T>;
  create<T extends KubernetesObject>(desired: T): Promise<T>;
  replaceLists<T extends KubernetesObject>(desired: T, resourceVersion: string): Promise<T>;
}

/** Which object to read. */
export interface ObjectRef {
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
}

/** What `ensureChild` works with in one reconcile pass. */
export interface ChildPass {
  writer: ChildWriter;
  /** One object from the API server (the manager's `read`): whose a name is that a create found taken. */
  read(ref: ObjectRef, signal: AbortSignal): Promise<KubernetesObject | undefined>;
  signal: AbortSignal;
}

/** The object whose children these are: the controlling owner every desired child names. */
export interface Owner {
  kind: string;
  metadata: { name: string; namespace: string; uid: string };
}

/** What happened to one child. */
export interface ChildOutcome<T> {
  /** The child as it now is: the write's answer, or the cached copy when nothing was written. */
  object: T;
  /** The field that differed ("spec.replicas", "absent" for a create); undefined when the cached copy already held the desired body. */
  difference?: string;
  /** Created or Updated, when the write changed something; an apply that found nothing to change records nothing. */
  event?: RecordedEvent;
}

/** A create or apply the server refused, or that failed: the message names the child and carries the server's. */
export class ApplyFailedError extends ReconcileError {
  override name = 'ApplyFailedError';

  constructor(message: string, options?: ErrorOptions) {
    super('ApplyFailed', message, options);
  }
}

/** The child's name belongs to an object the owner does not control: nothing was written to it; the message names it and its controller. */
export class NameTakenError extends ReconcileError {
  override name = 'NameTakenError';

  constructor(message: string) {
    super('NameTaken', message);
  }
}

/** The server holds a newer version of an object than the cache the reconcile read (409): retried, never recorded. */
export function staleCache(what: string, cause: unknown): ReconcileError {
  return new ReconcileError('Conflict', `${what}: the cache was behind the server (${failureSummary(cause)}); retrying`, { cause });
}

/** A 409 from the server, or a stale cache found: a routine retry. */
export function isConflict(error: unknown): boolean {
  return isStatus(error, 409) || (error instanceof ReconcileError && error.reason === 'Conflict');
}

/**
 * Brings one child of `owner` to `desired` unless the cached copy already
 * holds every field of it (firstDifference).
 *
 * - A cached child that `owner` does not control is someone else's: nothing
 *   is written to it (NameTakenError).
 * - A child missing from the cache is created (POST): if the name is taken —
 *   by an object the label-filtered cache cannot see, a user's say — the
 *   server answers 409 AlreadyExists and the object is left alone.
 * - A cached child is applied conditional on its cached resourceVersion, so a
 *   late write from an earlier term cannot overwrite a newer one (409:
 *   a Conflict ReconcileError, retried).
 * - Any other refusal is an ApplyFailedError; NotLeaderError passes through.
 */
export async function ensureChild<T extends KubernetesObject>(pass: ChildPass, owner: Owner, desired: T, cache: Cache<T>): Promise<ChildOutcome<T>> {
  const key = objectKey(desired);
  const what = `${desired.kind} ${key}`;
  const cached = cache.get(key);
  if (cached !== undefined) {
    const foreign = notControlledBy(cached, owner);
    if (foreign) throw new NameTakenError(nameTaken(what, owner, foreign));
  }
  const difference = cached === undefined ? 'absent' : firstDifference(cached, desired);
  if (difference === undefined) return { object: cached! };

  const written = await write(pass, owner, desired, cached, what);
  const digest = createHash('sha256').update(JSON.stringify(desired)).digest('hex');
  const event = childEvent(owner, written, cached, difference, digest);
  return { object: written, difference, ...(event ? { event } : {}) };
}

/** Creates a missing child, or applies a cached one conditional on its cached version. */
async function write<T extends KubernetesObject>(pass: ChildPass, owner: Owner, desired: T, cached: T | undefined, what: string): Promise<T> {
  try {
    return cached === undefined ? await pass.writer.create(desired) : await pass.writer.apply(desired, cached.metadata?.resourceVersion);
  } catch (error) {
    if (error instanceof NotLeaderError) throw error;
    if (cached === undefined && isStatus(error, 409)) return await nameTakenOrOurs(pass, owner, desired, what, error);
    if (isConflict(error)) throw staleCache(`apply of ${what}`, error);
    if (cached !== undefined && isStatus(error, 422)) return await applyOverForeignListItems(pass, desired, cached, `apply of ${what} failed: ${failureSummary(error)}`);
    throw new ApplyFailedError(`${cached === undefined ? 'create' : 'apply'} of ${what} failed: ${failureSummary(error)}`, { cause: error });
  }
}

/**
 * A create found the name taken. Someone else's: NameTaken, and nothing is
 * written to it. Ours after all — the cache had not seen our own create yet,
 * or the child lost the label the cache selects on — then apply to it,
 * conditional on the version just read (which also puts the label back).
 */
async function nameTakenOrOurs<T extends KubernetesObject>(pass: ChildPass, owner: Owner, desired: T, what: string, error: unknown): Promise<T> {
  const { apiVersion = '', kind = '' } = desired;
  const existing = await pass.read({ apiVersion, kind, namespace: owner.metadata.namespace, name: desired.metadata?.name ?? '' }, pass.signal);
  if (existing === undefined) throw staleCache(`create of ${what}`, error);
  const foreign = notControlledBy(existing, owner);
  if (foreign) throw new NameTakenError(nameTaken(what, owner, foreign));
  try {
    return await pass.writer.apply(desired, existing.metadata?.resourceVersion);
  } catch (applyError) {
    if (isStatus(applyError, 409)) throw staleCache(`apply of ${what}`, applyError);
    throw applyError;
  }
}

/** Who controls `child` instead of `owner`, in words; undefined when the owner does. */
function notControlledBy(child: KubernetesObject, owner: Owner): string | undefined {
  const controller = child.metadata?.ownerReferences?.find((ref) => ref.controller === true);
  if (controller?.uid === owner.metadata.uid) return undefined;
  if (!controller) return 'it has no controller';
  if (controller.kind === owner.kind && controller.name === owner.metadata.name) return `it is controlled by an earlier ${owner.kind} of the same name`;
  return `it is controlled by ${controller.kind} ${controller.name}`;
}

function nameTaken(what: string, owner: Owner, foreign: string): string {
  return `${what} already exists and this ${owner.kind} does not control it (${foreign}); the operator leaves it alone: rename or remove it, or give the ${owner.kind} another name`;
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
async function applyOverForeignListItems<T extends KubernetesObject>(pass: ChildPass, desired: T, cached: T, applyFailure: string): Promise<T> {
  try {
    const patched = await pass.writer.replaceLists(desired, cached.metadata?.resourceVersion ?? '');
    return await pass.writer.apply(desired, patched.metadata?.resourceVersion);
  } catch (error) {
    if (error instanceof NotLeaderError) throw error;
    if (isStatus(error, 409)) throw staleCache(`merge-patch of ${desired.kind} ${objectKey(desired)}`, error);
    throw new ApplyFailedError(`${applyFailure}; replacing its lists failed too: ${failureSummary(error)}`, { cause: error });
  }
}

/**
 * The event for a child just written, or undefined when the write changed
 * nothing (the server returned the resourceVersion the cache held).
 * `difference` says what differed, `desiredDigest` identifies the body applied.
 */
export function childEvent(owner: Owner, applied: KubernetesObject, cached: KubernetesObject | undefined, difference: string, desiredDigest: string): RecordedEvent | undefined {
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
    : { type: 'Normal', reason: 'Updated', action: 'Update', note: `updated ${what}: ${difference} differed from the ${owner.kind}'s spec`, related, occurrence };
}
