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

export const systemClock: Clock = {
  monotonicMs: () => performance.now(),
  wallNow: () => new Date(),
  setTimer(fn, delayMs) {
    const handle = setTimeout(fn, Math.max(0, delayMs));
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
