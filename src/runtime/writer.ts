import type { KubernetesObject } from '@kubernetes/client-node';
import type { Clock } from './clock.ts';
import type { Discovery } from './discovery.ts';
import { NotLeaderError } from './errors.ts';
import type { WriteGate } from './gate.ts';
import { collectionPath, isStatus, MediaType, objectPath, type ApiRequest, type KubeClient } from './kube.ts';
import type { Logger } from './logging.ts';

/** An object's API coordinates, for a status or a finalizer. Leave namespace out for a cluster-scoped object. */
export interface ObjectTarget {
  apiVersion: string;
  kind: string;
  namespace?: string;
  name: string;
}

/** What every FencedWriter of a process shares. */
export interface WriterContext {
  client: KubeClient;
  discovery: Discovery;
  gate: WriteGate;
  requests: InFlightRequests;
  fieldManager: string;
  /** The User-Agent every write starts with; the term is appended. */
  userAgent: string;
  clock: Clock;
}

/** How often each step of a hand-over of fields is tried when other writers keep changing the object (409). */
const HAND_OVER_ATTEMPTS = 3;

/** metadata.managedFields[]: fieldsV1 is a trie of "f:<field>", "k:<key>", "v:<value>" and "." keys. */
interface ManagedFieldsEntry {
  manager?: string;
  operation?: string;
  subresource?: string;
  time?: string;
  fieldsV1?: FieldSet;
  [field: string]: unknown;
}

interface FieldSet {
  [path: string]: FieldSet;
}

/**
 * The only way reconcile code writes to the API server. Every call first
 * asks the gate for a permit for the key it reconciles and checks that the
 * reconcile itself has not been aborted (timeout, lost lease, forced
 * shutdown) — a reconcile that ignored its signal still cannot write
 * afterwards. Each request then
 *
 * - ends when the term ends or the reconcile is aborted (both signals), and
 *   at the latest when the term would end without another renewal, so no
 *   request of this process outlives the term it was sent in;
 * - names its term in its User-Agent ("… term/<lease>@<resourceVersion>"),
 *   so the API server's audit log shows which term made each write;
 * - carries a precondition where the caller has one (the resourceVersion of
 *   the cached copy), so a late write cannot overwrite a newer one: the server
 *   answers 409 instead.
 *
 * Changes are server-side apply under one field manager; new objects are
 * created with POST so that an object someone else created meanwhile answers
 * 409 AlreadyExists instead of being taken over.
 */
export class FencedWriter {
  private readonly context: WriterContext;
  private readonly key: string;
  private readonly signal: AbortSignal;
  private readonly logger: Logger;
  /** Writes sent, for the idempotency check (a converged object costs none). */
  writes = 0;

  constructor(options: { context: WriterContext; key: string; signal: AbortSignal; logger: Logger }) {
    this.context = options.context;
    this.key = options.key;
    this.signal = options.signal;
    this.logger = options.logger;
  }

  /**
   * Server-side apply of a complete desired object, taking ownership of its
   * fields (force). With `resourceVersion` (the cached copy's), the server
   * answers 409 Conflict if the object has changed since — including when
   * another object of that name replaced it. If it was deleted and nothing
   * replaced it, the apply creates it again (a resourceVersion is no
   * precondition on a create; tested): right for a child the
   * reconcile wants, wrong for anything else, which is why setFinalizer
   * patches instead.
   */
  async apply<T extends KubernetesObject>(desired: T, resourceVersion?: string): Promise<T> {
    const { path, target, what } = await this.locate(desired, 'apply');
    const applied = await this.serverSideApply<T>(path, desired, resourceVersion, what);
    return this.ownEntry(applied, 'Update') ? await this.handOver(desired, applied, path, target) : applied;
  }

  /**
   * Creates `desired` (POST): 409 AlreadyExists if an object of that name
   * exists, whoever made it. The fields it set are recorded under an Update
   * entry of this field manager; the first apply hands them to its Apply entry.
   */
  async create<T extends KubernetesObject>(desired: T): Promise<T> {
    const { collection, what } = await this.locate(desired, 'create');
    return this.send<T>({ method: 'POST', path: collection, query: { fieldManager: this.context.fieldManager }, body: desired, what });
  }

  /**
   * JSON merge patch of `desired` onto the object as it was at
   * `resourceVersion` (409 if it has changed since). A merge patch replaces
   * each list it carries wholesale, which server-side apply cannot do for list
   * items another field manager owns (a Service port changed by hand is a new
   * item of `ports`, owned by whoever changed it).
   */
  async replaceLists<T extends KubernetesObject>(desired: T, resourceVersion: string): Promise<T> {
    const { path, what } = await this.locate(desired, 'merge-patch');
    const body = { ...desired, metadata: { ...desired.metadata, resourceVersion } };
    return this.send<T>({ method: 'PATCH', path, query: { fieldManager: this.context.fieldManager }, body, contentType: MediaType.mergePatch, what });
  }

