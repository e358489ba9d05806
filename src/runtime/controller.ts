import { randomUUID } from 'node:crypto';
import type { KubernetesObject } from '@kubernetes/client-node';
import { systemClock, type Clock } from './clock.ts';
import { ABORT_GRACE_MS } from './config.ts';
import { ReconcileError, describeError, isPanic } from './errors.ts';
import { isStatus } from './kube.ts';
import { objectKey, type Informer, type InformerEvent } from './informer.ts';
import type { Logger } from './logging.ts';
import type { ControllerMetrics, OperatorMetrics } from './metrics.ts';
import type { RateLimiter } from './ratelimiter.ts';
import { WorkQueue, type DrainResult } from './workqueue.ts';

/** What a reconcile asks for when it succeeds: nothing (wait for the next change) or a check after a delay. */
export type ReconcileAction = { requeueAfterMs: number } | undefined;

/** How long a reconcile may go on ignoring its aborted signal before a warning says so. */
export const STUCK_AFTER_ABORT_MS = 5_000;

export interface ReconcileContext {
  /** Aborted on timeout, on loss of leadership for this key, and on shutdown after the drain deadline. */
  signal: AbortSignal;
  /** Carries controller, key and reconcileID on every line. */
  logger: Logger;
  reconcileID: string;
  /** What queued this key: added, modified, deleted, resync, owned:<Kind>, requeue, retry, elected. */
  trigger: string;
}

export type Reconcile = (key: string, context: ReconcileContext) => Promise<ReconcileAction | void>;

/**
 * Who may work on a key right now. The lease gate implements it; a replica
 * without leader election uses `alwaysPermitted`.
 */
export interface WorkPermit {
  /** A signal that aborts when this replica must stop working on `key`, or undefined if it may not start. */
  acquire(key: string): AbortSignal | undefined;
}

export const alwaysPermitted: WorkPermit = { acquire: () => new AbortController().signal };

export interface ControllerOptions {
  name: string;
  reconcile: Reconcile;
  logger: Logger;
  metrics: OperatorMetrics;
  concurrency: number;
  reconcileTimeoutMs: number;
  rateLimiter?: RateLimiter;
  permit?: WorkPermit;
  clock?: Clock;
}

export interface ShutdownReport extends DrainResult {
  durationMs: number;
  /** Reconciles still running at the deadline, which were then aborted. */
  aborted: string[];
  /** Aborted reconciles that had still not returned ABORT_GRACE_MS later (they ignore their signal). */
  abandoned: string[];
}

/**
 * Runs `reconcile` for queued keys on a fixed number of workers. Each
 * reconcile gets an AbortSignal (timeout, lost leadership, forced shutdown),
 * its failures are contained, counted and retried with per-key backoff, and
 * it is logged once with its duration and outcome. Event handlers only queue
 * keys; the reconcile reads the cache and writes through the fenced writer.
 */
export class Controller {
  readonly name: string;
  readonly queue: WorkQueue;
  private readonly reconcile: Reconcile;
  private readonly logger: Logger;
  private readonly metrics: ControllerMetrics;
  private readonly concurrency: number;
  private readonly reconcileTimeoutMs: number;
  private readonly permit: WorkPermit;
  private readonly clock: Clock;
  private readonly triggers = new Map<string, string>();
  private readonly inFlight = new Map<string, AbortController>();
  private workers: Promise<void>[] = [];
  private idleWaiters: { matches: (key: string) => boolean; resolve: () => void }[] = [];

  constructor(options: ControllerOptions) {
    this.name = options.name;
    this.reconcile = options.reconcile;
    this.logger = options.logger.child({ controller: options.name });
    this.concurrency = options.concurrency;
    this.reconcileTimeoutMs = options.reconcileTimeoutMs;
    this.permit = options.permit ?? alwaysPermitted;
    this.clock = options.clock ?? systemClock;
    this.metrics = options.metrics.controllerMetrics(options.name);
    this.metrics.maxConcurrentReconciles(options.concurrency);
    this.queue = new WorkQueue({
      name: options.name,
      clock: this.clock,
      ...(options.rateLimiter ? { rateLimiter: options.rateLimiter } : {}),
      metrics: options.metrics.queueMetrics(options.name, options.name, {
        unfinishedWorkSeconds: () => this.queue.unfinishedWorkSeconds(),
        longestRunningProcessorSeconds: () => this.queue.longestRunningProcessorSeconds(),
      }),
    });
  }

