/**
 * API writes per resync of converged objects (issue 8). N objects of the
 * sample kind (hack/kinds.ts) are created and converged by a first replica;
 * then a second replica starts with RESYNC_PERIOD_SECONDS=5 and
 * LOG_LEVEL=debug, and the harness counts its 'write' debug lines (the fenced
 * writer logs one per API write): during its initial pass over the converged
 * objects, and during two resync rounds. Goal: 0 writes.
 *
 *   node hack/bench/resync-writes.ts [N=200]
 */
import { buildOperator, OPERATOR_NODE_FLAGS } from '../build.ts';
import { Replica, type LogLine } from '../lib/replica.ts';
import { SAMPLE_KIND } from '../kinds.ts';
import { loadAverage, sleep, startPlane, watchedObjects } from './support.ts';

// What the image runs: dist/main.mjs, rebuilt from the current sources.
const entry = await buildOperator();
const count = Number(process.argv[2] ?? 200);
const namespace = 'resync';
const PERIOD_S = 5;

const { plane, kubeConfig } = await startPlane();
try {
  const { watch } = await watchedObjects(plane, kubeConfig, namespace, count);
  const options = { entry, nodeArgs: [...OPERATOR_NODE_FLAGS], kubeconfig: plane.kubeconfigPath, leaseNamespace: namespace, watchNamespace: namespace };
  const first = await Replica.start({ ...options, name: 'converge', env: { LEADER_ELECTION: 'false', LOG_LEVEL: 'info', MAX_CONCURRENT_RECONCILES: '4' } });
  await watch.untilConverged(10 * 60_000, { count });
  await quiet(first, 2000);
  await first.stop();
  await watch.stop();

  const loadBefore = loadAverage();
  const replica = await Replica.start({
    ...options,
    name: 'resync',
    env: { LEADER_ELECTION: 'false', LOG_LEVEL: 'debug', RESYNC_PERIOD_SECONDS: String(PERIOD_S) },
  });
  const reconciled = (l: LogLine): boolean => l.message === 'reconciled';
  const isResync = (l: LogLine): boolean => reconciled(l) && l.json?.trigger === 'resync';
  // The initial pass: every object reconciled once, then the first resync line.
  const firstResync = await replica.waitForLog(isResync, 120_000, { description: 'a resync reconcile' });
  const initial = window(replica.lines, 0, firstResync.index);
  // Two rounds: the first resync line, then one that arrives at least a period later, then the round settles.
  const secondRound = await replica.waitForLog((l) => isResync(l) && l.receivedAtMs >= firstResync.receivedAtMs + (PERIOD_S - 1) * 1000, 60_000, {
    after: firstResync,
    description: 'a second-round resync reconcile',
  });
  await quiet(replica, 1500);
  const end = replica.lines.length;
  const rounds = window(replica.lines, firstResync.index, end);
  const round1 = window(replica.lines, firstResync.index, secondRound.index);
  const round2 = window(replica.lines, secondRound.index, end);
  const loadAfter = loadAverage();
  await replica.stop();

  console.log(`${count} converged ${SAMPLE_KIND.resource.kind} objects; RESYNC_PERIOD_SECONDS=${PERIOD_S}; load average ${loadBefore} / ${loadAfter}`);
  console.log('| phase | reconciles (by trigger) | \'write\' lines |');
  console.log('| --- | --- | ---: |');
  for (const [name, w] of [['initial pass (converged objects)', initial], ['resync round 1', round1], ['resync round 2', round2], ['both resync rounds', rounds]] as const) {
    console.log(`| ${name} | ${w.reconciles} | ${w.writes} |`);
  }
  if (rounds.writes > 0) console.log('writes:', replica.lines.slice(firstResync.index, end).filter((l) => l.message === 'write').slice(0, 10).map((l) => l.text).join('\n'));
} finally {
  for (const replica of Replica.running()) replica.sigkill();
  await plane.stop();
}

function window(lines: LogLine[], from: number, to: number): { reconciles: string; writes: number } {
  const slice = lines.slice(from, to);
  const triggers = new Map<string, number>();
  for (const l of slice) if (l.message === 'reconciled' || l.message === 'reconcile failed') {
    const t = `${l.message === 'reconcile failed' ? 'failed ' : ''}${String(l.json?.trigger)}`;
    triggers.set(t, (triggers.get(t) ?? 0) + 1);
  }
  return {
    reconciles: [...triggers].map(([t, n]) => `${t} ${n}`).join(', '),
    writes: slice.filter((l) => l.message === 'write').length,
  };
}

/** Resolves once the replica has logged no 'reconciled' line for `ms`. */
async function quiet(replica: Replica, ms: number): Promise<void> {
  for (;;) {
    const last = replica.lines.findLast((l) => l.message === 'reconciled' || l.message === 'reconcile failed');
    const idle = performance.now() - (last?.receivedAtMs ?? 0);
    if (idle >= ms) return;
    await sleep(ms - idle + 10);
  }
}
