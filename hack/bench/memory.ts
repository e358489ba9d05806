/**
 * Resident memory of a replica with many objects of the sample kind
 * (hack/kinds.ts) cached (issue 8). A replica (dist/main.mjs, what the image
 * runs) starts as a STANDBY: a Lease held by another identity for an hour
 * keeps it from reconciling, so its caches hold the objects and no children.
 * THEN the objects are created
 * (server-side apply, 32 in flight) and reach its cache through its watch. At
 * each size, once the creates are done and 5 s have passed, VmRSS
 * (/proc/<pid>/status) and process_resident_memory_bytes and
 * nodejs_heap_size_used_bytes (/metrics) are read. Last, the other holder
 * releases the Lease, the same replica leads and converges every object
 * (their children cached too), and its memory is read again.
 *
 * Then, with the 10,000 objects and their children in etcd, fresh
 * standbys start, alternating a streaming list (WatchList) and paged lists
 * (STREAMING_LIST=false), each in a cgroup of its own: spawn → caches synced,
 * VmRSS and the cgroup's peak at that moment, and the CPU kube-apiserver and
 * etcd spent meanwhile.
 *
 * The replica runs in a memory cgroup limited like the Deployment in
 * manifests/base (resources.limits.memory), where the machine allows it:
 * Node sizes its heap from that limit, as it would in the pod, and the
 * cgroup's peak is what the kubelet would compare with the limit.
 *
 *   node hack/bench/memory.ts [sizes=1000,10000] [start-up trials per mode=3]
 *
 * Goal: ≤ 150 MB at 10,000 objects.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadYaml, type V1Deployment } from '@kubernetes/client-node';
import { buildOperator, OPERATOR_NODE_FLAGS } from '../build.ts';
import { MemoryCgroup } from '../lib/memory-cgroup.ts';
import { Replica, REPO_ROOT } from '../lib/replica.ts';
import { ConvergenceWatch } from '../lib/convergence-watch.ts';
import { SAMPLE_KIND } from '../kinds.ts';
import { applyObjects, cpuSeconds, loadAverage, metricMiB, percentile, rssMiB, sleep, startPlane } from './support.ts';

// What the image runs: dist/main.mjs, rebuilt from the current sources.
const entry = await buildOperator();
const sizes = (process.argv[2] ?? '1000,10000').split(',').map(Number);
const startTrials = Number(process.argv[3] ?? 3);
const namespace = 'memory';
const kind = SAMPLE_KIND.resource.kind;

const podLimit = deploymentMemoryLimit();
const cgroup = MemoryCgroup.create('ha-operator-bench', podLimit.bytes);
if ('unavailable' in cgroup) {
  console.log(`NO memory limit (${cgroup.unavailable}): Node sizes its heap from the machine's memory, not from the pod's ${podLimit.text}`);
} else {
  console.log(`the replica runs in ${cgroup.dir}, limited to ${podLimit.text} like the pod`);
}
const launcher = 'unavailable' in cgroup ? undefined : cgroup.launcher();

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
    entry,
    nodeArgs: [...OPERATOR_NODE_FLAGS],
    ...(launcher ? { launcher } : {}),
    name: 'memory',
    kubeconfig: plane.kubeconfigPath,
    leaseNamespace: namespace,
    watchNamespace: namespace,
    env: { LOG_LEVEL: 'info', LEASE_DURATION_SECONDS: '15', RENEW_DEADLINE_SECONDS: '10', RETRY_PERIOD_SECONDS: '2' },
  });
  const port = await replica.running(120_000);
  let created = 0;
  for (const size of [0, ...sizes]) {
    const ms = size > created ? await applyObjects(kubeConfig, namespace, size, 32, created) : 0;
    created = size;
    await sleep(5000);
    if (replica.messages('started leading').length > 0) throw new Error('the replica took the lease: its caches would fill with children');
    rows.push(await row(size, `standby: ${kind} objects only`, replica.pid, port));
    if (size > 0) console.log(`(created ${size} in ${(ms / 1000).toFixed(0)} s)`);
  }

  // The same process leads: the other holder releases the Lease (as a
  // graceful shutdown does), and the replica converges every object, which
  // puts their children in its caches too.
  const watch = new ConvergenceWatch({ kubeConfig, namespace, profile: SAMPLE_KIND });
  await watch.start();
  const releasedAt = performance.now();
  writeFileSync(leasePath, JSON.stringify({ ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1 } }));
  await plane.kubectl(['apply', '-f', leasePath]);
  await replica.waitForMessage('started leading', 60_000);
  const convergedAt = await watch.untilConverged(60 * 60_000, { count: created });
  await watch.stop();
  console.log(`leader converged ${created} ${kind} objects in ${((convergedAt - releasedAt) / 1000).toFixed(0)} s`);
  await sleep(5000);
  rows.push(await row(created, `leader: ${kind} objects and their children`, replica.pid, port));
  await replica.stop();

  // Start-up with all of it in etcd: streaming against paged lists, in alternating order.
  writeFileSync(leasePath, JSON.stringify(lease));
  await plane.kubectl(['apply', '-f', leasePath]);
  const starts: ColdStart[] = [];
  for (let trial = 1; trial <= startTrials; trial++) {
    for (const streaming of trial % 2 === 1 ? [true, false] : [false, true]) starts.push(await coldStart(streaming, trial));
  }

  console.log(`\nmemory limit: ${'unavailable' in cgroup ? 'none' : podLimit.text}`);
  console.log('| objects | replica, caches | VmRSS | process_resident_memory_bytes | nodejs_heap_size_used_bytes | cgroup peak so far | load average |');
  console.log('| ---: | --- | ---: | ---: | ---: | ---: | --- |');
  for (const line of rows) console.log(line);
  console.log(`\nstart-up of a standby with ${created.toLocaleString('en')} ${kind} objects and their children in etcd, ${startTrials} trials each, medians:`);
  console.log('| initial lists | spawn → caches synced | the lists themselves | VmRSS at synced | cgroup peak | kube-apiserver CPU | etcd CPU |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const streaming of [true, false]) {
    const mine = starts.filter((s) => s.streaming === streaming);
    const median = (f: (s: ColdStart) => number): number => percentile(mine.map(f), 0.5);
    console.log(`| ${streaming ? 'streaming (WatchList)' : 'paged (STREAMING_LIST=false)'} | ${median((s) => s.syncedMs).toFixed(0)} ms | ${median((s) => s.listsMs).toFixed(0)} ms | `
      + `${median((s) => s.rssMiB).toFixed(0)} MiB | ${median((s) => s.peakMiB).toFixed(0)} MiB | ${median((s) => s.apiServerCpuS).toFixed(2)} s | ${median((s) => s.etcdCpuS).toFixed(2)} s |`);
  }
} finally {
  for (const replica of Replica.running()) replica.sigkill();
  await Promise.all(Replica.running().map((r) => r.exited));
  await plane.stop();
  if (!('unavailable' in cgroup)) {
    console.log(`OOM kills in the cgroup: ${cgroup.oomKills()}; peak ${(cgroup.peakBytes() / 2 ** 20).toFixed(0)} MiB of ${podLimit.text}`);
    cgroup.remove();
  }
}

interface ColdStart {
  streaming: boolean;
  syncedMs: number;
  listsMs: number;
  rssMiB: number;
  peakMiB: number;
  apiServerCpuS: number;
  etcdCpuS: number;
}

/** A fresh standby in a cgroup of its own, timed from spawn until its caches are synced. */
async function coldStart(streaming: boolean, trial: number): Promise<ColdStart> {
  const own = MemoryCgroup.create(`ha-operator-bench-start-${trial}-${streaming ? 'streaming' : 'paged'}`, podLimit.bytes);
  const { apiServer, etcd } = plane.componentPids();
  const before = { apiServer: cpuSeconds(apiServer!), etcd: cpuSeconds(etcd!) };
  const spawnAt = performance.now();
  const replica = await Replica.start({
    entry,
    nodeArgs: [...OPERATOR_NODE_FLAGS],
    ...('unavailable' in own ? {} : { launcher: own.launcher() }),
    name: `start-${trial}-${streaming ? 'streaming' : 'paged'}`,
    kubeconfig: plane.kubeconfigPath,
    leaseNamespace: namespace,
    watchNamespace: namespace,
    env: { LOG_LEVEL: 'info', STREAMING_LIST: String(streaming) },
  });
  try {
    const synced = await replica.waitForMessage('caches synced', 300_000);
    const result: ColdStart = {
      streaming,
      syncedMs: synced.receivedAtMs - spawnAt,
      listsMs: Number(synced.json?.durationMs),
      rssMiB: rssMiB(replica.pid),
      peakMiB: 'unavailable' in own ? Number.NaN : own.peakBytes() / 2 ** 20,
      apiServerCpuS: cpuSeconds(apiServer!) - before.apiServer,
      etcdCpuS: cpuSeconds(etcd!) - before.etcd,
    };
    console.log(JSON.stringify(result));
    return result;
  } finally {
    await replica.stop();
    if (!('unavailable' in own)) own.remove();
  }
}

