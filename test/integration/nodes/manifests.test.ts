import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { KubeConfig } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import type { LocalCluster } from '../../../hack/cluster/cluster.ts';
import { KINDS } from '../../../hack/kinds.ts';
import type { StoredObject } from '../../../hack/lib/kind-profile.ts';
import { OPERATOR_IMAGE, WEB_IMAGE } from '../../../hack/images/build.ts';
import { readAuditLog } from '../../../hack/lib/audit.ts';
import { REPO_ROOT } from '../../../hack/lib/replica.ts';
import { operatorProcess } from '../../../hack/cluster/pods.ts';
import { startLocalCluster } from '../support/nodes.ts';
import { waitForObject } from '../support/wait.ts';

/**
 * `kubectl apply -k manifests/` on a cluster of two real nodes, unchanged:
 * the operator runs as pods of the image built here (hack/images/), under the
 * Deployment's probes and securityContext, with the ServiceAccount's projected
 * token and only its RBAC, and every sample (samples/, each kind in
 * hack/kinds.ts) converges. The API server's audit log says who wrote, from
 * where. test/integration/website/on-nodes.test.ts serves the Websites' pages.
 */

const NAMESPACE = 'ha-operator';
const SAMPLES = 'samples';

interface Pod {
  metadata: { name: string; uid: string };
  spec: { nodeName: string };
  status: { podIP: string; containerStatuses?: { name: string; ready: boolean; containerID?: string }[] };
}

async function json<T>(cluster: LocalCluster, args: string[]): Promise<T> {
  return JSON.parse(await cluster.kubectl([...args, '-o', 'json'])) as T;
}

