import { expect } from 'chai';
import { join } from 'node:path';
import { CoreV1Api, FlowcontrolApiserverV1Api, KubeConfig, RbacAuthorizationV1Api, type V1ConfigMap, type V1FlowSchema } from '@kubernetes/client-node';

import { Informer } from '../../../src/runtime/informer.ts';
import { KubeApiError, KubeClient } from '../../../src/runtime/kube.ts';
import { createLogger } from '../../../src/runtime/logging.ts';
import type { RestClientMetrics } from '../../../src/runtime/metrics.ts';
import { ControlPlane } from '../../../hack/controlplane/plane.ts';
import { adminKubeConfig, cluster, freshNamespace } from '../support/cluster.ts';
import { waitForObject } from '../support/wait.ts';

/**
 * The request layer against the real API server: how its refusals map onto
 * KubeApiError (the fencing, ApplyFailed and NameTaken paths depend on it),
 * and API Priority and Fairness answering 429 with Retry-After, which the
 * client honours instead of failing.
 */

function recording(): RestClientMetrics & { codes: string[] } {
  const codes: string[] = [];
  return { codes, observe: (_method, _host, code) => codes.push(code) };
}

async function refusal(promise: Promise<unknown>): Promise<KubeApiError> {
  const outcome = await promise.then(() => undefined, (error: unknown) => error);
  expect(outcome).to.be.instanceOf(KubeApiError);
  return outcome as KubeApiError;
}

