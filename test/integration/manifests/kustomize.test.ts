import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import {
  loadAllYaml,
  type KubernetesObject,
  type V1Deployment,
  type V1EnvVar,
  type V1Pod,
  type V1PodDisruptionBudget,
  type V1Service,
} from '@kubernetes/client-node';
import { KINDS } from '../../../hack/kinds.ts';
import { loadConfig, shutdownBudgetMs } from '../../../src/runtime/config.ts';
import { cluster } from '../support/cluster.ts';

/**
 * The manifests under manifests/ against the real API server: every overlay
 * passes a server-side dry run (schema, defaulting, admission — Pod Security
 * "restricted" included), and what each overlay renders is what it claims.
 */

const run = promisify(execFile);
const repoRoot = resolve(import.meta.dirname, '..', '..', '..');
const manifests = join(repoRoot, 'manifests');
const NAMESPACE = 'ha-operator';

/** The plane's kubectl (v1.36.3, kustomize v5.8.1 built in), with stdout and stderr. */
async function kubectl(args: string[]): Promise<{ stdout: string; stderr: string }> {
  try {
    return await run(join(cluster().binDir, 'kubectl'), [`--kubeconfig=${cluster().kubeconfigPath}`, ...args], {
      cwd: repoRoot,
      maxBuffer: 64 << 20,
    });
  } catch (error) {
    const err = error as Error & { stderr?: string };
    throw new Error(`kubectl ${args.join(' ')} failed: ${err.stderr?.trim() || err.message}`, { cause: error });
  }
}

/** `kubectl kustomize DIR`, parsed, in the order kustomize emits (and kubectl applies) them. */
async function render(dir: string): Promise<KubernetesObject[]> {
  const { stdout } = await kubectl(['kustomize', dir]);
  return loadAllYaml(stdout) as KubernetesObject[];
}

function find<T extends KubernetesObject>(objects: KubernetesObject[], kind: string, name?: string): T | undefined {
  return objects.find((o) => o.kind === kind && (name === undefined || o.metadata?.name === name)) as T | undefined;
}

function only<T extends KubernetesObject>(objects: KubernetesObject[], kind: string): T {
  const matches = objects.filter((o) => o.kind === kind);
  expect(matches, `exactly one ${kind}`).to.have.length(1);
  return matches[0] as T;
}

/** The container's environment as the kubelet would set it (downward API resolved). */
function environment(deployment: V1Deployment): Record<string, string> {
  const container = deployment.spec!.template.spec!.containers[0]!;
  const env: Record<string, string> = {};
  for (const variable of container.env ?? ([] as V1EnvVar[])) {
    const field = variable.valueFrom?.fieldRef?.fieldPath;
    if (field === 'metadata.name') env[variable.name] = `${deployment.metadata!.name}-5d8f7c9b4-x2x7q`;
    else if (field === 'metadata.namespace') env[variable.name] = deployment.metadata!.namespace!;
    else if (field === 'metadata.uid') env[variable.name] = '6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b';
    else if (variable.value !== undefined) env[variable.name] = variable.value;
    else throw new Error(`unexpected env source for ${variable.name}: ${JSON.stringify(variable.valueFrom)}`);
  }
  return env;
}

/**
 * What every rendering of the operator must satisfy, whatever its replica count:
 * the configuration loads, the grace period covers drain + release, the probes
 * and the metrics Service point at the port the operator listens on.
 */
