import { expect } from 'chai';
import { Writable } from 'node:stream';
import { CoordinationV1Api, type V1LeaseSpec } from '@kubernetes/client-node';

import { systemClock, type Clock } from '../../../src/runtime/clock.ts';
import { LeaseElector, JITTER_FACTOR, type LeaseTiming } from '../../../src/runtime/elector.ts';
import { KubeClient } from '../../../src/runtime/kube.ts';
import { LeaseClient, type Lease, type LeaseSpec } from '../../../src/runtime/leases.ts';
import { createLogger } from '../../../src/runtime/logging.ts';
import { OperatorMetrics } from '../../../src/runtime/metrics.ts';
import { adminKubeConfig, freshNamespace } from '../support/cluster.ts';

/**
 * In-process LeaseElectors against the real API server. Every elector runs on
 * the system clock (or a wall-shifted copy of it), so performance.now() here
 * is the same monotonic clock the electors judge expiry by.
 */

const LEASE = 'ha-operator';
// leaseDurationSeconds is a whole number on the Lease, so the duration is too.
const TIMING: LeaseTiming = { leaseDurationMs: 2_000, renewDeadlineMs: 1_500, retryPeriodMs: 300 };
/** The longest a standby may take after expiry: one jittered poll (its watch and expiry timer usually make it ~0). */
const MAX_POLL_MS = TIMING.retryPeriodMs * JITTER_FACTOR;
/** Room for the acquisition's own GET and PUT and for a loaded machine. */
const MARGIN_MS = 300;
const MICRO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

type Verb = 'read' | 'create' | 'replace';
const VERBS: Record<string, Verb | undefined> = { read: 'read', create: 'create', replace: 'replace' };

/** One successful lease write by an elector, timed on the shared monotonic clock. */
interface LeaseWrite {
  verb: 'create' | 'replace';
  /** When the request was sent: the server applied it later. */
  sentMs: number;
  /** When the response arrived: the server applied it earlier. */
  answeredMs: number;
  spec: LeaseSpec;
}

interface Candidate {
  identity: string;
  elector: LeaseElector;
  /** Every successful create/replace of the lease by this elector, in order. */
  writes: LeaseWrite[];
  /** performance.now() at each onStartedLeading. */
  startedAt: number[];
  stoppedReasons: string[];
  /** Resolves at this candidate's next onStartedLeading with its time. */
  nextStart(): Promise<number>;
  /** Resolves at this candidate's next onStoppedLeading with its time. */
  nextStop(): Promise<number>;
  /** Resolves at the next successful write matching `predicate` (or one already made). */
  write(predicate: (w: LeaseWrite) => boolean): Promise<LeaseWrite>;
}

