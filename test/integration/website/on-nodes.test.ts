import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import type { LocalCluster } from '../../../hack/cluster/cluster.ts';
import { WEB_IMAGE } from '../../../hack/images/build.ts';
import { REPO_ROOT } from '../../../hack/lib/replica.ts';
import { startLocalCluster } from '../support/nodes.ts';

/**
 * The sample Websites on a real node, from `kubectl apply -k manifests/` and
 * samples/: each one Ready with real pods (the local web image standing in
 * for nginx-unprivileged, which cannot be pulled here), its page served
 * through its Service's cluster IP equal to its ConfigMap's.
 */

const NAMESPACE = 'ha-operator';
const SAMPLES = 'samples';

interface Pod {
  metadata: { name: string };
}

interface Website {
  metadata: { name: string };
  spec: { replicas?: number };
  status?: { conditions?: { type: string; status: string; reason: string }[] };
}

async function json<T>(cluster: LocalCluster, args: string[]): Promise<T> {
  return JSON.parse(await cluster.kubectl([...args, '-o', 'json'])) as T;
}

describe('the sample Websites on a real node', function () {
  this.timeout(240_000);
  let cluster: LocalCluster;

  before(async function () {
    cluster = await startLocalCluster({ nodes: 1 });
    await cluster.kubectl(['apply', '-k', join(REPO_ROOT, 'manifests')]);
    await cluster.kubectl(['rollout', 'status', '-n', NAMESPACE, 'deployment/ha-operator', '--timeout=120s']);
  });
  after(async () => {
    await cluster?.stop();
  });

  it('makes every sample Website Ready with real pods and serves its page through its Service', async () => {
    await cluster.kubectl(['create', 'namespace', SAMPLES]);
    await cluster.kubectl(['apply', '-n', SAMPLES, '-f', join(REPO_ROOT, 'samples')]);
    const names = readdirSync(join(REPO_ROOT, 'samples')).filter((f) => f.endsWith('.yaml')).length;
    // The samples name no image, so they get nginx-unprivileged, which cannot be pulled here: the local web image stands in.
    const websites = (await json<{ items: Website[] }>(cluster, ['get', 'websites', '-n', SAMPLES])).items;
    expect(websites).to.have.length(names);
    for (const website of websites) {
      await cluster.kubectl(['patch', '-n', SAMPLES, `website/${website.metadata.name}`, '--type=merge', '-p', JSON.stringify({ spec: { image: WEB_IMAGE } })]);
    }
    await cluster.kubectl(['wait', '--for=condition=Ready', '-n', SAMPLES, 'websites', '--all', '--timeout=120s']);

    const ready = (await json<{ items: Website[] }>(cluster, ['get', 'websites', '-n', SAMPLES])).items;
    const serving = ready.filter((w) => w.spec.replicas !== 0);
    expect(serving.length).to.be.greaterThan(0);
    for (const website of serving) {
      expect(website.status?.conditions?.find((c) => c.type === 'Ready')?.reason, website.metadata.name).to.not.equal('ScaledToZero');
    }
    const [client] = (await json<{ items: Pod[] }>(cluster, ['get', 'pods', '-n', SAMPLES, '-l', `app.kubernetes.io/instance=${serving[0]!.metadata.name}`])).items;
    for (const website of serving) {
      const service = await json<{ spec: { clusterIP: string; ports: { port: number }[] } }>(cluster, ['get', 'service', '-n', SAMPLES, website.metadata.name]);
      const page = await cluster.kubectl(['exec', '-n', SAMPLES, client!.metadata.name, '--', 'sh', '-c', `timeout 5 wget -qO- http://${service.spec.clusterIP}:${service.spec.ports[0]!.port}/`]);
      const html = await cluster.kubectl(['get', 'configmap', '-n', SAMPLES, `${website.metadata.name}-content`, '-o', 'jsonpath={.data.index\\.html}']);
      expect(page.trim(), website.metadata.name).to.equal(html.trim());
    }
  });
});
