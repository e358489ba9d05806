import { sleep, systemClock, type Clock } from './clock.ts';
import { describeError } from './errors.ts';
import { collectionPath, isStatus, type KubeClient } from './kube.ts';
import type { Logger } from './logging.ts';
import type { InformerMetrics } from './metrics.ts';
import { watch, type WatchEvent } from './watch.ts';

/** Which objects an informer lists and watches. */
export interface ResourceRef {
  apiVersion: string;
  kind: string;
  /** The URL name of the resource, e.g. "deployments". */
  plural: string;
  /** Watch one namespace; all namespaces when empty. */
  namespace?: string;
  labelSelector?: string;
}

export type InformerEvent<T> =
  | { type: 'added'; object: T }
  | { type: 'modified'; object: T; previous: T }
  | { type: 'deleted'; object: T }
  /** A periodic replay of a cached object, so level-triggered reconciles run even without changes. */
  | { type: 'resync'; object: T };

/** One page of a collection, as the server sent it. */
export interface RawList<T> {
  metadata?: { resourceVersion?: string; continue?: string };
  items: T[];
}

export interface InformerOptions {
  /** Lists and watches go through it (and are counted in its rest_client metrics). */
  client: KubeClient;
  resource: ResourceRef;
  logger: Logger;
  clock?: Clock;
  /** Replays every cached object this often; 0 turns it off. */
  resyncPeriodMs?: number;
  /** Reconnect backoff after an error: doubles from `initialMs` up to `maxMs`, with full jitter. */
  backoff?: { initialMs: number; maxMs: number };
  /** Page size of the initial and recovery lists. */
  pageSize?: number;
  /** Fill the cache with a streaming list (WatchList) where the server serves one; false: paged lists only. Default true. */
  streamingList?: boolean;
  /** Where relists are counted (operator_informer_relists_total): a list after the first, from the watch cache or etcd. */
  metrics?: InformerMetrics;
}

/**
 * What an informer needs of the objects it caches: their metadata as JSON
 * carries it. client-node's KubernetesObject fits, and so does a plain JSON
 * type whose timestamps are strings.
 */
export interface CachedObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; managedFields?: unknown };
}

/** Key of a namespaced object, as the work queue and the cache use it. */
export function objectKey(obj: CachedObject): string {
  const { namespace, name } = obj.metadata ?? {};
  return namespace ? `${namespace}/${name}` : (name ?? '');
}

/** closed: the server ended the watch; gone: 410; unsupported: the server serves no streaming list. */
type WatchOutcome = 'closed' | 'gone' | 'unsupported';

/** The annotation of the bookmark that ends a streaming list's initial events. */
const INITIAL_EVENTS_END = 'k8s.io/initial-events-end';

/** The Status of a watch ERROR event. */
interface WatchStatus {
  code?: number;
  message?: string;
}

class WatchError extends Error {
  override name = 'WatchError';
}

/**
 * A list + watch cache of one resource that never gives up. client-node's own
 * informer stops for good on any error other than 410; this one backs off and
 * reconnects after any error, resumes the watch from the last resourceVersion
 * it saw (bookmarks keep that fresh), and lists again only when the server
 * says that version is gone (410). A relist emits the differences from the
 * cache — including deletes that happened while it was disconnected.
 */
export class Informer<T extends CachedObject> {
  readonly resource: ResourceRef;
  private readonly client: KubeClient;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly resyncPeriodMs: number;
  private readonly backoff: { initialMs: number; maxMs: number };
  private readonly pageSize: number;
  private readonly metrics: InformerMetrics | undefined;
  private readonly store = new Map<string, T>();
  private readonly handlers = new Set<(event: InformerEvent<T>) => void>();
  private readonly stopController = new AbortController();
  private resourceVersion = '';
  private synced = false;
  private markSynced!: () => void;
  private readonly syncedPromise = new Promise<void>((resolve) => (this.markSynced = resolve));
  private running: Promise<void> | undefined;
  private failures = 0;
  private watching = false;
  private openedWatches = 0;
  /** The cache must be (re)filled before a plain watch can resume it: at start, after a 410. */
  private needList = true;
  /** Cleared once the API server refuses a streaming list. */
  private watchListSupported: boolean;
  private completedLists = 0;