async function row(size: number, role: string, pid: number, port: number): Promise<string> {
  const mib = async (name: string): Promise<string> => (await metricMiB(port, name))?.toFixed(0) ?? '–';
  const peak = 'unavailable' in cgroup ? '–' : `${(cgroup.peakBytes() / 2 ** 20).toFixed(0)} MiB`;
  const line = `| ${size.toLocaleString('en')} | ${role} | ${rssMiB(pid).toFixed(0)} MiB | ${await mib('process_resident_memory_bytes')} MiB | ${await mib('nodejs_heap_size_used_bytes')} MiB | ${peak} | ${loadAverage()} |`;
  console.log(line);
  return line;
}

/** resources.limits.memory of the operator container in manifests/base/deployment.yaml. */
function deploymentMemoryLimit(): { text: string; bytes: number } {
  const deployment = loadYaml<V1Deployment>(readFileSync(join(REPO_ROOT, 'manifests', 'base', 'deployment.yaml'), 'utf8'));
  const text = String(deployment.spec?.template.spec?.containers[0]?.resources?.limits?.memory ?? '');
  const match = /^(\d+)(Mi|Gi)$/.exec(text);
  if (!match) throw new Error(`manifests/base/deployment.yaml: memory limit "${text}" is not a number of Mi or Gi`);
  return { text, bytes: Number(match[1]) * 2 ** (match[2] === 'Gi' ? 30 : 20) };
}
