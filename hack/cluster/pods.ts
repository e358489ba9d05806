import { readFileSync } from 'node:fs';
import type { LocalCluster } from './cluster.ts';

/**
 * The host pid of the operator's process in `pod` (found by the pod's UID in
 * its cgroup path and the bundle in its command line), or undefined. The
 * disruption tests and the crash-failover benchmark crash it with this.
 */
export function operatorProcess(cluster: LocalCluster, pod: { metadata?: { uid?: string }; spec?: { nodeName?: string } }): number | undefined {
  const node = cluster.nodes.find((n) => n.name === pod.spec?.nodeName);
  const uid = pod.metadata?.uid;
  if (!node || !uid) return undefined;
  const found = node.cgroups.pids().filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes(uid) && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('dist/main.mjs');
    } catch {
      return false;
    }
  });
  return found.length === 1 ? found[0] : undefined;
}
