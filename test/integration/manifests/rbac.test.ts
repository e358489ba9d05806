import { expect } from 'chai';
import type {
  KubeConfig} from '@kubernetes/client-node';
import {
  ApiextensionsV1Api,
  AuthenticationV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubernetesObjectApi,
  PatchStrategy,
  RbacAuthorizationV1Api,
  V1MicroTime,
  Watch,
  setHeaderOptions,
  type V1ConfigMap,
  type V1Lease,
} from '@kubernetes/client-node';
import { SAMPLE_KIND } from '../../../hack/kinds.ts';
import type { StoredObject } from '../../../hack/lib/kind-profile.ts';
import { adminKubeConfig, freshNamespace } from '../support/cluster.ts';
import { apiError } from '../support/api.ts';
import { applyManifests, expectCanI, expectForbidden, FIELD_MANAGER, OPERATOR_NAMESPACE, SERVICE_ACCOUNT, serviceAccountConfig, USERNAME } from '../support/rbac.ts';

/**
 * The RBAC in manifests/base/rbac.yaml, applied for real, against the plane's
 * RBAC authorizer: a token of the operator's ServiceAccount (TokenRequest API)
 * may do what the operator does and gets 403 for everything else that
 * matters. What this file checks holds for any kind the operator serves (it
 * creates SAMPLE_KIND's sample); the writes of a kind's own children are its
 * tests' (test/integration/website/rbac.test.ts), and
 * test/integration/manifests/operator.test.ts runs the whole operator as this
 * account.
 */

const CRD_NAME = SAMPLE_KIND.crd.metadata.name;
const { group, version, plural, kind } = SAMPLE_KIND.resource;
/** `<plural>.<group>`, as kubectl names the resource. */
const RESOURCE = `${plural}.${group}`;

