import { expect } from 'chai';
import { Writable } from 'node:stream';
import type { KubernetesObject } from '@kubernetes/client-node';

import { sleep } from '../../src/runtime/clock.ts';
import { ABORT_GRACE_MS } from '../../src/runtime/config.ts';
import {
  Controller,
  STUCK_AFTER_ABORT_MS,
  controllerOwnerKey,
  type ReconcileAction,
  type ReconcileContext,
  type WorkPermit,
} from '../../src/runtime/controller.ts';
import { NotLeaderError, ReconcileError } from '../../src/runtime/errors.ts';
import type { InformerEvent } from '../../src/runtime/informer.ts';
import { createLogger } from '../../src/runtime/logging.ts';
import { OperatorMetrics } from '../../src/runtime/metrics.ts';
import { FakeClock, settle } from '../support/fake-clock.ts';
import { sampleValue } from '../support/metrics-text.ts';

const NAME = 'widgets';

/** One call of the reconcile function, as the controller made it. */
interface Call {
  key: string;
  context: ReconcileContext;
  atMs: number;
}

/** What the reconcile does; a synchronous throw becomes a rejected reconcile, as in an async function. */
type Behaviour = (call: Call) => ReconcileAction | void | Promise<ReconcileAction | void>;

interface Harness {
  clock: FakeClock;
  metrics: OperatorMetrics;
  controller: Controller;
  calls: Call[];
  /** Every JSON log line written so far. */
  logLines(): Promise<Record<string, unknown>[]>;
  /** One sample's value, undefined when the series does not exist. */
  sample(name: string, labels?: Record<string, string>): Promise<number | undefined>;
}

interface HarnessOptions {
  behaviour?: Behaviour;
  concurrency?: number;
  reconcileTimeoutMs?: number;
  permit?: WorkPermit;
}

const harnesses: Harness[] = [];

function harness(options: HarnessOptions = {}): Harness {
  const clock = new FakeClock();
  const metrics = new OperatorMetrics();
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  const logger = createLogger({ level: 'info', format: 'json', stream });
  const calls: Call[] = [];
  const behaviour = options.behaviour ?? (() => undefined);
  const controller = new Controller({
    name: NAME,
    logger,
    metrics,
    clock,
    concurrency: options.concurrency ?? 1,
    reconcileTimeoutMs: options.reconcileTimeoutMs ?? 60_000,
    ...(options.permit ? { permit: options.permit } : {}),
    reconcile: async (key, context) => {
      const call = { key, context, atMs: clock.monotonicMs() };
      calls.push(call);
      return await behaviour(call);
    },
  });
  const h: Harness = {
    clock,
    metrics,
    controller,
    calls,
    async logLines() {
      await settle();
      return chunks.map((chunk) => JSON.parse(chunk) as Record<string, unknown>);
    },
    async sample(name, labels = { controller: NAME }) {
      const { body } = await metrics.render();
      return sampleValue(body, name, labels);
    },
  };
  harnesses.push(h);
  return h;
}

/** A promise that never settles: a reconcile stuck on something that ignores its signal. */
function forever(): Promise<never> {
  return new Promise<never>(() => undefined);
}

/** Settles once the signal aborts: a reconcile that honours its signal. */
function untilAborted(signal: AbortSignal): Promise<never> {
  return new Promise<never>((_resolve, reject) => {
    signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
  });
}

function keysOf(calls: Call[]): string[] {
  return calls.map((c) => c.key);
}

