import { execFile } from 'node:child_process';
import { Writable } from 'node:stream';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import {
  ApiextensionsV1Api,
  AppsV1Api,
  AuthenticationV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  EventsV1Api,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  RbacAuthorizationV1Api,
  V1MicroTime,
  Watch,
  setHeaderOptions,
  type V1ConfigMap,
  type V1CustomResourceDefinition,
  type V1Lease,
} from '@kubernetes/client-node';
import { systemClock } from '../../../src/runtime/clock.ts';
import { Discovery } from '../../../src/runtime/discovery.ts';
import { OpenGate } from '../../../src/runtime/gate.ts';
import { KubeClient } from '../../../src/runtime/kube.ts';
import { createLogger } from '../../../src/runtime/logging.ts';
import { FencedWriter, InFlightRequests, type WriterContext } from '../../../src/runtime/writer.ts';
import { desiredChildren } from '../../../src/website/desired.ts';
import { buildEvent } from '../../../src/runtime/event-builder.ts';
import { REPORTING_CONTROLLER } from '../../../src/website/events.ts';
import { WEBSITE_API_VERSION, WEBSITE_GROUP, WEBSITE_KIND, WEBSITE_PLURAL, WEBSITE_VERSION, type Website } from '../../../src/website/types.ts';
import { adminKubeConfig, cluster, freshNamespace } from '../support/cluster.ts';
import { waitForObject } from '../support/wait.ts';
import { apiError } from '../support/api.ts';

/**
 * The RBAC in manifests/base/rbac.yaml, applied for real, against the plane's
 * RBAC authorizer: a token of the operator's ServiceAccount (TokenRequest API)
 * may do what the operator does — through the operator's own write path — and
 * gets 403 for everything else that matters.
 */

const run = promisify(execFile);
const OPERATOR_NAMESPACE = 'ha-operator';
const SERVICE_ACCOUNT = 'ha-operator';
const USERNAME = `system:serviceaccount:${OPERATOR_NAMESPACE}:${SERVICE_ACCOUNT}`;
const CRD_NAME = `${WEBSITE_PLURAL}.${WEBSITE_GROUP}`;
const FIELD_MANAGER = 'ha-operator';


/** The call must be refused by the authorizer (403), not for any other reason. */
async function expectForbidden(call: Promise<unknown>, what: string): Promise<void> {
  const error = await apiError(call);
  expect(error.code, `${what}: ${typeof error.body === 'string' ? error.body : JSON.stringify(error.body)}`).to.equal(403);
  expect(String(error.body), what).to.include(USERNAME);
}

/** A kubeconfig file and KubeConfig that authenticate with a fresh token of `serviceAccount`. */
async function serviceAccountConfig(namespace: string, serviceAccount: string): Promise<{ path: string; kc: KubeConfig }> {
  const { status } = await adminKubeConfig().makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
    namespace,
    name: serviceAccount,
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  const path = await cluster().writeKubeconfig(join(cluster().dir, `${namespace}-${serviceAccount}.kubeconfig`), { token: status!.token! });
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return { path, kc };
}

/** `kubectl auth can-i VERB RESOURCE ... --as=<the operator>`: 'yes' or 'no' (kubectl exits 1 for no). */
async function canI(args: string[]): Promise<string> {
  try {
    const { stdout } = await run(join(cluster().binDir, 'kubectl'), [
      `--kubeconfig=${cluster().kubeconfigPath}`, 'auth', 'can-i', ...args, `--as=${USERNAME}`,
    ]);
    return stdout.trim();
  } catch (error) {
    const err = error as Error & { stdout?: string; code?: number };
    if (err.code === 1 && err.stdout?.trim() === 'no') return 'no';
    throw error;
  }
}

function silentLogger() {
  return createLogger({ level: 'error', format: 'json', stream: new Writable({ write: (_c, _e, done) => done() }) });
}

