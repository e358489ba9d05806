/**
 * Watch event to reconcile done, under load (issue 8). N objects of the
 * sample kind (hack/kinds.ts) are created and converged by one replica
 * (dist/main.mjs, LEADER_ELECTION=false, MAX_CONCURRENT_RECONCILES=CONCURRENCY);
 * then the harness changes their spec as the kind's profile does (merge
 * patch, open loop, round robin over the objects) at RATE changes/s
 * for SECONDS s. For each change: from the API write returning to the
 * replica's first 'reconciled' line for that key with trigger 'modified'
 * (receive time on this process's monotonic clock) → p50 / p90 / p99 / max.
 *
 *   node hack/bench/latency.ts [N=100] [RATE=20] [SECONDS=30] [CONCURRENCY=2]
 */
import { KubernetesObjectApi, PatchStrategy } from '@kubernetes/client-node';
import { buildOperator, OPERATOR_NODE_FLAGS } from '../build.ts';
import { Replica, type LogLine } from '../lib/replica.ts';
import { SAMPLE_KIND } from '../kinds.ts';
import { loadAverage, percentile, sleep, startPlane, watchedObjects, objectName } from './support.ts';

// What the image runs: dist/main.mjs, rebuilt from the current sources.
const entry = await buildOperator();
const count = Number(process.argv[2] ?? 100);
const rate = Number(process.argv[3] ?? 20);
const seconds = Number(process.argv[4] ?? 30);
const concurrency = Number(process.argv[5] ?? 2);
const namespace = 'latency';

interface Change {
  key: string;
  sentAt: number;
  answeredAt: number;
}

const { plane, kubeConfig } = await startPlane();
try {
  const { watch } = await watchedObjects(plane, kubeConfig, namespace, count);
  const replica = await Replica.start({
    entry,
    nodeArgs: [...OPERATOR_NODE_FLAGS],
    name: 'latency',
    kubeconfig: plane.kubeconfigPath,
    leaseNamespace: namespace,
    watchNamespace: namespace,
    env: { LEADER_ELECTION: 'false', LOG_LEVEL: 'info', MAX_CONCURRENT_RECONCILES: String(concurrency) },
  });
  await watch.untilConverged(10 * 60_000, { count });
  await watch.stop();
  await sleep(2000);

  const objects = KubernetesObjectApi.makeApiClient(kubeConfig);
  const changes: Change[] = [];
  const failures: string[] = [];
  const inFlight = new Set<Promise<void>>();
  const loadBefore = loadAverage();
  const total = rate * seconds;
  const start = performance.now();
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    const name = objectName(i % count);
    const { apiVersion, kind } = SAMPLE_KIND.resource;
    // Version 1 is what the object was created with.
    const body = { apiVersion, kind, metadata: { name, namespace }, ...SAMPLE_KIND.change(name, i + 2) };
    const sentAt = performance.now();
    const p = objects
      .patch(body, undefined, undefined, 'bench', undefined, PatchStrategy.MergePatch)
      .then(() => void changes.push({ key: `${namespace}/${name}`, sentAt, answeredAt: performance.now() }))
      .catch((error: unknown) => void failures.push(String(error)))
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  }
  await Promise.all(inFlight);
  const achieved = total / ((performance.now() - start) / 1000);
  await sleep(5000);
  const loadAfter = loadAverage();
  await replica.stop();

  const byKey = new Map<string, LogLine[]>();
  const anyByKey = new Map<string, LogLine[]>();
  for (const l of replica.lines) {
    if (l.message !== 'reconciled') continue;
    const key = String(l.json?.key);
    anyByKey.set(key, [...(anyByKey.get(key) ?? []), l]);
    if (l.json?.trigger === 'modified') byKey.set(key, [...(byKey.get(key) ?? []), l]);
  }
  // The queue keeps one trigger per queued key (the latest), so a change can be handled by a
  // reconcile logged as 'owned:<Kind>'. Second figure: the first reconcile of the key, any
  // trigger, that STARTED (receive time − durationMs) after the write was sent.
  const anyLatencies: number[] = [];
  for (const c of changes) {
    const line = anyByKey.get(c.key)?.find((l) => l.receivedAtMs - Number(l.json?.durationMs ?? 0) >= c.sentAt);
    if (line) anyLatencies.push(line.receivedAtMs - c.answeredAt);
  }
  const latencies: number[] = [];
  let missing = 0;
  let early = 0;
  for (const c of changes) {
    const line = byKey.get(c.key)?.find((l) => l.receivedAtMs >= c.sentAt);
    if (!line) {
      missing++;
      continue;
    }
    if (line.receivedAtMs < c.answeredAt) early++;
    latencies.push(line.receivedAtMs - c.answeredAt);
  }
  const ms = (v: number): string => `${v.toFixed(0)} ms`;
  console.log(`${count} ${SAMPLE_KIND.resource.kind} objects, MAX_CONCURRENT_RECONCILES=${concurrency}, ${rate} changes/s for ${seconds} s (achieved ${achieved.toFixed(1)}/s); ${changes.length} writes answered, ${failures.length} failed; load average ${loadBefore} / ${loadAfter}`);
  console.log(`matched ${latencies.length}, no 'modified' reconcile found for ${missing}; ${early} reconciles were logged before the write's answer arrived (negative values)`);
  console.log('| reconcile counted | matched | p50 | p90 | p99 | max |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const [what, values] of [["first with trigger 'modified'", latencies], ['first started after the write, any trigger', anyLatencies]] as const) {
    console.log(`| ${what} | ${values.length} | ${ms(percentile(values, 0.5))} | ${ms(percentile(values, 0.9))} | ${ms(percentile(values, 0.99))} | ${ms(Math.max(...values))} |`);
  }
  const reconciles = replica.lines.filter((l) => l.message === 'reconciled').length;
  console.log(`replica reconciles in total (incl. the initial convergence): ${reconciles}`);
} finally {
  for (const replica of Replica.running()) replica.sigkill();
  await plane.stop();
}
