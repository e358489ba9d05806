/**
 * Shared pieces of the benchmarks (convergence.ts, cpu.ts, resync-writes.ts,
 * memory.ts, latency.ts, startup.ts, handover.ts): a local control plane with
 * the CRD of the sample kind (hack/kinds.ts), many of its objects created
 * quickly by server-side apply in parallel, and the machine's load average and
 * a process's resident memory. The watch that says when they converged is
 * hack/lib/convergence-watch.ts.
 *
 * Not a benchmark itself; the scripts import it.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { KubeConfig, KubernetesObjectApi, PatchStrategy } from '@kubernetes/client-node';
import { ControlPlane } from '../controlplane/plane.ts';
import { ConvergenceWatch } from '../lib/convergence-watch.ts';
import { Replica } from '../lib/replica.ts';
import { installCrd } from '../lib/kind-profile.ts';
import { SAMPLE_KIND } from '../kinds.ts';

export async function startPlane(): Promise<{ plane: ControlPlane; kubeConfig: KubeConfig }> {
  const plane = await ControlPlane.start();
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(plane.kubeconfigPath);
  await installCrd(kubeConfig, SAMPLE_KIND.crd);
  return { plane, kubeConfig };
}

/**
 * Runs `run` against a fresh plane (every run starts from the same empty
 * etcd), then kills any replica still running and stops the plane.
 */
export async function onFreshPlane<T>(run: (plane: ControlPlane, kubeConfig: KubeConfig) => Promise<T>): Promise<T> {
  const { plane, kubeConfig } = await startPlane();
  try {
    return await run(plane, kubeConfig);
  } finally {
    for (const replica of Replica.running()) replica.sigkill();
    await plane.stop();
  }
}

export function objectName(i: number): string {
  return `object-${String(i).padStart(5, '0')}`;
}

/** Creates (server-side apply, force) the objects `from` to `count` - 1 with `parallel` requests in flight; returns ms taken. */
export async function applyObjects(kubeConfig: KubeConfig, namespace: string, count: number, parallel = 32, from = 0): Promise<number> {
  const objects = KubernetesObjectApi.makeApiClient(kubeConfig);
  const started = performance.now();
  let next = from;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      await objects.patch(SAMPLE_KIND.sample(namespace, objectName(i)), undefined, undefined, 'bench', true, PatchStrategy.ServerSideApply);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return performance.now() - started;
}

/** Creates `namespace` with `count` objects and starts a ConvergenceWatch on it; createMs is how long the creates took. */
export async function watchedObjects(plane: ControlPlane, kubeConfig: KubeConfig, namespace: string, count: number): Promise<{ watch: ConvergenceWatch; createMs: number }> {
  await plane.kubectl(['create', 'namespace', namespace]);
  const createMs = await applyObjects(kubeConfig, namespace, count);
  const watch = new ConvergenceWatch({ kubeConfig, namespace, profile: SAMPLE_KIND });
  await watch.start();
  return { watch, createMs };
}

/** "1.23 0.98 0.76" from /proc/loadavg. */
export function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

/** VmRSS of a process in MiB, from /proc/<pid>/status. */
export function rssMiB(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) / 1024;
}

/** Clock ticks per second of /proc/<pid>/stat's times (USER_HZ; 100 on Linux). */
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/** CPU seconds a process (or one thread, /proc/<pid>/task/<tid>) has used so far, user + system. */
export function cpuSeconds(pid: number, statPath = `/proc/${pid}/stat`): number {
  // The command name (field 2) is in parentheses and may hold spaces; count fields after it.
  const stat = readFileSync(statPath, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/**
 * CPU seconds per thread name of a live process: Node's MainThread (JavaScript,
 * I/O, TLS), V8Worker (the GC's parallel and concurrent phases, background
 * compilation), libuv-worker, … Threads that have exited are not counted.
 */
export function threadCpuSeconds(pid: number): Record<string, number> {
  const byName: Record<string, number> = {};
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
    byName[name] = (byName[name] ?? 0) + cpuSeconds(pid, `/proc/${pid}/task/${tid}/stat`);
  }
  return byName;
}

/** A byte-valued gauge (process_resident_memory_bytes, say) from a replica's /metrics, in MiB. */
export async function metricMiB(httpPort: number, name: string): Promise<number | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return match ? Number(match[1]) / 1024 / 1024 : undefined;
}

export function percentile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
