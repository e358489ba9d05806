/**
 * What the work queue costs per key: N keys through WorkQueue with no-op
 * async reconciles at several worker counts, against a bare loop of the same
 * no-op calls in the same run, so that the overhead reads as a ratio that does
 * not depend on the machine.
 *
 *   node hack/bench/queue.ts [keys]
 */
import type { RateLimiter } from '../../src/runtime/ratelimiter.ts';
import { WorkQueue } from '../../src/runtime/workqueue.ts';

const keyCount = Number(process.argv[2] ?? 200_000);
const concurrencies = [1, 4, 16];
/** Best of several rounds: the first pays for JIT warm-up and any round can meet a GC pause. */
const rounds = 5;

/** Lets every key through at once, so the figures are the queue's own cost. */
const noThrottle: RateLimiter = {
  when: () => 0,
  forget: () => {},
  numRequeues: () => 0,
};

const keys = Array.from({ length: keyCount }, (_, i) => `default/object-${i}`);

// The reconcile under test does nothing but be async, as a real one is.
async function reconcile(_key: string): Promise<void> {}

async function bareLoop(): Promise<void> {
  for (const key of keys) await reconcile(key);
}

/** The controller's worker loop: take a key, reconcile it, forget its backoff, hand it back. */
async function worker(queue: WorkQueue, onFinished: () => void): Promise<void> {
  for (let key = await queue.get(); key !== undefined; key = await queue.get()) {
    await reconcile(key);
    queue.forget(key);
    queue.done(key);
    onFinished();
  }
}

async function throughQueue(concurrency: number): Promise<void> {
  const queue = new WorkQueue({ name: 'bench', rateLimiter: noThrottle });
  let finished = 0;
  const onFinished = (): void => {
    if (++finished === keyCount) queue.shutDown();
  };
  const workers = Array.from({ length: concurrency }, () => worker(queue, onFinished));
  for (const key of keys) queue.addRateLimited(key);
  await Promise.all(workers);
}

async function bestMs(run: () => Promise<void>): Promise<number> {
  let best = Infinity;
  for (let round = 0; round < rounds; round++) {
    const startMs = performance.now();
    await run();
    best = Math.min(best, performance.now() - startMs);
  }
  return best;
}

interface Row {
  what: string;
  ms: number;
}

function printTable(rows: Row[], baselineMs: number): void {
  const header = ['run', 'keys/s', 'µs/key', 'overhead µs/key', 'x bare loop'];
  const lines = rows.map(({ what, ms }) => [
    what,
    Math.round((keyCount / ms) * 1000).toLocaleString('en-US'),
    ((ms * 1000) / keyCount).toFixed(3),
    (((ms - baselineMs) * 1000) / keyCount).toFixed(3),
    (ms / baselineMs).toFixed(1),
  ]);
  const widths = header.map((h, col) => Math.max(h.length, ...lines.map((line) => line[col]!.length)));
  const format = (cells: string[]): string =>
    cells.map((cell, col) => (col === 0 ? cell.padEnd(widths[col]!) : cell.padStart(widths[col]!))).join('  ');
  console.log(format(header));
  for (const line of lines) console.log(format(line));
}

const baselineMs = await bestMs(bareLoop);
const rows: Row[] = [{ what: 'bare loop', ms: baselineMs }];
for (const concurrency of concurrencies) {
  rows.push({ what: `queue, ${concurrency} worker${concurrency === 1 ? '' : 's'}`, ms: await bestMs(() => throughQueue(concurrency)) });
}
console.log(`${keyCount.toLocaleString('en-US')} keys, best of ${rounds} rounds, Node ${process.version}`);
printTable(rows, baselineMs);