describe('Controller', () => {
  afterEach(async () => {
    // Stop every controller a test built, so no worker outlives its test.
    for (const h of harnesses.splice(0)) {
      const stopped = h.controller.shutdown(0);
      await h.clock.advance(ABORT_GRACE_MS);
      await stopped;
    }
  });

  describe('failures', () => {
    it('contains an Error, counts it, and retries the key with per-key exponential backoff', async () => {
      const h = harness({
        behaviour: (call) => {
          if (h.calls.length <= 3) throw new ReconcileError('ApplyFailed', `apply of ${call.key} failed`);
        },
      });
      h.controller.start();
      h.controller.enqueue('ns/a', 'added');
      await h.clock.advance(0);
      expect(keysOf(h.calls)).to.deep.equal(['ns/a']);
      expect(await h.sample('controller_runtime_reconcile_total', { controller: NAME, result: 'error' })).to.equal(1);
      expect(await h.sample('controller_runtime_reconcile_errors_total')).to.equal(1);
      expect(await h.sample('controller_runtime_reconcile_panics_total')).to.equal(0);
      expect(await h.sample('workqueue_retries_total', { name: NAME })).to.equal(1);

      // The default limiter waits 5 ms, then 10, then 20 before the next attempts.
      await h.clock.advance(4);
      expect(h.calls).to.have.length(1);
      await h.clock.advance(1);
      expect(h.calls).to.have.length(2);
      await h.clock.advance(100);
      expect(h.calls).to.have.length(4);
      const start = h.calls[0]!.atMs;
      expect(h.calls.map((c) => c.atMs - start)).to.deep.equal([0, 5, 15, 35]);
      expect(h.calls.map((c) => c.context.trigger)).to.deep.equal(['added', 'retry', 'retry', 'retry']);

      expect(await h.sample('controller_runtime_reconcile_total', { controller: NAME, result: 'error' })).to.equal(3);
      expect(await h.sample('controller_runtime_reconcile_total', { controller: NAME, result: 'success' })).to.equal(1);
      expect(await h.sample('controller_runtime_reconcile_errors_total')).to.equal(3);

      // Success forgets the backoff: the next failure waits the shortest delay again.
      expect(h.controller.queue.numRequeues('ns/a')).to.equal(0);
      await h.clock.advance(60_000);
      expect(h.calls).to.have.length(4);
    });

    it('does not retry a terminal error, counts it (and as an error), and runs the key again on its next change', async () => {
      const h = harness({
        behaviour: (call) => {
          if (h.calls.length === 1) throw new ReconcileError('InvalidSpec', `spec of ${call.key} is wrong`, { terminal: true });
        },
      });
      h.controller.start();
      h.controller.enqueue('ns/a', 'added');
      await h.clock.advance(0);
      expect(await h.sample('controller_runtime_terminal_reconcile_errors_total')).to.equal(1);
      expect(await h.sample('controller_runtime_reconcile_errors_total')).to.equal(1);
      expect(await h.sample('controller_runtime_reconcile_total', { controller: NAME, result: 'error' })).to.equal(1);
      expect(await h.sample('workqueue_retries_total', { name: NAME })).to.equal(0);
      await h.clock.advance(24 * 3_600_000);
      expect(keysOf(h.calls)).to.deep.equal(['ns/a']);
      const failed = (await h.logLines()).find((l) => l.message === 'reconcile failed');
      expect(failed).to.include({ reason: 'InvalidSpec', terminal: true, level: 'error' });

      h.controller.enqueue('ns/a', 'modified');
      await h.clock.advance(0);
      expect(keysOf(h.calls)).to.deep.equal(['ns/a', 'ns/a']);
      expect(await h.sample('controller_runtime_reconcile_total', { controller: NAME, result: 'success' })).to.equal(1);
    });

    it('counts a TypeError as a panic, contains it and retries the key', async () => {
      const h = harness({
        behaviour: (call) => {
          if (h.calls.length === 1) {
            const missing = undefined as unknown as { spec: { replicas: number } };
            return { requeueAfterMs: missing.spec.replicas + call.atMs };
          }
          return undefined;
        },
      });
      h.controller.start();
      h.controller.enqueue('ns/a', 'added');
      await h.clock.advance(0);
      expect(await h.sample('controller_runtime_reconcile_panics_total')).to.equal(1);
      expect(await h.sample('controller_runtime_reconcile_errors_total')).to.equal(1);
      expect(await h.sample('controller_runtime_reconcile_total', { controller: NAME, result: 'error' })).to.equal(1);

      await h.clock.advance(5);
      expect(keysOf(h.calls)).to.deep.equal(['ns/a', 'ns/a']);
      expect(h.calls[1]!.context.trigger).to.equal('retry');
      expect(await h.sample('controller_runtime_reconcile_total', { controller: NAME, result: 'success' })).to.equal(1);
      const failed = (await h.logLines()).find((l) => l.message === 'reconcile failed');
      expect(failed).to.include({ key: 'ns/a', result: 'error', reason: 'Panic' });
    });

    it('contains thrown non-Errors (a string, undefined), counts them as panics and retries', async () => {
      const thrown: unknown[] = ['plain string', undefined];
      const h = harness({
        behaviour: () => {
          if (h.calls.length <= thrown.length) throw thrown[h.calls.length - 1];
        },
      });
      h.controller.start();
      h.controller.enqueue('ns/a', 'added');
      await h.clock.advance(0);
      expect(h.calls).to.have.length(1);
      await h.clock.advance(5);
      expect(h.calls).to.have.length(2);
      await h.clock.advance(10);
      expect(h.calls).to.have.length(3);

      expect(await h.sample('controller_runtime_reconcile_total', { controller: NAME, result: 'error' })).to.equal(2);
      expect(await h.sample('controller_runtime_reconcile_errors_total')).to.equal(2);
      expect(await h.sample('controller_runtime_reconcile_panics_total')).to.equal(2);
      expect(await h.sample('controller_runtime_reconcile_total', { controller: NAME, result: 'success' })).to.equal(1);

      // The workers survived: another key still gets reconciled.
      h.controller.enqueue('ns/b', 'added');
      await h.clock.advance(0);
      expect(h.calls.at(-1)?.key).to.equal('ns/b');
    });
  });

  describe('timeouts', () => {
    it("aborts the reconcile's signal at the timeout, counts it and retries the key", async () => {
      const h = harness({
        reconcileTimeoutMs: 1000,
        behaviour: async (call) => {
          if (h.calls.length === 1) await untilAborted(call.context.signal);
        },
      });
      h.controller.start();
      h.controller.enqueue('ns/a', 'added');
      await h.clock.advance(999);
      const { signal } = h.calls[0]!.context;
      expect(signal.aborted).to.be.false;
      expect(await h.sample('controller_runtime_active_workers')).to.equal(1);

      await h.clock.advance(1);
      expect(signal.aborted).to.be.true;
      expect(signal.reason).to.be.instanceOf(ReconcileError).and.include({ reason: 'Timeout' });
      expect(await h.sample('controller_runtime_reconcile_timeouts_total')).to.equal(1);
      expect(await h.sample('controller_runtime_reconcile_errors_total')).to.equal(1);
      expect(await h.sample('controller_runtime_reconcile_panics_total')).to.equal(0);
      expect(await h.sample('controller_runtime_active_workers')).to.equal(0);

      await h.clock.advance(5);
      expect(keysOf(h.calls)).to.deep.equal(['ns/a', 'ns/a']);
      expect(h.calls[1]!.context.trigger).to.equal('retry');
      expect(h.calls[1]!.context.signal.aborted).to.be.false;
      expect(await h.sample('controller_runtime_reconcile_total', { controller: NAME, result: 'success' })).to.equal(1);
    });

    it('keeps the key of a reconcile that ignores its signal until it returns, so no retry overlaps it, and says so', async () => {
      let release!: () => void;
      const stuck = new Promise<void>((resolve) => (release = resolve));
      const h = harness({
        concurrency: 2,
        reconcileTimeoutMs: 1000,
        behaviour: async (call) => {
          if (call.key === 'ns/stuck' && h.calls.length === 1) await stuck;
        },
      });
      h.controller.start();
      h.controller.enqueue('ns/stuck', 'added');
      await h.clock.advance(1000);
      expect(h.calls[0]!.context.signal.aborted).to.be.true;
      expect(await h.sample('controller_runtime_reconcile_timeouts_total'), 'counted when it returns').to.equal(0);

      // Another key goes on on the other worker; the stuck key is neither retried nor started again.
      h.controller.enqueue('ns/next', 'added');
      h.controller.enqueue('ns/stuck', 'modified');
      await h.clock.advance(STUCK_AFTER_ABORT_MS);
      expect(keysOf(h.calls)).to.deep.equal(['ns/stuck', 'ns/next']);
      const warning = (await h.logLines()).find((l) => l.level === 'warn');
      expect(warning?.message).to.equal(`the reconcile of ns/stuck still runs ${STUCK_AFTER_ABORT_MS} ms after it was aborted; its key waits for it (and its writes are refused)`);

      // Once it returns, it counts as timed out (its writes after the abort were refused) and the key runs again.
      release();
      await h.clock.advance(0);
      expect(await h.sample('controller_runtime_reconcile_timeouts_total')).to.equal(1);
      expect(await h.sample('controller_runtime_reconcile_total', { controller: NAME, result: 'error' })).to.equal(1);
      await h.clock.advance(5);
      expect(keysOf(h.calls)).to.deep.equal(['ns/stuck', 'ns/next', 'ns/stuck']);
    });
  });

  describe('requeueAfter', () => {
    it('reconciles the key again once the delay has passed and counts requeue_after', async () => {
      const h = harness({ behaviour: () => (h.calls.length === 1 ? { requeueAfterMs: 30_000 } : undefined) });
      h.controller.start();
      h.controller.enqueue('ns/a', 'added');
      await h.clock.advance(0);
      expect(await h.sample('controller_runtime_reconcile_total', { controller: NAME, result: 'requeue_after' })).to.equal(1);
      expect(await h.sample('controller_runtime_reconcile_total', { controller: NAME, result: 'success' })).to.equal(0);

      await h.clock.advance(29_999);
      expect(h.calls).to.have.length(1);
      await h.clock.advance(1);
      expect(h.calls).to.have.length(2);
      expect(h.calls[1]!.atMs - h.calls[0]!.atMs).to.equal(30_000);
      expect(h.calls[1]!.context.trigger).to.equal('requeue');
      expect(await h.sample('controller_runtime_reconcile_total', { controller: NAME, result: 'success' })).to.equal(1);
      expect(await h.sample('controller_runtime_reconcile_errors_total')).to.equal(0);

      await h.clock.advance(120_000);
      expect(h.calls).to.have.length(2);
    });
  });

  describe('concurrency', () => {
    it('never reconciles one key on two workers at once, even with 4 workers and repeated enqueues', async () => {
      const active = new Map<string, number>();
      const maxPerKey = new Map<string, number>();
      let running = 0;
      let maxRunning = 0;
      const h = harness({
        concurrency: 4,
        behaviour: async ({ key, context }) => {
          const now = (active.get(key) ?? 0) + 1;
          active.set(key, now);
          maxPerKey.set(key, Math.max(maxPerKey.get(key) ?? 0, now));
          maxRunning = Math.max(maxRunning, ++running);
          try {
            await sleep(h.clock, 10, context.signal);
          } finally {
            active.set(key, (active.get(key) ?? 1) - 1);
            running--;
          }
        },
      });
      h.controller.start();
      for (const key of ['ns/a', 'ns/b', 'ns/c', 'ns/d', 'ns/e', 'ns/f']) h.controller.enqueue(key, 'added');
      await h.clock.advance(0);
      expect(keysOf(h.calls)).to.deep.equal(['ns/a', 'ns/b', 'ns/c', 'ns/d']);
      expect(await h.sample('controller_runtime_active_workers')).to.equal(4);

      // Keys being worked on are added again, several times, in every round.
      for (let round = 0; round < 5; round++) {
        for (let i = 0; i < 3; i++) {
          h.controller.enqueue('ns/a', 'modified');
          h.controller.enqueue('ns/b', 'modified');
        }
        await h.clock.advance(5);
      }
      await h.clock.advance(1_000);

      expect(running).to.equal(0);
      expect(maxRunning).to.equal(4);
      expect([...maxPerKey.values()].every((n) => n === 1), JSON.stringify([...maxPerKey])).to.be.true;
      // Re-adds while a key is in flight collapse into one more pass, which starts when the previous one ends.
      const starts = (key: string): number[] => h.calls.filter((c) => c.key === key).map((c) => c.atMs - h.calls[0]!.atMs);
      expect(starts('ns/a')).to.deep.equal([0, 10, 20, 30]);
      expect(starts('ns/b')).to.deep.equal([0, 10, 20, 30]);
      expect(['ns/c', 'ns/d', 'ns/e', 'ns/f'].map((key) => starts(key).length)).to.deep.equal([1, 1, 1, 1]);
    });
  });

  describe('work permits', () => {
    it('does not reconcile a key whose permit is refused, nor retry it', async () => {
      const asked: string[] = [];
      const permit: WorkPermit = {
        acquire: (key) => {
          asked.push(key);
          return key === 'ns/denied' ? undefined : new AbortController().signal;
        },
      };
      const h = harness({ permit });
      h.controller.start();
      h.controller.enqueue('ns/denied', 'added');
      h.controller.enqueue('ns/allowed', 'added');
      await h.clock.advance(0);
      expect(asked).to.deep.equal(['ns/denied', 'ns/allowed']);
      expect(keysOf(h.calls)).to.deep.equal(['ns/allowed']);

      await h.clock.advance(10 * 60_000);
      expect(keysOf(h.calls)).to.deep.equal(['ns/allowed']);
      expect(asked).to.deep.equal(['ns/denied', 'ns/allowed']);
      expect(h.controller.queue.pending()).to.deep.equal([]);
      expect(await h.sample('controller_runtime_reconcile_total', { controller: NAME, result: 'success' })).to.equal(1);
      expect(await h.sample('controller_runtime_reconcile_total', { controller: NAME, result: 'error' })).to.equal(0);
      expect(await h.sample('workqueue_retries_total', { name: NAME })).to.equal(0);
    });

    it("aborts the reconcile in flight when the permit's signal aborts, and does not retry the key", async () => {
      const permits = new Map<string, AbortController>();
      const permit: WorkPermit = {
        acquire: (key) => {
          const controller = new AbortController();
          permits.set(key, controller);
          return controller.signal;
        },
      };
      const h = harness({
        permit,
        concurrency: 1,
        reconcileTimeoutMs: 60_000,
        // Honours its signal (one that does not keeps its key: see the timeout tests).
        behaviour: (call) => (call.key === 'ns/a' ? untilAborted(call.context.signal) : undefined),
      });
      h.controller.start();
      h.controller.enqueue('ns/a', 'added');
      await h.clock.advance(100);
      const { signal } = h.calls[0]!.context;
      expect(signal.aborted).to.be.false;

      const lost = new NotLeaderError('lease lost');
      permits.get('ns/a')!.abort(lost);
      await settle();
      expect(signal.aborted).to.be.true;
      expect(signal.reason).to.equal(lost);
      expect(await h.sample('controller_runtime_active_workers')).to.equal(0);
      expect(await h.sample('controller_runtime_reconcile_timeouts_total')).to.equal(0);
      expect(await h.sample('workqueue_retries_total', { name: NAME })).to.equal(0);
      expect(h.controller.queue.pending()).to.deep.equal([]);

      await h.clock.advance(10 * 60_000);
      expect(keysOf(h.calls)).to.deep.equal(['ns/a']);

      // The one worker is free for other keys.
      h.controller.enqueue('ns/b', 'added');
      await h.clock.advance(0);
      expect(keysOf(h.calls)).to.deep.equal(['ns/a', 'ns/b']);
    });

    it('does not start a reconcile, nor hang its worker, when the permit is already aborted', async () => {
      const permit: WorkPermit = {
        acquire: (key) => (key === 'ns/lost' ? AbortSignal.abort(new NotLeaderError('lease lost')) : new AbortController().signal),
      };
      const h = harness({
        permit,
        concurrency: 1,
        behaviour: (call) => (call.key === 'ns/lost' ? forever() : undefined),
      });
      h.controller.start();
      h.controller.enqueue('ns/lost', 'added');
      h.controller.enqueue('ns/next', 'added');
      await h.clock.advance(0);
      expect(keysOf(h.calls)).to.deep.equal(['ns/next']);

      await h.clock.advance(10 * 60_000);
      expect(keysOf(h.calls)).to.deep.equal(['ns/next']);
      expect(h.controller.queue.pending()).to.deep.equal([]);
      expect(await h.sample('workqueue_retries_total', { name: NAME })).to.equal(0);
    });
  });

  describe('shutdown', () => {
    it('lets reconciles in flight finish and reports the keys left queued without running them', async () => {
      const h = harness({
        concurrency: 1,
        behaviour: async ({ context }) => {
          await sleep(h.clock, 100, context.signal);
        },
      });
      h.controller.start();
      for (const key of ['ns/a', 'ns/b', 'ns/c']) h.controller.enqueue(key, 'added');
      await h.clock.advance(40);
      expect(keysOf(h.calls)).to.deep.equal(['ns/a']);

      const report = h.controller.shutdown(1000);
      h.controller.enqueue('ns/d', 'added');
      await h.clock.advance(60);
      const result = await report;
      expect(result).to.deep.equal({ drained: true, leftQueued: ['ns/b', 'ns/c'], aborted: [], abandoned: [], durationMs: 60 });
      expect(h.calls[0]!.context.signal.aborted).to.be.false;
      expect(await h.sample('controller_runtime_reconcile_total', { controller: NAME, result: 'success' })).to.equal(1);

      await h.clock.advance(10_000);
      expect(keysOf(h.calls)).to.deep.equal(['ns/a']);
    });

    it('aborts the reconciles still running at the drain deadline, waits a grace for them, and reports those that ignore it', async () => {
      const h = harness({
        concurrency: 2,
        behaviour: async (call) => {
          // One honours its signal, one ignores it: both must be let go.
          if (call.key === 'ns/a') await untilAborted(call.context.signal);
          else await forever();
        },
      });
      h.controller.start();
      for (const key of ['ns/a', 'ns/b', 'ns/c']) h.controller.enqueue(key, 'added');
      await h.clock.advance(0);
      expect(keysOf(h.calls)).to.deep.equal(['ns/a', 'ns/b']);

      const report = h.controller.shutdown(1000);
      await h.clock.advance(999);
      expect(h.calls.some((c) => c.context.signal.aborted)).to.be.false;
      await h.clock.advance(1);
      await h.clock.advance(ABORT_GRACE_MS);
      const result = await report;
      expect(result.drained).to.be.false;
      expect([...result.aborted].sort()).to.deep.equal(['ns/a', 'ns/b']);
      expect(result.abandoned, 'the one that ignores its signal').to.deep.equal(['ns/b']);
      expect(result.leftQueued).to.deep.equal(['ns/c']);
      expect(result.durationMs).to.equal(1000 + ABORT_GRACE_MS);
      for (const call of h.calls) {
        expect(call.context.signal.aborted).to.be.true;
        expect(call.context.signal.reason).to.be.instanceOf(ReconcileError).and.include({ reason: 'Aborted' });
      }
      expect(await h.sample('controller_runtime_active_workers'), 'the abandoned one').to.equal(1);
      expect(await h.sample('controller_runtime_reconcile_timeouts_total')).to.equal(0);
      expect(keysOf(h.calls)).to.deep.equal(['ns/a', 'ns/b']);
    });
  });

  describe('owned children', () => {
    it("queues the owner of a child that changes, but not of a child's periodic resync", async () => {
      const h = harness();
      const handlers: ((event: InformerEvent<KubernetesObject>) => void)[] = [];
      const children = { resource: { apiVersion: 'v1', kind: 'ConfigMap', plural: 'configmaps' }, subscribe: (handler: (event: InformerEvent<KubernetesObject>) => void) => {
        handlers.push(handler);
        return () => undefined;
      } };
      h.controller.watchOwned(children, { apiVersion: 'example.com/v1', kind: 'Website' });
      const child: KubernetesObject = {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'a-html', namespace: 'ns', ownerReferences: [{ apiVersion: 'example.com/v1', kind: 'Website', name: 'a', uid: 'u1', controller: true }] },
      };
      h.controller.start();

      for (const handler of handlers) handler({ type: 'resync', object: child });
      // One worker takes keys in order: the marker's reconcile comes after any the resync queued.
      h.controller.enqueue('ns/marker', 'modified');
      for (const handler of handlers) handler({ type: 'modified', object: child, previous: child });
      await h.clock.advance(0);

      expect(h.calls.map((c) => [c.key, c.context.trigger])).to.deep.equal([
        ['ns/marker', 'modified'],
        ['ns/a', 'owned:ConfigMap'],
      ]);
    });
  });

  describe('logging', () => {
    it('logs each reconcile once with controller, key, reconcileID, trigger, durationMs and result', async () => {
      const h = harness({
        behaviour: async ({ context }) => {
          context.logger.info('applying');
          await sleep(h.clock, 250);
          if (h.calls.length === 2) throw new ReconcileError('ApplyFailed', 'apply refused');
        },
      });
      h.controller.start();
      h.controller.enqueue('ns/a', 'modified');
      await h.clock.advance(250);
      h.controller.enqueue('ns/a', 'resync');
      await h.clock.advance(250);

      const lines = await h.logLines();
      const own = lines.filter((l) => l.message === 'applying');
      const done = lines.filter((l) => l.message === 'reconciled');
      const failed = lines.filter((l) => l.message === 'reconcile failed');
      expect(done).to.have.length(1);
      expect(failed).to.have.length(1);

      const [first, second] = h.calls;
      expect(done[0]).to.include({
        level: 'info',
        controller: NAME,
        key: 'ns/a',
        reconcileID: first!.context.reconcileID,
        trigger: 'modified',
        durationMs: 250,
        result: 'success',
      });
      expect(failed[0]).to.include({
        level: 'error',
        controller: NAME,
        key: 'ns/a',
        reconcileID: second!.context.reconcileID,
        trigger: 'resync',
        durationMs: 250,
        result: 'error',
        reason: 'ApplyFailed',
      });
      expect(first!.context.reconcileID).to.match(/^[0-9a-f-]{36}$/);
      expect(second!.context.reconcileID).to.not.equal(first!.context.reconcileID);
      // The reconcile's own lines carry the same context.
      expect(own.map((l) => [l.controller, l.key, l.reconcileID])).to.deep.equal([
        [NAME, 'ns/a', first!.context.reconcileID],
        [NAME, 'ns/a', second!.context.reconcileID],
      ]);
    });
  });
});

