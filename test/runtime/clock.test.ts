import { expect } from 'chai';
import { MAX_TIMER_MS, systemClock } from '../../src/runtime/clock.ts';

describe('systemClock timers', () => {
  /** Node's timers, replaced while `run` runs: each delay asked for is recorded, the callbacks are held. */
  const delays: number[] = [];
  const callbacks: (() => void)[] = [];
  function withFakeTimers(run: () => void): void {
    const real = { setTimeout: globalThis.setTimeout, clearTimeout: globalThis.clearTimeout };
    globalThis.setTimeout = ((fn: () => void, ms?: number) => {
      delays.push(ms ?? 0);
      callbacks.push(fn);
      return callbacks.length as unknown as NodeJS.Timeout;
    }) as typeof setTimeout;
    globalThis.clearTimeout = (() => undefined);
    try {
      run();
    } finally {
      Object.assign(globalThis, real);
    }
  }

  beforeEach(() => {
    delays.length = 0;
    callbacks.length = 0;
  });

  it('never asks Node for more than 2^31-1 ms (which it would turn into 1 ms): a 30-day delay is chained', () => {
    let fired = false;
    withFakeTimers(() => systemClock.setTimer(() => (fired = true), 30 * 86_400_000));
    expect(delays).to.deep.equal([MAX_TIMER_MS]);
    // The first timer ends about 24.8 days early by the monotonic clock (which has not moved here): it arms again.
    withFakeTimers(() => callbacks[0]!());
    expect(fired).to.be.false;
    expect(delays).to.have.length(2);
    expect(delays[1]).to.be.at.most(MAX_TIMER_MS);
  });

  it('sets a short delay as it is', () => {
    withFakeTimers(() => systemClock.setTimer(() => undefined, 250));
    expect(delays).to.have.length(1);
    expect(delays[0]).to.be.within(249, 250);
  });
});