  enqueue(key: string, trigger: string): void {
    if (this.queue.isShuttingDown()) return;
    this.triggers.set(key, trigger);
    this.queue.add(key);
  }

  /** Queues every object of the primary resource as it changes. */
  watchPrimary<T extends KubernetesObject>(informer: Informer<T>): void {
    informer.subscribe((event: InformerEvent<T>) => this.enqueue(objectKey(event.object), event.type));
  }

  /**
   * Queues the controlling owner (of `owner`'s kind) of every child that changes.
   * A child's periodic resync is not a change: the primary's own resync already
   * revisits every owner, and passing the children's on would reconcile each
   * owner once more per owned kind.
   */
  watchOwned<T extends KubernetesObject>(informer: Pick<Informer<T>, 'subscribe' | 'resource'>, owner: { apiVersion: string; kind: string }): void {
    informer.subscribe((event: InformerEvent<T>) => {
      if (event.type === 'resync') return;
      const key = controllerOwnerKey(event.object, owner);
      if (key) this.enqueue(key, `owned:${informer.resource.kind}`);
    });
  }

  start(): void {
    if (this.workers.length > 0) return;
    this.workers = Array.from({ length: this.concurrency }, () => this.work());
  }

  /** Aborts the reconciles in flight for keys that match (all of them without a filter). */
  abortInFlight(reason: string, matches: (key: string) => boolean = () => true): void {
    for (const [key, controller] of this.inFlight) {
      if (matches(key)) controller.abort(new ReconcileError('Aborted', `${reason} (key ${key})`));
    }
  }

