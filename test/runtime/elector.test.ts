import { expect } from 'chai';
import { Writable } from 'node:stream';

import { JITTER_FACTOR, LeaseElector, maxLoopTurnMs, validateLeaseTiming, type LeaseTiming } from '../../src/runtime/elector.ts';
import { LIVENESS_MARGIN_MS, electionLiveness } from '../../src/runtime/manager.ts';
import { NotLeaderError } from '../../src/runtime/errors.ts';
import { LeaseGate, shardOf, type RenewalClock } from '../../src/runtime/gate.ts';
import type { LeaseClient } from '../../src/runtime/leases.ts';
import { createLogger } from '../../src/runtime/logging.ts';
import { OperatorMetrics } from '../../src/runtime/metrics.ts';
import { FakeClock } from '../support/fake-clock.ts';

const CLIENT_GO_DEFAULTS: LeaseTiming = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };

/** The error validateLeaseTiming throws for `timing`, failing the test if it accepts it. */
function rejection(timing: LeaseTiming): RangeError {
  try {
    validateLeaseTiming(timing);
  } catch (error) {
    expect(error).to.be.instanceOf(RangeError);
    return error as RangeError;
  }
  throw new Error(`expected ${JSON.stringify(timing)} to be rejected`);
}

/** FNV-1a (32-bit) over UTF-8 bytes, written independently with BigInt as the reference. */
function referenceFnv1a(text: string): number {
  let hash = 0x811c9dc5n;
  for (const byte of new TextEncoder().encode(text)) hash = ((hash ^ BigInt(byte)) * 0x01000193n) & 0xffffffffn;
  return Number(hash);
}

/** A renewal record that the test moves by hand, as an elector would on each successful renewal. */
class Renewals implements RenewalClock {
  atMs: number;
  readonly termId: string;

  constructor(atMs: number, termId = 'lease@1') {
    this.atMs = atMs;
    this.termId = termId;
  }

  lastRenewedAtMs(): number {
    return this.atMs;
  }

  term(): string {
    return this.termId;
  }
}

/** A key of `shard` among `shards`, found by trying names in order (deterministic). */
function keyIn(shard: number, shards: number, prefix = 'ns/site'): string {
  for (let i = 0; ; i++) if (shardOf(`${prefix}-${i}`, shards) === shard) return `${prefix}-${i}`;
}

describe('validateLeaseTiming (client-go rules: leaseDuration > renewDeadline > retryPeriod × 1.2)', () => {
  it('accepts the client-go defaults and the short timings the failover tests use', () => {
    expect(() => validateLeaseTiming(CLIENT_GO_DEFAULTS)).to.not.throw();
    expect(() => validateLeaseTiming({ leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 500 })).to.not.throw();
  });

  it('uses the jitter factor of client-go', () => {
    expect(JITTER_FACTOR).to.equal(1.2);
  });

  it('rejects a renewDeadline equal to retryPeriod × 1.2 and accepts one just above it', () => {
    const error = rejection({ leaseDurationMs: 15_000, renewDeadlineMs: 600, retryPeriodMs: 500 });
    expect(error.message).to.equal('renewDeadline (600 ms) must be greater than retryPeriod × 1.2 (600 ms)');
    expect(() => validateLeaseTiming({ leaseDurationMs: 15_000, renewDeadlineMs: 601, retryPeriodMs: 500 })).to.not.throw();
  });

  it('rejects a renewDeadline below retryPeriod × 1.2, naming both values', () => {
    const error = rejection({ leaseDurationMs: 15_000, renewDeadlineMs: 2_000, retryPeriodMs: 2_000 });
    expect(error.message).to.match(/renewDeadline \(2000 ms\) must be greater than retryPeriod × 1\.2 \(2400 ms\)/);
  });

  it('rejects a leaseDuration equal to or below renewDeadline, naming both values', () => {
    expect(rejection({ leaseDurationMs: 10_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 }).message).to.equal(
      'leaseDuration (10000 ms) must be greater than renewDeadline (10000 ms)',
    );
    expect(rejection({ leaseDurationMs: 5_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 }).message).to.match(
      /leaseDuration \(5000 ms\) must be greater than renewDeadline \(10000 ms\)/,
    );
    expect(() => validateLeaseTiming({ leaseDurationMs: 10_001, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 })).to.not.throw();
  });

  it('rejects a retryPeriod that is zero, negative or not a number', () => {
    for (const retryPeriodMs of [0, -1, Number.NaN]) {
      expect(rejection({ leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs }).message).to.equal(
        `retryPeriod must be > 0 (got ${retryPeriodMs} ms)`,
      );
    }
  });

  it('rejects durations that are not numbers rather than letting NaN compare false everywhere', () => {
    expect(() => validateLeaseTiming({ leaseDurationMs: 15_000, renewDeadlineMs: Number.NaN, retryPeriodMs: 2_000 })).to.throw(RangeError, /renewDeadline/);
    expect(() => validateLeaseTiming({ leaseDurationMs: Number.NaN, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 })).to.throw(RangeError, /leaseDuration/);
  });

  it('is enforced by the LeaseElector constructor, before it touches the API server', () => {
    const untouchable = new Proxy({}, {
      get(_target, property) {
        throw new Error(`the elector used ${String(property)} although its timing is invalid`);
      },
    });
    const logger = createLogger({ level: 'error', format: 'json', stream: new Writable({ write: (_c, _e, done) => done() }) });
    expect(() => new LeaseElector({
      leases: untouchable as LeaseClient,
      name: 'lease',
      identity: 'a',
      leaseDurationMs: 10_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      watch: true,
      logger,
      metrics: new OperatorMetrics().leaderMetrics(),
      onStartedLeading: () => undefined,
      onStoppedLeading: () => undefined,
    })).to.throw(RangeError, 'leaseDuration (10000 ms) must be greater than renewDeadline (10000 ms)');
  });
});

