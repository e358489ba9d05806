import type { Clock, Timer } from '../../src/runtime/clock.ts';

interface PendingTimer {
  dueMs: number;
  seq: number;
  fn: () => void;
}

/**
 * A clock that moves only when the test says so. `advance` fires due timers in
 * order and lets the microtasks they schedule settle between them, so code
 * that awaits after a timer observes the same ordering as with real time.
 */
export class FakeClock implements Clock {
  private nowMs: number;
  private wallOffsetMs: number;
  private seq = 0;
  private timers: PendingTimer[] = [];

  constructor(startMs = 1_000_000, wallStart = new Date('2026-01-01T00:00:00Z')) {
    this.nowMs = startMs;
    this.wallOffsetMs = wallStart.getTime() - startMs;
  }

  monotonicMs(): number {
    return this.nowMs;
  }

  wallNow(): Date {
    return new Date(this.nowMs + this.wallOffsetMs);
  }

  /** Shifts only the wall clock, as a skewed or adjusted system clock would. */
  skewWall(byMs: number): void {
    this.wallOffsetMs += byMs;
  }

  setTimer(fn: () => void, delayMs: number): Timer {
    const timer: PendingTimer = { dueMs: this.nowMs + Math.max(0, delayMs), seq: this.seq++, fn };
    this.timers.push(timer);
    return {
      cancel: () => {
        this.timers = this.timers.filter((t) => t !== timer);
      },
    };
  }

  pendingTimers(): number {
    return this.timers.length;
  }

  async advance(byMs: number): Promise<void> {
    const target = this.nowMs + byMs;
    for (;;) {
      await settle();
      const next = this.timers
        .filter((t) => t.dueMs <= target)
        .sort((a, b) => a.dueMs - b.dueMs || a.seq - b.seq)[0];
      if (!next) break;
      this.timers = this.timers.filter((t) => t !== next);
      this.nowMs = Math.max(this.nowMs, next.dueMs);
      next.fn();
    }
    this.nowMs = target;
    await settle();
  }
}

/** Lets every promise continuation that is already queued run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
