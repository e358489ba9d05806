import { Writable } from 'node:stream';
import { expect } from 'chai';
import { CoreV1Api, type V1ConfigMap, type V1OwnerReference, type V1Secret } from '@kubernetes/client-node';

import { Controller } from '../../../src/runtime/controller.ts';
import { startHttpServer } from '../../../src/runtime/http.ts';
import { Informer } from '../../../src/runtime/informer.ts';
import { KubeClient } from '../../../src/runtime/kube.ts';
import { createLogger, type Logger } from '../../../src/runtime/logging.ts';
import { OperatorMetrics } from '../../../src/runtime/metrics.ts';
import { adminKubeConfig, cluster, freshNamespace } from '../support/cluster.ts';
import { sampleValue } from '../../support/metrics-text.ts';

function quietLogger(): Logger {
  const stream = new Writable({ write: (_chunk, _encoding, done) => done() });
  return createLogger({ level: 'info', format: 'json', stream });
}

interface Call {
  key: string;
  trigger: string;
  /** Whether the owner was in the primary cache when the reconcile ran. */
  ownerCached: boolean;
}

/**
 * A controller for ConfigMap owners whose children are Secrets, over real
 * informers, with a reconcile that records how it was called.
 */
class Rig {
  readonly namespace: string;
  readonly metrics = new OperatorMetrics();
  readonly core: CoreV1Api;
  /** Counted in `metrics`, as the operator's requests are. */
  readonly client: KubeClient;
  readonly owners: Informer<V1ConfigMap>;
  readonly children: Informer<V1Secret>;
  readonly controller: Controller;
  readonly calls: Call[] = [];
  private readonly waiters = new Set<() => void>();

  constructor(namespace: string, name: string) {
    const kubeConfig = adminKubeConfig();
    const logger = quietLogger();
    this.namespace = namespace;
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    // The informers, and the writes of the metrics test, go through a counted client, as the operator's do.
    const client = new KubeClient(kubeConfig, { metrics: this.metrics.restClientMetrics() });
    this.client = client;
    const backoff = { initialMs: 50, maxMs: 500 };
    this.owners = new Informer<V1ConfigMap>({
      client, logger, backoff, resource: { apiVersion: 'v1', kind: 'ConfigMap', plural: 'configmaps', namespace },
    });
    this.children = new Informer<V1Secret>({
      client, logger, backoff, resource: { apiVersion: 'v1', kind: 'Secret', plural: 'secrets', namespace },
    });
    this.controller = new Controller({
      name,
      logger,
      metrics: this.metrics,
      // One worker: keys are reconciled in the order their events arrived.
      concurrency: 1,
      reconcileTimeoutMs: 10_000,
      reconcile: (key, { trigger }) => {
        this.calls.push({ key, trigger, ownerCached: this.owners.get(key) !== undefined });
        for (const wake of this.waiters) wake();
        return Promise.resolve();
      },
    });
    this.controller.watchPrimary(this.owners);
    this.controller.watchOwned(this.children, { apiVersion: 'v1', kind: 'ConfigMap' });
  }

  async start(): Promise<void> {
    this.owners.start();
    this.children.start();
    await Promise.all([this.owners.whenSynced(), this.children.whenSynced()]);
    this.controller.start();
  }

  async stop(): Promise<void> {
    await this.controller.shutdown(5_000);
    await Promise.all([this.owners.stop(), this.children.stop()]);
  }

  key(name: string): string {
    return `${this.namespace}/${name}`;
  }

