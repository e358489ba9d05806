import { expect } from 'chai';
import type {
  ApiException} from '@kubernetes/client-node';
import {
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  EventsV1Api,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type EventsV1Event,
  type KubernetesObject,
  type V1ConfigMap,
  type V1Deployment,
  type V1Service,
} from '@kubernetes/client-node';
import { CONTENT_HASH_ANNOTATION } from '../../../src/website/desired.ts';
import { REPORTING_CONTROLLER } from '../../../src/website/events.ts';
import { WEBSITE_GROUP, WEBSITE_PLURAL, WEBSITE_VERSION, type Website, type WebsiteCondition, type WebsiteSpec } from '../../../src/website/types.ts';
import { WEBSITE_PROFILE } from '../../../src/website/profile.ts';
import { adminKubeConfig, freshNamespace } from '../support/cluster.ts';
import { eventsSent, installKind, untilCached } from '../support/operator.ts';
import { waitForObject } from '../support/wait.ts';
import { apiError } from '../support/api.ts';
import { startWebsiteOperator, type WebsiteTestOperator } from './operator.ts';

// The plane starts in the root hook, after this module loads: the clients are made in `before`.
let kc: KubeConfig;
let custom: CustomObjectsApi;
let apps: AppsV1Api;
let core: CoreV1Api;
let eventsApi: EventsV1Api;

function makeClients(): void {
  kc = adminKubeConfig();
  custom = kc.makeApiClient(CustomObjectsApi);
  apps = kc.makeApiClient(AppsV1Api);
  core = kc.makeApiClient(CoreV1Api);
  eventsApi = kc.makeApiClient(EventsV1Api);
}
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const DEFAULT_IMAGE = 'nginxinc/nginx-unprivileged:1.27-alpine';

type SpecInput = Partial<Record<keyof WebsiteSpec, unknown>>;

function websiteBody(name: string, spec: SpecInput | undefined): object {
  return { apiVersion: `${WEBSITE_GROUP}/${WEBSITE_VERSION}`, kind: 'Website', metadata: { name }, ...(spec === undefined ? {} : { spec }) };
}

async function createWebsite(namespace: string, name: string, spec: SpecInput | undefined): Promise<Website> {
  const body = websiteBody(name, spec);
  return (await custom.createNamespacedCustomObject({ group: WEBSITE_GROUP, version: WEBSITE_VERSION, plural: WEBSITE_PLURAL, namespace, body })) as Website;
}

async function patchWebsite(namespace: string, name: string, spec: Record<string, unknown>): Promise<Website> {
  return (await custom.patchNamespacedCustomObject(
    { group: WEBSITE_GROUP, version: WEBSITE_VERSION, plural: WEBSITE_PLURAL, namespace, name, body: { spec } },
    mergePatch,
  )) as Website;
}

const paths = {
  websites: (ns: string) => `/apis/${WEBSITE_GROUP}/${WEBSITE_VERSION}/namespaces/${ns}/${WEBSITE_PLURAL}`,
  configMaps: (ns: string) => `/api/v1/namespaces/${ns}/configmaps`,
  deployments: (ns: string) => `/apis/apps/v1/namespaces/${ns}/deployments`,
  services: (ns: string) => `/api/v1/namespaces/${ns}/services`,
};

/** Waits until the Website exists and `predicate` holds for it. */
async function waitForWebsite(ns: string, name: string, predicate: (w: Website) => boolean, timeoutMs?: number): Promise<Website> {
  return (await waitForObject<Website>(kc, paths.websites(ns), name, (w) => w !== undefined && predicate(w), timeoutMs))!;
}

async function waitForChild<T extends KubernetesObject>(path: string, name: string, predicate: (o: T) => boolean = () => true): Promise<T> {
  return (await waitForObject<T>(kc, path, name, (o) => o !== undefined && predicate(o)))!;
}

function condition(website: Website, type: string): WebsiteCondition | undefined {
  return website.status?.conditions?.find((c) => c.type === type);
}

/** The status describes the current generation and Ready has `reason`. */
function settled(reason: string): (w: Website) => boolean {
  return (w) => w.status?.observedGeneration === w.metadata.generation && condition(w, 'Ready')?.reason === reason;
}

/** The operator's events about the Website `name`, once the operators of this process have sent what they recorded. */
async function eventsFor(ns: string, name: string): Promise<EventsV1Event[]> {
  await eventsSent();
  const list = await eventsApi.listNamespacedEvent({ namespace: ns });
  return list.items.filter((e) => e.regarding?.name === name && e.reportingController === REPORTING_CONTROLLER);
}


function serverMessage(error: ApiException<unknown>): string {
  const body = error.body;
  return typeof body === 'string' ? ((JSON.parse(body) as { message?: string }).message ?? body) : JSON.stringify(body);
}

