/**
 * The local control plane from the command line:
 *   up    start it in the background (detached) and print its KUBECONFIG
 *   down  stop the one `up` started
 */
import { readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ControlPlane } from './plane.ts';
import { isAlive } from './process.ts';

// HA_OPERATOR_CLUSTER_DIR lets a test run its own `up`/`down` without touching a developer's plane.
const stateDir = process.env.HA_OPERATOR_CLUSTER_DIR ?? resolve(import.meta.dirname, '..', '..', '.tmp', 'cluster');
const statePath = join(stateDir, 'state.json');

interface State {
  dir: string;
  kubeconfig: string;
  pids: number[];
}

async function up(): Promise<void> {
  if (existsSync(statePath)) {
    const state = JSON.parse(readFileSync(statePath, 'utf8')) as State;
    if (state.pids.some(isAlive)) {
      console.log(`already running; export KUBECONFIG=${state.kubeconfig}`);
      return;
    }
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
  // The pids are in start order (etcd, kube-apiserver, kube-controller-manager): stop them in
  // reverse, each before the next, as ControlPlane.stop does — an apiserver whose etcd is already
  // gone takes a long time to shut down.
  for (const pid of [...state.pids].reverse()) await stopProcess(pid);
  rmSync(state.dir, { recursive: true, force: true });
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
