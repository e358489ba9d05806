import { expect } from 'chai';
import { ItemExponentialRateLimiter } from '../../src/runtime/ratelimiter.ts';
import { WorkQueue, type QueueMetrics } from '../../src/runtime/workqueue.ts';
import { FakeClock, settle } from '../support/fake-clock.ts';

/** A promise whose outcome the test can read without awaiting it. */
interface Watched<T> {
  settled: boolean;
  value: T | undefined;
}

function watch<T>(promise: Promise<T>): Watched<T> {
  const watched: Watched<T> = { settled: false, value: undefined };
  void promise.then((value) => {
    watched.settled = true;
    watched.value = value;
  });
  return watched;
}

class RecordedMetrics implements QueueMetrics {
  adds = 0;
  retries = 0;
  depths: number[] = [];
  queueLatencies: number[] = [];
  workDurations: number[] = [];

  added(): void {
    this.adds++;
  }
  depth(n: number): void {
    this.depths.push(n);
  }
  queueLatency(seconds: number): void {
    this.queueLatencies.push(seconds);
  }
  workDuration(seconds: number): void {
    this.workDurations.push(seconds);
  }
  retried(): void {
    this.retries++;
  }
}

describe('WorkQueue', () => {
  let clock: FakeClock;
  let queue: WorkQueue;

  beforeEach(() => {
    clock = new FakeClock();
    queue = new WorkQueue({ name: 'test', clock });
  });

  /** A worker's turn: take the next key and finish it at once. */
  async function processNext(): Promise<string | undefined> {
    const key = await queue.get();
    if (key !== undefined) queue.done(key);
    return key;
  }

  describe('add and get', () => {
    it('holds a waiting key once however often it is added', async () => {
      queue.add('a');
      queue.add('b');
      queue.add('a');
      expect(queue.len()).to.equal(2);
      expect(await queue.get()).to.equal('a');
      expect(await queue.get()).to.equal('b');
      expect(queue.len()).to.equal(0);
    });

    it('makes get() wait until a key is added', async () => {
      const next = watch(queue.get());
      await settle();
      expect(next.settled).to.be.false;
      queue.add('a');
      await settle();
      expect(next.value).to.equal('a');
      expect(queue.processingCount()).to.equal(1);
    });

    it('never hands a key to a second worker while the first holds it', async () => {
      queue.add('a');
      expect(await queue.get()).to.equal('a');
      queue.add('a');
      const second = watch(queue.get());
      await settle();
      expect(second.settled).to.be.false;
      expect(queue.len()).to.equal(0);
      expect(queue.pending()).to.deep.equal(['a']);
      queue.done('a');
      await settle();
      expect(second.value).to.equal('a');
    });

    it('queues a key re-added while processing again on done(), and only then', async () => {
      queue.add('a');
      await processNext();
      expect(queue.len()).to.equal(0);

      queue.add('a');
      await queue.get();
      queue.add('a');
      expect(queue.len()).to.equal(0);
      queue.done('a');
      expect(queue.len()).to.equal(1);
      expect(await queue.get()).to.equal('a');
    });

    it('ignores done() for a key that is not being processed', async () => {
      queue.add('a');
      await queue.get();
      queue.add('a');
      queue.done('a');
      queue.done('a');
      expect(queue.len()).to.equal(1);
    });

    it('hands keys out in the order they were added, however many pass through', async () => {
      const handedOut: string[] = [];
      for (let i = 0; i < 5000; i++) {
        queue.add(`key-${i}`);
        if (i % 3 === 0) handedOut.push((await processNext())!);
      }
      while (queue.len() > 0) handedOut.push((await processNext())!);
      expect(handedOut).to.deep.equal(Array.from({ length: 5000 }, (_, i) => `key-${i}`));
    });

    it('hands waiting workers different keys', async () => {
      const first = watch(queue.get());
      const second = watch(queue.get());
      queue.add('a');
      queue.add('b');
      await settle();
      expect([first.value, second.value]).to.deep.equal(['a', 'b']);
    });
  });

  describe('addAfter', () => {
    it('adds the key once the delay has passed', async () => {
      queue.addAfter('a', 1000);
      expect(queue.len()).to.equal(0);
      expect(queue.pending()).to.deep.equal(['a']);
      await clock.advance(999);
      expect(queue.len()).to.equal(0);
      await clock.advance(1);
      expect(queue.len()).to.equal(1);
    });

    it('adds delayed keys in the order they fall due', async () => {
      const delaysMs = [70, 20, 90, 10, 50, 30, 80, 60, 40, 100];
      for (const delayMs of delaysMs) queue.addAfter(`after-${delayMs}`, delayMs);
      await clock.advance(100);
      const handedOut = await Promise.all(delaysMs.map(() => queue.get()));
      expect(handedOut).to.deep.equal([...delaysMs].sort((a, b) => a - b).map((d) => `after-${d}`));
    });

    it('keeps the earliest time when a waiting key is delayed again', async () => {
      queue.addAfter('sooner-second', 1000);
      queue.addAfter('sooner-second', 100);
      queue.addAfter('sooner-first', 100);
      queue.addAfter('sooner-first', 1000);
      await clock.advance(100);
      expect(queue.len()).to.equal(2);
      await queue.get();
      await queue.get();
      await clock.advance(1000);
      expect(queue.len()).to.equal(0);
      expect(queue.pending()).to.deep.equal([]);
    });

    it('drops a delay for a key that is already queued, as it runs sooner', async () => {
      queue.add('a');
      queue.addAfter('a', 100);
      await processNext();
      await clock.advance(100);
      expect(queue.len()).to.equal(0);
    });

    it('takes a delayed key out of the delayed set when it is added now', async () => {
      queue.addAfter('a', 100);
      queue.add('a');
      expect(queue.pending()).to.deep.equal(['a']);
      await processNext();
      await clock.advance(100);
      expect(queue.len()).to.equal(0);
    });

    it('treats a delay of zero or less as add', () => {
      queue.addAfter('a', 0);
      queue.addAfter('b', -5);
      expect(queue.len()).to.equal(2);
    });

    it('runs a key again after its requeue delay when it asked from inside its own processing', async () => {
      queue.add('a');
      await queue.get();
      queue.addAfter('a', 5000);
      queue.done('a');
      const next = watch(queue.get());
      await clock.advance(4999);
      expect(next.settled).to.be.false;
      await clock.advance(1);
      expect(next.value).to.equal('a');
    });
  });

  describe('addRateLimited', () => {
    it('delays each retry by the rate limiter and starts over after forget', async () => {
      queue = new WorkQueue({ name: 'test', clock, rateLimiter: new ItemExponentialRateLimiter() });
      const retryAndTime = async (): Promise<number> => {
        const startMs = clock.monotonicMs();
        queue.addRateLimited('a');
        while (queue.len() === 0) await clock.advance(1);
        await processNext();
        return clock.monotonicMs() - startMs;
      };
      expect([await retryAndTime(), await retryAndTime(), await retryAndTime()]).to.deep.equal([5, 10, 20]);
      expect(queue.numRequeues('a')).to.equal(3);
      queue.forget('a');
      expect(queue.numRequeues('a')).to.equal(0);
      expect(await retryAndTime()).to.equal(5);
    });

    it('uses client-go’s default controller rate limiter, on the queue’s clock, when given none', async () => {
      queue.addRateLimited('a');
      await clock.advance(4);
      expect(queue.len()).to.equal(0);
      await clock.advance(1);
      expect(queue.len()).to.equal(1);
      expect(queue.numRequeues('a')).to.equal(1);
    });
  });

  describe('shutDown', () => {
    it('stops intake and hand-out at once and leaves queued keys for pending()', async () => {
      queue.add('a');
      queue.add('b');
      queue.addAfter('c', 1000);
      queue.shutDown();
      expect(queue.isShuttingDown()).to.be.true;
      expect(await queue.get()).to.be.undefined;
      queue.add('d');
      queue.addAfter('e', 10);
      queue.addRateLimited('f');
      expect(queue.pending()).to.deep.equal(['a', 'b', 'c']);
      expect(clock.pendingTimers()).to.equal(0);
    });

    it('resolves waiting get() calls with undefined', async () => {
      const waiting = [watch(queue.get()), watch(queue.get())];
      queue.shutDown();
      await settle();
      expect(waiting.map((w) => [w.settled, w.value])).to.deep.equal([
        [true, undefined],
        [true, undefined],
      ]);
    });
  });

  describe('shutDownWithDrain', () => {
    it('reports drained once the keys being processed are done in time', async () => {
      queue.add('a');
      queue.add('b');
      await queue.get();
      const result = watch(queue.shutDownWithDrain(1000));
      await clock.advance(400);
      expect(result.settled).to.be.false;
      queue.done('a');
      await settle();
      expect(result.value).to.deep.equal({ drained: true, leftQueued: ['b'] });
      expect(clock.pendingTimers()).to.equal(0);
    });

    it('gives up at the deadline with the unfinished keys still being processed', async () => {
      queue.add('a');
      queue.add('b');
      await queue.get();
      queue.add('a');
      const result = watch(queue.shutDownWithDrain(1000));
      await clock.advance(999);
      expect(result.settled).to.be.false;
      await clock.advance(1);
      expect(result.value).to.deep.equal({ drained: false, leftQueued: ['b', 'a'] });
      expect(queue.processingCount()).to.equal(1);
      expect(queue.longestRunningProcessorSeconds()).to.equal(1);
    });

    it('is drained at once when nothing is being processed', async () => {
      queue.add('a');
      expect(await queue.shutDownWithDrain(1000)).to.deep.equal({ drained: true, leftQueued: ['a'] });
    });
  });

  describe('the delayed-key heap', () => {
    it('stays small when one key is delayed and then added 100,000 times', () => {
      const clock = new FakeClock();
      const queue = new WorkQueue({ name: 'heap', clock });
      for (let i = 0; i < 100_000; i++) {
        queue.addAfter('ns/a', 60_000);
        // The key runs now after all: its delayed entry goes stale.
        queue.add('ns/a');
        void queue.get().then((key) => key && queue.done(key));
      }
      expect(queue.delayedHeapSize()).to.be.at.most(64);
    });

    it('stays small when a key keeps moving its due time earlier, and still fires it once, at the earliest time', async () => {
      const clock = new FakeClock();
      const queue = new WorkQueue({ name: 'heap', clock });
      for (let i = 0; i < 10_000; i++) queue.addAfter('ns/a', 1_000_000 - i);
      expect(queue.delayedHeapSize()).to.be.at.most(64);
      await clock.advance(1_000_000 - 10_000);
      expect(queue.len()).to.equal(0);
      await clock.advance(1);
      expect(queue.len()).to.equal(1);
      await clock.advance(1_000_000);
      expect(queue.len()).to.equal(1);
    });
  });

  describe('metrics', () => {
    let metrics: RecordedMetrics;

    beforeEach(() => {
      metrics = new RecordedMetrics();
      queue = new WorkQueue({ name: 'test', clock, metrics });
    });

    it('counts adds and reports depth, queue latency and work duration', async () => {
      queue.add('a');
      queue.add('a');
      queue.add('b');
      expect(metrics.adds).to.equal(2);
      expect(metrics.depths).to.deep.equal([1, 2]);
      await clock.advance(250);
      await queue.get();
      expect(metrics.queueLatencies).to.deep.equal([0.25]);
      expect(metrics.depths.at(-1)).to.equal(1);
      await clock.advance(2000);
      queue.done('a');
      expect(metrics.workDurations).to.deep.equal([2]);
    });

    it('counts each addRateLimited and each addAfter as a retry, as client-go does, but none after shutdown', () => {
      queue.addRateLimited('a');
      queue.addRateLimited('b');
      queue.addAfter('c', 30_000);
      queue.addAfter('d', 0);
      // A key already queued is not queued twice, but the retry is counted all the same.
      queue.addAfter('d', 1_000);
      expect(metrics.retries).to.equal(5);
      queue.shutDown();
      queue.addAfter('e', 1_000);
      queue.addRateLimited('e');
      expect(metrics.retries).to.equal(5);
    });

    it('adds up the time spent on unfinished keys and the longest of them', async () => {
      queue.add('a');
      queue.add('b');
      await queue.get();
      await clock.advance(3000);
      await queue.get();
      await clock.advance(1000);
      expect(queue.unfinishedWorkSeconds()).to.equal(5);
      expect(queue.longestRunningProcessorSeconds()).to.equal(4);
      queue.done('a');
      expect(queue.unfinishedWorkSeconds()).to.equal(1);
    });
  });
});
