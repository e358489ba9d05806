/**
 * The demo on real nodes (the default of `make run` as root): a local cluster
 * of two nodes, the project's images built and loaded, `kubectl apply -k
 * manifests/` — the operator as two pods, one leading — and samples/, whose
 * pods run the local web image. The operator pods' logs are followed, each
 * line labelled with its pod, across restarts and rollouts. Ctrl-C tears the
 * cluster down and leaves nothing behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { CoreV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { LocalCluster } from '../cluster/cluster.ts';
import { buildImages, PAUSE_IMAGE, WEB_IMAGE } from '../images/build.ts';
import { SAMPLE_KIND } from '../kinds.ts';
import { REPO_ROOT } from '../lib/replica.ts';
import { Informer } from '../../src/runtime/informer.ts';
import { KubeClient } from '../../src/runtime/kube.ts';
import { createLogger } from '../../src/runtime/logging.ts';
import { applySamples, DEMO_NAMESPACE } from './samples.ts';

const OPERATOR_NAMESPACE = 'ha-operator';
const colours = ['\x1b[36m', '\x1b[35m', '\x1b[33m', '\x1b[32m'];

export async function runOnNodes(): Promise<void> {
  const imageDir = mkdtempSync(join(tmpdir(), 'ha-operator-demo-images-'));
  process.once('exit', () => rmSync(imageDir, { recursive: true, force: true }));
  console.log('building the images (pause, web, operator) and starting a local cluster of two real nodes…');
  const images = await buildImages(imageDir);
  const cluster = await LocalCluster.start({ nodes: 2, images: { archives: images.map((i) => i.archivePath), sandboxImage: PAUSE_IMAGE } });
  const kubeconfig = cluster.kubeconfigPath;
  console.log(`local cluster up: ${cluster.nodes.map((n) => `${n.name} (${n.ip})`).join(', ')}; images ${images.map((i) => i.name).join(', ')}
  export KUBECONFIG=${kubeconfig}`);

  let stopping = false;
  const followers = new Map<string, ChildProcess>();
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    console.log('\nstopping: the cluster goes, with every process, mount, cgroup and namespace it made…');
    for (const follower of followers.values()) follower.kill();
    await cluster.stop();
    console.log('local cluster stopped');
    process.exit(0);
  };
  process.removeAllListeners('SIGINT');
  process.removeAllListeners('SIGTERM');
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());

  console.log((await cluster.kubectl(['apply', '-k', join(REPO_ROOT, 'manifests')])).trimEnd());
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  followOperatorLogs(cluster, kc, followers);
  await cluster.kubectl(['rollout', 'status', '-n', OPERATOR_NAMESPACE, 'deployment/ha-operator', '--timeout=180s']);

  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: DEMO_NAMESPACE } } });
  const local = SAMPLE_KIND.onLocalNodes?.(WEB_IMAGE);
  const names = await applySamples(kc, local);
  console.log(`\nsamples/*.yaml applied in namespace ${DEMO_NAMESPACE}${local ? `, with ${JSON.stringify(local)}: no image can be pulled here, and ${WEB_IMAGE} (busybox httpd, non-root, port 8080) stands in` : ''}`);
  const plural = SAMPLE_KIND.resource.plural;
  await cluster.kubectl(['wait', '--for=condition=Ready', '-n', DEMO_NAMESPACE, plural, '--all', '--timeout=180s'])
    .then(() => console.log(`every sample is Ready (${names.join(', ')})`), (error: Error) => console.log(`not every sample is Ready yet: ${error.message}`));
  const lease = (await cluster.kubectl(['get', 'lease', '-n', OPERATOR_NAMESPACE, 'ha-operator', '-o', 'jsonpath={.spec.holderIdentity}'])).trim();
  console.log(`\n${(await cluster.kubectl(['get', 'pods', '-n', OPERATOR_NAMESPACE, '-o', 'wide'])).trimEnd()}\n\nleader (Lease ha-operator/ha-operator): ${lease}\n\n${(await cluster.kubectl(['get', plural, '-n', DEMO_NAMESPACE])).trimEnd()}`);
  console.log(`
Try, in another shell (export KUBECONFIG=${kubeconfig}):
  kubectl -n ${DEMO_NAMESPACE} get ${plural},pods
  kubectl -n ${OPERATOR_NAMESPACE} get lease ha-operator -o yaml
  kubectl -n ${OPERATOR_NAMESPACE} rollout restart deployment/ha-operator   # the leader hands over with a release
  kubectl -n ${OPERATOR_NAMESPACE} delete pod <the leader's pod>              # SIGTERM: drain, release, exit
  kill -9 $(pgrep -f dist/main.mjs | head -1)                              # a crash: the standby takes over from the pod's status
Ctrl-C stops everything.\n`);
}

/**
 * `kubectl logs -f` of every operator container that runs, one per instance
 * (a restart in place starts another), each JSON line shown as time, level,
 * message and the rest.
 */
function followOperatorLogs(cluster: LocalCluster, kc: KubeConfig, followers: Map<string, ChildProcess>): void {
  const pods = new Informer<V1Pod>({
    client: new KubeClient(kc, { userAgent: 'ha-operator-demo' }),
    resource: { apiVersion: 'v1', kind: 'Pod', plural: 'pods', namespace: OPERATOR_NAMESPACE },
    logger: createLogger({ level: 'error', format: 'json' }),
  });
  let next = 0;
  pods.subscribe(({ object: pod }) => {
    const status = pod.status?.containerStatuses?.[0];
    if (!status?.state?.running || !status.containerID) return;
    const name = pod.metadata!.name!;
    if (followers.has(status.containerID)) return;
    const colour = colours[next++ % colours.length]!;
    const label = `${colour}[${name.replace(/^ha-operator-/, '')}${status.restartCount ? ` #${status.restartCount}` : ''}]\x1b[0m`;
    const child = spawn(join(cluster.plane.binDir, 'kubectl'), [`--kubeconfig=${cluster.kubeconfigPath}`, 'logs', '-f', '-n', OPERATOR_NAMESPACE, name, '-c', status.name],
      { stdio: ['ignore', 'pipe', 'ignore'] });
    followers.set(status.containerID, child);
    createInterface({ input: child.stdout }).on('line', (line) => console.log(`${label} ${readable(line)}`));
  });
  pods.start();
}

function readable(line: string): string {
  try {
    const { timestamp, level, message, ...rest } = JSON.parse(line) as Record<string, unknown>;
    const extra = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : '';
    return `${String(timestamp).slice(11, 23)} ${String(level).toUpperCase().padEnd(5)} ${String(message)}${extra}`;
  } catch {
    return line;
  }
}