describe('controllerOwnerKey', () => {
  const owner = { apiVersion: 'example.com/v1', kind: 'Website' };

  function child(ownerReferences: NonNullable<KubernetesObject['metadata']>['ownerReferences'], namespace = 'ns'): KubernetesObject {
    return { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'site-web', namespace, ownerReferences } };
  }

  const ref = { apiVersion: 'example.com/v1', kind: 'Website', name: 'site', uid: 'u1', controller: true };

  it("maps a child with a controller ownerReference to its owner's key", () => {
    expect(controllerOwnerKey(child([ref]), owner)).to.equal('ns/site');
  });

  it('matches on the group, whatever the version', () => {
    expect(controllerOwnerKey(child([{ ...ref, apiVersion: 'example.com/v1beta1' }]), owner)).to.equal('ns/site');
  });

  it('uses the controller reference, not the first one', () => {
    const other = { apiVersion: 'example.com/v1', kind: 'Website', name: 'not-controller', uid: 'u2' };
    expect(controllerOwnerKey(child([other, ref]), owner)).to.equal('ns/site');
  });

  it('gives a bare name for a cluster-scoped child', () => {
    const obj: KubernetesObject = { metadata: { name: 'c', ownerReferences: [ref] } };
    expect(controllerOwnerKey(obj, owner)).to.equal('site');
  });

  it('ignores other kinds, other groups, non-controller references and children without owners', () => {
    expect(controllerOwnerKey(child([{ ...ref, kind: 'Blog' }]), owner)).to.equal(undefined);
    expect(controllerOwnerKey(child([{ ...ref, apiVersion: 'other.example.com/v1' }]), owner)).to.equal(undefined);
    expect(controllerOwnerKey(child([{ ...ref, apiVersion: 'v1' }]), owner)).to.equal(undefined);
    expect(controllerOwnerKey(child([{ ...ref, controller: false }]), owner)).to.equal(undefined);
    expect(controllerOwnerKey(child([{ ...ref, controller: undefined }]), owner)).to.equal(undefined);
    expect(controllerOwnerKey(child(undefined), owner)).to.equal(undefined);
    expect(controllerOwnerKey(child([{ ...ref, kind: 'ConfigMap', apiVersion: 'v1' }]), { apiVersion: 'v1', kind: 'ConfigMap' }))
      .to.equal('ns/site');
  });
});
