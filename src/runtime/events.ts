import type { KubernetesObject } from '@kubernetes/client-node';
import type { Timer } from './clock.ts';
import { NotLeaderError } from './errors.ts';
import { isStatus } from './kube.ts';
import type { Logger } from './logging.ts';
import type { EventMetrics } from './metrics.ts';
import { FencedWriter, type WriterContext } from './writer.ts';

export interface EventSinkOptions {
  context: WriterContext;
  logger: Logger;
  metrics: EventMetrics;
  /** Events waiting to be sent at most; more are dropped (and counted). */
  capacity?: number;
  /** Events sent at once. */
  concurrency?: number;
}

interface Pending {
  /** The key whose reconcile recorded it: the event is written under that key's term. */
  key: string;
  event: KubernetesObject;
}

/**
 * Where reconciles record Kubernetes events, as client-go's event broadcaster
 * takes them: `record` returns at once, and the events are sent in the
 * background, a few at a time, so a reconcile never waits for them. Each one
 * is written through a FencedWriter under the term of the key that recorded
 * it — an event of a replica that no longer leads that key is dropped, not
 * sent. Events are named per occurrence (deterministic names), so one already
 * waiting is not queued twice, and one the server already has answers 409 and
 * counts as a duplicate. At most `capacity` wait: beyond that, and when a send
 * fails, the event is dropped and counted (operator_events_total) — events
 * are best effort in Kubernetes, and an operator must not grow without bound
 * when the API server is slow.
 */
export class EventSink {
  private readonly options: EventSinkOptions;
  private readonly capacity: number;
  private readonly concurrency: number;
  /** Waiting events by name, in the order they were recorded. */
  private readonly queue = new Map<string, Pending>();
  private readonly sending = new Set<string>();
  private readonly stop = new AbortController();
  private idleWaiters: (() => void)[] = [];

  constructor(options: EventSinkOptions) {
    this.options = options;
    this.capacity = options.capacity ?? 1_000;
    this.concurrency = options.concurrency ?? 4;
  }

  /** Queues `event`, recorded by the reconcile of `key`, and returns at once. */
  record(key: string, event: KubernetesObject): void {
    const name = event.metadata?.name ?? '';
    if (this.queue.has(name) || this.sending.has(name)) return;
    if (this.stop.signal.aborted || this.queue.size >= this.capacity) {
      this.options.metrics.event('dropped');
      return;
    }
    this.queue.set(name, { key, event });
    this.pump();
  }

  /** Events waiting or being sent. */
  pending(): number {
    return this.queue.size + this.sending.size;
  }

  /** Resolves once nothing is waiting or being sent. */
  whenIdle(): Promise<void> {
    if (this.pending() === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Shutdown: sends what it can within `timeoutMs`, then drops the rest
   * (counted) and refuses what comes later. Resolves with how many were dropped.
   */
  async flush(timeoutMs: number): Promise<number> {
    let timer: Timer | undefined;
    await Promise.race([this.whenIdle(), new Promise<void>((resolve) => (timer = this.options.context.clock.setTimer(resolve, timeoutMs)))]);
    timer?.cancel();
    const dropped = this.queue.size;
    for (let i = 0; i < dropped; i++) this.options.metrics.event('dropped');
    this.queue.clear();
    // Ends the sends still in flight; they count as dropped when they fail.
    this.stop.abort(new Error('the event sink was flushed on shutdown'));
    await this.whenIdle();
    return dropped;
  }

  private pump(): void {
    while (this.sending.size < this.concurrency) {
      const next = this.queue.entries().next();
      if (next.done) break;
      const [name, pending] = next.value;
      this.queue.delete(name);
      this.sending.add(name);
      void this.send(pending).finally(() => {
        this.sending.delete(name);
        this.pump();
        if (this.pending() === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
      });
    }
  }

  private async send({ key, event }: Pending): Promise<void> {
    const { context, logger, metrics } = this.options;
    const writer = new FencedWriter({ context, key, signal: this.stop.signal, logger });
    try {
      await writer.createEvent(event);
      metrics.event('sent');
    } catch (error) {
      if (isStatus(error, 409)) {
        metrics.event('duplicate');
      } else if (error instanceof NotLeaderError || (error as Error).cause instanceof NotLeaderError || this.stop.signal.aborted) {
        // Refused by the gate, or ended in flight because the term did: not this replica's to send.
        metrics.event('dropped');
      } else {
        metrics.event('failed');
        logger.debug('could not record an event', { event: event.metadata?.name, key, error: (error as Error).message });
      }
    }
  }
}
