import { isStatus, objectPath, collectionPath, type KubeClient } from './kube.ts';
import { watch, type WatchEnd, type WatchEvent } from './watch.ts';

/** A coordination.k8s.io/v1 Lease as JSON: times are MicroTime strings. */
export interface Lease {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    creationTimestamp?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: LeaseSpec;
}

export interface LeaseSpec {
  holderIdentity?: string | null;
  leaseDurationSeconds?: number | null;
  acquireTime?: string | null;
  renewTime?: string | null;
  leaseTransitions?: number | null;
}

const API_VERSION = 'coordination.k8s.io/v1';

/** A MicroTime: RFC 3339 with exactly six fractional digits (the server rejects three). */
export function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/**
 * Lease calls in one namespace. Each takes the caller's signal, so a lease
 * request ends with the campaign or the stop that made it; the client's
 * timeout (the manager gives lease calls renewDeadline) bounds the rest.
 */
export class LeaseClient {
  readonly namespace: string;
  private readonly client: KubeClient;

  constructor(client: KubeClient, namespace: string) {
    this.client = client;
    this.namespace = namespace;
  }

  /** The Lease, or undefined if there is none. */
  async read(name: string, signal?: AbortSignal): Promise<Lease | undefined> {
    try {
      return await this.client.request<Lease>({ method: 'GET', path: this.path(name), ...(signal ? { signal } : {}), what: `read lease ${this.namespace}/${name}` });
    } catch (error) {
      if (isStatus(error, 404)) return undefined;
      throw error;
    }
  }

  create(lease: Lease, signal?: AbortSignal): Promise<Lease> {
    return this.client.request<Lease>({
      method: 'POST',
      path: collectionPath(API_VERSION, 'leases', this.namespace),
      body: { apiVersion: API_VERSION, kind: 'Lease', ...lease, metadata: { ...lease.metadata, namespace: this.namespace } },
      ...(signal ? { signal } : {}),
      what: `create lease ${this.namespace}/${lease.metadata.name}`,
    });
  }

  /** PUT with the resourceVersion the lease carries: 409 if it changed since. */
  replace(lease: Lease, signal?: AbortSignal): Promise<Lease> {
    return this.client.request<Lease>({
      method: 'PUT',
      path: this.path(lease.metadata.name),
      body: { apiVersion: API_VERSION, kind: 'Lease', ...lease },
      ...(signal ? { signal } : {}),
      what: `update lease ${this.namespace}/${lease.metadata.name}`,
    });
  }

  /** Deletes the Lease; one that is already gone is no error. */
  async delete(name: string, signal?: AbortSignal): Promise<void> {
    try {
      await this.client.request({ method: 'DELETE', path: this.path(name), ...(signal ? { signal } : {}), what: `delete lease ${this.namespace}/${name}` });
    } catch (error) {
      if (!isStatus(error, 404)) throw error;
    }
  }

  /** One watch of the Leases that match `selector` (fieldSelector/labelSelector): their current state first, then every change. */
  watch(selector: { fieldSelector?: string; labelSelector?: string }, signal: AbortSignal, onEvent: (event: WatchEvent<Lease>) => void): Promise<WatchEnd> {
    return watch<Lease>(this.client, {
      path: collectionPath(API_VERSION, 'leases', this.namespace),
      query: { ...selector, timeoutSeconds: 300 + Math.floor(Math.random() * 300) },
      signal,
      what: `watch leases in ${this.namespace} (${selector.fieldSelector ?? selector.labelSelector ?? 'all'})`,
    }, onEvent);
  }

  private path(name: string): string {
    return objectPath(API_VERSION, 'leases', this.namespace, name);
  }
}
