import { expect } from 'chai';

import { Discovery } from '../../../src/runtime/discovery.ts';
import { KubeClient } from '../../../src/runtime/kube.ts';
import { adminKubeConfig } from '../support/cluster.ts';

describe('Discovery against the API server', () => {
  /** A Discovery whose requests are recorded; `answered(n)` resolves once n have been answered. */
  function counted(): { discovery: Discovery; requests: string[]; answered: (n: number) => Promise<void> } {
    const requests: string[] = [];
    const waiters: { n: number; resolve: () => void }[] = [];
    const client = new KubeClient(adminKubeConfig(), {
      metrics: {
        observe: (method, _host, code) => {
          requests.push(`${method} ${code}`);
          for (const w of waiters) if (requests.length >= w.n) w.resolve();
        },
      },
    });
    const answered = (n: number): Promise<void> => new Promise((resolve) => {
      if (requests.length >= n) resolve();
      else waiters.push({ n, resolve });
    });
    return { discovery: new Discovery(client), requests, answered };
  }

  it('asks once per group version, and names the plural and scope of a kind', async () => {
    const { discovery, requests } = counted();
    expect(await discovery.resourceFor('apps/v1', 'Deployment')).to.deep.equal({ plural: 'deployments', namespaced: true });
    expect(await discovery.resourceFor('apps/v1', 'DaemonSet')).to.deep.equal({ plural: 'daemonsets', namespaced: true });
    expect(await discovery.resourceFor('v1', 'Namespace')).to.deep.equal({ plural: 'namespaces', namespaced: false });
    expect(requests).to.deep.equal(['GET 200', 'GET 200']);
  });

  it('prefetched group versions cost no request at the first write: one request each, before it', async () => {
    const { discovery, requests, answered } = counted();
    discovery.prefetch(['v1', 'apps/v1', 'v1']);
    // Answered before anyone asked: a lookup then costs nothing.
    await answered(2);
    const [configMaps, deployments] = await Promise.all([discovery.resourceFor('v1', 'ConfigMap'), discovery.resourceFor('apps/v1', 'Deployment')]);
    expect([configMaps.plural, deployments.plural]).to.deep.equal(['configmaps', 'deployments']);
    expect(requests).to.deep.equal(['GET 200', 'GET 200']);
  });

});
