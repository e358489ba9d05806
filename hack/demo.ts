/**
 * The main job (`make run`). As root, with nothing configured: a local
 * cluster of two real nodes, the operator from its own image and manifests,
 * and samples/ with real pods (hack/demo/nodes.ts). With `--processes`, or
 * not root, or with KUBECONFIG set (or --kubeconfig PATH): the replicas as OS
 * processes, against the local control plane or that cluster
 * (hack/demo/processes.ts). Ctrl-C tears down either way.
 */
import { parseArgs } from 'node:util';
import { runOnNodes } from './demo/nodes.ts';
import { runWithProcesses } from './demo/processes.ts';

const { values } = parseArgs({ options: { kubeconfig: { type: 'string' }, processes: { type: 'boolean', default: false } } });
const external = values.kubeconfig ?? process.env.KUBECONFIG;

if (external || values.processes) {
  await runWithProcesses(external);
} else if (process.getuid?.() !== 0) {
  console.log('real nodes need root (namespaces, mounts, cgroups): running the replicas as processes on a local control plane instead');
  await runWithProcesses(undefined);
} else {
  await runOnNodes();
}
