import { expect } from 'chai';
import { Writable } from 'node:stream';
import { CoreV1Api, type V1ConfigMap, type V1Namespace, type V1Secret } from '@kubernetes/client-node';

import { loadConfig } from '../../../src/runtime/config.ts';
import type { Reconcile } from '../../../src/runtime/controller.ts';
import { createLogger } from '../../../src/runtime/logging.ts';
import { Manager } from '../../../src/runtime/manager.ts';
import { OperatorMetrics } from '../../../src/runtime/metrics.ts';
import { adminKubeConfig, freshNamespace } from '../support/cluster.ts';

/** A Manager with no controller yet, watching `namespace`, logging JSON lines into `lines` (and to `onLine`). */
function managerFor(namespace: string, lines: string[], onLine: (line: string) => void = () => undefined): Manager {
  const config = loadConfig({
    LEADER_ELECTION: 'false', WATCH_NAMESPACE: namespace, POD_NAME: `manager-${namespace}`, LEASE_NAMESPACE: namespace,
    HTTP_HOST: '127.0.0.1', HTTP_PORT: '0', DRAIN_TIMEOUT_SECONDS: '10',
  }, () => undefined);
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter((l) => l !== '')) {
        lines.push(line);
        onLine(line);
      }
      done();
    },
  });
  return new Manager({
    config, kubeConfig: adminKubeConfig(), logger: createLogger({ level: 'info', format: 'json', stream }), metrics: new OperatorMetrics(),
    fieldManager: 'ha-operator', userAgent: 'ha-operator/test (manager-test)',
  });
}

/** A reconcile that reports each key it starts and finishes only when `release` resolves. */
function heldReconcile(started: (key: string) => void, release: Promise<void>, finished: string[]): Reconcile {
  return async (key) => {
    started(key);
    await release;
    finished.push(key);
  };
}

describe('Manager with several controllers', function () {
  this.timeout(30_000);

  it('runs every controller\'s workers and drains all of them on shutdown, each with its own report', async () => {
    const namespace = await freshNamespace('manager');
    const lines: string[] = [];
    let markShuttingDown!: () => void;
    const shuttingDown = new Promise<void>((resolve) => (markShuttingDown = resolve));
    const manager = managerFor(namespace, lines, (line) => {
      if ((JSON.parse(line) as { message: string }).message === 'shutting down') markShuttingDown();
    });
    let releaseAll!: () => void;
    const release = new Promise<void>((resolve) => (releaseAll = resolve));
    const finished: string[] = [];
    const startedKeys = new Map<string, (key: string) => void>();
    const whenStarted = (name: string): Promise<string> => new Promise((resolve) => startedKeys.set(name, resolve));
    const configMapStarted = whenStarted('configmaps');
    const secretStarted = whenStarted('secrets');

    const configMaps = manager.informer<V1ConfigMap>({ apiVersion: 'v1', kind: 'ConfigMap', plural: 'configmaps', labelSelector: 'test=manager' });
    const secrets = manager.informer<V1Secret>({ apiVersion: 'v1', kind: 'Secret', plural: 'secrets', labelSelector: 'test=manager' });
    manager.createController('configmaps', configMaps, heldReconcile((key) => startedKeys.get('configmaps')!(key), release, finished));
    manager.createController('secrets', secrets, heldReconcile((key) => startedKeys.get('secrets')!(key), release, finished));
    await manager.start(() => undefined);

    const core = adminKubeConfig().makeApiClient(CoreV1Api);
    const metadata = { name: 'one', namespace, labels: { test: 'manager' } };
    await core.createNamespacedConfigMap({ namespace, body: { metadata, data: { a: '1' } } });
    await core.createNamespacedSecret({ namespace, body: { metadata, stringData: { a: '1' } } });
    // Both controllers are working at once, each on its own kind.
    expect(await Promise.all([configMapStarted, secretStarted])).to.deep.equal([`${namespace}/one`, `${namespace}/one`]);

    let shutDown = false;
    const shutdown = manager.shutdown('test').finally(() => (shutDown = true));
    // The drain waits for both reconciles in flight; released once it has begun, they finish inside it.
    await shuttingDown;
    expect(shutDown, 'the shutdown did not wait for the reconciles in flight').to.equal(false);
    releaseAll();
    const reports = await shutdown;
    expect(finished).to.have.length(2);
    expect(reports?.map((r) => r.drained)).to.deep.equal([true, true]);
    const drainReports = lines.map((l) => JSON.parse(l) as { message: string; controller?: string }).filter((l) => l.message === 'drain report');
    expect(drainReports.map((l) => l.controller)).to.deep.equal(['configmaps', 'secrets']);
    const order = lines.map((l) => (JSON.parse(l) as { message: string }).message);
    expect(order.indexOf('shutdown: drained work in flight')).to.be.lessThan(order.indexOf('shutdown: closed the write gate'));
  });

  it('refuses a second controller of the same name, and one registered after start, with errors that say so', async () => {
    const namespace = await freshNamespace('manager');
    const manager = managerFor(namespace, []);
    const configMaps = manager.informer<V1ConfigMap>({ apiVersion: 'v1', kind: 'ConfigMap', plural: 'configmaps', labelSelector: 'test=manager' });
    const noop: Reconcile = () => Promise.resolve();
    manager.createController('configmaps', configMaps, noop);
    expect(() => manager.createController('configmaps', configMaps, noop)).to.throw('a controller named configmaps is already registered');
    await manager.start(() => undefined);
    try {
      expect(() => manager.createController('late', configMaps, noop)).to.throw('controller late: controllers are registered before the manager starts');
    } finally {
      await manager.shutdown('test');
    }
  });

  it('caches a cluster-scoped kind declared so, whatever WATCH_NAMESPACE says', async () => {
    const namespace = await freshNamespace('manager');
    const manager = managerFor(namespace, []);
    const namespaces = manager.informer<V1Namespace>({ apiVersion: 'v1', kind: 'Namespace', plural: 'namespaces', clusterScoped: true });
    await manager.start(() => undefined);
    try {
      expect(namespaces.get(namespace)?.metadata?.name).to.equal(namespace);
      expect(namespaces.get('default')?.metadata?.name).to.equal('default');
    } finally {
      await manager.shutdown('test');
    }
  });

  it('fails to start, saying which, when an informer\'s declared scope is not the kind\'s', async () => {
    const namespace = await freshNamespace('manager');
    for (const [resource, message] of [
      [{ apiVersion: 'v1', kind: 'Namespace', plural: 'namespaces' }, 'Namespace (v1) is cluster-scoped: register its informer with clusterScoped: true'],
      [{ apiVersion: 'v1', kind: 'ConfigMap', plural: 'configmaps', clusterScoped: true }, 'ConfigMap (v1) is namespaced: register its informer without clusterScoped'],
    ] as const) {
      const manager = managerFor(namespace, []);
      manager.informer(resource);
      const failure = await manager.start(() => undefined).then(() => undefined, (error: unknown) => error);
      await manager.shutdown('test');
      expect(failure).to.be.instanceOf(Error);
      expect((failure as Error).message).to.include(message);
    }
  });
});
