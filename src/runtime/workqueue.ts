import { systemClock, type Clock, type Timer } from './clock.ts';
import { defaultControllerRateLimiter, type RateLimiter } from './ratelimiter.ts';

/**
 * Hooks for client-go's workqueue metrics (workqueue_adds_total,
 * workqueue_depth, workqueue_queue_duration_seconds,
 * workqueue_work_duration_seconds, workqueue_retries_total).
 */
export interface QueueMetrics {
  added(): void;
  depth(n: number): void;
  queueLatency(seconds: number): void; // from add to get
  workDuration(seconds: number): void; // from get to done
  retried(): void; // each addAfter (addRateLimited included), as client-go counts
}

export interface WorkQueueOptions {
  name: string;
  clock?: Clock;
  /** Default: defaultControllerRateLimiter on the queue's clock. */
  rateLimiter?: RateLimiter;
  metrics?: QueueMetrics;
}

export interface DrainResult {
  /** Every key that was being processed was done() before the deadline. */
  drained: boolean;
  /** Keys still waiting (ready, re-added while processing, or delayed), left for the successor. */
  leftQueued: string[];
}

/**
 * A rate-limited work queue of object keys with client-go's semantics: a key
 * waiting in the queue is held once however often it is added, a key is
 * handed to one worker at a time, and a key added while a worker has it is
 * queued again when that worker calls done().
 *
 * Where it departs from client-go, on purpose:
 * - shutDown stops handing out keys at once, while client-go's Get keeps
 *   returning queued items until the queue is empty: on SIGTERM the successor
 *   replica takes those keys from its own cache, and working on them here too
 *   would only race it.
 * - A key has one due time: add() of a key waiting for its delay takes it out
 *   of the delayed set (client-go would run it twice, kubernetes#126027), and
 *   addAfter of a key that is already queued is dropped, as it runs sooner.
 * - done() of a key that is not being processed is ignored rather than
 *   queueing it a second time.
 */
export class WorkQueue {
  readonly name: string;
  private readonly clock: Clock;
  private readonly rateLimiter: RateLimiter;
  private readonly metrics: QueueMetrics | undefined;
  /** Keys that need processing (queued, or re-added while processing), with when each was added. */
  private readonly dirty = new Map<string, number>();
  /** Keys a worker holds, with when get() handed each out. */
  private readonly processing = new Map<string, number>();
  /** Dirty keys that are not being processed, in the order they are handed out. */
  private readonly ready = new KeyFifo();
  private readonly delayed: DelayedKeys;
  private readonly waitingGets: ((key: string | undefined) => void)[] = [];
  private readonly idleListeners = new Set<() => void>();
  private shuttingDown = false;