describe('manifests: RBAC of the operator ServiceAccount (real token, real authorizer)', () => {
  let sa: KubeConfig;
  let namespace: string;
  let website: Website;
  const createdNamespaces: string[] = [];

  before(async function () {
    this.timeout(120_000);
    await cluster().kubectl(['apply', '-k', join(import.meta.dirname, '..', '..', '..', 'manifests')]);
    await waitForObject<V1CustomResourceDefinition>(adminKubeConfig(), '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', CRD_NAME,
      (c) => c?.status?.conditions?.some((cond) => cond.type === 'Established' && cond.status === 'True') ?? false);
    sa = (await serviceAccountConfig(OPERATOR_NAMESPACE, SERVICE_ACCOUNT)).kc;

    namespace = await freshNamespace('rbac-web');
    createdNamespaces.push(namespace);
    website = (await adminKubeConfig().makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
      group: WEBSITE_GROUP, version: WEBSITE_VERSION, plural: WEBSITE_PLURAL, namespace,
      body: { apiVersion: `${WEBSITE_GROUP}/${WEBSITE_VERSION}`, kind: WEBSITE_KIND, metadata: { name: 'site' }, spec: {} },
    })) as Website;
  });

  after(async () => {
    // The Website and its children must not be reconciled by operators of later tests.
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
      await expectForbidden(crds.deleteCustomResourceDefinition({ name: CRD_NAME, dryRun: 'All' }), 'delete the Website CRD');
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

    it("writing a Website's spec (update, merge patch, server-side apply) or deleting it", async () => {
      const custom = sa.makeApiClient(CustomObjectsApi);
      const ref = { group: WEBSITE_GROUP, version: WEBSITE_VERSION, plural: WEBSITE_PLURAL, namespace, name: 'site' };
      await expectForbidden(custom.replaceNamespacedCustomObject({ ...ref, body: { ...website, spec: { ...website.spec, replicas: 3 } } }), 'update a Website');
      await expectForbidden(
        custom.patchNamespacedCustomObject({ ...ref, body: { spec: { replicas: 3 } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch)),
        'merge-patch a Website');
      await expectForbidden(
        custom.patchNamespacedCustomObject(
          { ...ref, body: { apiVersion: website.apiVersion, kind: WEBSITE_KIND, metadata: { name: 'site', namespace }, spec: { replicas: 3 } }, fieldManager: FIELD_MANAGER, force: true },
          setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply)),
        'server-side apply to a Website');
      await expectForbidden(custom.replaceNamespacedCustomObjectStatus({ ...ref, body: website }), 'update (PUT) the status: patch only');
      await expectForbidden(custom.deleteNamespacedCustomObject({ ...ref, dryRun: 'All' }), 'delete a Website');
    });

    it('creating Pods, or deleting and updating the children it applies', async () => {
      await expectForbidden(sa.makeApiClient(CoreV1Api).createNamespacedPod({
        namespace, dryRun: 'All', body: { metadata: { name: 'p' }, spec: { containers: [{ name: 'c', image: 'busybox' }] } },
      }), 'create a Pod');
      await expectForbidden(sa.makeApiClient(CoreV1Api).deleteNamespacedConfigMap({ namespace, name: 'site-content', dryRun: 'All' }), 'delete a ConfigMap');
      await expectForbidden(sa.makeApiClient(AppsV1Api).deleteNamespacedDeployment({ namespace, name: 'site', dryRun: 'All' }), 'delete a Deployment');
      await expectForbidden(sa.makeApiClient(CoreV1Api).createNamespacedEvent({
        namespace, body: { metadata: { name: 'e' }, involvedObject: { name: 'site' } },
      }), 'create a core/v1 Event (it writes events.k8s.io/v1 only)');
      await expectForbidden(sa.makeApiClient(RbacAuthorizationV1Api).listClusterRole(), 'read RBAC');
    });
  });

  describe('allowed', () => {
    it('listing Websites cluster-wide', async () => {
      const list = (await sa.makeApiClient(CustomObjectsApi).listClusterCustomObject({
        group: WEBSITE_GROUP, version: WEBSITE_VERSION, plural: WEBSITE_PLURAL,
      })) as { items: Website[] };
      expect(list.items.map((w) => `${w.metadata.namespace}/${w.metadata.name}`)).to.include(`${namespace}/site`);
    });

    it('creating and applying children, replacing their lists, status and an Event through the operator\'s own FencedWriter', async () => {
      const client = new KubeClient(sa, { userAgent: 'ha-operator/rbac-test' });
      const context: WriterContext = {
        client, discovery: new Discovery(client), gate: new OpenGate(), requests: new InFlightRequests(), fieldManager: FIELD_MANAGER,
        userAgent: 'ha-operator/rbac-test', clock: systemClock,
      };
      const writer = new FencedWriter({ context, key: `${namespace}/site`, signal: new AbortController().signal, logger: silentLogger() });
      const children = desiredChildren(website);
      if ('reason' in children) throw new Error(children.message);
      // A create (POST, then the hand-over of its fields: a merge patch), then an apply (PATCH).
      for (const child of [children.configMap, children.service, children.deployment]) {
        await writer.create(child);
        await writer.apply(child);
      }
      // Who owns a child whose name a create found taken: a fresh read.
      await client.request({ method: 'GET', path: `/apis/apps/v1/namespaces/${namespace}/deployments/site`, what: 'read Deployment' });
      const deployment = await adminKubeConfig().makeApiClient(AppsV1Api).readNamespacedDeployment({ namespace, name: 'site' });
      expect(deployment.metadata?.ownerReferences?.[0]).to.include({ uid: website.metadata.uid, blockOwnerDeletion: true });
      // The merge patch that replaces lists another manager added to (a hand-changed Service port).
      const service = await adminKubeConfig().makeApiClient(CoreV1Api).readNamespacedService({ namespace, name: 'site' });
      await writer.replaceLists(children.service, service.metadata!.resourceVersion!);

      const status = { observedGeneration: website.metadata.generation, readyReplicas: 0, url: 'http://site' };
      await writer.applyStatus({ apiVersion: WEBSITE_API_VERSION, kind: WEBSITE_KIND, namespace, name: 'site' }, status, website.metadata.resourceVersion);
      const read = (await adminKubeConfig().makeApiClient(CustomObjectsApi).getNamespacedCustomObject({
        group: WEBSITE_GROUP, version: WEBSITE_VERSION, plural: WEBSITE_PLURAL, namespace, name: 'site',
      })) as Website;
      expect(read.status).to.deep.equal(status);

      await writer.createEvent(buildEvent(website, {
        type: 'Normal', reason: 'Created', action: 'Create', note: 'RBAC test', occurrence: ['rbac-test'],
      }, new Date(), { reportingController: REPORTING_CONTROLLER, reportingInstance: 'rbac-test' }));
      const events = await adminKubeConfig().makeApiClient(EventsV1Api).listNamespacedEvent({ namespace, fieldSelector: 'reportingController=ha-operator.example.com/website' });
      expect(events.items.map((e) => e.note)).to.include('RBAC test');
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
      const expected: [string[], string][] = [
        [['list', 'websites.ha-operator.example.com', '-A'], 'yes'],
        [['watch', 'websites.ha-operator.example.com', '-A'], 'yes'],
        [['patch', 'websites.ha-operator.example.com', '--subresource=status', '-n', namespace], 'yes'],
        [['update', 'websites.ha-operator.example.com', '--subresource=status', '-n', namespace], 'no'],
        [['update', 'websites.ha-operator.example.com', '--subresource=finalizers', '-n', namespace], 'yes'],
        [['patch', 'websites.ha-operator.example.com', '-n', namespace], 'no'],
        [['create', 'configmaps', '-n', namespace], 'yes'],
        [['patch', 'services', '-n', namespace], 'yes'],
        [['create', 'deployments.apps', '-n', namespace], 'yes'],
        [['update', 'deployments.apps', '-n', namespace], 'no'],
        [['delete', 'services', '-n', namespace], 'no'],
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
      ];
      const answers = await Promise.all(expected.map(async ([args]) => [args.join(' '), await canI(args)]));
      expect(answers).to.deep.equal(expected.map(([args, answer]) => [args.join(' '), answer]));
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