describe('manifests on real nodes: kubectl apply -k manifests/', function () {
  this.timeout(240_000);
  let cluster: LocalCluster;
  let pods: Pod[];

  before(async function () {
    cluster = await startLocalCluster({ nodes: 2, audit: true });
    await cluster.kubectl(['apply', '-k', join(REPO_ROOT, 'manifests')]);
    await cluster.kubectl(['rollout', 'status', '-n', NAMESPACE, 'deployment/ha-operator', '--timeout=120s']);
    pods = (await json<{ items: Pod[] }>(cluster, ['get', 'pods', '-n', NAMESPACE, '-l', 'app.kubernetes.io/name=ha-operator'])).items;
  });
  after(async () => {
    await cluster?.stop();
  });

  it('runs the image the manifests name, built here, as two Ready pods on different nodes', async () => {
    const rendered = await cluster.kubectl(['kustomize', join(REPO_ROOT, 'manifests')]);
    const image = /^\s+image: (\S+)$/m.exec(rendered)?.[1];
    // containerd names a short reference after docker.io/library, as every runtime does.
    expect(`docker.io/library/${image}`).to.equal(OPERATOR_IMAGE);
    expect(pods).to.have.length(2);
    expect(pods.every((p) => p.status.containerStatuses?.[0]?.ready)).to.equal(true);
    // The topology spread constraint: never leader and standby on one node.
    expect(new Set(pods.map((p) => p.spec.nodeName)).size).to.equal(2);
  });

  it('elects one leader among the pods', async () => {
    await cluster.kubectl(['wait', '--for=create', '-n', NAMESPACE, 'lease/ha-operator', '--timeout=60s']);
    await cluster.kubectl(['wait', '--for=jsonpath={.spec.holderIdentity}', '-n', NAMESPACE, 'lease/ha-operator', '--timeout=60s']);
    const lease = await json<{ spec: { holderIdentity?: string } }>(cluster, ['get', 'lease', '-n', NAMESPACE, 'ha-operator']);
    const holders = pods.filter((p) => lease.spec.holderIdentity?.startsWith(p.metadata.name));
    expect(holders, `holder ${lease.spec.holderIdentity}`).to.have.length(1);
  });

  it('makes every sample converge, its children holding its spec (their pods from the local web image)', async () => {
    await cluster.kubectl(['create', 'namespace', SAMPLES]);
    await cluster.kubectl(['apply', '-n', SAMPLES, '-f', join(REPO_ROOT, 'samples')]);
    const kc = new KubeConfig();
    kc.loadFromFile(cluster.kubeconfigPath);
    const documents = readdirSync(join(REPO_ROOT, 'samples')).filter((f) => f.endsWith('.yaml'))
      .flatMap((f) => parseAllDocuments(readFileSync(join(REPO_ROOT, 'samples', f), 'utf8')).map((d) => d.toJS() as { kind: string }));
    for (const profile of KINDS) {
      const { group, version, plural, kind } = profile.resource;
      const path = `/apis/${group}/${version}/namespaces/${SAMPLES}/${plural}`;
      const objects = (await json<{ items: StoredObject[] }>(cluster, ['get', `${plural}.${group}`, '-n', SAMPLES])).items;
      expect(objects, `the ${kind} samples`).to.have.length(documents.filter((d) => d.kind === kind).length);
      // Images cannot be pulled here: the profile says how a sample runs its pods from the local web image.
      const current = profile.onLocalNodes === undefined ? objects : await Promise.all(objects.map((o) => json<StoredObject>(cluster,
        ['patch', '-n', SAMPLES, `${plural}.${group}/${o.metadata.name}`, '--type=merge', '-p', JSON.stringify(profile.onLocalNodes!(WEB_IMAGE))])));
      const converged = await Promise.all(current.map((o) => waitForObject<StoredObject>(kc, path, o.metadata.name,
        (now) => now !== undefined && now.metadata.generation >= o.metadata.generation && profile.converged(now), 120_000)));
      expect(await profile.childrenBehind(kc, SAMPLES, converged.map((o) => o!))).to.deep.equal([]);
    }
  });

  it('serves /metrics from the pod', async () => {
    const metrics = await cluster.kubectl(['get', '--raw', `/api/v1/namespaces/${NAMESPACE}/pods/${pods[0]!.metadata.name}:8080/proxy/metrics`]);
    expect(metrics).to.match(/^# TYPE \w+ /m);
    expect(metrics).to.match(/^controller_runtime_reconcile_total\{/m);
  });

  it('runs under the hardened securityContext: non-root, read-only root, no capabilities, seccomp', () => {
    for (const pod of pods) {
      const pid = operatorProcess(cluster, pod)!;
      expect(pid, `the operator's process of ${pod.metadata.name}`).to.be.a('number');
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const field = (name: string): string => new RegExp(`^${name}:\\s+(.*)$`, 'm').exec(status)![1]!;
      expect(field('Uid').split(/\s+/), pod.metadata.name).to.deep.equal(['65532', '65532', '65532', '65532']);
      expect(field('Gid').split(/\s+/)).to.deep.equal(['65532', '65532', '65532', '65532']);
      for (const set of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) expect(field(set), set).to.equal('0000000000000000');
      expect(field('NoNewPrivs')).to.equal('1');
      // 2 = a seccomp filter (RuntimeDefault).
      expect(field('Seccomp')).to.equal('2');
      const root = readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n').find((line) => line.split(' ')[4] === '/')!;
      expect(root.split(' ')[5]!.split(','), 'the root mount').to.include('ro');
    }
  });

  it('reaches the API through the in-cluster config, as its ServiceAccount with a token bound to the pod', async () => {
    const events = await readAuditLog(cluster.plane.auditLogPath!);
    const writes = events.filter((e) => e.userAgent?.startsWith('ha-operator/'));
    expect(writes.length).to.be.greaterThan(0);
    const podIps = new Set(pods.map((p) => p.status.podIP));
    for (const write of writes) {
      expect(write.user?.username, write.auditID).to.equal('system:serviceaccount:ha-operator:ha-operator');
      // A projected token names the pod it was issued to.
      expect(pods.map((p) => p.metadata.name)).to.include(write.user?.extra?.['authentication.kubernetes.io/pod-name']?.[0]);
      // Through the `kubernetes` Service (kube-proxy's DNAT), from the pod's own address.
      expect(podIps).to.include(write.sourceIPs?.[0]);
    }
    // Only its RBAC: nothing it wrote was refused for lack of permission.
    expect(writes.filter((e) => e.responseStatus?.code === 403)).to.deep.equal([]);
  });
});