  /** Resolves with the index of the first call from `from` on that matches, as soon as it is made. */
  nextCall(what: string, matches: (call: Call) => boolean, from = 0, timeoutMs = 30_000): Promise<number> {
    const find = (): number => this.calls.findIndex((c, i) => i >= from && matches(c));
    const found = find();
    if (found >= 0) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const deadline = setTimeout(() => {
        this.waiters.delete(wake);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for a reconcile ${what}; calls: ${JSON.stringify(this.calls)}`));
      }, timeoutMs);
      const wake = (): void => {
        const index = find();
        if (index < 0) return;
        clearTimeout(deadline);
        this.waiters.delete(wake);
        resolve(index);
      };
      this.waiters.add(wake);
    });
  }
}


describe('Controller (real control plane)', function () {
  this.timeout(90_000);
  const rigs: Rig[] = [];

  async function rig(prefix: string, name: string): Promise<Rig> {
    const r = new Rig(await freshNamespace(prefix), name);
    rigs.push(r);
    await r.start();
    return r;
  }

  afterEach(async () => {
    await Promise.all(rigs.splice(0).map((r) => r.stop()));
  });

  it("routes owned children's events to their controlling owner's key", async () => {
    const r = await rig('ctl-owned', 'cm-owner');
    const { namespace, core } = r;

    const owner = await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'site' }, data: { v: '1' } } });
    await r.nextCall('for the new owner', (c) => c.key === r.key('site') && c.trigger === 'added');

    const controllerOf = (kind: string, apiVersion: string, name: string, uid: string): V1OwnerReference =>
      ({ apiVersion, kind, name, uid, controller: true });
    // Children that are not the controller's: another kind controls one, the other has no controller reference.
    await core.createNamespacedSecret({
      namespace,
      body: { metadata: { name: 'stray', ownerReferences: [controllerOf('Deployment', 'apps/v1', 'stray-owner', '00000000-0000-0000-0000-000000000001')] } },
    });
    await core.createNamespacedSecret({
      namespace,
      body: { metadata: { name: 'loose', ownerReferences: [{ ...controllerOf('ConfigMap', 'v1', 'loose-owner', '00000000-0000-0000-0000-000000000002'), controller: false }] } },
    });
    const mark = r.calls.length;
    await core.createNamespacedSecret({
      namespace,
      body: { metadata: { name: 'site-tls', ownerReferences: [controllerOf('ConfigMap', 'v1', 'site', owner.metadata!.uid!)] }, stringData: { v: '1' } },
    });
    const created = await r.nextCall('for the owner of a new child', (c) => c.trigger === 'owned:Secret', mark);
    expect(r.calls[created]).to.deep.equal({ key: r.key('site'), trigger: 'owned:Secret', ownerCached: true });
    // The strays' events came first on the same watch and one worker takes keys in order:
    // had either been mapped to a key, it would have been reconciled before this one.
    expect(r.calls.slice(mark).map((c) => c.key)).to.deep.equal([r.key('site')]);

    await core.replaceNamespacedSecret({
      namespace,
      name: 'site-tls',
      body: { metadata: { name: 'site-tls', ownerReferences: [controllerOf('ConfigMap', 'v1', 'site', owner.metadata!.uid!)] }, stringData: { v: '2' } },
    });
    const updated = await r.nextCall('after the child changed', (c) => c.trigger === 'owned:Secret', created + 1);
    expect(r.calls[updated]).to.include({ key: r.key('site'), trigger: 'owned:Secret' });

    await core.deleteNamespacedSecret({ namespace, name: 'site-tls' });
    const deleted = await r.nextCall('after the child was deleted', (c) => c.trigger === 'owned:Secret', updated + 1);
    expect(r.calls[deleted]).to.include({ key: r.key('site'), trigger: 'owned:Secret' });

    // Never the child's own key, nor the strays' owners.
    const keys = new Set(r.calls.map((c) => c.key));
    expect([...keys]).to.deep.equal([r.key('site')]);
  });

  it('exposes reconcile, work queue and REST client metrics on /metrics', async () => {
    const r = await rig('ctl-metrics', 'cm-metrics');
    const { namespace, client } = r;
    const names = ['one', 'two', 'three'];
    for (const name of names) {
      await client.request({ method: 'POST', path: `/api/v1/namespaces/${namespace}/configmaps`, body: { metadata: { name } }, what: `create ConfigMap ${name}` });
    }
    for (const name of names) await r.nextCall(`for ${name}`, (c) => c.key === r.key(name));

    const server = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      metrics: r.metrics,
      health: { live: () => ({ ok: true }), ready: () => ({ ok: true }) },
      logger: quietLogger(),
    });
    let body: string;
    try {
      const response = await fetch(`http://127.0.0.1:${server.port}/metrics`);
      expect(response.status).to.equal(200);
      expect(response.headers.get('content-type')).to.match(/^text\/plain/);
      body = await response.text();
    } finally {
      await server.close();
    }

    const controller = { controller: 'cm-metrics' };
    const queue = { name: 'cm-metrics', controller: 'cm-metrics' };
    expect(sampleValue(body, 'controller_runtime_reconcile_total', { ...controller, result: 'success' })).to.be.at.least(3);
    expect(sampleValue(body, 'controller_runtime_reconcile_total', { ...controller, result: 'error' })).to.equal(0);
    const buckets = body.split('\n').filter((l) => l.startsWith('controller_runtime_reconcile_time_seconds_bucket{') && l.includes('controller="cm-metrics"'));
    expect(buckets.length).to.be.greaterThan(10);
    expect(sampleValue(body, 'controller_runtime_reconcile_time_seconds_bucket', { ...controller, le: '+Inf' })).to.be.at.least(3);
    expect(sampleValue(body, 'controller_runtime_reconcile_time_seconds_count', controller)).to.be.at.least(3);
    expect(sampleValue(body, 'workqueue_adds_total', queue)).to.be.at.least(3);
    expect(sampleValue(body, 'workqueue_depth', queue)).to.be.a('number').and.at.least(0);
    expect(sampleValue(body, 'workqueue_work_duration_seconds_count', queue)).to.be.at.least(3);

    // Our three creates, through the counted client, each answered 201 by this apiserver.
    const host = new URL(cluster().server).host;
    expect(sampleValue(body, 'rest_client_requests_total', { code: '201', method: 'POST', host })).to.equal(3);
    expect(sampleValue(body, 'rest_client_request_duration_seconds_count', { verb: 'POST', host })).to.equal(3);
  });
});
