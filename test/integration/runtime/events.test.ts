import { expect } from 'chai';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { EventsV1Api, KubeConfig, type KubernetesObject } from '@kubernetes/client-node';

import { TcpProxy, writeProxiedKubeconfig } from '../../../hack/lib/tcp-proxy.ts';
import { systemClock } from '../../../src/runtime/clock.ts';
import { Discovery } from '../../../src/runtime/discovery.ts';
import { EventSink } from '../../../src/runtime/events.ts';
import { LeaseGate, type RenewalClock } from '../../../src/runtime/gate.ts';
import { KubeClient } from '../../../src/runtime/kube.ts';
import { createLogger } from '../../../src/runtime/logging.ts';
import type { EventResult } from '../../../src/runtime/metrics.ts';
import { InFlightRequests } from '../../../src/runtime/writer.ts';
import { adminKubeConfig, cluster, freshNamespace } from '../support/cluster.ts';

/**
 * The event sink against the API server: events are sent in the background,
 * under the term of the key that recorded them, at most `capacity` wait, and
 * what cannot be sent is dropped and counted rather than held.
 */

const quiet = createLogger({ level: 'error', format: 'json', stream: new Writable({ write: (_c, _e, done) => done() }) });

class Term implements RenewalClock {
  lastRenewedAtMs(): number {
    return systemClock.monotonicMs();
  }
  term(): string {
    return 'events-test@1';
  }
}

describe('EventSink against the API server', function () {
  this.timeout(30_000);
  let namespace: string;
  let gate: LeaseGate;
  let counts: Record<EventResult, number>;
  let proxy: TcpProxy | undefined;

  beforeEach(async () => {
    namespace = await freshNamespace('events');
    gate = new LeaseGate({ shards: 1, renewDeadlineMs: 10_000 });
    gate.started(0, new Term());
    counts = { sent: 0, duplicate: 0, failed: 0, dropped: 0 };
    proxy = undefined;
  });

  afterEach(async () => {
    await proxy?.close();
  });

  function sink(kubeConfig: KubeConfig, options: { capacity?: number; concurrency?: number } = {}): EventSink {
    const client = new KubeClient(kubeConfig);
    return new EventSink({
      context: { client, discovery: new Discovery(client), gate, requests: new InFlightRequests(), fieldManager: 'ha-operator', userAgent: 'ha-operator/test', clock: systemClock },
      logger: quiet,
      metrics: { event: (result) => counts[result]++ },
      ...options,
    });
  }

  async function heldSink(options: { capacity?: number; concurrency?: number }): Promise<EventSink> {
    proxy = await TcpProxy.start({ port: cluster().apiServerPort });
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(await writeProxiedKubeconfig(cluster().kubeconfigPath, join(cluster().dir, `${namespace}-events.kubeconfig`), proxy.port));
    // Warm the connection, so that what is held below are the events themselves.
    await new KubeClient(kubeConfig).request({ method: 'GET', path: '/api', what: 'discover' });
    proxy.hold('up');
    return sink(kubeConfig, options);
  }

  function event(name: string): KubernetesObject {
    return {
      apiVersion: 'events.k8s.io/v1', kind: 'Event', metadata: { name, namespace },
      eventTime: new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000Z'), reportingController: 'ha-operator.example.com/test', reportingInstance: 'test',
      action: 'Test', reason: 'Tested', type: 'Normal', note: name, regarding: { kind: 'ConfigMap', name: 'site', namespace, apiVersion: 'v1' },
    } as KubernetesObject;
  }

  async function stored(): Promise<string[]> {
    const list = await adminKubeConfig().makeApiClient(EventsV1Api).listNamespacedEvent({ namespace });
    return list.items.map((e) => e.metadata!.name!).sort();
  }

  it('returns at once and sends in the background; one waiting is not queued twice, one the server has counts as a duplicate', async () => {
    const events = sink(adminKubeConfig());
    events.record(`${namespace}/site`, event('one'));
    events.record(`${namespace}/site`, event('one'));
    events.record(`${namespace}/site`, event('two'));
    expect(events.pending(), 'record waited for a send').to.equal(2);
    await events.whenIdle();
    expect(await stored(), JSON.stringify(counts)).to.deep.equal(['one', 'two']);
    events.record(`${namespace}/site`, event('one'));
    await events.whenIdle();
    expect(counts).to.deep.equal({ sent: 2, duplicate: 1, failed: 0, dropped: 0 });
  });

  it('drops and counts what does not fit instead of growing', async () => {
    const events = await heldSink({ capacity: 3, concurrency: 1 });
    for (let i = 0; i < 10; i++) events.record(`${namespace}/site`, event(`e-${i}`));
    // One on its way (held), three waiting, six dropped.
    expect(events.pending()).to.equal(4);
    expect(counts.dropped).to.equal(6);
    proxy!.deliver('up');
    await events.whenIdle();
    expect(await stored()).to.deep.equal(['e-0', 'e-1', 'e-2', 'e-3']);
    expect(counts.sent).to.equal(4);
  });

  it('drops, does not send, an event whose key this replica no longer leads', async () => {
    const events = await heldSink({ concurrency: 1 });
    events.record(`${namespace}/site`, event('first'));
    events.record(`${namespace}/site`, event('after-the-term'));
    gate.stopped(0, 'another holder took the lease');
    proxy!.deliver('up');
    await events.whenIdle();
    expect(await stored()).to.deep.equal([]);
    expect(counts).to.include({ sent: 0, dropped: 2 });
  });

  it('on shutdown, sends what it can within the time given, then drops and counts the rest', async () => {
    const events = await heldSink({ concurrency: 1 });
    for (let i = 0; i < 5; i++) events.record(`${namespace}/site`, event(`s-${i}`));
    const dropped = await events.flush(200);
    expect(dropped).to.equal(4);
    expect(counts.dropped).to.equal(5);
    events.record(`${namespace}/site`, event('late'));
    expect(counts.dropped, 'recorded after the flush').to.equal(6);
    expect(events.pending()).to.equal(0);
  });
});
