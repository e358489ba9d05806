/**
 * Graceful handover and crash failover of real operator replicas (separate
 * OS processes) on the local control plane, for this project's elector and
 * for the same elector configured like client-go's defaults (poll only, no
 * release on shutdown). Prints p50 / p95 / max per scenario.
 *
 *   node hack/bench/handover.ts [trials=20] [only]
 *
 * `only` keeps the runs whose "<elector>, <signal>" contains it, e.g. "ha-operator (watch + release), SIGTERM".
 *
 * Timings are the production defaults (lease 15 s, renew deadline 10 s,
 * retry 2 s). A trial measures, on this process's monotonic clock, from the
 * signal sent to the leader until the standby logs 'started leading', and
 * until it logs its first 'reconciled' line after that.
 */
import { buildOperator, OPERATOR_NODE_FLAGS } from '../build.ts';
import { Replica } from '../lib/replica.ts';
import { applyObjects, startPlane } from './support.ts';

// What the image runs: dist/main.mjs, rebuilt from the current sources.
const entry = await buildOperator();
const trials = Number(process.argv[2] ?? 20);
const only = process.argv[3];
const timings = { LEASE_DURATION_SECONDS: '15', RENEW_DEADLINE_SECONDS: '10', RETRY_PERIOD_SECONDS: '2', LOG_LEVEL: 'info' };
const variants = {
  'ha-operator (watch + release)': { LEASE_WATCH: 'true', RELEASE_ON_CANCEL: 'true' },
  'client-go defaults (poll, no release)': { LEASE_WATCH: 'false', RELEASE_ON_CANCEL: 'false' },
} as const;

interface Sample {
  leadMs: number;
  reconcileMs: number;
}

const { plane, kubeConfig } = await startPlane();
try {
  const results: { variant: string; scenario: string; samples: Sample[] }[] = [];
  let run = 0;
  for (const [variant, env] of Object.entries(variants)) {
    for (const scenario of ['SIGTERM', 'SIGKILL'] as const) {
      if (only && !`${variant}, ${scenario}`.includes(only)) continue;
      const namespace = `bench-${++run}`;
      await plane.kubectl(['create', 'namespace', namespace]);
      // One object: the successor's first reconcile is of it.
      await applyObjects(kubeConfig, namespace, 1);
      const samples = await measure(namespace, { ...timings, ...env }, scenario);
      results.push({ variant, scenario, samples });
      console.log(`${variant}, ${scenario}: ${summary(samples.map((s) => s.leadMs))}`);
    }
  }
  console.log(`\n${trials} trials each; ms from the signal to the standby leading / to its first reconcile`);
  console.log('| elector | leader gets | lease taken p50 | p95 | max | first reconcile p50 | p95 | max |');
  console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const { variant, scenario, samples } of results) {
    const lead = stats(samples.map((s) => s.leadMs));
    const rec = stats(samples.map((s) => s.reconcileMs));
    console.log(`| ${variant} | ${scenario} | ${lead.p50} | ${lead.p95} | ${lead.max} | ${rec.p50} | ${rec.p95} | ${rec.max} |`);
  }
} finally {
  for (const replica of Replica.running()) replica.sigkill();
  await plane.stop();
}

async function measure(namespace: string, env: Record<string, string>, signal: 'SIGTERM' | 'SIGKILL'): Promise<Sample[]> {
  let serial = 0;
  const start = async (): Promise<Replica> => {
    const replica = await Replica.start({
      entry,
      nodeArgs: [...OPERATOR_NODE_FLAGS],
      name: `r${++serial}`,
      kubeconfig: plane.kubeconfigPath,
      leaseNamespace: namespace,
      watchNamespace: namespace,
      env: { ...env, HTTP_PORT: '0' },
    });
    await replica.running(60_000);
    return replica;
  };
  let leader = await start();
  await leader.waitForMessage('started leading', 60_000);
  let standby = await start();
  const samples: Sample[] = [];
  for (let i = 0; i < trials; i++) {
    // The index of the last line received so far: only lines after it count.
    const after = standby.lines.length - 1;
    const sentAt = performance.now();
    if (signal === 'SIGTERM') leader.sigterm();
    else leader.sigkill();
    const led = await standby.waitForMessage('started leading', 60_000, { after });
    const reconciled = await standby.waitForMessage('reconciled', 60_000, { after: led });
    samples.push({ leadMs: led.receivedAtMs - sentAt, reconcileMs: reconciled.receivedAtMs - sentAt });
    await leader.exited;
    leader = standby;
    standby = await start();
  }
  await Promise.all([leader.stop(), standby.stop()]);
  return samples;
}

function stats(values: number[]): { p50: string; p95: string; max: string } {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number): string => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!.toFixed(0);
  return { p50: at(0.5), p95: at(0.95), max: sorted.at(-1)!.toFixed(0) };
}

function summary(values: number[]): string {
  const s = stats(values);
  return `p50 ${s.p50} ms, p95 ${s.p95} ms, max ${s.max} ms`;
}