describe('manifests: RBAC of the operator ServiceAccount (real token, real authorizer)', () => {
  let sa: KubeConfig;
  let namespace: string;
  let sample: StoredObject;
  const createdNamespaces: string[] = [];

  before(async function () {
    this.timeout(120_000);
    await applyManifests(CRD_NAME);
    sa = (await serviceAccountConfig(OPERATOR_NAMESPACE, SERVICE_ACCOUNT)).kc;
    namespace = await freshNamespace('rbac');
    createdNamespaces.push(namespace);
    sample = (await KubernetesObjectApi.makeApiClient(adminKubeConfig()).create(SAMPLE_KIND.sample(namespace, 'site'))) as StoredObject;
  });

  after(async () => {
    // The sample and its children must not be reconciled by operators of later tests.
    const core = adminKubeConfig().makeApiClient(CoreV1Api);
    await Promise.all(createdNamespaces.splice(0).map((name) => core.deleteNamespace({ name })));
  });

  it('the token authenticates as the operator ServiceAccount', async () => {
    const review = await sa.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: {} });
    expect(review.status?.userInfo?.username).to.equal(USERNAME);
  });

  describe('refused with 403', () => {
    it('reading Secrets, in any namespace', async () => {
      await adminKubeConfig().makeApiClient(CoreV1Api).createNamespacedSecret({ namespace, body: { metadata: { name: 'db' }, stringData: { password: 'x' } } });
      const core = sa.makeApiClient(CoreV1Api);
      await expectForbidden(core.readNamespacedSecret({ namespace, name: 'db' }), 'get secret');
      await expectForbidden(core.listNamespacedSecret({ namespace: OPERATOR_NAMESPACE }), 'list secrets in its own namespace');
      await expectForbidden(core.listSecretForAllNamespaces(), 'list secrets cluster-wide');
    });

    it('deleting (or creating) CustomResourceDefinitions', async () => {
      const crds = sa.makeApiClient(ApiextensionsV1Api);
      // dryRun: were RBAC wrong, nothing would be deleted; authorization happens first either way.
      await expectForbidden(crds.deleteCustomResourceDefinition({ name: CRD_NAME, dryRun: 'All' }), `delete the ${kind} CRD`);
      const crd = await adminKubeConfig().makeApiClient(ApiextensionsV1Api).readCustomResourceDefinition({ name: CRD_NAME });
      await expectForbidden(crds.createCustomResourceDefinition({ body: { ...crd, metadata: { name: `x${CRD_NAME}` } }, dryRun: 'All' }), 'create a CRD');
    });

    it('touching Leases outside its own namespace', async () => {
      const leases = sa.makeApiClient(CoordinationV1Api);
      const body: V1Lease = { metadata: { name: 'ha-operator' }, spec: { holderIdentity: 'x', leaseDurationSeconds: 15, renewTime: new V1MicroTime() } };
      await expectForbidden(leases.createNamespacedLease({ namespace, body }), 'create a Lease in another namespace');
      await expectForbidden(leases.readNamespacedLease({ namespace: 'kube-system', name: 'kube-controller-manager' }), 'get a Lease in kube-system');
      await expectForbidden(leases.listNamespacedLease({ namespace: 'default' }), 'list Leases in another namespace');
      await expectForbidden(leases.listLeaseForAllNamespaces(), 'list Leases cluster-wide');
      await expectForbidden(leases.deleteNamespacedLease({ namespace: 'kube-system', name: 'kube-controller-manager', dryRun: 'All' }), 'delete a Lease in kube-system');
    });

    it(`writing a ${kind} (update, merge patch, server-side apply, a PUT of its status) or deleting it: its spec is its user's`, async () => {
      const custom = sa.makeApiClient(CustomObjectsApi);
      const ref = { group, version, plural, namespace, name: 'site' };
      const labelled = { metadata: { labels: { touched: 'yes' } } };
      await expectForbidden(custom.replaceNamespacedCustomObject({ ...ref, body: { ...sample, ...labelled } }), `update a ${kind}`);
      await expectForbidden(
        custom.patchNamespacedCustomObject({ ...ref, body: labelled }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch)),
        `merge-patch a ${kind}`);
      await expectForbidden(
        custom.patchNamespacedCustomObject(
          { ...ref, body: { apiVersion: sample.apiVersion, kind, metadata: { name: 'site', namespace, labels: { touched: 'yes' } } }, fieldManager: FIELD_MANAGER, force: true },
          setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply)),
        `server-side apply to a ${kind}`);
      await expectForbidden(custom.replaceNamespacedCustomObjectStatus({ ...ref, body: sample }), 'update (PUT) the status: patch only');
      await expectForbidden(custom.deleteNamespacedCustomObject({ ...ref, dryRun: 'All' }), `delete a ${kind}`);
    });

    it('creating Pods or core/v1 Events, reading RBAC', async () => {
      await expectForbidden(sa.makeApiClient(CoreV1Api).createNamespacedPod({
        namespace, dryRun: 'All', body: { metadata: { name: 'p' }, spec: { containers: [{ name: 'c', image: 'busybox' }] } },
      }), 'create a Pod');
      await expectForbidden(sa.makeApiClient(CoreV1Api).createNamespacedEvent({
        namespace, body: { metadata: { name: 'e' }, involvedObject: { name: 'site' } },
      }), 'create a core/v1 Event (it writes events.k8s.io/v1 only)');
      await expectForbidden(sa.makeApiClient(RbacAuthorizationV1Api).listClusterRole(), 'read RBAC');
    });
  });

  describe('allowed', () => {
    it(`listing ${plural} cluster-wide`, async () => {
      const list = (await sa.makeApiClient(CustomObjectsApi).listClusterCustomObject({ group, version, plural })) as { items: StoredObject[] };
      expect(list.items.map((o) => `${o.metadata.namespace}/${o.metadata.name}`)).to.include(`${namespace}/site`);
    });

    it('creating, reading, updating and watching a Lease in its own namespace', async () => {
      const leases = sa.makeApiClient(CoordinationV1Api);
      const name = 'rbac-test';
      const created = await leases.createNamespacedLease({
        namespace: OPERATOR_NAMESPACE,
        body: { metadata: { name }, spec: { holderIdentity: 'a', leaseDurationSeconds: 15, renewTime: new V1MicroTime() } },
      });
      const read = await leases.readNamespacedLease({ namespace: OPERATOR_NAMESPACE, name });
      expect(read.metadata?.resourceVersion).to.equal(created.metadata?.resourceVersion);

      // A standby's watch of its own Lease.
      const seen: string[] = [];
      let sawB!: () => void;
      let ended!: (error: unknown) => void;
      const changed = new Promise<void>((resolve) => (sawB = resolve));
      const failed = new Promise<never>((_, reject) => (ended = (error) => reject(new Error(`the watch ended: ${String(error)}`))));
      const controller = await new Watch(sa).watch(`/apis/coordination.k8s.io/v1/namespaces/${OPERATOR_NAMESPACE}/leases`,
        { fieldSelector: `metadata.name=${name}` },
        (type: string, lease: V1Lease) => {
          seen.push(`${type} ${lease.spec?.holderIdentity ?? ''}`);
          if (type === 'MODIFIED' && lease.spec?.holderIdentity === 'b') sawB();
        },
        (error) => ended(error));
      try {
        await leases.replaceNamespacedLease({ namespace: OPERATOR_NAMESPACE, name, body: { ...read, spec: { ...read.spec, holderIdentity: 'b', renewTime: new V1MicroTime() } } });
        await Promise.race([changed, failed]);
      } finally {
        controller.abort();
      }
      expect(seen).to.deep.equal(['ADDED a', 'MODIFIED b']);
    });

    it('kubectl auth can-i agrees, rule by rule', async () => {
      await expectCanI([
        [['list', RESOURCE, '-A'], 'yes'],
        [['watch', RESOURCE, '-A'], 'yes'],
        [['patch', RESOURCE, '--subresource=status', '-n', namespace], 'yes'],
        [['update', RESOURCE, '--subresource=status', '-n', namespace], 'no'],
        [['update', RESOURCE, '--subresource=finalizers', '-n', namespace], 'yes'],
        [['patch', RESOURCE, '-n', namespace], 'no'],
        [['create', 'events.events.k8s.io', '-n', namespace], 'yes'],
        [['patch', 'events.events.k8s.io', '-n', namespace], 'no'],
        [['update', 'leases.coordination.k8s.io', '-n', OPERATOR_NAMESPACE], 'yes'],
        [['watch', 'leases.coordination.k8s.io', '-n', OPERATOR_NAMESPACE], 'yes'],
        [['list', 'leases.coordination.k8s.io', '-n', OPERATOR_NAMESPACE], 'yes'],
        [['delete', 'leases.coordination.k8s.io', '-n', OPERATOR_NAMESPACE], 'yes'],
        [['update', 'leases.coordination.k8s.io', '-n', 'kube-system'], 'no'],
        [['list', 'leases.coordination.k8s.io', '-A'], 'no'],
        [['get', 'secrets', '-A'], 'no'],
        [['get', 'pods', '-n', namespace], 'no'],
        // Fast crash failover reads the operator's own pods, and only those, and never writes them.
        [['watch', 'pods', '-n', OPERATOR_NAMESPACE], 'yes'],
        [['list', 'pods', '-n', OPERATOR_NAMESPACE], 'yes'],
        [['list', 'pods', '-A'], 'no'],
        [['delete', 'pods', '-n', OPERATOR_NAMESPACE], 'no'],
        [['*', '*'], 'no'],
      ]);
    });
  });

  describe('why "create" is granted beside "patch"', () => {
    it('server-side apply of a missing object is authorized as create: patch alone gets 403', async () => {
      const ns = await freshNamespace('ssa-create');
      createdNamespaces.push(ns);
      const rbac = adminKubeConfig().makeApiClient(RbacAuthorizationV1Api);
      await adminKubeConfig().makeApiClient(CoreV1Api).createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'patch-only' } } });
      await rbac.createNamespacedRole({ namespace: ns, body: { metadata: { name: 'patch-only' }, rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'patch'] }] } });
      await rbac.createNamespacedRoleBinding({
        namespace: ns,
        body: {
          metadata: { name: 'patch-only' },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'patch-only' },
          subjects: [{ kind: 'ServiceAccount', name: 'patch-only', namespace: ns }],
        },
      });
      const objects = KubernetesObjectApi.makeApiClient((await serviceAccountConfig(ns, 'patch-only')).kc);
      const desired: V1ConfigMap = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'applied', namespace: ns }, data: { v: '1' } };
      const apply = () => objects.patch(desired, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);

      const refused = await apiError(apply());
      expect(refused.code).to.equal(403);
      const { message } = JSON.parse(String(refused.body)) as { message: string };
      expect(message).to.include(`User "system:serviceaccount:${ns}:patch-only" cannot create resource "configmaps"`);

      await adminKubeConfig().makeApiClient(CoreV1Api).createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'applied' } } });
      const applied = await apply();
      expect(applied.data).to.deep.equal({ v: '1' });
    });
  });
});