  constructor(options: WorkQueueOptions) {
    this.name = options.name;
    this.clock = options.clock ?? systemClock;
    this.rateLimiter = options.rateLimiter ?? defaultControllerRateLimiter({ clock: this.clock });
    this.metrics = options.metrics;
    this.delayed = new DelayedKeys(this.clock, (key) => this.add(key));
  }

  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.delayed.remove(key);
    this.dirty.set(key, this.clock.monotonicMs());
    this.metrics?.added();
    this.metrics?.depth(this.dirty.size);
    if (this.processing.has(key)) return;
    this.ready.push(key);
    this.handOut();
  }

  /** Adds `key` once `delayMs` have passed; an earlier due time already set for it wins. Counted as a retry, as in client-go. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    this.metrics?.retried();
    // Written so that NaN, like zero or less, means now.
    if (!(delayMs > 0)) {
      this.add(key);
      return;
    }
    if (this.dirty.has(key)) return;
    this.delayed.schedule(key, this.clock.monotonicMs() + delayMs);
  }

  /** Adds `key` after the delay the rate limiter gives it: the retry path after a failed reconcile. */
  addRateLimited(key: string): void {
    if (this.shuttingDown) return;
    this.addAfter(key, this.rateLimiter.when(key));
  }

  /** Entries in the delayed-key heap, stale ones included (for tests: it stays within twice the delayed keys). */
  delayedHeapSize(): number {
    return this.delayed.heapSize();
  }

  /** Resets `key`'s backoff; call it after a reconcile that succeeded. */
  forget(key: string): void {
    this.rateLimiter.forget(key);
  }

  numRequeues(key: string): number {
    return this.rateLimiter.numRequeues(key);
  }

  /**
   * The next key to process, once there is one. The caller owns it until it
   * calls done(key). Resolves undefined once the queue is shut down.
   */
  get(): Promise<string | undefined> {
    if (this.shuttingDown) return Promise.resolve(undefined);
    const key = this.ready.shift();
    if (key !== undefined) return Promise.resolve(this.startProcessing(key));
    return new Promise((resolve) => this.waitingGets.push(resolve));
  }

  /** Ends processing of `key`; if it was added meanwhile, it is queued again. */
  done(key: string): void {
    const startedMs = this.processing.get(key);
    if (startedMs === undefined) return;
    this.processing.delete(key);
    this.metrics?.workDuration(this.secondsSince(startedMs));
    if (this.dirty.has(key)) {
      this.ready.push(key);
      this.handOut();
    }
    if (this.processing.size === 0) {
      for (const listener of this.idleListeners) listener();
      this.idleListeners.clear();
    }
  }

  /** Keys ready to be handed out now. */
  len(): number {
    return this.ready.length;
  }

  /** Every key that still needs processing: queued, re-added while processing, or delayed. */
  pending(): string[] {
    return [...this.dirty.keys(), ...this.delayed.keys()];
  }

  processingCount(): number {
    return this.processing.size;
  }

  /** Stops intake and hand-out at once; keys still queued stay queued (see pending()). */
  shutDown(): void {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    this.delayed.stop();
    for (const resolve of this.waitingGets.splice(0)) resolve(undefined);
  }

  /** shutDown, then waits until every key being processed is done() or `deadlineMs` from now has passed. */
  async shutDownWithDrain(deadlineMs: number): Promise<DrainResult> {
    this.shutDown();
    const drained = await this.processingFinished(deadlineMs);
    return { drained, leftQueued: this.pending() };
  }

  isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /** Seconds spent so far on all keys being processed (workqueue_unfinished_work_seconds). */
  unfinishedWorkSeconds(): number {
    let total = 0;
    for (const startedMs of this.processing.values()) total += this.secondsSince(startedMs);
    return total;
  }

  /** Seconds the longest-held key has been processed (workqueue_longest_running_processor_seconds). */
  longestRunningProcessorSeconds(): number {
    let longest = 0;
    for (const startedMs of this.processing.values()) longest = Math.max(longest, this.secondsSince(startedMs));
    return longest;
  }

  private startProcessing(key: string): string {
    const nowMs = this.clock.monotonicMs();
    const addedMs = this.dirty.get(key) ?? nowMs;
    this.dirty.delete(key);
    this.processing.set(key, nowMs);
    this.metrics?.depth(this.dirty.size);
    this.metrics?.queueLatency((nowMs - addedMs) / 1000);
    return key;
  }

  private handOut(): void {
    while (this.waitingGets.length > 0) {
      const key = this.ready.shift();
      if (key === undefined) return;
      this.waitingGets.shift()?.(this.startProcessing(key));
    }
  }

  private processingFinished(deadlineMs: number): Promise<boolean> {
    if (this.processing.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const onIdle = (): void => {
        timer.cancel();
        resolve(true);
      };
      const timer = this.clock.setTimer(() => {
        this.idleListeners.delete(onIdle);
        resolve(false);
      }, deadlineMs);
      this.idleListeners.add(onIdle);
    });
  }

  private secondsSince(startMs: number): number {
    return (this.clock.monotonicMs() - startMs) / 1000;
  }
}