describe('the election loop\'s liveness (/healthz)', () => {
  const TIMING = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };
  const quiet = createLogger({ level: 'error', format: 'json', stream: new Writable({ write: (_c, _e, done) => done() }) });

  function elector(leases: Partial<LeaseClient>, clock: FakeClock): LeaseElector {
    return new LeaseElector({
      ...TIMING,
      leases: { namespace: 'ns', ...leases } as LeaseClient,
      name: 'lease',
      identity: 'a',
      watch: false,
      logger: quiet,
      metrics: new OperatorMetrics().leaderMetrics(),
      clock,
      onStartedLeading: () => undefined,
      onStoppedLeading: () => undefined,
    });
  }

  it('fails once a lease call has hung longer than the longest normal turn plus the margin — a standby\'s loop too', async () => {
    const clock = new FakeClock();
    // A call that never settles, whatever its signal says: the loop is stuck, not failing.
    const stuck = elector({ read: () => new Promise(() => undefined) }, clock);
    stuck.start();
    const limitMs = maxLoopTurnMs(TIMING) + LIVENESS_MARGIN_MS;
    expect(limitMs).to.equal(2_400 + 20_000 + 5_000);
    await clock.advance(limitMs);
    expect(electionLiveness([stuck], TIMING)).to.deep.equal({ ok: true });
    await clock.advance(1);
    expect(electionLiveness([stuck], TIMING)).to.deep.equal({
      ok: false, reason: `the election loop of lease lease has not finished a turn for ${limitMs + 1} ms (limit ${limitMs} ms)`,
    });
  });

  it('stays healthy while every lease call fails: the loop goes on turning', async () => {
    const clock = new FakeClock();
    const failing = elector({ read: () => Promise.reject(new Error('connection refused')) }, clock);
    failing.start();
    for (let i = 0; i < 30; i++) {
      await clock.advance(TIMING.retryPeriodMs * 1.2);
      expect(electionLiveness([failing], TIMING)).to.deep.equal({ ok: true });
    }
    await failing.stop(false);
  });
});

