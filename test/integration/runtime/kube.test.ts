import { expect } from 'chai';
import { join } from 'node:path';
import { CoreV1Api, FlowcontrolApiserverV1Api, KubeConfig, RbacAuthorizationV1Api, type V1ConfigMap, type V1FlowSchema } from '@kubernetes/client-node';

import { Informer } from '../../../src/runtime/informer.ts';
import { KubeApiError, KubeClient } from '../../../src/runtime/kube.ts';
import { createLogger } from '../../../src/runtime/logging.ts';
import type { RestClientMetrics } from '../../../src/runtime/metrics.ts';
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

/** A kubeconfig for a fresh ServiceAccount of `namespace`, allowed to get and list ConfigMaps there only. */
async function serviceAccount(namespace: string, name: string): Promise<KubeConfig> {
  const admin = adminKubeConfig();
  const core = admin.makeApiClient(CoreV1Api);
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
  const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
  await rbac.createNamespacedRole({ namespace, body: { metadata: { name }, rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list'] }] } });
  await rbac.createNamespacedRoleBinding({ namespace, body: {
    metadata: { name }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name }, subjects: [{ kind: 'ServiceAccount', name, namespace }],
  } });
  const { status } = await core.createNamespacedServiceAccountToken({ namespace, name, body: { spec: { audiences: [], expirationSeconds: 600 } } });
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(await cluster().writeKubeconfig(join(cluster().dir, `${namespace}-${name}.kubeconfig`), { token: status!.token! }));
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

  it('honours API Priority and Fairness: requests refused with 429 and Retry-After are retried until they succeed', async function () {
    this.timeout(120_000);
    const name = `ha-operator-test-${namespace}`;
    const flowcontrol = adminKubeConfig().makeApiClient(FlowcontrolApiserverV1Api);
    // A priority level with the smallest share there is, which rejects (does not queue) what does not fit.
    await flowcontrol.createPriorityLevelConfiguration({ body: {
      metadata: { name },
      spec: { type: 'Limited', limited: { nominalConcurrencyShares: 1, lendablePercent: 0, limitResponse: { type: 'Reject' } } },
    } });
    await flowcontrol.createFlowSchema({ body: {
      metadata: { name },
      spec: {
        priorityLevelConfiguration: { name },
        matchingPrecedence: 100,
        rules: [{ subjects: [{ kind: 'ServiceAccount', serviceAccount: { name: 'crowded', namespace } }],
          resourceRules: [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'], namespaces: ['*'] }] }],
      },
    } });
    try {
      // Enough objects that each list takes a moment and more than one seat.
      await Promise.all(Array.from({ length: 200 }, (_, i) => client.request({
        method: 'POST', path: configMaps(), body: { metadata: { name: `cm-${i}` }, data: { v: 'x'.repeat(2_000) } }, what: `create ConfigMap cm-${i}`,
      })));
      const crowdedConfig = await serviceAccount(namespace, 'crowded');
      const metrics = recording();
      const crowded = new KubeClient(crowdedConfig, { metrics, timeoutMs: 60_000 });
      // The API server's APF controller marks the FlowSchema once it has taken it in.
      await waitForObject<V1FlowSchema>(adminKubeConfig(), '/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas', name,
        (f) => f?.status?.conditions?.some((c) => c.type === 'Dangling' && c.status === 'False') === true);
      // Fewer than MAX_RETRIES rounds of the few seats this level has: each request gets through within its retries.
      await Promise.all(Array.from({ length: 16 }, () => crowded.request({ method: 'GET', path: configMaps(), what: 'list ConfigMaps' })));
      expect(metrics.codes, 'APF never refused a request').to.include('429');
      expect(metrics.codes.filter((c) => c !== '200' && c !== '429'), 'answers other than 200 and 429').to.deep.equal([]);
      console.log(`      ${metrics.codes.filter((c) => c === '429').length} of ${metrics.codes.length} attempts answered 429, every request succeeded in the end`);

      // A paged list refused midway goes on from the same page (continue token), not from page 1.
      const pages = recording();
      const informer = new Informer<V1ConfigMap>({
        client: new KubeClient(crowdedConfig, { metrics: pages, timeoutMs: 60_000 }),
        resource: { apiVersion: 'v1', kind: 'ConfigMap', plural: 'configmaps', namespace },
        logger: createLogger({ level: 'error', format: 'json' }),
        pageSize: 10,
        streamingList: false,
      });
      informer.start();
      const crowd = Promise.all(Array.from({ length: 12 }, () => crowded.request({ method: 'GET', path: configMaps(), what: 'list ConfigMaps' })));
      await informer.whenSynced();
      await crowd;
      await informer.stop();
      expect(informer.keys().filter((k) => k.startsWith(`${namespace}/cm-`))).to.have.length(200);
      // 20 pages of 10 (+1 for kube-root-ca.crt spilling over, when that ConfigMap exists), each answered 200 once.
      const pageAnswers = pages.codes.filter((c) => c === '200').length;
      expect(pageAnswers).to.be.within(20, 21);
      console.log(`      the paged list: ${pageAnswers} pages, ${pages.codes.filter((c) => c === '429').length} refusals retried in place`);
    } finally {
      await flowcontrol.deleteFlowSchema({ name });
      await flowcontrol.deletePriorityLevelConfiguration({ name });
    }
  });
});
