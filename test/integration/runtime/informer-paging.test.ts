import { expect } from 'chai';
import { CoreV1Api, CustomObjectsApi, type KubernetesObject } from '@kubernetes/client-node';

import { Informer, type ResourceRef } from '../../../src/runtime/informer.ts';
import { KubeClient } from '../../../src/runtime/kube.ts';
import { createLogger } from '../../../src/runtime/logging.ts';
import { WEBSITE_API_VERSION, WEBSITE_GROUP, WEBSITE_KIND, WEBSITE_PLURAL, WEBSITE_VERSION } from '../../../src/website/types.ts';
import { adminKubeConfig, freshNamespace } from '../support/cluster.ts';
import { installWebsiteCrd } from '../support/operator.ts';

const COUNT = 7;

/** Lists `resource` in pages of two and returns the names the cache holds once synced. */
async function cachedNames(resource: ResourceRef): Promise<string[]> {
  const informer = new Informer<KubernetesObject>({
    client: new KubeClient(adminKubeConfig()),
    resource,
    logger: createLogger({ level: 'error', format: 'json' }),
    pageSize: 2,
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
    await installWebsiteCrd();
    const namespace = await freshNamespace('paging-cr');
    const custom = adminKubeConfig().makeApiClient(CustomObjectsApi);
    for (const name of names) {
      await custom.createNamespacedCustomObject({
        group: WEBSITE_GROUP, version: WEBSITE_VERSION, namespace, plural: WEBSITE_PLURAL,
        body: { apiVersion: WEBSITE_API_VERSION, kind: WEBSITE_KIND, metadata: { name }, spec: {} },
      });
    }
    expect(await cachedNames({ apiVersion: WEBSITE_API_VERSION, kind: WEBSITE_KIND, plural: WEBSITE_PLURAL, namespace })).to.deep.equal(names);
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
