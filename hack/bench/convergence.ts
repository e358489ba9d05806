/**
 * Convergence throughput from a cold start (issue 8): N objects of the
 * sample kind (hack/kinds.ts) exist, then ONE operator replica (an OS
 * process, LEADER_ELECTION=false) starts and the harness watches them until
 * every one has converged (as the kind's profile judges it). Once per
 * MAX_CONCURRENT_RECONCILES value, each in a fresh namespace.
 *
 *   node hack/bench/convergence.ts [N=1000] [concurrencies=1,4,16]
 *
 * The local plane's Service range is a /16, so N can go to thousands even
 * when each object owns a ClusterIP Service (a fresh plane per concurrency).
 *
 * Prints per concurrency: objects/s from the replica's 'running' line (and
 * from its spawn) to the last object converging; spawn to first
 * 'reconciled' line; resident memory (VmRSS and process_resident_memory_bytes)
 * with the N objects and their children cached; the load average.
 */
import { buildOperator, OPERATOR_NODE_FLAGS } from '../build.ts';
import { Replica } from '../lib/replica.ts';
import { SAMPLE_KIND } from '../kinds.ts';
import { loadAverage, metricMiB, onFreshPlane, rssMiB, watchedObjects } from './support.ts';

// What the image runs: dist/main.mjs, rebuilt from the current sources.
const entry = await buildOperator();
const count = Number(process.argv[2] ?? 1000);
const concurrencies = (process.argv[3] ?? '1,4,16').split(',').map(Number);

interface Row {
  concurrency: number;
  createMs: number;
  fromRunningMs: number;
  fromSpawnMs: number;
  firstReconcileMs: number;
  runningMs: number;
  rss: number;
  metricsRss: number | undefined;
  loadBefore: string;
  loadAfter: string;
}

const rows: Row[] = [];
for (const concurrency of concurrencies) {
  await onFreshPlane(async (plane, kubeConfig) => {
    const namespace = `conv-${concurrency}`;
    const { watch, createMs } = await watchedObjects(plane, kubeConfig, namespace, count);
    const loadBefore = loadAverage();
    const spawnAt = performance.now();
    const replica = await Replica.start({
      entry,
      nodeArgs: [...OPERATOR_NODE_FLAGS],
      name: `conv-${concurrency}`,
      kubeconfig: plane.kubeconfigPath,
      leaseNamespace: namespace,
      watchNamespace: namespace,
      env: { LEADER_ELECTION: 'false', LOG_LEVEL: 'info', MAX_CONCURRENT_RECONCILES: String(concurrency) },
    });
    try {
      const done = watch.untilConverged(30 * 60_000, { count });
      const httpPort = await replica.running(120_000);
      const running = replica.messages('running')[0]!;
      const first = await replica.waitForMessage('reconciled', 120_000);
      const convergedAt = await done;
      const rss = rssMiB(replica.pid);
      const metricsRss = await metricMiB(httpPort, 'process_resident_memory_bytes');
      const row: Row = {
        concurrency,
        createMs,
        fromRunningMs: convergedAt - running.receivedAtMs,
        fromSpawnMs: convergedAt - spawnAt,
        firstReconcileMs: first.receivedAtMs - spawnAt,
        runningMs: running.receivedAtMs - spawnAt,
        rss,
        metricsRss,
        loadBefore,
        loadAfter: loadAverage(),
      };
      rows.push(row);
      console.log(JSON.stringify(row));
    } finally {
      await replica.stop();
      await watch.stop();
    }
  });
}
{
  console.log(`\n${count} ${SAMPLE_KIND.resource.kind} objects; one replica, LEADER_ELECTION=false`);
  console.log('| MAX_CONCURRENT_RECONCILES | objects/s from running | objects/s from spawn | converged after running | spawn → running | spawn → first reconciled | VmRSS | process_resident_memory_bytes | load avg before / after |');
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
  for (const r of rows) {
    console.log(
      `| ${r.concurrency} | ${(count / (r.fromRunningMs / 1000)).toFixed(1)} | ${(count / (r.fromSpawnMs / 1000)).toFixed(1)} | ${(r.fromRunningMs / 1000).toFixed(1)} s | ` +
        `${r.runningMs.toFixed(0)} ms | ${r.firstReconcileMs.toFixed(0)} ms | ${r.rss.toFixed(0)} MiB | ${r.metricsRss?.toFixed(0) ?? '–'} MiB | ${r.loadBefore} / ${r.loadAfter} |`,
    );
  }
  console.log(`creating the objects (SSA, 32 in flight): ${rows.map((r) => `${(count / (r.createMs / 1000)).toFixed(0)}/s`).join(', ')}`);
}