  /**
   * Server-side apply of the status subresource, namespaced or cluster-scoped,
   * conditional on `resourceVersion` when given (the object the status was
   * computed from: 409 if it has changed since).
   */
  async applyStatus(target: ObjectTarget, status: unknown, resourceVersion?: string): Promise<void> {
    const { apiVersion, kind, name } = target;
    const { plural, namespaced } = await this.context.discovery.resourceFor(apiVersion, kind);
    const namespace = namespaced ? target.namespace : undefined;
    const metadata = { name, ...(namespace ? { namespace } : {}), ...(resourceVersion ? { resourceVersion } : {}) };
    await this.send({
      method: 'PATCH',
      path: objectPath(apiVersion, plural, namespace, name, 'status'),
      query: { fieldManager: this.context.fieldManager, force: true },
      body: { apiVersion, kind, metadata, status },
      contentType: MediaType.apply,
      what: `apply the status of ${kind} ${describe(namespace, name)}`,
    });
  }

  /**
   * Adds (`present`) or removes the finalizer `finalizer` on `object` (the
   * cached copy): a merge patch of metadata.finalizers as that copy has them,
   * with the one changed, conditional on its resourceVersion — so another
   * controller's finalizer added meanwhile is not lost (409 instead), and an
   * object deleted meanwhile gets 404, not a new life (a server-side apply
   * would create it again). Does nothing when the finalizer is already as
   * wanted. The API refuses a new finalizer on an object being deleted;
   * removing one is how a controller lets the deletion finish.
   *
   * Optional: a controller needs a finalizer only for clean-up that owner
   * references cannot express (something outside the cluster, or in another
   * namespace). The Website sample has none.
   */
  async setFinalizer<T extends KubernetesObject>(object: T, finalizer: string, present: boolean): Promise<T> {
    const finalizers = object.metadata?.finalizers ?? [];
    if (finalizers.includes(finalizer) === present) return object;
    const { path, target } = await this.locate(object, 'patch');
    return this.send<T>({
      method: 'PATCH',
      path,
      query: { fieldManager: this.context.fieldManager },
      body: {
        metadata: {
          resourceVersion: object.metadata?.resourceVersion,
          finalizers: present ? [...finalizers, finalizer] : finalizers.filter((f) => f !== finalizer),
        },
      },
      contentType: MediaType.mergePatch,
      what: `${present ? 'add' : 'remove'} finalizer ${finalizer} ${present ? 'to' : 'from'} ${target}`,
    });
  }

  /** Deletes the object if it is still the one with `uid` (409 if it was replaced by another of the same name). */
  async delete(object: KubernetesObject & { metadata: { uid: string } }): Promise<void> {
    const { path, what } = await this.locate(object, 'delete');
    try {
      await this.send({ method: 'DELETE', path, body: { kind: 'DeleteOptions', apiVersion: 'v1', preconditions: { uid: object.metadata.uid } }, what });
    } catch (error) {
      if (!isStatus(error, 404)) throw error;
    }
  }

  async createEvent(event: KubernetesObject): Promise<void> {
    const namespace = event.metadata?.namespace ?? 'default';
    await this.send({
      method: 'POST',
      path: collectionPath('events.k8s.io/v1', 'events', namespace),
      body: event,
      what: `create event ${event.metadata?.name ?? ''} in ${namespace}`,
    });
  }

  private async locate(object: KubernetesObject, verb: string): Promise<{ collection: string; path: string; target: string; what: string }> {
    const { apiVersion = '', kind = '' } = object;
    const { name = '', namespace } = object.metadata ?? {};
    const resource = await this.context.discovery.resourceFor(apiVersion, kind);
    const ns = resource.namespaced ? namespace : undefined;
    const target = `${kind} ${describe(ns, name)}`;
    return { collection: collectionPath(apiVersion, resource.plural, ns), path: objectPath(apiVersion, resource.plural, ns, name), target, what: `${verb} ${target}` };
  }

  private serverSideApply<T>(path: string, desired: KubernetesObject, resourceVersion: string | undefined, what: string): Promise<T> {
    const body = resourceVersion ? { ...desired, metadata: { ...desired.metadata, resourceVersion } } : desired;
    return this.send<T>({ method: 'PATCH', path, query: { fieldManager: this.context.fieldManager, force: true }, body, contentType: MediaType.apply, what });
  }

