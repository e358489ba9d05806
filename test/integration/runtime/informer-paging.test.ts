import { Writable } from 'node:stream';
import { expect } from 'chai';
import { CoreV1Api, CustomObjectsApi, KubeConfig, type KubernetesObject } from '@kubernetes/client-node';

import { ControlPlane } from '../../../hack/controlplane/plane.ts';
import { Informer, type ResourceRef } from '../../../src/runtime/informer.ts';
import { KubeClient } from '../../../src/runtime/kube.ts';
import { createLogger } from '../../../src/runtime/logging.ts';
import { adminKubeConfig, cluster, freshNamespace } from '../support/cluster.ts';
import { installKind } from '../support/operator.ts';
import { WIDGET_PROFILE } from '../support/widget/profile.ts';

const COUNT = 7;

/** Lists `resource` in pages of two (no streaming list) and returns the names the cache holds once synced. */
async function cachedNames(resource: ResourceRef): Promise<string[]> {
  const informer = new Informer<KubernetesObject>({
    client: new KubeClient(adminKubeConfig()),
    resource,
    logger: createLogger({ level: 'error', format: 'json' }),
    pageSize: 2,
    // The paged list, the fallback where the API server serves no streaming list.
    streamingList: false,
  });
  informer.start();
  try {
    await informer.whenSynced();
    return informer.list().map((o) => o.metadata!.name!).sort();
  } finally {
    await informer.stop();
  }
}

describe('Informer paging (real control plane)', function () {
  this.timeout(60_000);
  const names = Array.from({ length: COUNT }, (_, i) => `item-${i}`);

  // client-node's generic list drops metadata.continue for kinds it has no model of,
  // which once made the cache stop after the first page (500 objects).
  it('lists every page of a custom resource', async () => {
    await installKind(WIDGET_PROFILE);
    const namespace = await freshNamespace('paging-cr');
    const custom = adminKubeConfig().makeApiClient(CustomObjectsApi);
    const { group, version, apiVersion, kind, plural } = WIDGET_PROFILE.resource;
    for (const name of names) {
      await custom.createNamespacedCustomObject({ group, version, namespace, plural, body: WIDGET_PROFILE.sample(namespace, name) });
    }
    expect(await cachedNames({ apiVersion, kind, plural, namespace })).to.deep.equal(names);
  });

  it('lists every page of a core resource', async () => {
    const namespace = await freshNamespace('paging-core');
    const core = adminKubeConfig().makeApiClient(CoreV1Api);
    for (const name of names) await core.createNamespacedConfigMap({ namespace, body: { metadata: { name } } });
    // Every namespace also holds kube-root-ca.crt when the controller-manager runs; select ours.
    const ours = (await cachedNames({ apiVersion: 'v1', kind: 'ConfigMap', plural: 'configmaps', namespace })).filter((n) => n.startsWith('item-'));
    expect(ours).to.deep.equal(names);
  });
});

describe('Informer: the streaming list and its fallback (real control plane)', function () {
  this.timeout(60_000);

  async function sync(kubeConfig: KubeConfig, namespace: string): Promise<{ names: string[]; informer: Informer<KubernetesObject>; logs: string[]; requests: string[] }> {
    const logs: string[] = [];
    const requests: string[] = [];
    const informer = new Informer<KubernetesObject>({
      client: new KubeClient(kubeConfig, { metrics: { observe: (method, _host, code) => requests.push(`${method} ${code}`) } }),
      resource: { apiVersion: 'v1', kind: 'ConfigMap', plural: 'configmaps', namespace },
      logger: createLogger({ level: 'info', format: 'json', stream: new Writable({ write: (c: Buffer, _e, done) => done(void logs.push(c.toString())) }) }),
      pageSize: 2,
    });
    informer.start();
    await informer.whenSynced();
    await informer.stop();
    return { names: informer.list().map((o) => o.metadata!.name!).sort(), informer, logs, requests };
  }

  async function fill(kubeConfig: KubeConfig, namespace: string): Promise<string[]> {
    const core = kubeConfig.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    const names = Array.from({ length: 5 }, (_, i) => `s-${i}`);
    for (const name of names) await core.createNamespacedConfigMap({ namespace, body: { metadata: { name } } });
    return names;
  }

  it('fills the cache with one streaming request, which goes on as the watch', async () => {
    const namespace = `stream-${Date.now().toString(36)}`;
    const names = await fill(adminKubeConfig(), namespace);
    const { names: cached, informer, requests } = await sync(adminKubeConfig(), namespace);
    expect(cached).to.deep.equal(names);
    expect(informer.listCount).to.equal(1);
    expect(informer.watchesOpened).to.equal(1);
    // One GET in all: no list pages (five objects in pages of two would take three).
    expect(requests).to.deep.equal(['GET 200']);
  });

  it('lists in pages where the API server serves no streaming list (WatchList off)', async function () {
    this.timeout(120_000);
    const plane = await ControlPlane.start({ binDir: cluster().binDir, apiServerArgs: ['--feature-gates=WatchList=false'] });
    try {
      const kubeConfig = new KubeConfig();
      kubeConfig.loadFromFile(plane.kubeconfigPath);
      const names = await fill(kubeConfig, 'fallback');
      const { names: cached, informer, logs, requests } = await sync(kubeConfig, 'fallback');
      expect(cached).to.deep.equal(names);
      expect(informer.listCount).to.equal(1);
      expect(logs.some((l) => l.includes('does not serve a streaming list'))).to.be.true;
      // The refused streaming list, then three pages (and the watch, if it opened before the stop).
      expect(requests[0]).to.match(/^GET 4\d\d$/);
      expect(requests.slice(1, 4)).to.deep.equal(['GET 200', 'GET 200', 'GET 200']);
    } finally {
      await plane.stop();
    }
  });
});
