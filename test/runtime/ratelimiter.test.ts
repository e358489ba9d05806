import { expect } from 'chai';
import {
  ItemExponentialRateLimiter,
  MaxOfRateLimiter,
  TokenBucketRateLimiter,
  defaultControllerRateLimiter,
  type RateLimiter,
} from '../../src/runtime/ratelimiter.ts';
import { FakeClock } from '../support/fake-clock.ts';

function delays(limiter: RateLimiter, key: string, count: number): number[] {
  return Array.from({ length: count }, () => limiter.when(key));
}

/** A limiter that answers a fixed delay and records what it was told. */
class FixedRateLimiter implements RateLimiter {
  readonly delayMs: number;
  readonly requeues: number;
  forgotten: string[] = [];

  constructor(delayMs: number, requeues: number) {
    this.delayMs = delayMs;
    this.requeues = requeues;
  }

  when(): number {
    return this.delayMs;
  }

  forget(key: string): void {
    this.forgotten.push(key);
  }

  numRequeues(): number {
    return this.requeues;
  }
}

describe('ItemExponentialRateLimiter', () => {
  it('doubles the delay from 5 ms per failure of the same key', () => {
    const limiter = new ItemExponentialRateLimiter();
    expect(delays(limiter, 'a', 5)).to.deep.equal([5, 10, 20, 40, 80]);
    expect(limiter.numRequeues('a')).to.equal(5);
    expect(limiter.when('b')).to.equal(5);
  });

  it('caps the delay at maxDelayMs', () => {
    const limiter = new ItemExponentialRateLimiter({ baseDelayMs: 5, maxDelayMs: 100 });
    expect(delays(limiter, 'a', 7)).to.deep.equal([5, 10, 20, 40, 80, 100, 100]);
  });

  it('caps at 1000 s by default, reached after 18 failures', () => {
    const limiter = new ItemExponentialRateLimiter();
    const all = delays(limiter, 'a', 19);
    expect(all[17]).to.equal(5 * 2 ** 17);
    expect(all[18]).to.equal(1_000_000);
  });

  it('never shrinks or overflows as the exponent passes 31 and 1024', () => {
    const limiter = new ItemExponentialRateLimiter({ baseDelayMs: 1, maxDelayMs: Number.MAX_VALUE });
    const all = delays(limiter, 'a', 1100);
    for (let i = 1; i < all.length; i++) expect(all[i]).to.be.at.least(all[i - 1]!);
    expect(all[40]).to.equal(2 ** 40);
    expect(all[1099]).to.equal(Number.MAX_VALUE);
  });

  it('starts again from the base delay after forget', () => {
    const limiter = new ItemExponentialRateLimiter();
    delays(limiter, 'a', 4);
    delays(limiter, 'b', 2);
    limiter.forget('a');
    expect(limiter.numRequeues('a')).to.equal(0);
    expect(limiter.when('a')).to.equal(5);
    expect(limiter.when('b')).to.equal(20);
  });

  it('rejects a base delay that is not positive and a cap below the base', () => {
    expect(() => new ItemExponentialRateLimiter({ baseDelayMs: 0 })).to.throw(RangeError, /baseDelayMs/);
    expect(() => new ItemExponentialRateLimiter({ baseDelayMs: 10, maxDelayMs: 5 })).to.throw(RangeError, /maxDelayMs/);
  });
});

describe('TokenBucketRateLimiter', () => {
  it('lets a burst through, then spaces keys 1/qps apart', () => {
    const limiter = new TokenBucketRateLimiter({ qps: 10, burst: 100, clock: new FakeClock() });
    const all = Array.from({ length: 103 }, (_, i) => limiter.when(`key-${i}`));
    expect(all.slice(0, 100).every((d) => d === 0)).to.be.true;
    expect(all.slice(100)).to.deep.equal([100, 200, 300]);
  });

  it('refills at qps, up to the burst size', async () => {
    const clock = new FakeClock();
    const limiter = new TokenBucketRateLimiter({ qps: 10, burst: 3, clock });
    delays(limiter, 'a', 3);
    await clock.advance(500);
    expect(delays(limiter, 'a', 6)).to.deep.equal([0, 0, 0, 100, 200, 300]);
    await clock.advance(3_600_000);
    expect(delays(limiter, 'a', 4)).to.deep.equal([0, 0, 0, 100]);
  });

  it('has the client-go defaults of 10 qps and a burst of 100', () => {
    const limiter = new TokenBucketRateLimiter({ clock: new FakeClock() });
    expect(delays(limiter, 'a', 101).at(-1)).to.equal(100);
  });

  it('tracks no key', () => {
    const limiter = new TokenBucketRateLimiter({ clock: new FakeClock() });
    limiter.when('a');
    expect(limiter.numRequeues('a')).to.equal(0);
  });
});

describe('MaxOfRateLimiter', () => {
  it('answers the largest delay and requeue count, and forgets in every limiter', () => {
    const short = new FixedRateLimiter(5, 7);
    const long = new FixedRateLimiter(300, 2);
    const limiter = new MaxOfRateLimiter(short, long);
    expect(limiter.when('a')).to.equal(300);
    expect(limiter.numRequeues('a')).to.equal(7);
    limiter.forget('a');
    expect(short.forgotten).to.deep.equal(['a']);
    expect(long.forgotten).to.deep.equal(['a']);
  });

  it('asks every limiter, so each keeps its own count', () => {
    const exponential = new ItemExponentialRateLimiter();
    const limiter = new MaxOfRateLimiter(new FixedRateLimiter(1000, 0), exponential);
    delays(limiter, 'a', 3);
    expect(exponential.numRequeues('a')).to.equal(3);
  });
});

describe('defaultControllerRateLimiter', () => {
  it('backs off per key and limits all keys together at 10 qps after a burst of 100', () => {
    const limiter = defaultControllerRateLimiter({ clock: new FakeClock() });
    expect(delays(limiter, 'failing', 3)).to.deep.equal([5, 10, 20]);
    const others = Array.from({ length: 97 }, (_, i) => limiter.when(`key-${i}`));
    expect(others.every((d) => d === 5)).to.be.true;
    expect(limiter.when('one-too-many')).to.equal(100);
  });

  it('passes its options to both limiters', () => {
    const clock = new FakeClock();
    const backoff = defaultControllerRateLimiter({ baseDelayMs: 1, maxDelayMs: 4, clock });
    expect(delays(backoff, 'a', 4)).to.deep.equal([1, 2, 4, 4]);
    const bucket = defaultControllerRateLimiter({ qps: 1, burst: 1, clock });
    expect(['a', 'b', 'c'].map((key) => bucket.when(key))).to.deep.equal([5, 1000, 2000]);
  });
});
