/**
 * The local control plane from the command line:
 *   up [--nodes=N]  start it in the background (detached) and print its KUBECONFIG;
 *                   with --nodes, real nodes too (hack/cluster/, needs root)
 *   down            stop the one `up` started and take away all it put on the host
 */
import { readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { ClusterFootprint } from '../cluster/cluster.ts';
import { CgroupTree } from '../cluster/cgroups.ts';
import { ControlPlane } from './plane.ts';
import { isAlive } from './process.ts';

// HA_OPERATOR_CLUSTER_DIR lets a test run its own `up`/`down` without touching a developer's plane.
const stateDir = process.env.HA_OPERATOR_CLUSTER_DIR ?? resolve(import.meta.dirname, '..', '..', '.tmp', 'cluster');
const statePath = join(stateDir, 'state.json');

interface State {
  dir: string;
  kubeconfig: string;
  /** In start order. */
  pids: number[];
  /** A cluster with nodes: what it put on the host. */
  footprint?: ClusterFootprint;
}

async function up(): Promise<void> {
  const { values } = parseArgs({ args: process.argv.slice(3), options: { nodes: { type: 'string' } } });
  const nodes = values.nodes === undefined || values.nodes === '' ? 0 : Number(values.nodes);
  if (!Number.isInteger(nodes) || nodes < 0 || nodes > 9) throw new Error(`--nodes=${values.nodes}: give a whole number from 0 to 9`);
  if (existsSync(statePath)) {
    const state = JSON.parse(readFileSync(statePath, 'utf8')) as State;
    if (state.pids.some(isAlive)) {
      console.log(`already running; export KUBECONFIG=${state.kubeconfig}`);
      return;
    }
  }
  if (nodes > 0) {
    const [{ LocalCluster }, { buildImages, PAUSE_IMAGE }] = await Promise.all([import('../cluster/cluster.ts'), import('../images/build.ts')]);
    const images = await buildImages(join(stateDir, 'images'));
    const cluster = await LocalCluster.start({ nodes, detached: true, parentDir: stateDir, images: { archives: images.map((i) => i.archivePath), sandboxImage: PAUSE_IMAGE } });
    const state: State = { dir: cluster.footprint.dir, kubeconfig: cluster.kubeconfigPath, pids: cluster.pids(), footprint: cluster.footprint };
    writeFileSync(statePath, JSON.stringify(state, null, 2));
    console.log(`control plane ${cluster.plane.server} and ${nodes} node(s) are up; images: ${images.map((i) => i.name).join(', ')}`);
    console.log(`export KUBECONFIG=${cluster.kubeconfigPath}`);
    return;
  }
  const plane = await ControlPlane.start({ controllerManager: true, detached: true, parentDir: stateDir });
  const state: State = { dir: plane.dir, kubeconfig: plane.kubeconfigPath, pids: plane.pids() };
  writeFileSync(statePath, JSON.stringify(state, null, 2));
  console.log(`control plane ${plane.server} is up (pids ${state.pids.join(', ')})`);
  console.log(`export KUBECONFIG=${plane.kubeconfigPath}`);
}

async function down(): Promise<void> {
  if (!existsSync(statePath)) {
    console.log('no control plane was started with `make cluster-up`');
    return;
  }
  const state = JSON.parse(readFileSync(statePath, 'utf8')) as State;
  // Nodes first, all at once: their containers need no goodbye, and a kubelet left running would restart them.
  for (const path of state.footprint?.cgroupPaths ?? []) new CgroupTree(path).killAll();
  // The pids are in start order (etcd, kube-apiserver, kube-controller-manager): stop them in
  // reverse, each before the next, as ControlPlane.stop does — an apiserver whose etcd is already
  // gone takes a long time to shut down.
  for (const pid of [...state.pids].reverse()) await stopProcess(pid);
  if (state.footprint) {
    const { removeFootprint } = await import('../cluster/cluster.ts');
    removeFootprint(state.footprint);
  }
  rmSync(state.dir, { recursive: true, force: true });
  rmSync(join(stateDir, 'images'), { recursive: true, force: true });
  rmSync(statePath);
  console.log('control plane stopped');
}

/** SIGTERM, SIGKILL after 10 s, and wait until the process is gone. */
async function stopProcess(pid: number): Promise<void> {
  signal(pid, 'SIGTERM');
  for (let waitedMs = 0; isAlive(pid); waitedMs += 100) {
    if (waitedMs === 10_000) signal(pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 100));
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

const commands: Record<string, () => Promise<void>> = { up, down };
const command = commands[process.argv[2] ?? ''];
if (!command) {
  console.error(`usage: node hack/controlplane/cli.ts ${Object.keys(commands).join('|')}`);
  process.exit(2);
}
try {
  await command();
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
}