function checkOperatorDeployment(objects: KubernetesObject[]): { deployment: V1Deployment; env: Record<string, string> } {
  const deployment = only<V1Deployment>(objects, 'Deployment');
  const env = environment(deployment);
  // The same parser main.ts uses: a bad value here would exit the pod with status 2.
  const config = loadConfig(env, () => undefined);
  expect(config.leaseNamespace, 'LEASE_NAMESPACE defaults to POD_NAMESPACE').to.equal(NAMESPACE);
  expect(config.podName).to.match(/^ha-operator-/);

  const pod = deployment.spec!.template.spec!;
  const graceMs = pod.terminationGracePeriodSeconds! * 1000;
  // The operator is told its grace period, so loadConfig has refused a shutdown budget that does not fit.
  expect(config.terminationGracePeriodMs, 'TERMINATION_GRACE_PERIOD_SECONDS matches terminationGracePeriodSeconds').to.equal(graceMs);
  expect(shutdownBudgetMs(config)).to.be.at.most(graceMs);

  const container = pod.containers[0]!;
  const httpPort = container.ports!.find((p) => p.name === 'http');
  expect(httpPort?.containerPort).to.equal(config.httpPort);
  expect(container.livenessProbe?.httpGet).to.include({ path: '/healthz', port: 'http' });
  expect(container.readinessProbe?.httpGet).to.include({ path: '/readyz', port: 'http' });
  expect(container.resources?.requests).to.include.keys('cpu', 'memory');
  expect(container.resources?.limits).to.include.keys('cpu', 'memory');

  expect(pod.serviceAccountName).to.equal('ha-operator');
  expect(pod.securityContext).to.deep.include({ runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } });
  expect(container.securityContext).to.deep.include({
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
  });
  expect(pod.topologySpreadConstraints?.map((c) => c.topologyKey)).to.include('kubernetes.io/hostname');
  expect(deployment.spec!.strategy).to.deep.equal({ type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });

  const service = find<V1Service>(objects, 'Service', 'ha-operator-metrics')!;
  const labels = deployment.spec!.template.metadata!.labels!;
  for (const [key, value] of Object.entries(service.spec!.selector!)) expect(labels[key], `Service selector ${key}`).to.equal(value);
  expect(service.spec!.ports!.find((p) => p.name === 'metrics')?.targetPort).to.equal('http');
  return { deployment, env };
}

/** `kubectl apply --dry-run=server`: every object must reach the server and pass, with no warning. */
async function serverDryRun(args: string[]): Promise<string[]> {
  const { stdout, stderr } = await kubectl(['apply', '--dry-run=server', ...args]);
  // kubectl's own note about an object another test created without it (on this
  // shared plane the CRD may have been installed by server-side apply) is no
  // finding about the manifests; any warning from the server is.
  const warnings = stderr.split('\n').filter((line) => line.trim() !== '' && !line.includes('kubectl.kubernetes.io/last-applied-configuration'));
  expect(warnings, 'warnings (Pod Security, deprecations) from the server').to.deep.equal([]);
  const lines = stdout.trim().split('\n');
  for (const line of lines) expect(line).to.match(/ \(server dry run\)$/);
  return lines;
}

