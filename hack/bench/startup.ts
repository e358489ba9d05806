/**
 * Process start to first reconcile, lease wait excluded (issue 8; goal ≤ 1 s).
 * 100 converged objects of the sample kind (hack/kinds.ts) exist; then,
 * TRIALS times, a fresh replica process (LEADER_ELECTION=false) is spawned and
 * timed on the harness's monotonic clock from spawn to its `running` line and
 * to its first `reconciled` line; its VmRSS is read at that moment. Three
 * ways of running the same sources take turns in each trial, so that they
 * share the machine's load:
 *
 * - bundle: dist/main.mjs, what the image runs (hack/build.ts, built first);
 * - bundle + source maps: the same with --enable-source-maps;
 * - sources: `node src/main.ts`, Node stripping the types of each module.
 *
 *   node hack/bench/startup.ts [TRIALS=10]
 */
import { buildOperator, OPERATOR_NODE_FLAGS } from '../build.ts';
import { Replica } from '../lib/replica.ts';
import { SAMPLE_KIND } from '../kinds.ts';
import { loadAverage, percentile, rssMiB, startPlane, watchedObjects } from './support.ts';

const trials = Number(process.argv[2] ?? 10);
const objects = 100;
const namespace = 'startup';

const bundle = await buildOperator();
const variants = [
  { name: 'bundle (dist/main.mjs)', entry: bundle, nodeArgs: [...OPERATOR_NODE_FLAGS] },
  { name: 'bundle + --enable-source-maps', entry: bundle, nodeArgs: [...OPERATOR_NODE_FLAGS, '--enable-source-maps'] },
  { name: 'sources (node src/main.ts)', entry: undefined, nodeArgs: [] },
];
interface Sample {
  runningMs: number;
  firstReconcileMs: number;
  rss: number;
}
const samples = new Map<string, Sample[]>(variants.map((v) => [v.name, []]));

const { plane, kubeConfig } = await startPlane();
const loadBefore = loadAverage();
try {
  const { watch } = await watchedObjects(plane, kubeConfig, namespace, objects);
  const converging = await startReplica('converge', bundle, [...OPERATOR_NODE_FLAGS]);
  await watch.untilConverged(300_000, { count: objects });
  await converging.stop();
  await watch.stop();

  for (let trial = 0; trial < trials; trial++) {
    for (const variant of variants) {
      const spawnAt = performance.now();
      const replica = await startReplica(`startup-${trial}`, variant.entry, variant.nodeArgs);
      try {
        await replica.running(60_000);
        const first = await replica.waitForMessage('reconciled', 60_000);
        const sample = {
          runningMs: replica.messages('running')[0]!.receivedAtMs - spawnAt,
          firstReconcileMs: first.receivedAtMs - spawnAt,
          rss: rssMiB(replica.pid),
        };
        samples.get(variant.name)!.push(sample);
        console.log(variant.name, JSON.stringify(sample));
      } finally {
        await replica.stop();
      }
    }
  }
} finally {
  for (const replica of Replica.running()) replica.sigkill();
  await plane.stop();
}

console.log(`\n${trials} trials per row, ${objects} converged ${SAMPLE_KIND.resource.kind} objects; load average before ${loadBefore}, after ${loadAverage()}`);
console.log('| program | spawn → running p50 | p90 | spawn → first reconcile p50 | p90 | max | VmRSS at first reconcile p50 |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const [name, rows] of samples) {
  const running = rows.map((r) => r.runningMs);
  const first = rows.map((r) => r.firstReconcileMs);
  const ms = (v: number): string => `${v.toFixed(0)} ms`;
  console.log(
    `| ${name} | ${ms(percentile(running, 0.5))} | ${ms(percentile(running, 0.9))} | ${ms(percentile(first, 0.5))} | ${ms(percentile(first, 0.9))} | ` +
      `${ms(Math.max(...first))} | ${percentile(rows.map((r) => r.rss), 0.5).toFixed(0)} MiB |`,
  );
}

function startReplica(name: string, entry: string | undefined, nodeArgs: string[]): Promise<Replica> {
  return Replica.start({
    name,
    kubeconfig: plane.kubeconfigPath,
    leaseNamespace: namespace,
    watchNamespace: namespace,
    ...(entry === undefined ? {} : { entry }),
    nodeArgs,
    env: { LEADER_ELECTION: 'false', LOG_LEVEL: 'info' },
  });
}