/** Keys in arrival order. Array#shift copies the whole array once it is large, which a busy queue would pay per key. */
class KeyFifo {
  private items: string[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(key: string): void {
    this.items.push(key);
  }

  shift(): string | undefined {
    if (this.head === this.items.length) return undefined;
    const key = this.items[this.head++];
    // Drop the consumed prefix once it is most of the array, so memory follows the queue's length.
    if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return key;
  }
}

interface DelayedEntry {
  key: string;
  dueMs: number;
}

/**
 * Keys waiting for a due time, in a min-heap on that time, with a single timer
 * for the earliest. Moving a key's time earlier, or removing a key, leaves its
 * old entry in the heap, recognised as stale when it reaches the top, which
 * saves tracking heap positions. So that a key added and delayed again and
 * again cannot grow the heap without bound, it is rebuilt from the live
 * entries once stale ones outnumber them.
 */
class DelayedKeys {
  private readonly clock: Clock;
  private readonly onDue: (key: string) => void;
  private readonly dueMsByKey = new Map<string, number>();
  private readonly heap: DelayedEntry[] = [];
  private timer: Timer | undefined;
  private timerDueMs = Infinity;
  private stopped = false;

  constructor(clock: Clock, onDue: (key: string) => void) {
    this.clock = clock;
    this.onDue = onDue;
  }

  /** Makes `key` due at `dueMs` unless it is already due sooner. */
  schedule(key: string, dueMs: number): void {
    if (this.stopped) return;
    const current = this.dueMsByKey.get(key);
    if (current !== undefined && current <= dueMs) return;
    this.dueMsByKey.set(key, dueMs);
    this.push({ key, dueMs });
    this.compactIfStale();
    this.armTimer();
  }

  remove(key: string): void {
    if (this.dueMsByKey.delete(key)) this.compactIfStale();
  }

  heapSize(): number {
    return this.heap.length;
  }

  /** Waiting keys, soonest first. */
  keys(): string[] {
    return [...this.dueMsByKey].sort((a, b) => a[1] - b[1]).map(([key]) => key);
  }

  /** Cancels the timer so that a shut-down queue holds no timer open. */
  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = undefined;
  }

  private armTimer(): void {
    const next = this.heap[0];
    if (this.stopped || next === undefined || next.dueMs >= this.timerDueMs) return;
    this.timer?.cancel();
    this.timerDueMs = next.dueMs;
    this.timer = this.clock.setTimer(() => this.fire(), next.dueMs - this.clock.monotonicMs());
  }

  private fire(): void {
    this.timer = undefined;
    this.timerDueMs = Infinity;
    const nowMs = this.clock.monotonicMs();
    for (let next = this.heap[0]; next !== undefined && next.dueMs <= nowMs; next = this.heap[0]) {
      this.pop();
      if (this.dueMsByKey.get(next.key) !== next.dueMs) continue;
      this.dueMsByKey.delete(next.key);
      this.onDue(next.key);
    }
    this.armTimer();
  }

  /** Rebuilds the heap from its live entries once more than half of it is stale (amortised O(1) per entry). */
  private compactIfStale(): void {
    if (this.heap.length <= 64 || this.heap.length <= 2 * this.dueMsByKey.size) return;
    const live = this.heap.filter((e) => this.dueMsByKey.get(e.key) === e.dueMs);
    this.heap.length = 0;
    for (const entry of live) this.push(entry);
  }

  private push(entry: DelayedEntry): void {
    const heap = this.heap;
    heap.push(entry);
    let child = heap.length - 1;
    while (child > 0) {
      const parent = (child - 1) >> 1;
      if (heap[parent]!.dueMs <= entry.dueMs) break;
      heap[child] = heap[parent]!;
      child = parent;
    }
    heap[child] = entry;
  }

  private pop(): void {
    const heap = this.heap;
    const last = heap.pop();
    if (last === undefined || heap.length === 0) return;
    let parent = 0;
    for (;;) {
      let child = parent * 2 + 1;
      if (child >= heap.length) break;
      if (child + 1 < heap.length && heap[child + 1]!.dueMs < heap[child]!.dueMs) child++;
      if (heap[child]!.dueMs >= last.dueMs) break;
      heap[parent] = heap[child]!;
      parent = child;
    }
    heap[parent] = last;
  }
}