/** `promise`, or a rejection saying `what` if it has not settled within `ms`. */
async function deadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_resolve, reject) => (timer = setTimeout(() => reject(new Error(`${what} after ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** A clock whose wall time is shifted by `offsetMs`; monotonic time and timers are the system's. */
function wallShifted(offsetMs: number): Clock {
  return {
    monotonicMs: () => systemClock.monotonicMs(),
    wallNow: () => new Date(Date.now() + offsetMs),
    setTimer: (fn, delayMs) => systemClock.setTimer(fn, delayMs),
  };
}

describe('LeaseElector against the API server', function () {
  this.timeout(30_000);
  let namespace: string;
  let leases: CoordinationV1Api;
  let candidates: Candidate[];
  let logLines: string[];

  beforeEach(async () => {
    namespace = await freshNamespace('elector');
    leases = adminKubeConfig().makeApiClient(CoordinationV1Api);
    candidates = [];
    logLines = [];
  });

  afterEach(async function () {
    await Promise.all(candidates.map((c) => c.elector.stop(false)));
    if (this.currentTest?.state === 'failed') console.log(logLines.join(''));
  });

  /**
   * `beforeCall` is awaited before each read, create or replace of the lease
   * is sent, as a request queued behind a broken connection waits before it
   * goes out (or fails: let it throw).
   */
  function candidate(identity: string, options: {
    clock?: Clock;
    watch?: boolean;
    beforeCall?: (verb: Verb) => Promise<void>;
    /** Awaited after the server answered, before the elector sees the answer (a response held on its way back). */
    afterCall?: (verb: Verb, lease: Lease | undefined) => Promise<void>;
    /** The evidence that the holder's process ended (what the manager reads from pod status). */
    holderEnded?: (lease: Lease) => string | undefined;
    timing?: LeaseTiming;
  } = {}): Candidate {
    const writes: LeaseWrite[] = [];
    const startedAt: number[] = [];
    const stoppedReasons: string[] = [];
    const startWaiters: ((atMs: number) => void)[] = [];
    const stopWaiters: ((atMs: number) => void)[] = [];
    const writeWaiters = new Set<{ predicate: (w: LeaseWrite) => boolean; resolve: (w: LeaseWrite) => void }>();
    const record = (write: LeaseWrite): void => {
      writes.push(write);
      for (const waiter of writeWaiters) {
        if (waiter.predicate(write)) {
          writeWaiters.delete(waiter);
          waiter.resolve(write);
        }
      }
    };
    const api = new LeaseClient(new KubeClient(adminKubeConfig(), { timeoutMs: TIMING.renewDeadlineMs }), namespace);
    // Times every successful write, so bounds can be stated against what the server really holds.
    const recording = new Proxy(api, {
      get(target, property, receiver) {
        const value: unknown = Reflect.get(target, property, receiver);
        const verb = VERBS[property as string];
        if (!verb) return value;
        const call = value as (...args: unknown[]) => Promise<Lease | undefined>;
        return async (...args: unknown[]): Promise<Lease | undefined> => {
          await options.beforeCall?.(verb);
          const sentMs = performance.now();
          const lease = await call.apply(target, args);
          if (verb !== 'read' && lease) record({ verb, sentMs, answeredMs: performance.now(), spec: lease.spec ?? {} });
          await options.afterCall?.(verb, lease);
          return lease;
        };
      },
    });
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        logLines.push(chunk.toString());
        done();
      },
    });
    const elector = new LeaseElector({
      ...(options.timing ?? TIMING),
      leases: recording,
      name: LEASE,
      identity,
      watch: options.watch ?? true,
      logger: createLogger({ level: 'debug', format: 'json', stream: sink }),
      metrics: new OperatorMetrics().leaderMetrics(),
      ...(options.clock ? { clock: options.clock } : {}),
      ...(options.holderEnded ? { holderEnded: options.holderEnded } : {}),
      onStartedLeading: () => {
        const atMs = performance.now();
        startedAt.push(atMs);
        for (const resolve of startWaiters.splice(0)) resolve(atMs);
      },
      onStoppedLeading: (reason) => {
        const atMs = performance.now();
        stoppedReasons.push(reason);
        for (const resolve of stopWaiters.splice(0)) resolve(atMs);
      },
    });
    const c: Candidate = {
      identity,
      elector,
      writes,
      startedAt,
      stoppedReasons,
      nextStart: () => new Promise((resolve) => startWaiters.push(resolve)),
      nextStop: () => new Promise((resolve) => stopWaiters.push(resolve)),
      write: (predicate) => {
        const done = writes.find(predicate);
        if (done) return Promise.resolve(done);
        return new Promise((resolve) => writeWaiters.add({ predicate, resolve }));
      },
    };
    candidates.push(c);
    return c;
  }

  async function readLease(): Promise<V1LeaseSpec> {
    return (await leases.readNamespacedLease({ namespace, name: LEASE })).spec ?? {};
  }

  /** Starts `c` and resolves once it leads. */
  async function lead(c: Candidate): Promise<number> {
    const started = c.nextStart();
    c.elector.start();
    return started;
  }

  /** The first renewal by `c` sent more than `delayMs` from now: by then a standby started now has read the lease and watches it. */
  function renewalAfter(c: Candidate, delayMs: number): Promise<LeaseWrite> {
    const thresholdMs = performance.now() + delayMs;
    return c.write((w) => w.spec.holderIdentity === c.identity && w.sentMs > thresholdMs);
  }

  /** The leader's last successful renewal that the server applied. */
  function lastRenewal(c: Candidate): LeaseWrite {
    const renewals = c.writes.filter((w) => w.spec.holderIdentity === c.identity);
    expect(renewals, `${c.identity} never wrote the lease`).to.not.be.empty;
    return renewals.at(-1)!;
  }

  /**
   * Resolves once `leader` has kept renewing for longer than a standby that
   * started at `sinceMs` could possibly wait before seeing the lease expire.
   */
  function renewedThroughExpiryWindow(leader: Candidate, sinceMs: number): Promise<LeaseWrite> {
    const windowEndMs = sinceMs + TIMING.leaseDurationMs + MAX_POLL_MS + MARGIN_MS;
    return leader.write((w) => w.spec.holderIdentity === leader.identity && w.sentMs > windowEndMs);
  }

  it('lets exactly one of two electors that start together lead, and keeps it leading', async () => {
    const a = candidate('a');
    const b = candidate('b');
    const startedMs = performance.now();
    const first = Promise.race([a.nextStart().then(() => a), b.nextStart().then(() => b)]);
    a.elector.start();
    b.elector.start();
    const leader = await first;
    const standby = leader === a ? b : a;
    expect(leader.elector.isLeader()).to.be.true;
    expect(standby.elector.isLeader()).to.be.false;

    // The standby campaigns for longer than any expiry could take while the leader renews: it never leads.
    await renewedThroughExpiryWindow(leader, startedMs);
    expect(standby.startedAt, 'the standby led while the leader renewed').to.be.empty;
    expect(leader.startedAt).to.have.length(1);
    expect(leader.stoppedReasons).to.be.empty;
    expect(standby.writes.filter((w) => w.spec.holderIdentity === standby.identity)).to.be.empty;
    expect(standby.elector.observedHolder()).to.equal(leader.identity);

    const spec = await readLease();
    expect(spec.holderIdentity).to.equal(leader.identity);
    expect(spec.leaseTransitions).to.equal(0);
    expect(spec.leaseDurationSeconds).to.equal(TIMING.leaseDurationMs / 1000);
  });

  it('writes acquireTime and renewTime as MicroTimes the server accepts, keeping acquireTime across renewals', async () => {
    const a = candidate('a');
    const before = Date.now();
    await lead(a);
    const created = a.writes[0]!;
    expect(created.verb).to.equal('create');
    const renewal = await a.write((w) => w.verb === 'replace');
    const after = Date.now();

    for (const spec of [created.spec, renewal.spec, await readLease()]) {
      // The server echoes what it stored: RFC 3339 with six fractional digits.
      expect(String(spec.acquireTime)).to.match(MICRO_TIME);
      expect(String(spec.renewTime)).to.match(MICRO_TIME);
      expect(Date.parse(String(spec.renewTime))).to.be.within(before - 1, after + 1);
    }
    expect(String(renewal.spec.acquireTime)).to.equal(String(created.spec.acquireTime));
    expect(Date.parse(String(renewal.spec.renewTime))).to.be.greaterThan(Date.parse(String(created.spec.renewTime)));
    expect(renewal.spec.leaseTransitions).to.equal(0);
  });

  it('counts one leaseTransition per change of holder, none per renewal or release', async () => {
    const a = candidate('a');
    await lead(a);
    await a.write((w) => w.verb === 'replace');
    expect((await readLease()).leaseTransitions).to.equal(0);

    // a → b by release.
    const b = candidate('b');
    b.elector.start();
    await renewalAfter(a, TIMING.retryPeriodMs);
    const bLeads = b.nextStart();
    await a.elector.stop(true);
    const release = a.writes.at(-1)!;
    expect(release.spec.holderIdentity).to.equal('');
    expect(release.spec.leaseTransitions, 'a release is not a transition').to.equal(0);
    await bLeads;
    let spec = await readLease();
    expect(spec.holderIdentity).to.equal('b');
    expect(spec.leaseTransitions).to.equal(1);

    // b → c by expiry (b stops renewing without a release).
    const c = candidate('c');
    c.elector.start();
    await renewalAfter(b, TIMING.retryPeriodMs);
    const cLeads = c.nextStart();
    await b.elector.stop(false);
    await cLeads;
    spec = await readLease();
    expect(spec.holderIdentity).to.equal('c');
    expect(spec.leaseTransitions).to.equal(2);

    // Renewals by c change nothing.
    const acquired = String(spec.acquireTime);
    await c.write((w) => w.verb === 'replace' && w.spec.holderIdentity === 'c' && String(w.spec.acquireTime) === acquired);
    expect((await readLease()).leaseTransitions).to.equal(2);
  });

  it('releases on stop(true) (holder "", leaseDurationSeconds 1) and the watching standby takes over at once', async () => {
    const a = candidate('a');
    const b = candidate('b');
    await lead(a);
    b.elector.start();
    const seen = await renewalAfter(a, TIMING.retryPeriodMs);
    expect(b.startedAt).to.be.empty;

    const bLeads = b.nextStart();
    await a.elector.stop(true);
    const release = a.writes.at(-1)!;
    expect(release.spec).to.include({ holderIdentity: '', leaseDurationSeconds: 1, leaseTransitions: seen.spec.leaseTransitions });
    expect(a.stoppedReasons).to.deep.equal(['stopped']);
    expect(a.elector.isLeader()).to.be.false;

    const leadMs = await bLeads;
    const handoverMs = leadMs - release.answeredMs;
    console.log(`      handover after release: ${handoverMs.toFixed(1)} ms`);
    // Far below a lease duration: the standby acted on the release, not on expiry.
    expect(handoverMs).to.be.below(1_000);
    const spec = await readLease();
    expect(spec).to.include({ holderIdentity: 'b', leaseDurationSeconds: TIMING.leaseDurationMs / 1000, leaseTransitions: 1 });
  });

  it('after a crash-like stop(false), the standby leads leaseDuration after it last saw a change, not before', async () => {
    const a = candidate('a');
    const b = candidate('b');
    await lead(a);
    b.elector.start();
    await renewalAfter(a, TIMING.retryPeriodMs);

    const bLeads = b.nextStart();
    await a.elector.stop(false);
    expect(a.writes.at(-1)!.spec.holderIdentity, 'stop(false) must not release').to.equal('a');
    const last = lastRenewal(a);
    const leadMs = await bLeads;

    // b cannot have seen a's last renewal before a sent it, nor much after a got the answer.
    const sinceSent = leadMs - last.sentMs;
    const sinceAnswered = leadMs - last.answeredMs;
    console.log(`      takeover after the last renewal: ${sinceAnswered.toFixed(0)} ms (lease ${TIMING.leaseDurationMs} ms)`);
    expect(sinceSent, 'the standby took a lease that had not expired').to.be.greaterThan(TIMING.leaseDurationMs);
    expect(sinceAnswered).to.be.at.most(TIMING.leaseDurationMs + MAX_POLL_MS + MARGIN_MS);
    expect((await readLease()).holderIdentity).to.equal('b');
  });

  describe('with evidence that the holder\'s process ended (FAILOVER_ON_POD_STATUS)', () => {
    // Long enough that no takeover in these tests can be an expiry.
    const LONG: LeaseTiming = { leaseDurationMs: 60_000, renewDeadlineMs: 1_500, retryPeriodMs: 300 };

    it('takes the lease at once, long before it would expire, when told the holder crashed', async () => {
      let crashed = false;
      const a = candidate('a', { timing: LONG });
      const b = candidate('b', { timing: LONG, holderEnded: (lease) => (crashed && lease.spec?.holderIdentity === 'a' ? 'a\'s container terminated' : undefined) });
      await lead(a);
      b.elector.start();
      await renewalAfter(a, LONG.retryPeriodMs);
      expect(b.startedAt, 'no evidence, no takeover').to.deep.equal([]);

      const bLeads = b.nextStart();
      await a.elector.stop(false);
      crashed = true;
      // The manager's pod cache nudges the electors on every pod change.
      b.elector.nudge();
      await bLeads;
      expect((await readLease()).holderIdentity).to.equal('b');
      expect(logLines.some((l) => l.includes('taking over before the lease expires') && l.includes('a\'s container terminated'))).to.equal(true);
    });

    it('fails (409) when the holder renewed after the evidence was read: a holder that renews is alive', async () => {
      const a = candidate('a', { timing: LONG });
      await lead(a);
      const b = candidate('b', {
        timing: LONG,
        // Evidence that is wrong: a lives. Its next renewal lands between b's judgement and b's write.
        holderEnded: (lease) => (lease.spec?.holderIdentity === 'a' ? 'stale evidence' : undefined),
        beforeCall: async (verb) => {
          if (verb === 'replace') await renewalAfter(a, 0);
        },
      });
      b.elector.start();
      // Each attempt of b meets a renewal of a: two refused in a row, and a still leads.
      await deadline((async () => {
        while (logLines.filter((l) => l.includes('lease changed under us (409)')).length < 2) await renewalAfter(a, 0);
      })(), 10_000, 'b never met a 409');
      expect(b.startedAt).to.deep.equal([]);
      expect(a.elector.isLeader()).to.equal(true);
      expect((await readLease()).holderIdentity).to.equal('a');
      // b first: its next write waits for a renewal of a, which a stopped would never make.
      await b.elector.stop(false);
    });
  });

  it('stops leading at renewDeadline while a renewal hangs, without waiting for it to fail', async () => {
    let partitioned = false;
    let heal = (): void => undefined;
    const healed = new Promise<void>((resolve) => (heal = resolve));
    // Every call during the partition hangs until it heals, then fails: nothing reaches the server.
    const a = candidate('a', {
      beforeCall: async () => {
        if (!partitioned) return;
        await healed;
        throw new Error('connection reset: the request was lost in the partition');
      },
    });
    await lead(a);
    await a.write((w) => w.verb === 'replace');
    const stops = a.nextStop();
    partitioned = true;

    let stoppedMs: number;
    try {
      stoppedMs = await deadline(stops, TIMING.leaseDurationMs * 2, 'the leader still leads while its renewal hangs');
    } finally {
      heal();
    }
    const last = lastRenewal(a);
    console.log(`      stopped leading ${(stoppedMs - last.sentMs).toFixed(0)} ms after the last successful renewal was sent`);
    expect(a.stoppedReasons).to.deep.equal([`no renewal succeeded within renewDeadline (${TIMING.renewDeadlineMs} ms)`]);
    expect(a.elector.isLeader()).to.be.false;
    // The deadline runs from when the elector started that renewal, a moment before it was sent.
    expect(stoppedMs - last.sentMs).to.be.within(TIMING.renewDeadlineMs - 10, TIMING.renewDeadlineMs + MARGIN_MS);
  });

  it('judges expiry from when a read was answered, not sent: a read held up in a partition does not backdate it', async () => {
    const a = candidate('a');
    let hold: Promise<void> | undefined;
    let release = (): void => undefined;
    let onHeld = (): void => undefined;
    const held = new Promise<void>((resolve) => (onHeld = resolve));
    // Polling only, so the held read is b's only way to see the lease.
    const b = candidate('b', {
      watch: false,
      beforeCall: async (verb) => {
        if (!hold || verb !== 'read') return;
        onHeld();
        await hold;
      },
    });
    await lead(a);
    b.elector.start();
    await renewalAfter(a, TIMING.retryPeriodMs);

    hold = new Promise((resolve) => (release = resolve));
    await held;
    // The held read goes out only after a has renewed for a while longer, then stopped.
    await renewalAfter(a, TIMING.leaseDurationMs - TIMING.renewDeadlineMs + MARGIN_MS);
    const bLeads = b.nextStart();
    await a.elector.stop(false);
    const last = lastRenewal(a);
    hold = undefined;
    release();

    const leadMs = await bLeads;
    console.log(`      takeover after the last renewal: ${(leadMs - last.answeredMs).toFixed(0)} ms (lease ${TIMING.leaseDurationMs} ms)`);
    expect(leadMs - last.sentMs, 'the standby dated the record to when its read was sent').to.be.greaterThan(TIMING.leaseDurationMs);
  });

  for (const offsetMin of [10, -10]) {
    it(`a standby whose wall clock is ${offsetMin > 0 ? 'ahead' : 'behind'} by ${Math.abs(offsetMin)} minutes judges expiry by its monotonic clock`, async () => {
      const offsetMs = offsetMin * 60_000;
      const a = candidate('a');
      const b = candidate('b', { clock: wallShifted(offsetMs) });
      await lead(a);
      const bStartedMs = performance.now();
      b.elector.start();

      // A live lease: with renewTime compared to its wall clock, b would take it at once (ahead) or never (behind).
      await renewedThroughExpiryWindow(a, bStartedMs);
      expect(b.startedAt, 'the skewed standby took a live lease').to.be.empty;
      expect(a.stoppedReasons).to.be.empty;

      const bLeads = b.nextStart();
      await a.elector.stop(false);
      const last = lastRenewal(a);
      const leadMs = await bLeads;
      expect(leadMs - last.sentMs).to.be.greaterThan(TIMING.leaseDurationMs);
      expect(leadMs - last.answeredMs).to.be.at.most(TIMING.leaseDurationMs + MAX_POLL_MS + MARGIN_MS);

      // b wrote its own (shifted) wall time: the skew was real.
      const spec = await readLease();
      expect(spec.holderIdentity).to.equal('b');
      expect(Date.parse(String(spec.renewTime)) - Date.now()).to.be.closeTo(offsetMs, 5_000);
    });
  }
  it('a leader stops leading the moment its watch shows the Lease deleted, not at its next renewal', async () => {
    const a = candidate('a');
    await lead(a);
    await a.write((w) => w.verb === 'replace');
    const stops = a.nextStop();
    await leases.deleteNamespacedLease({ namespace, name: LEASE });
    await stops;
    expect(a.stoppedReasons).to.deep.equal(['the lease watch shows the lease deleted']);
  });

  it('a leader stops leading the moment its watch shows another holder', async () => {
    const a = candidate('a');
    await lead(a);
    await a.write((w) => w.verb === 'replace');
    const stops = a.nextStop();
    const current = await leases.readNamespacedLease({ namespace, name: LEASE });
    await leases.replaceNamespacedLease({ namespace, name: LEASE, body: { ...current, spec: { ...current.spec, holderIdentity: 'intruder' } } });
    await stops;
    expect(a.stoppedReasons).to.deep.equal(['the lease watch shows another holder: intruder']);
  });

  it('a standby that saw a live holder creates a deleted Lease only once that holder would have expired', async () => {
    const a = candidate('a');
    const b = candidate('b');
    await lead(a);
    b.elector.start();
    await renewalAfter(a, TIMING.retryPeriodMs);
    const bLeads = b.nextStart();
    // The leader stops renewing (a crash) and the Lease disappears with it.
    await a.elector.stop(false);
    const last = lastRenewal(a);
    await leases.deleteNamespacedLease({ namespace, name: LEASE });
    const leadMs = await bLeads;
    expect(b.writes.at(-1)?.verb).to.equal('create');
    expect(leadMs - last.sentMs, 'the standby created the Lease while the holder it saw could still be writing').to.be.greaterThan(TIMING.leaseDurationMs);
  });

  it('a standby that stopped campaigning (shutting down) does not take a released lease; another standby does', async () => {
    const a = candidate('a');
    const b = candidate('b');
    const c = candidate('c');
    await lead(a);
    b.elector.start();
    c.elector.start();
    await renewalAfter(a, TIMING.retryPeriodMs);
    b.elector.stopCampaigning();
    const cLeads = c.nextStart();
    await a.elector.stop(true);
    await cLeads;
    expect(b.startedAt).to.be.empty;
    expect(b.writes).to.be.empty;
  });

  it('a stop that comes while an acquisition is on its way still releases the lease the acquisition won', async () => {
    const a = candidate('a');
    let won!: () => void;
    const acquisitionCommitted = new Promise<void>((resolve) => (won = resolve));
    let letGo!: () => void;
    const answerHeld = new Promise<void>((resolve) => (letGo = resolve));
    const b = candidate('b', {
      afterCall: async (verb, lease) => {
        if (verb === 'read' || lease?.spec?.holderIdentity !== 'b') return;
        won();
        await answerHeld;
      },
    });
    await lead(a);
    b.elector.start();
    await renewalAfter(a, TIMING.retryPeriodMs);
    await a.elector.stop(true);
    // The server has made b the holder; b has not heard yet when it is told to stop.
    await acquisitionCommitted;
    const stopped = b.elector.stop(true);
    letGo();
    await stopped;
    expect(b.startedAt, 'b began a term while stopping').to.be.empty;
    expect((await readLease()).holderIdentity, 'the lease stays held by a replica that has stopped').to.equal('');
  });

  it('a release that meets a 409 reads the lease again and releases it if it is still the holder', async () => {
    let stopping = false;
    let bumped = false;
    const a = candidate('a', {
      beforeCall: async (verb) => {
        if (!stopping || bumped || verb !== 'replace') return;
        bumped = true;
        // Someone else touches the Lease (no change of holder) between the leader's last read and its release.
        const current = await leases.readNamespacedLease({ namespace, name: LEASE });
        await leases.replaceNamespacedLease({ namespace, name: LEASE, body: { ...current, metadata: { ...current.metadata, annotations: { touched: 'yes' } } } });
      },
    });
    await lead(a);
    await a.write((w) => w.verb === 'replace');
    stopping = true;
    await a.elector.stop(true);
    expect(bumped).to.be.true;
    expect((await readLease()).holderIdentity).to.equal('');
    expect(logLines.join('')).to.not.include('could not release');
  });

  it('a hand-over asked for in a term that then ended is not carried into the next term', async () => {
    let partitioned = false;
    let heal = (): void => undefined;
    const healed = new Promise<void>((resolve) => (heal = resolve));
    let hanging = (): void => undefined;
    const renewalHangs = new Promise<void>((resolve) => (hanging = resolve));
    const a = candidate('a', {
      beforeCall: async () => {
        if (!partitioned) return;
        hanging();
        await healed;
        throw new Error('connection reset: the request was lost in the partition');
      },
    });
    await lead(a);
    await a.write((w) => w.verb === 'replace');
    partitioned = true;
    const stops = a.nextStop();
    // A renewal hangs; the hand-over is asked for meanwhile, and the term ends at renewDeadline before it can happen.
    await renewalHangs;
    a.elector.handOver('fair share changed');
    await stops;
    const secondTerm = a.nextStart();
    partitioned = false;
    heal();
    await secondTerm;
    // Several renewals into the new term: had the old request survived, the first turn would have handed over.
    const since = performance.now();
    await a.write((w) => w.verb === 'replace' && w.sentMs > since + 3 * TIMING.retryPeriodMs);
    expect(a.stoppedReasons).to.deep.equal([`no renewal succeeded within renewDeadline (${TIMING.renewDeadlineMs} ms)`]);
    expect(a.elector.isLeader()).to.be.true;
  });
});