describe('shardOf', () => {
  it('is FNV-1a (32-bit) of the key: the published test vectors', () => {
    // With 2^32 shards the shard is the hash itself.
    const all = 2 ** 32;
    expect(shardOf('', all)).to.equal(0x811c9dc5);
    expect(shardOf('a', all)).to.equal(0xe40c292c);
    expect(shardOf('foobar', all)).to.equal(0xbf9cf968);
  });

  it('hashes the UTF-8 bytes of the key, as another implementation would', () => {
    for (const key of ['team/ü', 'default/hello', 'ns/名前', 'a/b'.repeat(50)]) {
      expect(shardOf(key, 2 ** 32), key).to.equal(referenceFnv1a(key));
    }
  });

  it('is pinned: the same keys land on the same shards in every process and version', () => {
    expect(['default/hello', 'team/ü', 'a', 'foobar'].map((k) => shardOf(k, 4))).to.deep.equal([1, 2, 0, 0]);
    expect(['default/hello', 'team/ü', 'a', 'foobar'].map((k) => shardOf(k, 16))).to.deep.equal([1, 6, 12, 8]);
  });

  it('puts every key on shard 0 of 1, and spreads keys over all shards within range', () => {
    const keys = Array.from({ length: 2_000 }, (_, i) => `ns-${i % 7}/website-${i}`);
    expect(new Set(keys.map((k) => shardOf(k, 1)))).to.deep.equal(new Set([0]));
    const counts = new Array<number>(8).fill(0);
    for (const key of keys) {
      const shard = shardOf(key, 8);
      expect(shard).to.be.within(0, 7);
      counts[shard]!++;
    }
    // 250 expected per shard; a hash that ignored part of the key would leave shards nearly empty.
    for (const count of counts) expect(count).to.be.within(150, 350);
  });
});

