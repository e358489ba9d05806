/**
 * The demo with the replicas as OS processes (`make run ARGS=--processes`,
 * or where real nodes cannot run: not root, or a cluster of your own): an HA
 * pair reconciling samples/ against the local control plane or the cluster
 * of `kubeconfig`, their logs interleaved and labelled by replica. Ctrl-C
 * stops the replicas (each runs its SIGTERM sequence) and tears down.
 */
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { ControlPlane } from '../controlplane/plane.ts';
import { SAMPLE_KIND } from '../kinds.ts';
import { installCrd } from '../lib/kind-profile.ts';
import { Replica } from '../lib/replica.ts';
import { applySamples, DEMO_NAMESPACE as NAMESPACE } from './samples.ts';

const colours = ['\x1b[36m', '\x1b[35m'];

export async function runWithProcesses(external: string | undefined): Promise<void> {
  const plane = external ? undefined : await ControlPlane.start({ controllerManager: true });
  const kubeconfig = external ?? plane!.kubeconfigPath;
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  console.log(plane
    ? `local control plane ${plane.server} is up\n  export KUBECONFIG=${kubeconfig}`
    : `using the cluster of ${kubeconfig} (${kc.getCurrentCluster()?.server})`);

  await installCrd(kc, SAMPLE_KIND.crd);
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: NAMESPACE } } }).catch(() => undefined);

  const replicas = await Promise.all(['replica-a', 'replica-b'].map((name, i) => Replica.start({
    name,
    kubeconfig,
    leaseNamespace: NAMESPACE,
    watchNamespace: NAMESPACE,
    env: {
      LOG_FORMAT: 'text',
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
      HTTP_PORT: '0',
      // The production timings, so what you see is what a cluster sees.
      LEASE_DURATION_SECONDS: '15',
      RENEW_DEADLINE_SECONDS: '10',
      RETRY_PERIOD_SECONDS: '2',
    },
    onLine: (line) => console.log(`${colours[i]}[${name}]\x1b[0m ${line.text}`),
    ownProcessGroup: true,
  })));

  await applySamples(kc);
  console.log(`\nsamples/*.yaml applied in namespace ${NAMESPACE}. Try, in another shell:
  kubectl -n ${NAMESPACE} get ${SAMPLE_KIND.resource.plural}
  kubectl -n ${NAMESPACE} get lease ha-operator -o yaml
  kill -TERM <pid of the leader>   (replica pids: ${replicas.map((r) => `${r.name}=${r.pid}`).join(', ')})
Ctrl-C stops everything.\n`);

  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    console.log('\nstopping the replicas (each drains, releases the lease and exits)…');
    const exits = await Promise.all(replicas.map((r) => r.stop(30_000)));
    console.log(`replicas exited: ${exits.map((e, i) => `${replicas[i]!.name}=${e.code ?? e.signal}`).join(', ')}`);
    if (plane) {
      await plane.stop();
      console.log('local control plane stopped');
    }
    process.exit(0);
  };
  process.removeAllListeners('SIGINT');
  process.removeAllListeners('SIGTERM');
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
  // A replica that dies on its own is shown, not hidden: the demo keeps the other running.
  for (const replica of replicas) {
    void replica.exited.then((exit) => {
      if (!stopping) console.log(`[${replica.name}] exited with ${exit.code ?? exit.signal}`);
    });
  }
}