describe('manifests: kustomize base, overlays and components', () => {
  before(async () => {
    // A dry run creates nothing, so the namespaced objects would fail with
    // "namespaces ha-operator not found" if the Namespace did not exist yet.
    await kubectl(['apply', '-f', 'manifests/base/namespace.yaml']);
  });

  it('manifests/ is the base, and kustomize puts the Namespace and the CRD first', async () => {
    const top = await render('manifests');
    expect(top).to.deep.equal(await render('manifests/base'));
    const kinds = top.map((o) => o.kind);
    expect(kinds.slice(0, 2)).to.deep.equal(['Namespace', 'CustomResourceDefinition']);
    expect(kinds.indexOf('Deployment')).to.be.greaterThan(kinds.indexOf('ClusterRoleBinding'));
    for (const kind of KINDS) expect(find(top, 'CustomResourceDefinition', kind.crd.metadata.name), 'the CRDs from crds/').to.exist;
    for (const object of top) {
      const clusterScoped = ['Namespace', 'CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding'].includes(object.kind!);
      expect(object.metadata?.namespace, `${object.kind} ${object.metadata?.name}`).to.equal(clusterScoped ? undefined : NAMESPACE);
    }
  });

  it('the base passes a server-side dry run, and runs two replicas with a PodDisruptionBudget', async () => {
    const lines = await serverDryRun(['-k', 'manifests/']);
    expect(lines).to.have.length(11);
    const objects = await render('manifests/base');
    const { deployment } = checkOperatorDeployment(objects);
    expect(deployment.spec!.replicas).to.equal(2);
    expect(only<V1PodDisruptionBudget>(objects, 'PodDisruptionBudget').spec!.minAvailable).to.equal(1);
    expect(find(objects, 'NetworkPolicy'), 'NetworkPolicy').to.exist;
  });

  it('overlays/sharded passes a server-side dry run: 3 replicas, SHARDS=6, minAvailable 2', async () => {
    await serverDryRun(['-k', 'manifests/overlays/sharded']);
    const objects = await render('manifests/overlays/sharded');
    const { deployment, env } = checkOperatorDeployment(objects);
    expect(deployment.spec!.replicas).to.equal(3);
    expect(env.SHARDS).to.equal('6');
    expect(loadConfig(env, () => undefined).shards).to.equal(6);
    expect(only<V1PodDisruptionBudget>(objects, 'PodDisruptionBudget').spec!.minAvailable).to.equal(2);
  });

  it('overlays/single passes a server-side dry run: 1 replica, leader election kept, no PodDisruptionBudget', async () => {
    await serverDryRun(['-k', 'manifests/overlays/single']);
    const objects = await render('manifests/overlays/single');
    const { deployment, env } = checkOperatorDeployment(objects);
    expect(deployment.spec!.replicas).to.equal(1);
    // A surge pod and the old one overlap during a rollout: the Lease keeps them from both writing.
    expect(loadConfig(env, () => undefined).leaderElection).to.equal(true);
    // minAvailable 1 over a single replica would block every node drain.
    expect(find(objects, 'PodDisruptionBudget')).to.equal(undefined);
  });

  it('applied for real, the base\'s pods are admitted under Pod Security "restricted" (the ReplicaSet creates them), tolerating a lost node for 30 s', async function () {
    this.timeout(90_000);
    await kubectl(['apply', '-k', 'manifests/']);
    // No kubelet or scheduler on this plane: the pods stay Pending, but they exist
    // only if admission accepted them in the namespace that enforces "restricted".
    await kubectl(['-n', NAMESPACE, 'wait', '--for=jsonpath={.status.replicas}=2', 'deployment/ha-operator', '--timeout=60s']);
    const { stdout } = await kubectl(['-n', NAMESPACE, 'get', 'pods', '-l', 'app.kubernetes.io/name=ha-operator', '-o', 'json']);
    const pods = (JSON.parse(stdout) as { items: V1Pod[] }).items;
    expect(pods.length).to.be.at.least(2);
    for (const pod of pods) {
      expect(pod.spec?.serviceAccountName).to.equal('ha-operator');
      expect(pod.spec?.containers[0]?.env?.find((e) => e.name === 'POD_NAME')?.valueFrom?.fieldRef?.fieldPath).to.equal('metadata.name');
      // The DefaultTolerationSeconds admission plugin adds 300 s only where the template sets none.
      const noExecute = (pod.spec?.tolerations ?? []).filter((t) => t.effect === 'NoExecute').map((t) => [t.key, t.tolerationSeconds]);
      expect(noExecute, 'a second replica 30 s after its node is tainted, not 300 s').to.have.deep.members([
        ['node.kubernetes.io/not-ready', 30], ['node.kubernetes.io/unreachable', 30]]);
    }
    const { stdout: namespaceJson } = await kubectl(['get', 'namespace', NAMESPACE, '-o', 'json']);
    expect((JSON.parse(namespaceJson) as KubernetesObject).metadata?.labels).to.include({ 'pod-security.kubernetes.io/enforce': 'restricted' });
  });

  describe('components/monitoring', () => {
    let dir: string;
    let objects: KubernetesObject[];

    before(async () => {
      // Kustomize refuses absolute paths to other kustomizations, so the
      // consumer's kustomization lives inside the repository (.tmp/ is ignored).
      // .tmp/ is git-ignored, so a fresh clone does not have it.
      await mkdir(join(repoRoot, '.tmp'), { recursive: true });
      dir = await mkdtemp(join(repoRoot, '.tmp', 'kustomize-monitoring-'));
      const up = relative(dir, manifests);
      await writeFile(join(dir, 'kustomization.yaml'), [
        'apiVersion: kustomize.config.k8s.io/v1beta1',
        'kind: Kustomization',
        'resources:',
        `  - ${up}/overlays/sharded`,
        'components:',
        `  - ${up}/components/monitoring`,
        '',
      ].join('\n'));
      objects = await render(dir);
    });

    after(async () => {
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    // The plane has no monitoring.coreos.com CRDs, and no package this project
    // may use ships them, so the ServiceMonitor is checked against the fields
    // prometheus-operator documents (monitoring.coreos.com/v1 ServiceMonitorSpec)
    // and against the Service it must select; everything else is dry-run.
    it('adds a ServiceMonitor that selects the metrics Service by its labels and port name', () => {
      const monitor = only<KubernetesObject & {
        spec: {
          selector: { matchLabels: Record<string, string> };
          namespaceSelector: { matchNames: string[] };
          endpoints: { port: string; path: string; scheme: string; interval: string; scrapeTimeout: string }[];
        };
      }>(objects, 'ServiceMonitor');
      expect(monitor.apiVersion).to.equal('monitoring.coreos.com/v1');
      expect(monitor.metadata?.namespace).to.equal(NAMESPACE);
      expect(Object.keys(monitor.spec).sort()).to.deep.equal(['endpoints', 'namespaceSelector', 'selector']);

      const services = objects.filter((o): o is V1Service => o.kind === 'Service');
      const selected = services.filter((s) =>
        s.metadata?.namespace !== undefined &&
        monitor.spec.namespaceSelector.matchNames.includes(s.metadata.namespace) &&
        Object.entries(monitor.spec.selector.matchLabels).every(([k, v]) => s.metadata?.labels?.[k] === v));
      expect(selected.map((s) => s.metadata?.name)).to.deep.equal(['ha-operator-metrics']);

      expect(monitor.spec.endpoints).to.have.length(1);
      const endpoint = monitor.spec.endpoints[0]!;
      expect(Object.keys(endpoint).sort()).to.deep.equal(['interval', 'path', 'port', 'scheme', 'scrapeTimeout']);
      // `port` names a Service port; the Service must have one by that name.
      expect(selected[0]!.spec!.ports!.map((p) => p.name)).to.include(endpoint.port);
      expect(endpoint).to.include({ path: '/metrics', scheme: 'http' });
      // prometheus-operator's Duration pattern, and the timeout must not exceed the interval.
      const duration = /^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$/;
      expect(endpoint.interval).to.match(duration);
      expect(endpoint.scrapeTimeout).to.match(duration);
      expect(parseInt(endpoint.scrapeTimeout)).to.be.at.most(parseInt(endpoint.interval));
    });

    it('adds the alerting rules as a PrometheusRule in the operator\'s namespace', () => {
      const rule = only<KubernetesObject & { spec: { groups: { name: string; rules: { alert?: string }[] }[] } }>(objects, 'PrometheusRule');
      expect(rule.apiVersion).to.equal('monitoring.coreos.com/v1');
      expect(rule.metadata?.namespace).to.equal(NAMESPACE);
      const alerts = rule.spec.groups.flatMap((g) => g.rules.map((r) => r.alert)).filter(Boolean);
      expect(alerts).to.include.members(['HaOperatorNoLeader', 'HaOperatorLeadershipFlapping']);
    });

    it('changes nothing else: the rest is the overlay it was added to, and passes a server-side dry run', async () => {
      const monitoring = new Set(['ServiceMonitor', 'PrometheusRule']);
      expect(objects.filter((o) => !monitoring.has(o.kind!))).to.deep.equal(await render('manifests/overlays/sharded'));
      // The YAML as kustomize wrote it, less the monitoring.coreos.com documents
      // the plane has no CRDs for (the parsed objects are client-node models,
      // which do not serialise back to the API's field names).
      const { stdout } = await kubectl(['kustomize', dir]);
      const documents = stdout.split(/^---\n/m).filter((d) => !/^kind: (ServiceMonitor|PrometheusRule)$/m.test(d));
      expect(documents).to.have.length(objects.length - 2);
      const file = join(dir, 'without-monitoring.yaml');
      await writeFile(file, documents.join('---\n'));
      await serverDryRun(['-f', file]);
    });
  });
});