  /**
   * Fields this manager set by a create or a merge patch stay under its Update
   * entry, which its applies do not take over: an apply that drops one of them
   * would leave it on the object. So the first apply that finds such an entry
   * moves its fields into the Apply entry (a merge patch of managedFields) and,
   * when the apply did not set them all, applies again, so that the ones it no
   * longer sets go. A create therefore costs one request, and the hand-over
   * one or two more once in an object's life, only if it is ever applied to.
   * Both are conditional on the version last seen; on a 409 (another writer,
   * often a controller writing status) the object is read again and the step
   * retried, at most HAND_OVER_ATTEMPTS times, then the 409 is the caller's.
   */
  private async handOver<T extends KubernetesObject>(desired: T, applied: T, path: string, target: string): Promise<T> {
    const appliedFields = this.ownEntry(applied, 'Apply')?.fieldsV1 ?? {};
    const read = (): Promise<T> => this.send<T>({ method: 'GET', path, what: `read ${target}` }, false);
    let current = applied;
    let everything: FieldSet = appliedFields;
    for (let attempt = 1; ; attempt++) {
      const update = this.ownEntry(current, 'Update');
      if (!update) break;
      const apply = this.ownEntry(current, 'Apply');
      everything = unionOf(apply?.fieldsV1 ?? {}, update.fieldsV1 ?? {});
      const managed = (current.metadata?.managedFields ?? []) as ManagedFieldsEntry[];
      const handedOver = managed.filter((e) => e !== update && e !== apply).concat({ ...(apply ?? update), operation: 'Apply', time: undefined, fieldsV1: everything });
      try {
        current = await this.send<T>({
          method: 'PATCH',
          path,
          body: { metadata: { resourceVersion: current.metadata?.resourceVersion, managedFields: handedOver } },
          contentType: MediaType.mergePatch,
          what: `hand the fields ${this.context.fieldManager} set on ${target} by create or patch to its apply`,
        });
        break;
      } catch (error) {
        if (!isStatus(error, 409) || attempt >= HAND_OVER_ATTEMPTS) throw error;
        current = await read();
      }
    }
    if (covers(appliedFields, everything)) return current;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.serverSideApply<T>(path, desired, current.metadata?.resourceVersion, `apply ${target} again, without the fields it no longer sets`);
      } catch (error) {
        if (!isStatus(error, 409) || attempt >= HAND_OVER_ATTEMPTS) throw error;
        current = await read();
      }
    }
  }

  /** This field manager's entry for the object itself (not a subresource) with that operation. */
  private ownEntry(object: KubernetesObject, operation: 'Apply' | 'Update'): ManagedFieldsEntry | undefined {
    return (object.metadata?.managedFields as ManagedFieldsEntry[] | undefined)
      ?.find((e) => e.manager === this.context.fieldManager && e.operation === operation && !e.subresource);
  }

  /** Sends one request under the gate's permit; `counts` says whether it is a write (reads are bounded the same way). */
  private async send<T>(request: ApiRequest, counts = true): Promise<T> {
    if (this.signal.aborted) {
      throw new NotLeaderError(`${request.what} refused: the reconcile of ${this.key} was aborted (${reasonOf(this.signal)})`);
    }
    const permit = this.context.gate.permitFor(this.key);
    const remainingMs = permit.deadlineMs - this.context.clock.monotonicMs();
    if (counts) {
      this.writes++;
      // One debug line per write: a cross-check of the audit log, not the proof.
      this.logger.debug('write', { write: request.what, key: this.key, term: permit.term });
    }
    const { userAgent } = this.context;
    return this.context.requests.track(this.key, () => this.context.client.request<T>({
      ...request,
      signal: AbortSignal.any([permit.signal, this.signal]),
      ...(Number.isFinite(remainingMs) ? { timeoutMs: Math.max(1, Math.min(remainingMs, request.timeoutMs ?? remainingMs)) } : {}),
      userAgent: permit.term ? `${userAgent} term/${permit.term}` : userAgent,
    }));
  }
}

/**
 * The write requests in flight, per key: a drain (shutdown, a shard handed
 * over) is over only when the requests sent under the ending term have ended,
 * not merely when the reconciles that sent them gave up on them.
 */
export class InFlightRequests {
  private readonly byKey = new Map<string, number>();
  private waiters: { matches: (key: string) => boolean; resolve: () => void }[] = [];

  async track<T>(key: string, send: () => Promise<T>): Promise<T> {
    this.byKey.set(key, (this.byKey.get(key) ?? 0) + 1);
    try {
      return await send();
    } finally {
      const left = (this.byKey.get(key) ?? 1) - 1;
      if (left > 0) this.byKey.set(key, left);
      else this.byKey.delete(key);
      this.waiters = this.waiters.filter((w) => {
        if ([...this.byKey.keys()].some(w.matches)) return true;
        w.resolve();
        return false;
      });
    }
  }

  /** Requests in flight, all keys together. */
  count(): number {
    let n = 0;
    for (const count of this.byKey.values()) n += count;
    return n;
  }

  /** Resolves once no request of a matching key is in flight. */
  whenNone(matches: (key: string) => boolean = () => true): Promise<void> {
    if (![...this.byKey.keys()].some(matches)) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ matches, resolve }));
  }
}

/** Every field of `a` and of `b`. */
export function unionOf(a: FieldSet, b: FieldSet): FieldSet {
  const union: FieldSet = { ...a };
  for (const [path, below] of Object.entries(b)) union[path] = path in union ? unionOf(union[path]!, below) : below;
  return union;
}

/** Whether every field of `b` is a field of `a`. */
export function covers(a: FieldSet, b: FieldSet): boolean {
  return Object.entries(b).every(([path, below]) => path in a && covers(a[path]!, below));
}

function describe(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

function reasonOf(signal: AbortSignal): string {
  const reason = signal.reason as Error | undefined;
  return reason?.message ?? String(reason);
}
