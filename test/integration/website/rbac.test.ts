import { expect } from 'chai';
import type {
  KubeConfig} from '@kubernetes/client-node';
import {
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  EventsV1Api
} from '@kubernetes/client-node';
import { systemClock } from '../../../src/runtime/clock.ts';
import { Discovery } from '../../../src/runtime/discovery.ts';
import { buildEvent } from '../../../src/runtime/event-builder.ts';
import { OpenGate } from '../../../src/runtime/gate.ts';
import { KubeClient } from '../../../src/runtime/kube.ts';
import { FencedWriter, InFlightRequests, type WriterContext } from '../../../src/runtime/writer.ts';
import { desiredChildren } from '../../../src/website/desired.ts';
import { REPORTING_CONTROLLER } from '../../../src/website/events.ts';
import { WEBSITE_API_VERSION, WEBSITE_GROUP, WEBSITE_KIND, WEBSITE_PLURAL, WEBSITE_VERSION, type Website } from '../../../src/website/types.ts';
import { adminKubeConfig, freshNamespace } from '../support/cluster.ts';
import { applyManifests, expectCanI, expectForbidden, FIELD_MANAGER, OPERATOR_NAMESPACE, SERVICE_ACCOUNT, serviceAccountConfig, silentLogger } from '../support/rbac.ts';

/**
 * The Website's rules in manifests/base/rbac.yaml, as its operator's
 * ServiceAccount (test/integration/manifests/rbac.test.ts has the rest): its
 * children created, applied and list-replaced, its status applied and an
 * Event created through the operator's own FencedWriter; deleting or
 * updating a child refused.
 */

describe('manifests: RBAC of the Website\'s children (real token, real authorizer)', () => {
  let sa: KubeConfig;
  let namespace: string;
  let website: Website;
  const createdNamespaces: string[] = [];

  before(async function () {
    this.timeout(120_000);
    await applyManifests(`${WEBSITE_PLURAL}.${WEBSITE_GROUP}`);
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

  it('refuses deleting the children it applies', async () => {
    await expectForbidden(sa.makeApiClient(CoreV1Api).deleteNamespacedConfigMap({ namespace, name: 'site-content', dryRun: 'All' }), 'delete a ConfigMap');
    await expectForbidden(sa.makeApiClient(AppsV1Api).deleteNamespacedDeployment({ namespace, name: 'site', dryRun: 'All' }), 'delete a Deployment');
  });

  it('allows creating and applying children, replacing their lists, status and an Event through the operator\'s own FencedWriter', async () => {
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

  it('kubectl auth can-i agrees on the children\'s rules', async () => {
    await expectCanI([
      [['create', 'configmaps', '-n', namespace], 'yes'],
      [['patch', 'services', '-n', namespace], 'yes'],
      [['create', 'deployments.apps', '-n', namespace], 'yes'],
      [['update', 'deployments.apps', '-n', namespace], 'no'],
      [['delete', 'services', '-n', namespace], 'no'],
    ]);
  });
});