/** A kubeconfig for a fresh ServiceAccount of `namespace`, allowed to get, list and watch ConfigMaps there only. */
async function serviceAccount(namespace: string, name: string, plane: ControlPlane = cluster()): Promise<KubeConfig> {
  const admin = new KubeConfig();
  admin.loadFromFile(plane.kubeconfigPath);
  const core = admin.makeApiClient(CoreV1Api);
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
  const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
  await rbac.createNamespacedRole({ namespace, body: { metadata: { name }, rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch'] }] } });
  await rbac.createNamespacedRoleBinding({ namespace, body: {
    metadata: { name }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name }, subjects: [{ kind: 'ServiceAccount', name, namespace }],
  } });
  const { status } = await core.createNamespacedServiceAccountToken({ namespace, name, body: { spec: { audiences: [], expirationSeconds: 600 } } });
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(await plane.writeKubeconfig(join(plane.dir, `${namespace}-${name}.kubeconfig`), { token: status!.token! }));
  return kubeConfig;
}

describe('KubeClient against the API server', function () {
  this.timeout(60_000);
  let namespace: string;
  let client: KubeClient;

  beforeEach(async () => {
    namespace = await freshNamespace('kube');
    client = new KubeClient(adminKubeConfig());
  });

  const configMaps = (): string => `/api/v1/namespaces/${namespace}/configmaps`;

  it('404 NotFound', async () => {
    const error = await refusal(client.request({ method: 'GET', path: `${configMaps()}/missing`, what: 'read ConfigMap missing' }));
    expect(error).to.include({ code: 404, reason: 'NotFound', serverMessage: 'configmaps "missing" not found' });
    expect(error.message).to.equal('read ConfigMap missing: 404 NotFound: configmaps "missing" not found');
  });

  it('409 AlreadyExists for a create, 409 Conflict for a stale resourceVersion', async () => {
    const created = await client.request<{ metadata: { resourceVersion: string } }>({ method: 'POST', path: configMaps(), body: { metadata: { name: 'a' } }, what: 'create ConfigMap a' });
    const again = await refusal(client.request({ method: 'POST', path: configMaps(), body: { metadata: { name: 'a' } }, what: 'create ConfigMap a' }));
    expect(again).to.include({ code: 409, reason: 'AlreadyExists' });
    await client.request({ method: 'PUT', path: `${configMaps()}/a`, body: { metadata: { name: 'a', resourceVersion: created.metadata.resourceVersion }, data: { v: '1' } }, what: 'update ConfigMap a' });
    const stale = await refusal(client.request({
      method: 'PUT', path: `${configMaps()}/a`, body: { metadata: { name: 'a', resourceVersion: created.metadata.resourceVersion }, data: { v: '2' } }, what: 'update ConfigMap a',
    }));
    expect(stale).to.include({ code: 409, reason: 'Conflict' });
    expect(stale.serverMessage).to.match(/the object has been modified; please apply your changes to the latest version and try again/);
  });

  it('422 Invalid, with the field the server names', async () => {
    const error = await refusal(client.request({ method: 'POST', path: configMaps(), body: { metadata: { name: 'Not_A_Name' } }, what: 'create ConfigMap Not_A_Name' }));
    expect(error).to.include({ code: 422, reason: 'Invalid' });
    expect(error.serverMessage).to.match(/^ConfigMap "Not_A_Name" is invalid: metadata.name: Invalid value: "Not_A_Name"/);
  });

  it('403 Forbidden for what the identity may not do', async () => {
    const limited = new KubeClient(await serviceAccount(namespace, 'reader'));
    await limited.request({ method: 'GET', path: configMaps(), what: 'list ConfigMaps' });
    const error = await refusal(limited.request({ method: 'POST', path: configMaps(), body: { metadata: { name: 'x' } }, what: 'create ConfigMap x' }));
    expect(error).to.include({ code: 403, reason: 'Forbidden' });
    expect(error.serverMessage).to.include(`User "system:serviceaccount:${namespace}:reader" cannot create resource "configmaps"`);
  });

  it('honours API Priority and Fairness: requests refused with 429 and Retry-After are retried until they succeed, a paged list in place', async function () {
    this.timeout(180_000);
    // A plane of its own, so small (30 requests in flight) that a priority level with the smallest
    // share has exactly one seat: two requests at once and APF refuses one.
    const plane = await ControlPlane.start({ binDir: cluster().binDir, apiServerArgs: ['--max-requests-inflight=20', '--max-mutating-requests-inflight=10'] });
    try {
      const admin = new KubeConfig();
      admin.loadFromFile(plane.kubeconfigPath);
      const adminClient = new KubeClient(admin);
      const ns = 'crowded';
      await admin.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: ns } } });
      const flowcontrol = admin.makeApiClient(FlowcontrolApiserverV1Api);
      // Rejects, rather than queues, what does not fit.
      await flowcontrol.createPriorityLevelConfiguration({ body: {
        metadata: { name: ns },
        spec: { type: 'Limited', limited: { nominalConcurrencyShares: 1, lendablePercent: 0, limitResponse: { type: 'Reject' } } },
      } });
      await flowcontrol.createFlowSchema({ body: {
        metadata: { name: ns },
        spec: {
          priorityLevelConfiguration: { name: ns },
          matchingPrecedence: 100,
          rules: [{ subjects: [{ kind: 'ServiceAccount', serviceAccount: { name: 'crowded', namespace: ns } }],
            resourceRules: [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'], namespaces: ['*'] }] }],
        },
      } });
      await Promise.all(Array.from({ length: 100 }, (_, i) => adminClient.request({
        method: 'POST', path: `/api/v1/namespaces/${ns}/configmaps`, body: { metadata: { name: `cm-${i}` }, data: { v: 'x'.repeat(2_000) } }, what: `create ConfigMap cm-${i}`,
      })));
      const crowdedConfig = await serviceAccount(ns, 'crowded', plane);
      // The API server's APF controller marks the FlowSchema once it has taken it in.
      await waitForObject<V1FlowSchema>(admin, '/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas', ns,
        (f) => f?.status?.conditions?.some((c) => c.type === 'Dangling' && c.status === 'False') === true);

      // Six informers listing at once in pages of five, through the one seat: each page that finds the
      // seat taken is refused with 429, waits its Retry-After and is sent again — the same page.
      const pages = Array.from({ length: 6 }, () => recording());
      const informers = pages.map((metrics) => new Informer<V1ConfigMap>({
        client: new KubeClient(crowdedConfig, { metrics, timeoutMs: 120_000 }),
        resource: { apiVersion: 'v1', kind: 'ConfigMap', plural: 'configmaps', namespace: ns },
        logger: createLogger({ level: 'error', format: 'json' }),
        pageSize: 5,
        // The paged list: pages are what this is about.
        streamingList: false,
      }));
      for (const informer of informers) informer.start();
      await Promise.all(informers.map((i) => i.whenSynced()));
      await Promise.all(informers.map((i) => i.stop()));
      const refused = pages.reduce((n, p) => n + p.codes.filter((c) => c === '429').length, 0);
      console.log(`      ${refused} page requests refused with 429 and retried; each informer: ${pages.map((p) => p.codes.length).join(', ')} attempts`);
      expect(refused, 'APF never refused a request').to.be.greaterThan(0);
      for (const [i, informer] of informers.entries()) {
        expect(informer.keys()).to.have.length(100);
        expect(informer.listCount).to.equal(1);
        // Twenty pages, each answered 200 once (and the watch, if it opened before the stop): no list started again from its first page.
        expect(pages[i]!.codes.filter((c) => c === '200').length).to.be.within(20, 21);
        // Besides 200 and 429 at most the watch that the stop ended (no response: "<error>").
        expect(pages[i]!.codes.filter((c) => c !== '200' && c !== '429').length).to.be.at.most(1);
      }
    } finally {
      await plane.stop();
    }
  });
});
