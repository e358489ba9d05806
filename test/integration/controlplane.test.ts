import { existsSync } from 'node:fs';
import { expect } from 'chai';
import {
  ApiextensionsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  V1MicroTime,
  type V1ConfigMap,
  type V1CustomResourceDefinition,
} from '@kubernetes/client-node';
import { ControlPlane } from '../../hack/controlplane/plane.ts';
import { isAlive } from '../../hack/controlplane/process.ts';
import { adminKubeConfig, cluster, freshNamespace } from './support/cluster.ts';
import { waitForObject } from './support/wait.ts';
import { apiError } from './support/api.ts';


describe('the local control plane', () => {
  const kc = (): KubeConfig => adminKubeConfig();

  it('creates a namespace and a ConfigMap through client-node', async () => {
    const namespace = await freshNamespace('cm');
    const core = kc().makeApiClient(CoreV1Api);
    await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'greeting' }, data: { hello: 'world' } } });
    const read = await core.readNamespacedConfigMap({ namespace, name: 'greeting' });
    expect(read.data).to.deep.equal({ hello: 'world' });
    expect(read.metadata?.uid).to.be.a('string').and.not.empty;
  });

  it('establishes an applied CRD and serves its custom objects', async () => {
    const group = 'foundation.ha-operator.example.com';
    const crd: V1CustomResourceDefinition = {
      metadata: { name: `widgets.${group}` },
      spec: {
        group,
        scope: 'Namespaced',
        names: { plural: 'widgets', singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
        versions: [{
          name: 'v1', served: true, storage: true,
          schema: { openAPIV3Schema: { type: 'object', properties: { spec: { type: 'object', properties: { size: { type: 'integer', minimum: 1 } } } } } },
        }],
      },
    };
    await kc().makeApiClient(ApiextensionsV1Api).createCustomResourceDefinition({ body: crd });
    await waitForObject<V1CustomResourceDefinition>(kc(), '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd.metadata!.name!,
      (c) => c?.status?.conditions?.some((cond) => cond.type === 'Established' && cond.status === 'True') ?? false);

    const namespace = await freshNamespace('crd');
    const custom = kc().makeApiClient(CustomObjectsApi);
    const ref = { group, version: 'v1', namespace, plural: 'widgets' };
    await custom.createNamespacedCustomObject({ ...ref, body: { apiVersion: `${group}/v1`, kind: 'Widget', metadata: { name: 'w1' }, spec: { size: 3 } } });
    const read = (await custom.getNamespacedCustomObject({ ...ref, name: 'w1' })) as { spec: { size: number } };
    expect(read.spec.size).to.equal(3);

    const invalid = await apiError(custom.createNamespacedCustomObject({ ...ref, body: { apiVersion: `${group}/v1`, kind: 'Widget', metadata: { name: 'w2' }, spec: { size: 0 } } }));
    expect(invalid.code).to.equal(422);
  });

  it('refuses a Lease update with a stale resourceVersion with 409 Conflict', async () => {
    const namespace = await freshNamespace('lease');
    const leases = kc().makeApiClient(CoordinationV1Api);
    const created = await leases.createNamespacedLease({
      namespace,
      body: { metadata: { name: 'l' }, spec: { holderIdentity: 'a', leaseDurationSeconds: 15, renewTime: new V1MicroTime() } },
    });
    await leases.replaceNamespacedLease({ namespace, name: 'l', body: { ...created, spec: { ...created.spec, holderIdentity: 'b' } } });
    const stale = await apiError(leases.replaceNamespacedLease({ namespace, name: 'l', body: { ...created, spec: { ...created.spec, holderIdentity: 'c' } } }));
    expect(stale.code).to.equal(409);
    expect((await leases.readNamespacedLease({ namespace, name: 'l' })).spec?.holderIdentity).to.equal('b');
  });

  it('enforces RBAC: a ServiceAccount token without a grant gets 403', async () => {
    const namespace = await freshNamespace('rbac');
    const core = kc().makeApiClient(CoreV1Api);
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'nobody' } } });
    const { status } = await core.createNamespacedServiceAccountToken({ namespace, name: 'nobody', body: { spec: { audiences: [], expirationSeconds: 600 } } });
    const saConfig = new KubeConfig();
    saConfig.loadFromFile(await cluster().writeKubeconfig(`${cluster().dir}/nobody.kubeconfig`, { token: status!.token! }));

    const forbidden = await apiError(saConfig.makeApiClient(CoreV1Api).listNamespacedSecret({ namespace }));
    expect(forbidden.code).to.equal(403);
  });

  it('garbage-collects a child when its owner is deleted (kube-controller-manager)', async () => {
    const namespace = await freshNamespace('gc');
    const core = kc().makeApiClient(CoreV1Api);
    const owner = await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'owner' } } });
    await core.createNamespacedConfigMap({
      namespace,
      body: {
        metadata: {
          name: 'child',
          ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata!.uid!, controller: true, blockOwnerDeletion: true }],
        },
      },
    });
    await core.deleteNamespacedConfigMap({ namespace, name: 'owner', propagationPolicy: 'Background' });
    const gone = await waitForObject<V1ConfigMap>(kc(), `/api/v1/namespaces/${namespace}/configmaps`, 'child', (c) => c === undefined, 60_000);
    expect(gone).to.equal(undefined);
  });

  it('leaves no processes or files behind when a plane stops', async function () {
    this.timeout(120_000);
    const second = await ControlPlane.start({ binDir: cluster().binDir });
    const pids = second.pids();
    expect(pids).to.have.length(2);
    expect(second.server).to.not.equal(cluster().server);
    await second.stop();
    for (const pid of pids) expect(isAlive(pid), `pid ${pid} still running`).to.be.false;
    expect(existsSync(second.dir)).to.be.false;
  });
});
