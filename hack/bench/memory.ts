/**
 * Resident memory of a replica with many Websites cached (issue 8). A
 * replica starts as a STANDBY (a Lease held by another identity for an hour
 * keeps it from reconciling, so its caches hold the Websites and no
 * children), THEN the Websites are created (server-side apply, 32 in
 * flight) and reach its cache through its watch. At each size, once the
 * creates are done and 5 s have passed, VmRSS (/proc/<pid>/status) and
 * process_resident_memory_bytes (/metrics) are read.
 *
 * The Websites are created after the replica started, so they reach its
 * cache through its watch (a standby: it caches but never reconciles).
 *
 *   node hack/bench/memory.ts [sizes=1000,3000,10000]
 *
 * Goal: ≤ 150 MB at 10,000 Websites.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Replica } from '../lib/replica.ts';
import { applyWebsites, loadAverage, metricsRssMiB, rssMiB, sleep, startPlane } from './websites.ts';

const sizes = (process.argv[2] ?? '1000,3000,10000').split(',').map(Number);
const namespace = 'memory';

const { plane, kubeConfig } = await startPlane();
const rows: string[] = [];
try {
  await plane.kubectl(['create', 'namespace', namespace]);
  const now = new Date().toISOString().replace('Z', '000Z');
  const lease = {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name: 'ha-operator', namespace },
    spec: { holderIdentity: 'someone-else', leaseDurationSeconds: 3600, renewTime: now, acquireTime: now },
  };
  const leasePath = join(plane.dir, 'lease.json');
  writeFileSync(leasePath, JSON.stringify(lease));
  await plane.kubectl(['apply', '-f', leasePath]);
  const replica = await Replica.start({
    name: 'memory',
    kubeconfig: plane.kubeconfigPath,
    leaseNamespace: namespace,
    watchNamespace: namespace,
    env: { LOG_LEVEL: 'info', LEASE_DURATION_SECONDS: '15', RENEW_DEADLINE_SECONDS: '10', RETRY_PERIOD_SECONDS: '2' },
  });
  const port = await replica.running(120_000);
  let created = 0;
  for (const size of [0, ...sizes]) {
    const ms = size > created ? await applyWebsites(kubeConfig, namespace, size, 32, created) : 0;
    created = size;
    await sleep(5000);
    if (replica.messages('started leading').length > 0) throw new Error('the replica took the lease: its caches would fill with children');
    const row = `| ${size.toLocaleString('en')} | ${rssMiB(replica.pid).toFixed(0)} MiB | ${(await metricsRssMiB(port))?.toFixed(0)} MiB | ${loadAverage()} |`;
    rows.push(row);
    console.log(row, size > 0 ? `(created ${size} in ${(ms / 1000).toFixed(0)} s)` : '');
  }
  await replica.stop();
  console.log('\n| Websites cached (standby replica) | VmRSS | process_resident_memory_bytes | load average |');
  console.log('| ---: | ---: | ---: | --- |');
  for (const row of rows) console.log(row);
} finally {
  for (const replica of Replica.running()) replica.sigkill();
  await plane.stop();
}
