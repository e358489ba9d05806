import { systemClock, type Clock } from './clock.ts';

/**
 * Decides how long a key waits before it is retried: client-go's
 * workqueue.RateLimiter, with delays in milliseconds.
 */
export interface RateLimiter {
  /** Milliseconds `key` should wait before it is processed again; counts one more requeue. */
  when(key: string): number;
  /** Stops tracking `key`, so its next failure starts from the shortest delay again. */
  forget(key: string): void;
  /** How many times `key` has been requeued since it was last forgotten. */
  numRequeues(key: string): number;
}

export interface ExponentialBackoffOptions {
  /** Delay after the first failure; default 5 ms, as client-go. */
  baseDelayMs?: number;
  /** Longest delay; default 1000 s, as client-go. */
  maxDelayMs?: number;
}

export interface TokenBucketOptions {
  /** Tokens added per second; default 10, as client-go. */
  qps?: number;
  /** Bucket size, the number of keys let through at once after a quiet spell; default 100. */
  burst?: number;
  clock?: Clock;
}

export type DefaultControllerRateLimiterOptions = ExponentialBackoffOptions & TokenBucketOptions;

/**
 * Per-key exponential backoff: baseDelayMs * 2^failures, capped at maxDelayMs
 * (client-go's ItemExponentialFailureRateLimiter).
 */
export class ItemExponentialRateLimiter implements RateLimiter {
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  /** The fewest failures whose doubled delay would reach the cap: ceil(log2(max / base)). */
  private readonly capExponent: number;
  private readonly failures = new Map<string, number>();

  constructor(options: ExponentialBackoffOptions = {}) {
    this.baseDelayMs = options.baseDelayMs ?? 5;
    this.maxDelayMs = options.maxDelayMs ?? 1_000_000;
    requirePositive('ItemExponentialRateLimiter baseDelayMs', this.baseDelayMs);
    if (!(this.maxDelayMs >= this.baseDelayMs)) {
      throw new RangeError(
        `ItemExponentialRateLimiter maxDelayMs must be at least baseDelayMs (${this.baseDelayMs}), got ${this.maxDelayMs}`,
      );
    }
    this.capExponent = Math.ceil(Math.log2(this.maxDelayMs / this.baseDelayMs));
  }

  when(key: string): number {
    const failures = this.failures.get(key) ?? 0;
    this.failures.set(key, failures + 1);
    // Checking the exponent, not the product, means 2 is never raised to a power that overflows to Infinity.
    return failures < this.capExponent ? this.baseDelayMs * 2 ** failures : this.maxDelayMs;
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }
}

/**
 * One token bucket shared by all keys (client-go's BucketRateLimiter over
 * golang.org/x/time/rate): a burst goes through at once, after that keys are
 * spaced 1/qps apart. Each call reserves a token even if it has to wait for it,
 * so the delays of successive calls grow.
 */
export class TokenBucketRateLimiter implements RateLimiter {
  private readonly qps: number;
  private readonly burst: number;
  private readonly clock: Clock;
  /** Negative while reservations are waiting for tokens not yet added. */
  private tokens: number;
  private refilledAtMs: number;

  constructor(options: TokenBucketOptions = {}) {
    this.qps = options.qps ?? 10;
    this.burst = options.burst ?? 100;
    this.clock = options.clock ?? systemClock;
    requirePositive('TokenBucketRateLimiter qps', this.qps);
    requirePositive('TokenBucketRateLimiter burst', this.burst);
    this.tokens = this.burst;
    this.refilledAtMs = this.clock.monotonicMs();
  }

  when(_key: string): number {
    const nowMs = this.clock.monotonicMs();
    this.tokens = Math.min(this.burst, this.tokens + ((nowMs - this.refilledAtMs) * this.qps) / 1000);
    this.refilledAtMs = nowMs;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.qps) * 1000;
  }

  // The bucket is shared, not per key: there is nothing to forget or count.
  forget(_key: string): void {}

  numRequeues(_key: string): number {
    return 0;
  }
}

/** The longest delay of several limiters, each of which sees every call (client-go's MaxOfRateLimiter). */
export class MaxOfRateLimiter implements RateLimiter {
  private readonly limiters: readonly RateLimiter[];

  constructor(...limiters: RateLimiter[]) {
    this.limiters = limiters;
  }

  when(key: string): number {
    let delayMs = 0;
    for (const limiter of this.limiters) delayMs = Math.max(delayMs, limiter.when(key));
    return delayMs;
  }

  forget(key: string): void {
    for (const limiter of this.limiters) limiter.forget(key);
  }

  numRequeues(key: string): number {
    let requeues = 0;
    for (const limiter of this.limiters) requeues = Math.max(requeues, limiter.numRequeues(key));
    return requeues;
  }
}

/**
 * client-go's DefaultControllerRateLimiter: per-key backoff from 5 ms to
 * 1000 s, and an overall 10 qps / 100 burst so that many failing keys cannot
 * flood the API server.
 */
export function defaultControllerRateLimiter(options: DefaultControllerRateLimiterOptions = {}): RateLimiter {
  return new MaxOfRateLimiter(new ItemExponentialRateLimiter(options), new TokenBucketRateLimiter(options));
}

function requirePositive(what: string, value: number): void {
  if (!(value > 0 && Number.isFinite(value))) {
    throw new RangeError(`${what} must be a positive finite number, got ${value}`);
  }
}