  constructor(options: InformerOptions) {
    this.resource = options.resource;
    this.client = options.client;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger.child({ informer: options.resource.plural });
    this.resyncPeriodMs = options.resyncPeriodMs ?? 0;
    // client-go's reflector starts at 800 ms too but caps at 30 s, so after an API server
    // outage its caches (and every reconcile that reads them) resume up to 30 s late; the
    // study measured 18 s. With full jitter, 5 s still spreads the reconnects of many replicas.
    this.backoff = options.backoff ?? { initialMs: 800, maxMs: 5_000 };
    this.pageSize = options.pageSize ?? 500;
    this.metrics = options.metrics;
    this.watchListSupported = options.streamingList ?? true;
  }

  /** Subscribes to changes; handlers should only enqueue keys. Returns the unsubscribe function. */
  subscribe(handler: (event: InformerEvent<T>) => void): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  start(): void {
    this.running ??= this.run();
  }

  /** Stops watching; resolves once the loop has ended. The cache keeps its last contents. */
  async stop(): Promise<void> {
    this.stopController.abort(new Error('informer stopped'));
    await this.running;
  }

  /** Resolves after the first complete list. */
  whenSynced(): Promise<void> {
    return this.syncedPromise;
  }

  hasSynced(): boolean {
    return this.synced;
  }

  /**
   * Synced and a watch is open right now, so every change reaches the cache
   * within the server's delivery delay. Between a watch's end and the next
   * one (a reconnect, a relist) the cache may be behind by any amount.
   */
  isWatching(): boolean {
    return this.synced && this.watching;
  }

  /** How many full lists have completed: 1 after the first sync, one more after each relist (410). */
  get listCount(): number {
    return this.completedLists;
  }

  /** Watch requests the server has answered so far: one per connection. */
  get watchesOpened(): number {
    return this.openedWatches;
  }

  /** The resourceVersion the cache is at: from the last list, event or bookmark (client-go's LastSyncResourceVersion). */
  get lastSyncResourceVersion(): string {
    return this.resourceVersion;
  }

  get(key: string): T | undefined {
    return this.store.get(key);
  }

  list(): T[] {
    return [...this.store.values()];
  }

  keys(): string[] {
    return [...this.store.keys()];
  }

  private get stopped(): boolean {
    return this.stopController.signal.aborted;
  }

  private async run(): Promise<void> {
    const resync = this.resyncPeriodMs > 0 ? this.scheduleResync() : undefined;
    while (!this.stopped) {
      try {
        let outcome: WatchOutcome;
        if (this.needList && this.watchListSupported) {
          // The streaming list: the current state as the watch's first events, then the watch goes on.
          outcome = await this.watchOnce(true);
        } else {
          if (this.needList) await this.relist();
          outcome = await this.watchOnce(false);
        }
        if (outcome === 'gone') this.listAgain();
        this.failures = 0;
      } catch (error) {
        if (this.stopped) break;
        if (isStatus(error, 410)) {
          this.listAgain();
          continue;
        }
        const delayMs = this.nextBackoff();
        this.logger.warn(`${this.needList ? 'list' : 'watch'} of ${this.describe()} failed; retrying in ${delayMs} ms`, { error: describeError(error) });
        await sleep(this.clock, delayMs, this.stopController.signal).catch(() => undefined);
      }
    }
    resync?.cancel();
  }

  private describe(): string {
    const { apiVersion, plural, namespace } = this.resource;
    return `${plural}.${apiVersion}${namespace ? ` in ${namespace}` : ''}`;
  }

