import { expect } from 'chai';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { AppsV1Api, CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions, type V1ConfigMap, type V1Deployment } from '@kubernetes/client-node';

import { readAuditLog } from '../../../hack/lib/audit.ts';
import { TcpProxy, writeProxiedKubeconfig } from '../../../hack/lib/tcp-proxy.ts';
import { systemClock } from '../../../src/runtime/clock.ts';
import { Discovery } from '../../../src/runtime/discovery.ts';
import { NotLeaderError } from '../../../src/runtime/errors.ts';
import { LeaseGate, type RenewalClock } from '../../../src/runtime/gate.ts';
import { KubeApiError, KubeClient } from '../../../src/runtime/kube.ts';
import { createLogger } from '../../../src/runtime/logging.ts';
import { FencedWriter, InFlightRequests, type WriterContext } from '../../../src/runtime/writer.ts';
import { adminKubeConfig, cluster, freshNamespace } from '../support/cluster.ts';

/**
 * The fenced writer against the real API server: the preconditions it sends
 * are honoured (a late write cannot overwrite a newer one, a create cannot
 * take over an object), its requests end with their term, and the audit log
 * names the term of each write.
 */

const RENEW_DEADLINE_MS = 1_500;
const quiet = createLogger({ level: 'error', format: 'json', stream: new Writable({ write: (_c, _e, done) => done() }) });

/** A term whose last renewal the test sets. */
class Term implements RenewalClock {
  atMs = systemClock.monotonicMs();
  lastRenewedAtMs(): number {
    return this.atMs;
  }
  term(): string {
    return 'writer-test@42';
  }
}

function configMap(namespace: string, name: string, data: Record<string, string>): V1ConfigMap {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace }, data };
}