describe('LeaseGate', () => {
  const RENEW_DEADLINE_MS = 2_000;
  let clock: FakeClock;
  let gate: LeaseGate;

  beforeEach(() => {
    clock = new FakeClock();
    gate = new LeaseGate({ shards: 2, renewDeadlineMs: RENEW_DEADLINE_MS, clock });
  });

  it('refuses work and writes for a shard it has never led', () => {
    const key = keyIn(0, 2);
    expect(gate.leadsShard(0)).to.be.false;
    expect(gate.acquire(key)).to.equal(undefined);
    expect(() => gate.permitFor(key)).to.throw(NotLeaderError, `write for ${key} refused: this replica does not lead shard 0`);
  });

  it('permits the keys of a shard it leads, and only those', () => {
    const ours = keyIn(1, 2);
    const theirs = keyIn(0, 2);
    gate.started(1, new Renewals(clock.monotonicMs()));
    expect(gate.shardOf(ours)).to.equal(1);
    expect(gate.leadsShard(1)).to.be.true;
    const signal = gate.acquire(ours);
    expect(signal).to.be.instanceOf(AbortSignal);
    expect(signal!.aborted).to.be.false;
    expect(() => gate.permitFor(ours)).to.not.throw();
    expect(gate.acquire(theirs)).to.equal(undefined);
    expect(() => gate.permitFor(theirs)).to.throw(NotLeaderError, /does not lead shard 0/);
  });

  it('refuses from renewDeadline after the last renewal by the monotonic clock, and reopens on a renewal', async () => {
    const key = keyIn(0, 2);
    const renewals = new Renewals(clock.monotonicMs());
    gate.started(0, renewals);
    await clock.advance(RENEW_DEADLINE_MS - 1);
    expect(() => gate.permitFor(key)).to.not.throw();
    expect(gate.acquire(key)).to.not.equal(undefined);

    await clock.advance(1);
    expect(gate.leadsShard(0)).to.be.false;
    expect(gate.acquire(key)).to.equal(undefined);
    expect(() => gate.permitFor(key)).to.throw(
      NotLeaderError,
      `write for ${key} refused: last lease renewal of shard 0 was ${RENEW_DEADLINE_MS} ms ago (renewDeadline ${RENEW_DEADLINE_MS} ms)`,
    );

    renewals.atMs = clock.monotonicMs();
    expect(() => gate.permitFor(key)).to.not.throw();
  });

  it('gives a write the term\'s signal, identity and deadline: the last renewal plus renewDeadline', async () => {
    const key = keyIn(0, 2);
    const renewals = new Renewals(clock.monotonicMs(), 'ha-operator-0@4711');
    gate.started(0, renewals);
    await clock.advance(500);
    const permit = gate.permitFor(key);
    expect(permit.term).to.equal('ha-operator-0@4711');
    expect(permit.deadlineMs).to.equal(renewals.atMs + RENEW_DEADLINE_MS);
    expect(permit.signal).to.equal(gate.acquire(key));
    renewals.atMs = clock.monotonicMs();
    expect(gate.permitFor(key).deadlineMs, 'a renewal moves the deadline of later writes').to.equal(clock.monotonicMs() + RENEW_DEADLINE_MS);
  });

  it('ignores the wall clock: a jump of hours changes nothing', async () => {
    const key = keyIn(0, 2);
    gate.started(0, new Renewals(clock.monotonicMs()));
    clock.skewWall(3 * 3_600_000);
    expect(() => gate.permitFor(key)).to.not.throw();
    clock.skewWall(-6 * 3_600_000);
    await clock.advance(RENEW_DEADLINE_MS - 1);
    expect(() => gate.permitFor(key)).to.not.throw();
    await clock.advance(1);
    expect(() => gate.permitFor(key)).to.throw(NotLeaderError);
  });

  it('refuses before the first renewal of a term is recorded', () => {
    const key = keyIn(0, 2);
    gate.started(0, new Renewals(Number.NEGATIVE_INFINITY));
    expect(gate.acquire(key)).to.equal(undefined);
    expect(() => gate.permitFor(key)).to.throw(NotLeaderError, /last lease renewal of shard 0/);
  });

  it('aborts the signal of a term when leadership of its shard ends, with the reason', () => {
    const key = keyIn(0, 2);
    const other = keyIn(1, 2);
    gate.started(0, new Renewals(clock.monotonicMs()));
    gate.started(1, new Renewals(clock.monotonicMs()));
    const signal = gate.acquire(key)!;
    const otherSignal = gate.acquire(other)!;
    gate.stopped(0, 'another holder took the lease: b');
    expect(signal.aborted).to.be.true;
    expect(signal.reason).to.be.instanceOf(NotLeaderError);
    expect((signal.reason as Error).message).to.equal('lost leadership of shard 0: another holder took the lease: b');
    expect(otherSignal.aborted, 'the other shard is still led').to.be.false;
    expect(gate.acquire(key)).to.equal(undefined);
    expect(() => gate.permitFor(key)).to.throw(NotLeaderError, /does not lead shard 0/);
  });

  it('aborts the previous term when a new term of the same shard starts', () => {
    const key = keyIn(0, 2);
    gate.started(0, new Renewals(clock.monotonicMs()));
    const first = gate.acquire(key)!;
    gate.started(0, new Renewals(clock.monotonicMs()));
    expect(first.aborted).to.be.true;
    expect((first.reason as Error).message).to.equal('term of shard 0 replaced');
    const second = gate.acquire(key)!;
    expect(second.aborted).to.be.false;
  });

  it('close() refuses everything from then on and aborts every term signal', () => {
    const keys = [keyIn(0, 2), keyIn(1, 2)];
    gate.started(0, new Renewals(clock.monotonicMs()));
    gate.started(1, new Renewals(clock.monotonicMs()));
    const signals = keys.map((k) => gate.acquire(k)!);

    gate.close('SIGTERM');

    for (const signal of signals) {
      expect(signal.aborted).to.be.true;
      expect(signal.reason).to.be.instanceOf(NotLeaderError);
      expect((signal.reason as Error).message).to.match(/SIGTERM/);
    }
    for (const key of keys) {
      expect(gate.acquire(key)).to.equal(undefined);
      expect(() => gate.permitFor(key)).to.throw(NotLeaderError, `write for ${key} refused: the write gate is closed (SIGTERM)`);
    }
    // A term that starts after the close (a late acquisition during shutdown) does not reopen it.
    gate.started(0, new Renewals(clock.monotonicMs()));
    expect(gate.leadsShard(0)).to.be.false;
    expect(gate.acquire(keys[0]!)).to.equal(undefined);
    expect(() => gate.permitFor(keys[0]!)).to.throw(NotLeaderError, /the write gate is closed/);
  });
});