  private nextBackoff(): number {
    const ceiling = Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** Math.min(this.failures, 20));
    this.failures++;
    // Full jitter spreads the reconnects of many replicas after an apiserver restart.
    return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
  }

  /** The version the cache is at is gone from the server (410, as an answer or a watch event): list again. */
  private listAgain(): void {
    this.logger.info('watch resourceVersion is gone (410); listing again', { resourceVersion: this.resourceVersion });
    this.needList = true;
  }

  /**
   * Lists every page into the cache and emits what changed since it was last
   * filled, deletes included. The cache is updated page by page, in place:
   * a relist of 10,000 objects never holds two copies of them (a key set
   * remembers what the list has shown; the rest is deleted at its end). An
   * object listed in an early page may be newer than one in the cache not yet
   * reached: each is a state the object had.
   *
   * As client-go's reflector does, a relist first asks for the last version
   * this cache has seen (resourceVersionMatch=NotOlderThan: the API server
   * answers from its watch cache, no quorum read of etcd), and only if the
   * server cannot serve that version (410, or a version it has not reached)
   * makes a consistent read.
   */
  private async relist(): Promise<void> {
    const lastSeen = this.resourceVersion;
    if (lastSeen === '') return this.listFrom(undefined);
    try {
      await this.listFrom(lastSeen);
    } catch (error) {
      if (!isStatus(error, 410) && !(isStatus(error, 504) && /too large resource version/i.test(error.serverMessage))) throw error;
      this.logger.info('the last seen resourceVersion cannot be served; listing from etcd', { resourceVersion: lastSeen, error: error.summary });
      await this.listFrom(undefined);
    }
  }

  private async listFrom(resourceVersion: string | undefined): Promise<void> {
    const { labelSelector } = this.resource;
    const listed = new Set<string>();
    let continueToken: string | undefined;
    let listVersion: string;
    do {
      const page = await this.client.request<RawList<T>>({
        method: 'GET',
        path: this.watchPath(),
        // A continue token carries the version of the list it continues.
        query: continueToken
          ? { labelSelector, limit: this.pageSize, continue: continueToken }
          : { labelSelector, limit: this.pageSize, ...(resourceVersion ? { resourceVersion, resourceVersionMatch: 'NotOlderThan' } : {}) },
        signal: this.stopController.signal,
        what: `list ${this.describe()}`,
      });
      for (const item of page.items) this.listed(listed, item);
      continueToken = page.metadata?.continue || undefined;
      listVersion = page.metadata?.resourceVersion ?? '';
    } while (continueToken && !this.stopped);
    if (this.stopped) return;

    this.completeList(listed, listVersion, resourceVersion ? 'watch cache' : 'etcd');
  }

  /** Puts one listed object into the cache, emitting what changed. */
  private listed(listed: Set<string>, item: T): void {
    const object = this.cacheable(item);
    const key = objectKey(object);
    listed.add(key);
    const old = this.store.get(key);
    this.store.set(key, object);
    if (!old) this.emit({ type: 'added', object });
    else if (old.metadata?.resourceVersion !== object.metadata?.resourceVersion) this.emit({ type: 'modified', object, previous: old });
  }

  /** The end of a list: what it did not show is gone; the cache is at `version` and synced. */
  private completeList(listed: Set<string>, version: string, from: 'watch cache' | 'etcd'): void {
    for (const [key, object] of this.store) {
      if (listed.has(key)) continue;
      this.store.delete(key);
      this.emit({ type: 'deleted', object });
    }
    this.resourceVersion = version;
    this.needList = false;
    this.completedLists++;
    if (this.completedLists > 1) this.metrics?.relisted(from);
    this.logger.debug(`listed ${listed.size} ${this.resource.plural}`, { resourceVersion: version, from, streamed: this.watchListSupported });
    if (!this.synced) {
      this.synced = true;
      this.markSynced();
    }
  }

  /**
   * One watch request; resolves when the server ends it. With `initial`, the
   * streaming list (WatchList, client-go's default since v0.35): the server
   * sends the current state as ADDED events, then a BOOKMARK annotated
   * k8s.io/initial-events-end, and the same stream goes on as the watch —
   * one request instead of a paged list and a watch, and no list pages held
   * in memory. From the last seen version when there is one (a relist), else
   * consistent (resourceVersion "" and NotOlderThan). A server that refuses
   * the request as such (an older one, or WatchList turned off) gets paged
   * lists from then on.
   */
  private async watchOnce(initial: boolean): Promise<WatchOutcome> {
    // stop() may have come while the list before this watch was still running.
    if (this.stopped) return 'closed';
    try {
      return await this.watchStream(initial);
    } catch (error) {
      if (initial && isStatus(error, 400, 422)) {
        this.watchListSupported = false;
        this.logger.info(`the API server does not serve a streaming list of ${this.describe()}; listing in pages`, { error: error.summary });
        return 'unsupported';
      }
      throw error;
    } finally {
      this.watching = false;
    }
  }

  private async watchStream(initial: boolean): Promise<WatchOutcome> {
    let gone = false;
    const end = new AbortController();
    const signal = AbortSignal.any([this.stopController.signal, end.signal]);
    // Keys the initial events have shown, until the bookmark that ends them.
    let listing: Set<string> | undefined = initial ? new Set() : undefined;
    const from = this.resourceVersion;
    await watch<T>(this.client, {
      path: this.watchPath(),
      query: {
        ...(initial ? { sendInitialEvents: 'true', resourceVersionMatch: 'NotOlderThan' } : {}),
        resourceVersion: from,
        labelSelector: this.resource.labelSelector,
        // Like client-go: a random 5–10 minute server-side timeout spreads re-watches out.
        timeoutSeconds: 300 + Math.floor(Math.random() * 300),
      },
      signal,
      what: `${initial ? 'streaming list of' : 'watch'} ${this.describe()}`,
      clock: this.clock,
      onOpen: () => {
        this.watching = !initial;
        this.openedWatches++;
      },
    }, (event: WatchEvent<T>) => {
      if (signal.aborted) return;
      if (event.type === 'ERROR') {
        const status = event.object as unknown as WatchStatus;
        if (status.code !== 410) throw new WatchError(`watch of ${this.describe()} returned an error: ${status.message ?? JSON.stringify(status)}`);
        gone = true;
        end.abort();
        return;
      }
      if (listing) {
        if (event.type === 'BOOKMARK') {
          const annotations = (event.object as { metadata?: { annotations?: Record<string, string> } }).metadata?.annotations;
          if (annotations?.[INITIAL_EVENTS_END] !== 'true') return;
          this.completeList(listing, event.object.metadata?.resourceVersion ?? '', from ? 'watch cache' : 'etcd');
          listing = undefined;
          this.watching = true;
        } else {
          this.listed(listing, event.object);
        }
        return;
      }
      const object = this.cacheable(event.object);
      this.resourceVersion = object.metadata?.resourceVersion ?? this.resourceVersion;
      if (event.type === 'BOOKMARK') return;
      this.apply(event.type, object);
    });
    // A streaming list that cannot start from the version asked for starts again from etcd.
    if (gone && listing && from !== '') this.resourceVersion = '';
    if (listing && !gone && !this.stopped) throw new WatchError(`the streaming list of ${this.describe()} ended before its initial events did`);
    return gone ? 'gone' : 'closed';
  }

  /**
   * What the cache keeps of an object as the server sent it. apiVersion and
   * kind are set because list items carry none, and handlers and SSA callers
   * need them. metadata.managedFields is dropped (client-go's
   * TransformStripManagedFields): field ownership is the server's business
   * under server-side apply, nothing reads it from a cache, and for an
   * applied child it is a large part of the object (docs/BENCHMARKS.md,
   * resident memory).
   */
  private cacheable(raw: T): T {
    const metadata = { ...raw.metadata };
    delete metadata.managedFields;
    return { ...raw, apiVersion: this.resource.apiVersion, kind: this.resource.kind, metadata };
  }

  private apply(type: string, object: T): void {
    const key = objectKey(object);
    const previous = this.store.get(key);
    if (type === 'DELETED') {
      this.store.delete(key);
      this.emit({ type: 'deleted', object });
      return;
    }
    this.store.set(key, object);
    if (!previous) this.emit({ type: 'added', object });
    else this.emit({ type: 'modified', object, previous });
  }

  private emit(event: InformerEvent<T>): void {
    for (const handler of this.handlers) {
      try {
        handler(event);
      } catch (error) {
        this.logger.error(`an event handler of ${this.describe()} threw`, { error, key: objectKey(event.object) });
      }
    }
  }

  private scheduleResync(): { cancel(): void } {
    const tick = (): void => {
      if (this.stopped) return;
      for (const object of this.store.values()) this.emit({ type: 'resync', object });
      timer = this.clock.setTimer(tick, this.resyncPeriodMs);
    };
    let timer = this.clock.setTimer(tick, this.resyncPeriodMs);
    return { cancel: () => timer.cancel() };
  }

  private watchPath(): string {
    const { apiVersion, plural, namespace } = this.resource;
    return collectionPath(apiVersion, plural, namespace);
  }
}
