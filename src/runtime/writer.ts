import {
  PatchStrategy,
  setHeaderOptions,
  type CustomObjectsApi,
  type KubernetesObjectApi,
  type EventsV1Api,
  type EventsV1Event,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { NotLeaderError } from './errors.ts';
import type { WriteGate } from './gate.ts';
import type { Logger } from './logging.ts';

/** The API clients behind the writer; reconcile code never holds them itself. */
export interface WriteClients {
  objects: KubernetesObjectApi;
  customObjects: CustomObjectsApi;
  events: EventsV1Api;
}

export interface StatusTarget {
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespace: string;
  name: string;
}

/**
 * The only way reconcile code writes to the API server. Every call first
 * asks the gate whether this replica may write for the key it reconciles,
 * and checks that the reconcile itself has not been aborted (timeout, lost
 * lease, forced shutdown) — a reconcile that ignored its signal still cannot
 * write afterwards. Writes are server-side apply under one field manager.
 */
export class FencedWriter {
  private readonly clients: WriteClients;
  private readonly gate: WriteGate;
  private readonly key: string;
  private readonly signal: AbortSignal;
  private readonly fieldManager: string;
  private readonly logger: Logger;
  /** Writes sent, for the idempotency check (a converged object costs none). */
  writes = 0;

  constructor(options: { clients: WriteClients; gate: WriteGate; key: string; signal: AbortSignal; fieldManager: string; logger: Logger }) {
    this.logger = options.logger;
    this.clients = options.clients;
    this.gate = options.gate;
    this.key = options.key;
    this.signal = options.signal;
    this.fieldManager = options.fieldManager;
  }

  /** Server-side apply of a complete desired object, taking ownership of its fields (force). */
  async apply<T extends KubernetesObject>(desired: T): Promise<T> {
    this.fence(`apply ${desired.kind} ${desired.metadata?.namespace}/${desired.metadata?.name}`);
    return this.clients.objects.patch(desired, undefined, undefined, this.fieldManager, true, PatchStrategy.ServerSideApply);
  }

  /**
   * JSON merge patch of `desired` onto the object as it was at
   * `resourceVersion` (409 if it has changed since). A merge patch replaces
   * each list it carries wholesale, which server-side apply cannot do for list
   * items another field manager owns (a Service port changed by hand is a new
   * item of `ports`, owned by whoever changed it).
   */
  async replaceLists<T extends KubernetesObject>(desired: T, resourceVersion: string): Promise<T> {
    this.fence(`merge-patch ${desired.kind} ${desired.metadata?.namespace}/${desired.metadata?.name}`);
    const body = { ...desired, metadata: { ...desired.metadata, resourceVersion } };
    return this.clients.objects.patch(body, undefined, undefined, this.fieldManager, undefined, PatchStrategy.MergePatch);
  }

  /** Server-side apply of the status subresource of a custom object. */
  async applyStatus(target: StatusTarget, status: unknown): Promise<void> {
    const { group, version, plural, kind, namespace, name } = target;
    this.fence(`apply status of ${kind} ${namespace}/${name}`);
    await this.clients.customObjects.patchNamespacedCustomObjectStatus(
      {
        group, version, plural, namespace, name,
        body: { apiVersion: `${group}/${version}`, kind, metadata: { name, namespace }, status },
        fieldManager: this.fieldManager,
        force: true,
      },
      setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
    );
  }

  async createEvent(event: EventsV1Event): Promise<void> {
    const namespace = event.metadata?.namespace ?? event.regarding?.namespace ?? 'default';
    this.fence(`create event ${event.reason ?? ''} in ${namespace}`);
    await this.clients.events.createNamespacedEvent({ namespace, body: event });
  }

  private fence(what: string): void {
    if (this.signal.aborted) {
      throw new NotLeaderError(`${what} refused: the reconcile of ${this.key} was aborted (${String((this.signal.reason as Error | undefined)?.message ?? this.signal.reason)})`);
    }
    this.gate.assertMayWrite(this.key);
    this.writes++;
    // One debug line per write lets the failover tests prove that no two replicas wrote in overlapping terms.
    this.logger.debug('write', { write: what, key: this.key });
  }
}
