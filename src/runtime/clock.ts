/**
 * Time as the runtime sees it. Durations, deadlines and lease expiry use the
 * monotonic reading, which never jumps when the wall clock is adjusted; the
 * wall clock is only for timestamps written to the API server.
 */
export interface Clock {
  /** Monotonic milliseconds since an arbitrary origin. */
  monotonicMs(): number;
  /** Wall-clock time, for timestamps that other parties read. */
  wallNow(): Date;
  /** Runs `fn` once after `delayMs` of monotonic time. */
  setTimer(fn: () => void, delayMs: number): Timer;
}

export interface Timer {
  cancel(): void;
}

/**
 * The longest delay one Node timer takes: 2^31 − 1 ms (about 24.8 days).
 * setTimeout turns a longer one into 1 ms, so a requeue of 30 days or a long
 * resync period would spin; systemClock chains timers instead.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export const systemClock: Clock = {
  monotonicMs: () => performance.now(),
  wallNow: () => new Date(),
  setTimer(fn, delayMs) {
    const dueMs = performance.now() + Math.max(0, delayMs);
    let handle: NodeJS.Timeout;
    const arm = (): void => {
      const leftMs = dueMs - performance.now();
      handle = leftMs > MAX_TIMER_MS ? setTimeout(arm, MAX_TIMER_MS) : setTimeout(fn, Math.max(0, leftMs));
    };
    arm();
    return { cancel: () => clearTimeout(handle) };
  },
};

/** Resolves after `delayMs` on `clock`, or rejects with the signal's reason once it aborts. */
export function sleep(clock: Clock, delayMs: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = (): void => {
      timer.cancel();
      reject(signal?.reason as Error);
    };
    const timer = clock.setTimer(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, delayMs);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