  /** Resolves once no reconcile of a matching key is running. */
  whenIdle(matches: (key: string) => boolean): Promise<void> {
    if (![...this.inFlight.keys()].some(matches)) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push({ matches, resolve }));
  }

  /**
   * Stops taking keys at once, lets reconciles in flight finish until the
   * deadline, aborts the ones still running then and waits for them to stop.
   * Keys still queued are reported, not run: the successor has them in its cache.
   */
  async shutdown(drainTimeoutMs: number): Promise<ShutdownReport> {
    const started = this.clock.monotonicMs();
    const result = await this.queue.shutDownWithDrain(drainTimeoutMs);
    const aborted = result.drained ? [] : [...this.inFlight.keys()];
    if (!result.drained) this.abortInFlight('drain deadline passed');
    // Aborted reconciles normally return at once (their requests end with the signal); one that
    // ignores its signal is left behind after a short grace, its writes refused by the closed gate.
    let timer: { cancel(): void } | undefined;
    await Promise.race([Promise.all(this.workers), new Promise<void>((resolve) => (timer = this.clock.setTimer(resolve, ABORT_GRACE_MS)))]);
    timer?.cancel();
    const abandoned = [...this.inFlight.keys()];
    return { ...result, aborted, abandoned, durationMs: this.clock.monotonicMs() - started };
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      try {
        await this.process(key);
      } finally {
        this.queue.done(key);
      }
    }
  }

  private async process(key: string): Promise<void> {
    const trigger = this.triggers.get(key) ?? 'requeue';
    this.triggers.delete(key);
    const leadership = this.permit.acquire(key);
    if (!leadership) {
      // Not ours to do now; becoming leader queues every cached key again.
      this.queue.forget(key);
      return;
    }
    const reconcileID = randomUUID();
    const logger = this.logger.child({ key, reconcileID });
    const abort = new AbortController();
    const timeout = this.clock.setTimer(
      () => abort.abort(new ReconcileError('Timeout', `reconcile of ${key} exceeded ${this.reconcileTimeoutMs} ms`)),
      this.reconcileTimeoutMs,
    );
    const onLost = (): void => abort.abort(leadership.reason);
    leadership.addEventListener('abort', onLost, { once: true });
    if (leadership.aborted) onLost();
    this.inFlight.set(key, abort);
    this.metrics.activeWorkers(1);
    const started = this.clock.monotonicMs();
    // A reconcile that ignores its signal keeps its key (no retry can overlap it) and says so.
    const stuck = this.watchForStuck(key, abort.signal, logger);
    try {
      const action = await this.runReconcile(key, { signal: abort.signal, logger, reconcileID, trigger });
      // Finished, but past its abort: its last writes may have been refused, so it did not succeed.
      if (abort.signal.aborted) throw abort.signal.reason;
      const seconds = (this.clock.monotonicMs() - started) / 1000;
      this.metrics.reconcileTime(seconds);
      this.queue.forget(key);
      if (action) {
        this.metrics.reconciled('requeue_after');
        this.queue.addAfter(key, action.requeueAfterMs);
        this.triggers.set(key, 'requeue');
      } else {
        this.metrics.reconciled('success');
      }
      logger.info('reconciled', { trigger, durationMs: round(seconds * 1000), result: action ? 'requeue_after' : 'success', ...(action ?? {}) });
    } catch (error) {
      const seconds = (this.clock.monotonicMs() - started) / 1000;
      this.metrics.reconcileTime(seconds);
      this.metrics.reconciled('error');
      this.metrics.errored();
      const timedOut = abort.signal.aborted && (abort.signal.reason as ReconcileError | undefined)?.reason === 'Timeout';
      if (timedOut) this.metrics.timedOut();
      const panicked = !abort.signal.aborted && isPanic(error);
      if (panicked) this.metrics.panicked();
      const reason = error instanceof ReconcileError ? error.reason : isStatus(error, 409) ? 'Conflict' : panicked ? 'Panic' : 'Error';
      const terminal = error instanceof ReconcileError && error.terminal && !abort.signal.aborted;
      if (terminal) this.metrics.terminal();
      // A 409 means the cache was behind the server: routine, retried once the cache has caught up.
      const level = reason === 'Conflict' || reason === 'NotLeader' ? 'info' : 'error';
      logger.log(level, 'reconcile failed', {
        trigger, durationMs: round(seconds * 1000), result: 'error', reason, ...(terminal ? { terminal: true } : {}), error: describeError(error),
      });
      logger.debug('reconcile failure in full', { error });
      if (terminal) {
        // Not retried: the next change of the object queues it again.
        this.queue.forget(key);
      } else if (!leadership.aborted) {
        // After a lost lease the key belongs to the new leader; retrying here would only be refused.
        this.queue.addRateLimited(key);
        this.triggers.set(key, 'retry');
      }
    } finally {
      stuck.cancel();
      timeout.cancel();
      leadership.removeEventListener('abort', onLost);
      this.inFlight.delete(key);
      this.metrics.activeWorkers(-1);
      this.notifyIdle();
    }
  }

  /** Warns once if the reconcile is still running STUCK_AFTER_ABORT_MS after its signal aborted. */
  private watchForStuck(key: string, signal: AbortSignal, logger: Logger): { cancel(): void } {
    let timer: { cancel(): void } | undefined;
    const onAbort = (): void => {
      timer = this.clock.setTimer(() => logger.warn(`the reconcile of ${key} still runs ${STUCK_AFTER_ABORT_MS} ms after it was aborted; `
        + 'its key waits for it (and its writes are refused)', { reason: (signal.reason as Error | undefined)?.message }), STUCK_AFTER_ABORT_MS);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    return { cancel: () => {
      signal.removeEventListener('abort', onAbort);
      timer?.cancel();
    } };
  }

  private notifyIdle(): void {
    const running = [...this.inFlight.keys()];
    this.idleWaiters = this.idleWaiters.filter((waiter) => {
      if (running.some(waiter.matches)) return true;
      waiter.resolve();
      return false;
    });
  }

  /**
   * Runs the reconcile to its end. An abort (timeout, lost lease, shutdown)
   * does not end the wait: the key stays busy until the promise settles, so a
   * retry never overlaps the attempt it replaces, and a drain that waits for
   * this key waits for the reconcile itself. The fenced writer refuses its
   * writes after the abort and its requests in flight end with the signal.
   */
  private async runReconcile(key: string, context: ReconcileContext): Promise<ReconcileAction | void> {
    // A permit that was already aborted when acquired: do not start at all.
    if (context.signal.aborted) throw context.signal.reason;
    return this.reconcile(key, context);
  }
}

/** The key of the object's controlling owner if that owner is of the given kind. */
export function controllerOwnerKey(child: KubernetesObject, owner: { apiVersion: string; kind: string }): string | undefined {
  const ref = child.metadata?.ownerReferences?.find((r) => r.controller === true);
  if (!ref || ref.kind !== owner.kind || apiGroup(ref.apiVersion) !== apiGroup(owner.apiVersion)) return undefined;
  const namespace = child.metadata?.namespace;
  return namespace ? `${namespace}/${ref.name}` : ref.name;
}

function apiGroup(apiVersion: string): string {
  return apiVersion.includes('/') ? apiVersion.split('/')[0]! : '';
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