describe('the Website controller against a real control plane', function () {
  this.timeout(60_000);
  let operator: WebsiteTestOperator | undefined;

  before(async function () {
    this.timeout(60_000);
    makeClients();
    await installKind(WEBSITE_PROFILE);
  });

  async function run(prefix: string): Promise<{ ns: string; op: WebsiteTestOperator }> {
    const ns = await freshNamespace(prefix);
    operator = await startWebsiteOperator(ns);
    return { ns, op: operator };
  }

  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && operator) {
      const lines = operator.logLines.slice(-20).map((line) => (line.length > 1500 ? `${line.slice(0, 1500)}…` : line));
      process.stderr.write(`--- last operator log lines ---\n${lines.join('\n')}\n`);
    }
    await operator?.stop();
    operator = undefined;
  });

  it('creates the ConfigMap, Deployment and Service, reports the status, and follows spec changes', async () => {
    const { ns } = await run('web-create');
    const created = await createWebsite(ns, 'hello', {});
    const owner = { apiVersion: `${WEBSITE_GROUP}/${WEBSITE_VERSION}`, kind: 'Website', name: 'hello', uid: created.metadata.uid, controller: true, blockOwnerDeletion: true };
    const labels = { 'app.kubernetes.io/name': 'website', 'app.kubernetes.io/instance': 'hello', 'app.kubernetes.io/managed-by': 'ha-operator' };

    const configMap = await waitForChild<V1ConfigMap>(paths.configMaps(ns), 'hello-content');
    expect(configMap.data).to.deep.equal({ 'index.html': created.spec.html });
    expect(configMap.metadata?.labels).to.deep.equal(labels);
    expect(configMap.metadata?.ownerReferences).to.deep.equal([owner]);

    const deployment = await waitForChild<V1Deployment>(paths.deployments(ns), 'hello');
    expect(deployment.spec?.replicas).to.equal(1);
    expect(deployment.spec?.template.spec?.containers[0]?.image).to.equal(DEFAULT_IMAGE);
    expect(deployment.metadata?.ownerReferences).to.deep.equal([owner]);
    const firstHash = deployment.spec?.template.metadata?.annotations?.[CONTENT_HASH_ANNOTATION];
    expect(firstHash).to.match(/^[0-9a-f]{64}$/);

    const service = await waitForChild<V1Service>(paths.services(ns), 'hello');
    expect(service.spec?.type).to.equal('ClusterIP');
    expect(service.spec?.ports?.map((p) => [p.name, p.port, p.targetPort])).to.deep.equal([['http', 80, 'http']]);
    expect(service.spec?.selector).to.deep.equal({ 'app.kubernetes.io/name': 'website', 'app.kubernetes.io/instance': 'hello' });

    // No kubelet runs the pod, so the rollout waits for an available replica.
    const website = await waitForWebsite(ns, 'hello', (w) => condition(w, 'Ready')?.message === '0 of 1 updated replicas available');
    expect(website.status).to.include({ observedGeneration: 1, readyReplicas: 0, url: `http://hello.${ns}.svc.cluster.local:80` });
    expect(website.status?.conditions?.map((c) => [c.type, c.status, c.reason, c.observedGeneration])).to.deep.equal([
      ['Ready', 'False', 'RollingOut', 1],
      ['Progressing', 'True', 'RollingOut', 1],
      ['Degraded', 'False', 'AsExpected', 1],
    ]);
    const created3 = (await eventsFor(ns, 'hello')).filter((e) => e.reason === 'Created');
    expect(created3.map((e) => e.related?.kind).sort()).to.deep.equal(['ConfigMap', 'Deployment', 'Service']);
    expect(created3.every((e) => e.type === 'Normal' && e.reportingInstance === `operator-${ns}`)).to.be.true;

    // A new page and more replicas: the ConfigMap and the Deployment follow, the pods roll.
    const changed = await patchWebsite(ns, 'hello', { replicas: 3, html: '<p>second page</p>' });
    expect(changed.metadata.generation).to.equal(2);
    await waitForChild<V1ConfigMap>(paths.configMaps(ns), 'hello-content', (c) => c.data?.['index.html'] === '<p>second page</p>');
    const scaled = await waitForChild<V1Deployment>(paths.deployments(ns), 'hello', (d) => d.spec?.replicas === 3);
    expect(scaled.spec?.template.metadata?.annotations?.[CONTENT_HASH_ANNOTATION]).to.not.equal(firstHash);
    const observed = await waitForWebsite(ns, 'hello', (w) => w.status?.observedGeneration === 2);
    expect(observed.status?.conditions?.every((c) => c.observedGeneration === 2)).to.be.true;

    // NodePort with a fixed port, then back to ClusterIP: the port leaves the Service with the field.
    await patchWebsite(ns, 'hello', { serviceType: 'NodePort', nodePort: 30080 });
    await waitForChild<V1Service>(paths.services(ns), 'hello', (s) => s.spec?.type === 'NodePort' && s.spec.ports?.[0]?.nodePort === 30080);
    await patchWebsite(ns, 'hello', { serviceType: 'ClusterIP', nodePort: null });
    const back = await waitForChild<V1Service>(paths.services(ns), 'hello', (s) => s.spec?.type === 'ClusterIP');
    expect(back.spec?.ports?.[0]?.nodePort).to.equal(undefined);
    await waitForWebsite(ns, 'hello', (w) => w.status?.observedGeneration === 4);
  });

  it('makes no write when it reconciles a converged Website again', async () => {
    const { ns, op } = await run('web-idle');
    await createWebsite(ns, 'idle', { replicas: 0 });
    // The Deployment controller has finished with it: nothing else will write to it.
    await waitForChild<V1Deployment>(paths.deployments(ns), 'idle', (d) =>
      d.status?.observedGeneration === d.metadata?.generation
      && d.status?.conditions?.some((c) => c.type === 'Progressing' && c.reason === 'NewReplicaSetAvailable') === true);
    await waitForWebsite(ns, 'idle', settled('ScaledToZero'));

    const before = await readAll(ns, 'idle');
    // Let the operator's caches catch up with what the API server now holds.
    const { websites, configMaps, deployments, services } = op.website.informers;
    const rv = (o: KubernetesObject | undefined): string | undefined => o?.metadata?.resourceVersion;
    await Promise.all([
      untilCached(websites, `${ns}/idle`, (o) => rv(o) === before.website),
      untilCached(configMaps, `${ns}/idle-content`, (o) => rv(o) === before.configMap),
      untilCached(deployments, `${ns}/idle`, (o) => rv(o) === before.deployment),
      untilCached(services, `${ns}/idle`, (o) => rv(o) === before.service),
    ]);

    for (let i = 0; i < 3; i++) {
      const report = await op.reconcileNow('idle');
      expect(report.outcome).to.equal('Applied');
      expect(report.writes, JSON.stringify(report.applied)).to.equal(0);
    }
    expect(await readAll(ns, 'idle')).to.deep.equal(before);
  });

  it('does not wait for its events: a new Website\'s reconcile sends its writes only, the events go out after it', async () => {
    const { ns, op } = await run('web-events');
    const reconciled = op.nextReconcile((r) => r.key === `${ns}/quick` && r.outcome === 'Applied');
    await createWebsite(ns, 'quick', { replicas: 0 });
    const report = await reconciled;
    // The pass's own writes (creates, the hand-over of their fields, the status): no event among them.
    const writes = op.logLines.map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.message === 'write' && l.reconcileID === report.reconcileID).map((l) => String(l.write));
    expect(writes).to.have.length(report.writes);
    expect(writes.filter((w) => w.startsWith('create event')), 'the reconcile sent an event itself').to.deep.equal([]);
    expect(writes.filter((w) => w.startsWith('create '))).to.have.length(3);
    expect(report.events).to.deep.equal(['Created', 'Created', 'Created']);
    const created = (await eventsFor(ns, 'quick')).filter((e) => e.reason === 'Created').map((e) => e.note).sort();
    expect(created).to.deep.equal(['created ConfigMap quick-content', 'created Deployment quick', 'created Service quick']);
  });

  it('restores children that are deleted or edited by hand', async () => {
    const { ns } = await run('web-drift');
    await createWebsite(ns, 'drift', { html: '<p>original</p>' });
    const cm = await waitForChild<V1ConfigMap>(paths.configMaps(ns), 'drift-content');
    const dep = await waitForChild<V1Deployment>(paths.deployments(ns), 'drift');
    const svc = await waitForChild<V1Service>(paths.services(ns), 'drift');

    // Deleted: each comes back as a new object.
    await core.deleteNamespacedConfigMap({ namespace: ns, name: 'drift-content' });
    await apps.deleteNamespacedDeployment({ namespace: ns, name: 'drift' });
    await core.deleteNamespacedService({ namespace: ns, name: 'drift' });
    const cm2 = await waitForChild<V1ConfigMap>(paths.configMaps(ns), 'drift-content', (o) => o.metadata?.uid !== cm.metadata?.uid);
    expect(cm2.data?.['index.html']).to.equal('<p>original</p>');
    await waitForChild<V1Deployment>(paths.deployments(ns), 'drift', (o) => o.metadata?.uid !== dep.metadata?.uid);
    await waitForChild<V1Service>(paths.services(ns), 'drift', (o) => o.metadata?.uid !== svc.metadata?.uid);

    // Edited: each field goes back to what the Website says.
    const scaled = await apps.patchNamespacedDeployment({ namespace: ns, name: 'drift', body: { spec: { replicas: 5 } } }, mergePatch);
    expect(scaled.spec?.replicas).to.equal(5);
    await waitForChild<V1Deployment>(paths.deployments(ns), 'drift', (o) => o.spec?.replicas === 1);

    const edited = await core.patchNamespacedConfigMap({ namespace: ns, name: 'drift-content', body: { data: { 'index.html': '<p>defaced</p>' } } }, mergePatch);
    expect(edited.data?.['index.html']).to.equal('<p>defaced</p>');
    await waitForChild<V1ConfigMap>(paths.configMaps(ns), 'drift-content', (o) => o.data?.['index.html'] === '<p>original</p>');

    // The Service: fields of its port item and its selector go back; the item's key (the port number) is another matter, below.
    const retargeted = await core.patchNamespacedService(
      { namespace: ns, name: 'drift', body: { spec: { ports: [{ name: 'http', port: 80, targetPort: 9090 }], selector: { 'app.kubernetes.io/instance': 'other' } } } },
      mergePatch);
    expect(retargeted.spec?.ports?.[0]?.targetPort).to.equal(9090);
    await waitForChild<V1Service>(paths.services(ns), 'drift', (o) =>
      o.spec?.ports?.length === 1 && o.spec.ports[0]?.targetPort === 'http' && o.spec.selector?.['app.kubernetes.io/instance'] === 'drift');

    // Without the managed-by label a child leaves the operator's cache; the reconcile that follows puts the label back.
    await core.patchNamespacedService({ namespace: ns, name: 'drift', body: { metadata: { labels: { 'app.kubernetes.io/managed-by': null } } } }, mergePatch);
    await waitForChild<V1Service>(paths.services(ns), 'drift', (o) => o.metadata?.labels?.['app.kubernetes.io/managed-by'] === 'ha-operator');

    const updated = (await eventsFor(ns, 'drift')).filter((e) => e.reason === 'Updated').map((e) => e.note);
    expect(updated).to.include.members([
      'updated Deployment drift: spec.replicas differed from the Website\'s spec',
      'updated ConfigMap drift-content: data.index.html differed from the Website\'s spec',
      'updated Service drift: spec.selector.app.kubernetes.io/instance differed from the Website\'s spec',
    ]);
    // A converged Website again.
    await waitForWebsite(ns, 'drift', (w) => condition(w, 'Ready')?.reason === 'RollingOut' && condition(w, 'Degraded')?.status === 'False');
  });

  it('restores a Service port number changed by hand, although server-side apply cannot remove the list item another manager owns', async () => {
    const { ns } = await run('web-port');
    await createWebsite(ns, 'port', { replicas: 0 });
    await waitForWebsite(ns, 'port', settled('ScaledToZero'));
    const before = await waitForChild<V1Service>(paths.services(ns), 'port');

    // ports is a list keyed by port and protocol: 8080 is a new item, owned by the editor, and an apply of item 80
    // clashes with it (the same name); the operator replaces the list by a merge patch, then applies again.
    const edited = await core.patchNamespacedService({ namespace: ns, name: 'port', body: { spec: { ports: [{ name: 'http', port: 8080, targetPort: 'http' }] } } }, mergePatch);
    expect(edited.spec?.ports?.map((p) => p.port)).to.deep.equal([8080]);
    // Done when the operator's apply (not only its merge patch) owns port 80 again.
    const appliedPort80 = (s: V1Service): boolean => s.metadata?.managedFields?.some((f) =>
      f.manager === 'ha-operator' && f.operation === 'Apply' &&
      (f.fieldsV1 as Record<string, Record<string, Record<string, unknown>> | undefined> | undefined)?.['f:spec']?.['f:ports']?.['k:{"port":80,"protocol":"TCP"}'] !== undefined) ?? false;
    const restored = await waitForChild<V1Service>(paths.services(ns), 'port', (s) =>
      s.metadata?.resourceVersion !== edited.metadata?.resourceVersion && s.spec?.ports?.length === 1 && appliedPort80(s));
    expect(restored.spec?.ports?.[0]).to.include({ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' });
    // The same Service, not a new one: its ClusterIP did not change.
    expect(restored.metadata?.uid).to.equal(before.metadata?.uid);
    expect(restored.spec?.clusterIP).to.equal(before.spec?.clusterIP);

    await waitForWebsite(ns, 'port', settled('ScaledToZero'));
    expect((await eventsFor(ns, 'port')).filter((e) => e.type === 'Warning')).to.deep.equal([]);
  });

  it('reports ApplyFailed with both refusals when the merge patch cannot mend an invalid Service either', async () => {
    const { ns } = await run('web-port-invalid');
    await createWebsite(ns, 'np', { replicas: 0, serviceType: 'NodePort', nodePort: 30081 });
    await waitForWebsite(ns, 'np', settled('ScaledToZero'));
    await waitForChild<V1Service>(paths.services(ns), 'np', (s) => s.spec?.ports?.[0]?.nodePort === 30081);

    // Outside the node port range (30000-32767): invalid as an apply and as a merge patch alike.
    await patchWebsite(ns, 'np', { nodePort: 80 });
    const failed = await waitForWebsite(ns, 'np', settled('ApplyFailed'));
    const refusal = `422 Invalid: Service "np" is invalid: spec.ports\\[0\\].nodePort: Invalid value: 80: provided port is not in the valid range`;
    expect(condition(failed, 'Ready')?.message).to.match(new RegExp(`^apply of Service ${ns}/np failed: ${refusal}.*; replacing its lists failed too: ${refusal}`));
    const service = await waitForChild<V1Service>(paths.services(ns), 'np');
    expect(service.spec?.ports?.[0]?.nodePort).to.equal(30081);
  });

  it('reports ready replicas and Ready=True once the pods are Ready', async () => {
    const { ns, op } = await run('web-ready');
    await createWebsite(ns, 'ready', { replicas: 2 });
    // The ReplicaSet controller creates the pods; no scheduler or kubelet ever runs them.
    await waitForChild<V1Deployment>(paths.deployments(ns), 'ready', (d) => d.status?.replicas === 2);
    const rolling = await waitForWebsite(ns, 'ready', (w) => condition(w, 'Ready')?.message === '0 of 2 updated replicas available');
    expect(rolling.status?.readyReplicas).to.equal(0);

    // Play the kubelet: mark each pod Running and Ready through the status subresource.
    const pods = await core.listNamespacedPod({ namespace: ns, labelSelector: 'app.kubernetes.io/instance=ready' });
    expect(pods.items).to.have.length(2);
    const now = new Date();
    for (const pod of pods.items) {
      await core.patchNamespacedPodStatus({
        namespace: ns,
        name: pod.metadata!.name!,
        body: { status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: now }] } },
      }, mergePatch);
    }

    const ready = await waitForWebsite(ns, 'ready', settled('Available'));
    expect(ready.status?.readyReplicas).to.equal(2);
    expect(ready.status?.conditions?.map((c) => [c.type, c.status, c.reason])).to.deep.equal([
      ['Ready', 'True', 'Available'], ['Progressing', 'False', 'RolloutComplete'], ['Degraded', 'False', 'AsExpected'],
    ]);
    expect(condition(ready, 'Ready')?.message).to.equal('2 of 2 replicas available');
    const events = await eventsFor(ns, 'ready');
    expect(events.filter((e) => e.reason === 'Ready').map((e) => e.note)).to.deep.equal(['Available: 2 of 2 replicas available']);

    // Converged again: another pass writes nothing.
    await untilCached(op.website.informers.websites, `${ns}/ready`, (w) => w?.metadata?.resourceVersion === ready.metadata.resourceVersion);
    expect((await op.reconcileNow('ready')).writes).to.equal(0);
  });

  describe('bad input', () => {
    // Each is refused by the CRD's schema or CEL rules with a 422 and the server's message.
    const rejected: [string, string, SpecInput | undefined, string][] = [
      ['a name that starts with a digit', '1st-site', {}, 'metadata.name must be a DNS-1035 label (it names the Service)'],
      ['a name with a dot', 'my.site', {}, 'metadata.name must be a DNS-1035 label (it names the Service)'],
      ['a name of 64 characters', `s${'a'.repeat(63)}`, {}, 'metadata.name must be a DNS-1035 label (it names the Service)'],
      ['no spec', 'no-spec', undefined, 'spec: Required value'],
      ['nodePort without serviceType NodePort', 'np-clusterip', { nodePort: 30080 }, 'spec.nodePort: Invalid value: nodePort may only be set when serviceType is NodePort'],
      ['nodePort above 65535', 'np-high', { serviceType: 'NodePort', nodePort: 70000 }, 'spec.nodePort: Invalid value: 70000: spec.nodePort in body should be less than or equal to 65535'],
      ['nodePort 0', 'np-zero', { serviceType: 'NodePort', nodePort: 0 }, 'spec.nodePort: Invalid value: 0: spec.nodePort in body should be greater than or equal to 1'],
      ['11 replicas', 'too-many', { replicas: 11 }, 'spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10'],
      ['negative replicas', 'negative', { replicas: -1 }, 'spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0'],
      ['replicas as a string', 'string-replicas', { replicas: 'two' }, 'spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer'],
      ['an unknown serviceType', 'lb', { serviceType: 'LoadBalancer' }, 'spec.serviceType: Unsupported value: "LoadBalancer": supported values: "ClusterIP", "NodePort"'],
      ['html over 65536 characters', 'huge', { html: 'x'.repeat(65537) }, 'spec.html: Too long: may not be more than 65536'],
      ['an empty image', 'no-image', { image: '' }, 'spec.image in body should be at least 1 chars long'],
      ['an image with a space', 'spaced', { image: 'nginx latest' }, "spec.image in body should match '^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$'"],
      ['an image starting with -', 'dash', { image: '-nginx' }, "spec.image in body should match '^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$'"],
      ['an image over 512 characters', 'long-image', { image: 'a'.repeat(513) }, 'spec.image: Too long: may not be more than 512'],
    ];
    let ns: string;

    before(async () => {
      ns = await freshNamespace('web-rejected');
    });

    for (const [what, name, spec, message] of rejected) {
      it(`rejects ${what} (422)`, async () => {
        const error = await apiError(createWebsite(ns, name, spec));
        expect(error.code).to.equal(422);
        expect(serverMessage(error)).to.include(message);
      });
    }
  });

  describe('a spec the schema accepts but the operator cannot apply', () => {
    const INVALID_IMAGE = 'is not an image reference of the form [registry[:port]/]repository[:tag][@algorithm:digest], with a lowercase repository path';
    // Accepted by the schema's deliberately loose pattern; the operator sets Ready=False InvalidSpec and creates no child.
    const invalid: [string, string, string, string?][] = [
      ['an uppercase repository', 'upper', 'Nginx:1.27'],
      ['an empty tag', 'empty-tag', 'nginx:'],
      ['a tag starting with -', 'dash-tag', 'nginx:-1'],
      ['a tag starting with .', 'dot-tag', 'nginx:.1'],
      ['two tags', 'two-tags', 'nginx:1.27:alpine'],
      ['an empty path component', 'empty-path', 'library//nginx'],
      ['a trailing slash', 'trailing-slash', 'nginx/'],
      ['a + outside a digest', 'plus', 'nginx+extra'],
      ['a registry port that is not a number', 'bad-port', 'registry:abc/nginx'],
      ['a digest of 6 hex digits', 'short-digest', 'nginx@sha256:abc123'],
      ['a digest without hex digits', 'no-digest', 'nginx@sha256'],
      ['a tag of 129 characters', 'long-tag', `nginx:${'t'.repeat(129)}`],
      ['a repository name of 256 characters', 'long-repo', 'r'.repeat(256), 'spec.image: the repository name is 256 characters long; at most 255 are allowed'],
    ];
    let ns: string;
    let op: WebsiteTestOperator;

    before(async () => {
      ns = await freshNamespace('web-invalid');
      op = await startWebsiteOperator(ns);
      for (const [, name, image] of invalid) await createWebsite(ns, name, { image });
      // Outside the node port range (30000-32767): only the Service apply can tell.
      await createWebsite(ns, 'low-port', { replicas: 0, serviceType: 'NodePort', nodePort: 80 });
      await createWebsite(ns, 'good', { replicas: 0 });
    });

    after(async () => {
      await op.stop();
    });

    for (const [what, name, image, message] of invalid) {
      it(`marks ${what} InvalidSpec, with one Warning and no child`, async () => {
        const website = await waitForWebsite(ns, name, settled('InvalidSpec'));
        for (const type of ['Ready', 'Progressing', 'Degraded']) {
          expect(condition(website, type)?.message).to.equal(message ?? `spec.image "${image}" ${INVALID_IMAGE}`);
        }
        expect(condition(website, 'Degraded')?.status).to.equal('True');
        expect(website.status?.url).to.equal(undefined);
        const warnings = (await eventsFor(ns, name)).filter((e) => e.type === 'Warning');
        expect(warnings.map((e) => [e.reason, e.action, e.note])).to.deep.equal([['InvalidSpec', 'Validate', condition(website, 'Ready')?.message]]);
        expect(op.website.informers.configMaps.get(`${ns}/${name}-content`)).to.equal(undefined);
        expect(op.website.informers.deployments.get(`${ns}/${name}`)).to.equal(undefined);
      });
    }

    it('marks a nodePort outside the node port range ApplyFailed, naming the Service and the server\'s reason', async () => {
      const website = await waitForWebsite(ns, 'low-port', settled('ApplyFailed'));
      const message = condition(website, 'Ready')?.message ?? '';
      expect(message).to.match(new RegExp(`^create of Service ${ns}/low-port failed: 422 Invalid: Service "low-port" is invalid: spec.ports\\[0\\].nodePort: Invalid value: 80: provided port is not in the valid range`));
      const warnings = (await eventsFor(ns, 'low-port')).filter((e) => e.type === 'Warning');
      expect(warnings.map((e) => [e.reason, e.action, e.note])).to.deep.equal([['ApplyFailed', 'Apply', message]]);
    });

    it('logs one readable line per failed reconcile: the call, the object, the server\'s reason and message, no headers or stacks', () => {
      const failed = op.logLines.map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((l) => l.message === 'reconcile failed' && l.key === `${ns}/low-port` && l.reason === 'ApplyFailed');
      expect(failed).to.not.be.empty;
      for (const line of failed) {
        expect(line).to.include({ level: 'error' });
        expect(line.error).to.match(new RegExp(`^Website ${ns}/low-port: create of Service ${ns}/low-port failed: 422 Invalid: Service "low-port" is invalid: spec.ports\\[0\\].nodePort: Invalid value: 80`));
        const text = JSON.stringify(line);
        expect(text.length, text).to.be.below(1_500);
        expect(text).to.not.match(/content-type|x-kubernetes-pf|audit-id|\bstack\b|at async/i);
      }
    });

    it('converges a good Website in the same namespace meanwhile', async () => {
      const website = await waitForWebsite(ns, 'good', settled('ScaledToZero'));
      expect(website.status?.url).to.equal(`http://good.${ns}.svc.cluster.local:80`);
      await waitForChild<V1Service>(paths.services(ns), 'good');
    });

    it('retries an invalid Website with backoff, writing nothing and recording no second Warning', async () => {
      const website = await waitForWebsite(ns, 'upper', settled('InvalidSpec'));
      await untilCached(op.website.informers.websites, `${ns}/upper`, (w) => w?.metadata?.resourceVersion === website.metadata.resourceVersion);
      const report = await op.reconcileNow('upper');
      expect(report.outcome).to.equal('InvalidSpec');
      expect(report.writes).to.equal(0);
      expect((await eventsFor(ns, 'upper')).filter((e) => e.type === 'Warning')).to.have.length(1);
      const failures = op.reports.filter((r) => r.key === `${ns}/upper`);
      expect(failures.length).to.be.greaterThan(1);
      expect(failures.slice(1).every((r) => r.writes === 0)).to.be.true;
    });

    it('applies the children once the spec is fixed, and says it recovered', async () => {
      await patchWebsite(ns, 'two-tags', { image: DEFAULT_IMAGE, replicas: 0 });
      const website = await waitForWebsite(ns, 'two-tags', settled('ScaledToZero'));
      expect(condition(website, 'Degraded')?.status).to.equal('False');
      await waitForChild<V1Deployment>(paths.deployments(ns), 'two-tags', (d) => d.spec?.template.spec?.containers[0]?.image === DEFAULT_IMAGE);
      const events = await eventsFor(ns, 'two-tags');
      expect(events.map((e) => e.reason)).to.include('Ready');
    });
  });


  describe('a child\'s name taken by an object the Website does not control', () => {
    const userLabels = { owner: 'a-user' };
    const foreign: Record<string, { path: (ns: string) => string; name: string; create: (ns: string) => Promise<KubernetesObject> }> = {
      ConfigMap: {
        path: paths.configMaps, name: 'hello-content',
        create: (ns) => core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'hello-content', labels: userLabels }, data: { mine: 'keep' } } }),
      },
      Deployment: {
        path: paths.deployments, name: 'hello',
        create: (ns) => apps.createNamespacedDeployment({ namespace: ns, body: {
          metadata: { name: 'hello', labels: userLabels },
          spec: { replicas: 0, selector: { matchLabels: userLabels }, template: { metadata: { labels: userLabels }, spec: { containers: [{ name: 'app', image: 'user/app:1' }] } } },
        } }),
      },
      Service: {
        path: paths.services, name: 'hello',
        create: (ns) => core.createNamespacedService({ namespace: ns, body: { metadata: { name: 'hello', labels: userLabels }, spec: { selector: userLabels, ports: [{ port: 9999 }] } } }),
      },
    };

    for (const [kind, child] of Object.entries(foreign)) {
      it(`leaves a user's ${kind} of that name alone: NameTaken naming it, one Warning, retries, nothing written`, async () => {
        const { ns, op } = await run(`web-taken-${kind.toLowerCase()}`);
        const theirs = await child.create(ns);
        await createWebsite(ns, 'hello', {});
        const expected = `${kind} ${ns}/${child.name} already exists and this Website does not control it (it has no controller); the operator leaves it alone`;
        const website = await waitForWebsite(ns, 'hello', (w) => condition(w, 'Degraded')?.reason === 'NameTaken');
        expect(condition(website, 'Degraded')?.message).to.include(expected);
        expect(condition(website, 'Ready')).to.include({ status: 'False', reason: 'NameTaken' });
        // Retried with backoff, and still one Warning: the occurrence is the same.
        await op.nextReconcile((r) => r.key === `${ns}/hello` && r.outcome === 'NameTaken' && r.trigger === 'retry');
        await op.reconcileNow('hello');
        const warnings = (await eventsFor(ns, 'hello')).filter((e) => e.reason === 'NameTaken');
        expect(warnings.map((e) => [e.type, e.action])).to.deep.equal([['Warning', 'Create']]);
        // No write of ours reached it: no field of it is ours, no owner, its labels as the user set them.
        const now = await waitForObject<KubernetesObject>(kc, child.path(ns), child.name, (o) => o !== undefined);
        expect(now?.metadata?.uid).to.equal(theirs.metadata?.uid);
        expect(now?.metadata?.managedFields?.map((m) => m.manager)).to.not.include('ha-operator');
        expect(now?.metadata?.ownerReferences ?? []).to.deep.equal([]);
        expect(now?.metadata?.labels).to.deep.equal(userLabels);
        if (kind === 'ConfigMap') {
          // The Deployment would mount the user's ConfigMap: it is not created either.
          expect(await apps.readNamespacedDeployment({ namespace: ns, name: 'hello' }).then(() => 'created', () => 'absent')).to.equal('absent');
        }
      });
    }

    it('leaves alone a child that carries the managed-by label but another controller', async () => {
      const { ns } = await run('web-taken-labelled');
      // A real owner: the garbage collector deletes an object whose owner does not exist.
      const owner = await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'someone-else' } } });
      const other = { apiVersion: 'v1', kind: 'ConfigMap', name: 'someone-else', uid: owner.metadata!.uid!, controller: true };
      const theirs = await core.createNamespacedConfigMap({ namespace: ns, body: {
        metadata: { name: 'hello-content', labels: { 'app.kubernetes.io/managed-by': 'ha-operator' }, ownerReferences: [other] }, data: { mine: 'keep' },
      } });
      await createWebsite(ns, 'hello', {});
      const website = await waitForWebsite(ns, 'hello', (w) => condition(w, 'Degraded')?.reason === 'NameTaken');
      expect(condition(website, 'Degraded')?.message).to.include(`ConfigMap ${ns}/hello-content already exists and this Website does not control it (it is controlled by ConfigMap someone-else)`);
      const now = await core.readNamespacedConfigMap({ namespace: ns, name: 'hello-content' });
      expect(now.metadata?.resourceVersion).to.equal(theirs.metadata?.resourceVersion);
    });
  });

  // Last, so that the garbage collector has had time to discover the new CRD (it looks every 30 s).
  describe('deletion', () => {
    it('deletes the children with the Website (ownerReference garbage collection)', async function () {
      this.timeout(90_000);
      const { ns } = await run('web-delete');
      await createWebsite(ns, 'doomed', { replicas: 0 });
      await waitForWebsite(ns, 'doomed', settled('ScaledToZero'));
      await waitForChild<V1Service>(paths.services(ns), 'doomed');
      await custom.deleteNamespacedCustomObject({ group: WEBSITE_GROUP, version: WEBSITE_VERSION, plural: WEBSITE_PLURAL, namespace: ns, name: 'doomed' });
      await Promise.all([
        waitForObject(kc, paths.configMaps(ns), 'doomed-content', (o) => o === undefined, 75_000),
        waitForObject(kc, paths.deployments(ns), 'doomed', (o) => o === undefined, 75_000),
        waitForObject(kc, paths.services(ns), 'doomed', (o) => o === undefined, 75_000),
      ]);
    });

    it('leaves a user\'s object whose name a child wanted when the Website is deleted', async function () {
      this.timeout(90_000);
      const { ns } = await run('web-taken-delete');
      const labels = { owner: 'a-user' };
      const theirs = await apps.createNamespacedDeployment({ namespace: ns, body: {
        metadata: { name: 'kept', labels },
        spec: { replicas: 0, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers: [{ name: 'app', image: 'user/app:1' }] } } },
      } });
      await createWebsite(ns, 'kept', {});
      await waitForWebsite(ns, 'kept', (w) => condition(w, 'Degraded')?.reason === 'NameTaken');
      // The ConfigMap comes first and is the Website's own.
      await waitForChild<V1ConfigMap>(paths.configMaps(ns), 'kept-content');
      await custom.deleteNamespacedCustomObject({ group: WEBSITE_GROUP, version: WEBSITE_VERSION, plural: WEBSITE_PLURAL, namespace: ns, name: 'kept' });
      // Once the collector has removed what the Website owned, the user's Deployment is still there, untouched.
      await waitForObject(kc, paths.configMaps(ns), 'kept-content', (o) => o === undefined, 75_000);
      const now = await apps.readNamespacedDeployment({ namespace: ns, name: 'kept' });
      expect(now.metadata?.uid).to.equal(theirs.metadata?.uid);
      expect(now.metadata?.managedFields?.map((m) => m.manager)).to.not.include('ha-operator');
      expect(now.metadata?.ownerReferences ?? []).to.deep.equal([]);
    });
  });
});

/** The resourceVersions of a Website and its children. */
async function readAll(ns: string, name: string): Promise<Record<string, string | undefined>> {
  const [website, configMap, deployment, service] = await Promise.all([
    custom.getNamespacedCustomObject({ group: WEBSITE_GROUP, version: WEBSITE_VERSION, plural: WEBSITE_PLURAL, namespace: ns, name }) as Promise<Website>,
    core.readNamespacedConfigMap({ namespace: ns, name: `${name}-content` }),
    apps.readNamespacedDeployment({ namespace: ns, name }),
    core.readNamespacedService({ namespace: ns, name }),
  ]);
  return {
    website: website.metadata.resourceVersion,
    configMap: configMap.metadata?.resourceVersion,
    deployment: deployment.metadata?.resourceVersion,
    service: service.metadata?.resourceVersion,
  };
}