describe('FencedWriter against the API server', function () {
  this.timeout(30_000);
  let namespace: string;
  let gate: LeaseGate;
  let term: Term;
  let proxy: TcpProxy | undefined;

  beforeEach(async () => {
    namespace = await freshNamespace('writer');
    gate = new LeaseGate({ shards: 1, renewDeadlineMs: RENEW_DEADLINE_MS });
    term = new Term();
    gate.started(0, term);
    proxy = undefined;
  });

  afterEach(async () => {
    await proxy?.close();
  });

  function writerOver(kubeConfig: KubeConfig, key = `${namespace}/site`): FencedWriter {
    const client = new KubeClient(kubeConfig, { userAgent: 'ha-operator/test (writer-test)' });
    const context: WriterContext = {
      client, discovery: new Discovery(client), gate, requests: new InFlightRequests(), fieldManager: 'ha-operator', userAgent: 'ha-operator/test (writer-test)', clock: systemClock,
    };
    return new FencedWriter({ context, key, signal: new AbortController().signal, logger: quiet });
  }

  async function proxiedWriter(): Promise<FencedWriter> {
    proxy = await TcpProxy.start({ port: cluster().apiServerPort });
    const path = await writeProxiedKubeconfig(cluster().kubeconfigPath, join(cluster().dir, `${namespace}-writer.kubeconfig`), proxy.port);
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(path);
    return writerOver(kubeConfig);
  }

  it('an apply carrying a cached resourceVersion that is no longer current gets 409 and changes nothing', async () => {
    const writer = writerOver(adminKubeConfig());
    const created = await writer.create(configMap(namespace, 'site', { v: '1' }));
    const newer = await writer.apply(configMap(namespace, 'site', { v: '2' }), created.metadata!.resourceVersion);
    const late = await writer.apply(configMap(namespace, 'site', { v: 'late' }), created.metadata!.resourceVersion).catch((e: unknown) => e);
    expect(late).to.be.instanceOf(KubeApiError).and.include({ code: 409, reason: 'Conflict' });
    const now = await writer.apply(configMap(namespace, 'site', { v: '2' }), newer.metadata!.resourceVersion);
    expect(now.data).to.deep.equal({ v: '2' });
  });

  it('an apply with the resourceVersion of an object deleted since creates it again (the API server takes no precondition on a create)', async () => {
    const writer = writerOver(adminKubeConfig());
    const created = await writer.create(configMap(namespace, 'again', { v: '1' }));
    await adminKubeConfig().makeApiClient(CoreV1Api).deleteNamespacedConfigMap({ namespace, name: 'again' });
    const applied = await writer.apply(configMap(namespace, 'again', { v: '2' }), created.metadata!.resourceVersion);
    expect(applied.metadata?.uid).to.not.equal(created.metadata?.uid);
    expect(applied.data).to.deep.equal({ v: '2' });
  });

  it('a create of a name that exists gets 409 AlreadyExists instead of taking the object over', async () => {
    const writer = writerOver(adminKubeConfig());
    const theirs = await writer.create(configMap(namespace, 'taken', { theirs: 'yes' }));
    const ours = await writer.create(configMap(namespace, 'taken', { ours: 'yes' })).catch((e: unknown) => e);
    expect(ours).to.be.instanceOf(KubeApiError).and.include({ code: 409, reason: 'AlreadyExists' });
    const now = await adminKubeConfig().makeApiClient(CoreV1Api).readNamespacedConfigMap({ namespace, name: 'taken' });
    expect(now.data).to.deep.equal({ theirs: 'yes' });
    expect(now.metadata?.resourceVersion).to.equal(theirs.metadata?.resourceVersion);
  });

  it('creates with one request, and the first apply hands the fields the create set to the apply, so one that drops a field removes it', async () => {
    const writer = writerOver(adminKubeConfig());
    const created = await writer.create(configMap(namespace, 'fields', { keep: '1', drop: '2' }));
    expect(writer.writes, 'requests of the create').to.equal(1);
    expect(created.metadata?.managedFields?.map((m) => [m.manager, m.operation])).to.deep.equal([['ha-operator', 'Update']]);
    const applied = await writer.apply(configMap(namespace, 'fields', { keep: '1' }), created.metadata!.resourceVersion);
    expect(applied.data).to.deep.equal({ keep: '1' });
    expect(applied.metadata?.managedFields?.map((m) => [m.manager, m.operation])).to.deep.equal([['ha-operator', 'Apply']]);
    // From then on an apply is one request.
    const before = writer.writes;
    const again = await writer.apply(configMap(namespace, 'fields', { keep: '2' }), applied.metadata!.resourceVersion);
    expect(again.data).to.deep.equal({ keep: '2' });
    expect(writer.writes - before).to.equal(1);
  });

  it('hands over the fields of its own merge patch too: list items the patch set and a later apply drops go', async () => {
    const writer = writerOver(adminKubeConfig());
    const created = await writer.create(configMap(namespace, 'lists', { a: '1' }));
    const patched = await writer.replaceLists(configMap(namespace, 'lists', { a: '1', b: '2' }), created.metadata!.resourceVersion!);
    const applied = await writer.apply(configMap(namespace, 'lists', { a: '1' }), patched.metadata!.resourceVersion);
    expect(applied.data).to.deep.equal({ a: '1' });
    expect(applied.metadata?.managedFields?.map((m) => [m.manager, m.operation])).to.deep.equal([['ha-operator', 'Apply']]);
  });

  it('applies the status of a cluster-scoped object, whatever namespace the target names', async () => {
    const writer = writerOver(adminKubeConfig());
    const condition = { type: 'ExampleChecked', status: 'True', reason: 'Checked', message: 'by the writer test', lastTransitionTime: '2026-01-01T00:00:00Z' };
    // A Namespace is cluster-scoped: the namespace given (as a controller working in one would) does not apply.
    await writer.applyStatus({ apiVersion: 'v1', kind: 'Namespace', namespace, name: namespace }, { conditions: [condition] });
    const read = await adminKubeConfig().makeApiClient(CoreV1Api).readNamespace({ name: namespace });
    expect(read.status?.conditions?.map((c) => [c.type, c.status, c.reason])).to.deep.include(['ExampleChecked', 'True', 'Checked']);
  });

  describe('finalizers', () => {
    const OURS = 'ha-operator.example.com/cleanup';
    const THEIRS = 'example.com/theirs';

    it('adds and removes its own finalizer, and leaves another one alone', async () => {
      const core = adminKubeConfig().makeApiClient(CoreV1Api);
      const created = await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'final', finalizers: [THEIRS] } } });
      const writer = writerOver(adminKubeConfig());
      const cached = { ...created, apiVersion: 'v1', kind: 'ConfigMap' };
      const added = await writer.setFinalizer(cached, OURS, true);
      expect(added.metadata?.finalizers).to.deep.equal([THEIRS, OURS]);
      const writes = writer.writes;
      expect(await writer.setFinalizer(added, OURS, true), 'already there').to.equal(added);
      expect(writer.writes).to.equal(writes);
      const removed = await writer.setFinalizer(added, OURS, false);
      expect(removed.metadata?.finalizers).to.deep.equal([THEIRS]);
      // A copy from before the removal is stale: 409, and nothing is lost.
      const stale = await writer.setFinalizer({ ...added, metadata: { ...added.metadata, finalizers: [OURS] } }, OURS, false).catch((e: unknown) => e);
      expect(stale).to.be.instanceOf(KubeApiError).and.include({ code: 409 });
      await core.patchNamespacedConfigMap({ namespace, name: 'final', body: { metadata: { finalizers: null } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    });

    it('lets a deletion finish by removing it, and never creates a deleted object again', async () => {
      const core = adminKubeConfig().makeApiClient(CoreV1Api);
      const writer = writerOver(adminKubeConfig());
      const typed = (o: V1ConfigMap): V1ConfigMap => ({ ...o, apiVersion: 'v1', kind: 'ConfigMap' });
      const created = await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'held' } } });
      const held = await writer.setFinalizer(typed(created), OURS, true);
      await core.deleteNamespacedConfigMap({ namespace, name: 'held' });
      const deleting = typed(await core.readNamespacedConfigMap({ namespace, name: 'held' }));
      expect(deleting.metadata?.deletionTimestamp, 'the finalizer holds the deletion').to.not.equal(undefined);
      // A copy older than the deletion is refused (409), then the current one lets it go.
      const stale = await writer.setFinalizer(held, OURS, false).catch((e: unknown) => e);
      expect(stale).to.be.instanceOf(KubeApiError).and.include({ code: 409 });
      await writer.setFinalizer(deleting, OURS, false);
      const gone = await core.readNamespacedConfigMap({ namespace, name: 'held' }).catch((e: unknown) => e);
      expect((gone as { code?: number }).code).to.equal(404);
      // Adding it again with the last copy seen does not bring the object back.
      const late = await writer.setFinalizer({ ...deleting, metadata: { ...deleting.metadata, finalizers: [] } }, OURS, true).catch((e: unknown) => e);
      expect(late).to.be.instanceOf(KubeApiError).and.include({ code: 404 });
      expect(((await core.readNamespacedConfigMap({ namespace, name: 'held' }).catch((e: unknown) => e)) as { code?: number }).code).to.equal(404);
    });
  });

  it('deletes an object only while it is the one with the uid given: a same-named successor stays', async () => {
    const writer = writerOver(adminKubeConfig());
    const first = await writer.create(configMap(namespace, 'doomed', { v: '1' }));
    await adminKubeConfig().makeApiClient(CoreV1Api).deleteNamespacedConfigMap({ namespace, name: 'doomed' });
    const second = await writer.create(configMap(namespace, 'doomed', { v: '2' }));
    const stale = await writer.delete({ ...first, metadata: { ...first.metadata!, uid: first.metadata!.uid! } }).catch((e: unknown) => e);
    expect(stale).to.be.instanceOf(KubeApiError).and.include({ code: 409 });
    await writer.delete({ ...second, metadata: { ...second.metadata!, uid: second.metadata!.uid! } });
    expect(await adminKubeConfig().makeApiClient(CoreV1Api).readNamespacedConfigMap({ namespace, name: 'doomed' }).then(() => 'there', () => 'gone')).to.equal('gone');
    // Already gone is no error.
    await writer.delete({ ...second, metadata: { ...second.metadata!, uid: second.metadata!.uid! } });
  });

  it('a status apply conditional on a resourceVersion that is no longer current gets 409', async () => {
    const writer = writerOver(adminKubeConfig());
    // The Deployment's status subresource stands in for any object with one.
    const created = await writer.create<V1Deployment>({
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'site', namespace },
      spec: { replicas: 0, selector: { matchLabels: { a: 'b' } }, template: { metadata: { labels: { a: 'b' } }, spec: { containers: [{ name: 'c', image: 'x' }] } } },
    });
    // Someone else changes it meanwhile.
    await adminKubeConfig().makeApiClient(AppsV1Api).patchNamespacedDeployment(
      { namespace, name: 'site', body: { metadata: { labels: { changed: 'yes' } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    const late = await writer.applyStatus({ apiVersion: 'apps/v1', kind: 'Deployment', namespace, name: 'site' }, { observedGeneration: 7 }, created.metadata!.resourceVersion)
      .catch((e: unknown) => e);
    expect(late).to.be.instanceOf(KubeApiError).and.include({ code: 409 });
  });

  it('ends a write in flight the moment its term ends', async () => {
    const writer = await proxiedWriter();
    await writer.create(configMap(namespace, 'warm', { v: '1' }));
    proxy!.hold('up');
    const pending = writer.apply(configMap(namespace, 'warm', { v: '2' })).catch((e: unknown) => e);
    await proxy!.whenHeld('up');
    gate.stopped(0, 'another holder took the lease: b');
    const outcome = await pending;
    expect(outcome).to.be.instanceOf(KubeApiError);
    expect((outcome as KubeApiError).message).to.match(/: no response: lost leadership of shard 0: another holder took the lease: b$/);
    expect(() => gate.permitFor(`${namespace}/site`)).to.throw(NotLeaderError);
  });

  it('ends a write in flight at the end of its term — last renewal + renewDeadline — when no renewal comes', async () => {
    const writer = await proxiedWriter();
    await writer.create(configMap(namespace, 'slow', { v: '1' }));
    term.atMs = systemClock.monotonicMs();
    proxy!.hold('up');
    const sentMs = performance.now();
    const outcome = await writer.apply(configMap(namespace, 'slow', { v: '2' })).catch((e: unknown) => e);
    const tookMs = performance.now() - sentMs;
    expect(outcome).to.be.instanceOf(KubeApiError).and.include({ code: undefined });
    expect((outcome as KubeApiError).message).to.match(/no response: deadline passed$/);
    expect(tookMs).to.be.within(RENEW_DEADLINE_MS - 50, RENEW_DEADLINE_MS + 500);
  });

  it('names the term in the User-Agent of every write, as the audit log records it', async () => {
    const writer = writerOver(adminKubeConfig());
    const created = await writer.create(configMap(namespace, 'named', { v: '1' }));
    // The apply, and the hand-over of the create's fields that follows it.
    await writer.apply(configMap(namespace, 'named', { v: '2' }), created.metadata!.resourceVersion);
    const events = (await readAuditLog(cluster().auditLogPath!))
      .filter((e) => e.objectRef?.namespace === namespace && e.objectRef.name === 'named' && e.objectRef.resource === 'configmaps');
    const term = 'ha-operator/test (writer-test) term/writer-test@42';
    expect(events.map((e) => [e.verb, e.userAgent])).to.deep.equal([['create', term], ['patch', term], ['patch', term]]);
  });
});
