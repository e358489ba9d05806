import { Writable } from 'node:stream';
import { expect } from 'chai';
import { CoreV1Api, type V1ConfigMap } from '@kubernetes/client-node';

import { Informer, type InformerEvent } from '../../../src/runtime/informer.ts';
import { KubeClient } from '../../../src/runtime/kube.ts';
import { createLogger, type Logger } from '../../../src/runtime/logging.ts';
import { adminKubeConfig, cluster, freshNamespace } from '../support/cluster.ts';

/** A logger whose JSON lines the test can read back. */
function captureLogger(): { logger: Logger; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return {
    logger: createLogger({ level: 'debug', format: 'json', stream }),
    lines: () => chunks.map((c) => JSON.parse(c) as Record<string, unknown>),
  };
}

type Event = InformerEvent<V1ConfigMap>;

/** An informer on the ConfigMaps of one namespace, with every event it emitted recorded. */
class Watched {
  readonly informer: Informer<V1ConfigMap>;
  readonly events: Event[] = [];
  readonly namespace: string;
  readonly logLines: () => Record<string, unknown>[];
  /** Where each relist was answered from, as operator_informer_relists_total counts it. */
  readonly relists: string[] = [];

  constructor(namespace: string, labelSelector?: string) {
    const { logger, lines } = captureLogger();
    this.namespace = namespace;
    this.logLines = lines;
    this.informer = new Informer<V1ConfigMap>({
      client: new KubeClient(adminKubeConfig()),
      resource: { apiVersion: 'v1', kind: 'ConfigMap', plural: 'configmaps', namespace, ...(labelSelector ? { labelSelector } : {}) },
      logger,
      // Reconnect quickly: the outages below last seconds.
      backoff: { initialMs: 50, maxMs: 500 },
      metrics: { relisted: (from) => this.relists.push(from) },
    });
    this.informer.subscribe((event) => this.events.push(event));
  }

  key(name: string): string {
    return `${this.namespace}/${name}`;
  }

  /** Events about one object, as [type, data.v] pairs. */
  history(name: string, since = 0): [string, string | undefined][] {
    return this.events.slice(since).filter((e) => e.object.metadata?.name === name).map((e) => [e.type, e.object.data?.v]);
  }

  /**
   * Resolves as soon as `predicate` holds, checking now and after every event
   * the informer emits. Rejects after `timeoutMs` with what the cache held.
   */
  until(what: string, predicate: () => boolean, timeoutMs = 30_000): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const deadline = setTimeout(() => {
        unsubscribe();
        const cache = this.informer.list().map((o) => [o.metadata?.name, o.data]);
        reject(new Error(`timed out after ${timeoutMs} ms waiting until ${what}; cache: ${JSON.stringify(cache)}`));
      }, timeoutMs);
      const unsubscribe = this.informer.subscribe(() => {
        if (!predicate()) return;
        clearTimeout(deadline);
        unsubscribe();
        resolve();
      });
    });
  }

  data(name: string): string | undefined {
    return this.informer.get(this.key(name))?.data?.v;
  }
}

/** etcd's v3 JSON gateway: keys and values are base64, revisions are strings. */
async function etcd<T>(path: string, body: object): Promise<T> {
  const response = await fetch(`${cluster().etcdUrl}${path}`, { method: 'POST', body: JSON.stringify(body) });
  if (!response.ok) throw new Error(`etcd ${path} answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as T;
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

interface EtcdHeader {
  header: { revision: string };
}

/** Deletes a ConfigMap behind the apiserver's back, straight from its storage; returns the new revision. */
async function deleteFromEtcd(namespace: string, name: string): Promise<number> {
  const result = await etcd<EtcdHeader & { deleted?: string }>('/v3/kv/deleterange', { key: b64(`/registry/configmaps/${namespace}/${name}`) });
  expect(result.deleted, `etcd key of configmap ${namespace}/${name}`).to.equal('1');
  return Number(result.header.revision);
}

async function currentRevision(): Promise<number> {
  return Number((await etcd<EtcdHeader>('/v3/kv/range', { key: b64('/') })).header.revision);
}

/**
 * Takes kube-apiserver down for the duration of `outage` and always brings it
 * back, even when `outage` throws: every integration test file shares this plane.
 */
async function withApiServerDown(outage: () => Promise<void>): Promise<void> {
  await cluster().killApiServer();
  try {
    await outage();
  } finally {
    await cluster().startApiServer();
  }
}

describe('Informer (real control plane)', function () {
  this.timeout(120_000);
  const core = (): CoreV1Api => adminKubeConfig().makeApiClient(CoreV1Api);
  const started: Informer<V1ConfigMap>[] = [];

  function watch(namespace: string, labelSelector?: string): Watched {
    const watched = new Watched(namespace, labelSelector);
    started.push(watched.informer);
    watched.informer.start();
    return watched;
  }

  async function put(namespace: string, name: string, v: string): Promise<void> {
    const body: V1ConfigMap = { metadata: { name }, data: { v } };
    try {
      await core().replaceNamespacedConfigMap({ namespace, name, body });
    } catch (error) {
      if ((error as { code?: number }).code !== 404) throw error;
      await core().createNamespacedConfigMap({ namespace, body });
    }
  }

  afterEach(async () => {
    await Promise.all(started.splice(0).map((i) => i.stop()));
  });

  it('fills the cache with a list, then follows adds, updates and deletes', async () => {
    const namespace = await freshNamespace('inf');
    await put(namespace, 'existing', '1');
    const w = watch(namespace);
    await w.informer.whenSynced();
    expect(w.informer.hasSynced()).to.be.true;
    expect(w.informer.listCount).to.equal(1);
    expect(w.history('existing')).to.deep.equal([['added', '1']]);
    const existing = w.informer.get(w.key('existing'));
    expect(existing).to.include({ apiVersion: 'v1', kind: 'ConfigMap' });
    expect(existing?.data).to.deep.equal({ v: '1' });

    await core().createNamespacedConfigMap({ namespace, body: { metadata: { name: 'a' }, data: { v: '1' } } });
    await w.until('a is added', () => w.history('a').length === 1);
    expect(w.history('a')).to.deep.equal([['added', '1']]);
    expect(w.data('a')).to.equal('1');

    await put(namespace, 'a', '2');
    await w.until('a is modified', () => w.history('a').length === 2);
    const modified = w.events.at(-1)!;
    expect(modified.type).to.equal('modified');
    if (modified.type !== 'modified') throw new Error('unreachable');
    expect(modified.previous.data).to.deep.equal({ v: '1' });
    expect(modified.object.data).to.deep.equal({ v: '2' });
    expect(w.data('a')).to.equal('2');

    await core().deleteNamespacedConfigMap({ namespace, name: 'a' });
    await w.until('a is deleted', () => w.history('a').length === 3);
    expect(w.history('a')).to.deep.equal([['added', '1'], ['modified', '2'], ['deleted', '2']]);
    expect(w.informer.get(w.key('a'))).to.equal(undefined);
    expect(w.informer.keys()).to.deep.equal([w.key('existing')]);
    // Followed by the watch alone: no relist happened.
    expect(w.informer.listCount).to.equal(1);
  });

  it('caches objects without metadata.managedFields, from the list and from the watch alike', async () => {
    const namespace = await freshNamespace('inf-mf');
    await put(namespace, 'listed', '1');
    const w = watch(namespace);
    await w.informer.whenSynced();
    await put(namespace, 'watched', '1');
    await w.until('watched is added', () => w.history('watched').length === 1);

    for (const name of ['listed', 'watched']) {
      const served = await core().readNamespacedConfigMap({ namespace, name });
      expect(served.metadata?.managedFields, `managedFields of ${name} as the server serves it`).to.not.be.empty;
      const cached = w.informer.get(w.key(name));
      expect(cached?.metadata).to.not.have.property('managedFields');
      expect(cached?.metadata).to.include({ name, namespace, resourceVersion: served.metadata?.resourceVersion, uid: served.metadata?.uid });
    }
  });

  it('catches up after kube-apiserver is killed and restarted mid-watch', async () => {
    const namespace = await freshNamespace('inf-restart');
    await put(namespace, 'x', '1');
    const w = watch(namespace);
    await w.informer.whenSynced();

    // Changed just before the outage; the kill does not wait for the informer to see it.
    await put(namespace, 'x', '2');
    await withApiServerDown(() => Promise.resolve());
    // Changed right after the restart, while the informer may still be backing off.
    await put(namespace, 'y', '1');
    await put(namespace, 'x', '3');

    await w.until('x is 3 and y exists', () => w.data('x') === '3' && w.data('y') === '1');
    expect(w.informer.keys().sort()).to.deep.equal([w.key('x'), w.key('y')]);
    // It saw the outage and kept going rather than stopping.
    const warnings = w.logLines().filter((l) => l.level === 'warn');
    expect(warnings.map((l) => l.message).join('\n')).to.match(/(watch|list) of configmaps\.v1 in \S+ failed; retrying/);
    // Each object's events end where the server is.
    expect(w.history('x').at(-1)).to.deep.equal(['modified', '3']);
    expect(w.history('y').at(-1)).to.deep.equal(['added', '1']);

    // And the watch is live again: a later change arrives by itself.
    const before = w.events.length;
    await core().deleteNamespacedConfigMap({ namespace, name: 'y' });
    await w.until('y is deleted', () => w.history('y', before).length > 0);
    expect(w.history('y', before)).to.deep.equal([['deleted', '1']]);
    expect(w.informer.get(w.key('y'))).to.equal(undefined);
  });

  it('lists again after a 410 (etcd compacted while disconnected) and reports what was deleted meanwhile', async () => {
    const namespace = await freshNamespace('inf-gone');
    for (const name of ['keep', 'other', 'gone-1', 'gone-2']) await put(namespace, name, '1');
    const w = watch(namespace);
    await w.informer.whenSynced();
    expect(w.informer.listCount).to.equal(1);
    const mark = w.events.length;

    await withApiServerDown(async () => {
      const atKill = await currentRevision();
      // Deleted while no apiserver can tell the informer: only a relist can find out.
      await deleteFromEtcd(namespace, 'gone-1');
      const compactedAt = await deleteFromEtcd(namespace, 'gone-2');
      // Two writes past anything the informer can have seen, so its resourceVersion (≤ atKill)
      // is older than the compacted revision and the next watch from it must get 410 Gone.
      expect(compactedAt).to.be.at.least(atKill + 2);
      await etcd('/v3/kv/compaction', { revision: String(compactedAt), physical: true });
    });
    await put(namespace, 'keep', '2');

    await w.until('keep is 2 and the deletes are seen', () =>
      w.data('keep') === '2' && w.informer.get(w.key('gone-1')) === undefined && w.informer.get(w.key('gone-2')) === undefined);
    expect(w.informer.listCount).to.be.at.least(2);
    expect(w.history('gone-1', mark)).to.deep.equal([['deleted', '1']]);
    expect(w.history('gone-2', mark)).to.deep.equal([['deleted', '1']]);
    expect(w.history('keep', mark)).to.deep.equal([['modified', '2']]);
    // The relist reports differences only: an object that did not change produces no event.
    expect(w.history('other', mark)).to.deep.equal([]);
    expect(w.informer.keys().sort()).to.deep.equal([w.key('keep'), w.key('other')]);
    expect(w.logLines().some((l) => /gone \(410\)/.test(String(l.message))), JSON.stringify(w.logLines().map((l) => l.message))).to.be.true;
    // The relist asked for the last version it had seen, which the API server's watch cache can serve: no quorum read of etcd.
    expect(w.relists).to.include('watch cache');
    expect(w.relists).to.not.include('etcd');
  });

  it('keeps a quiet label-filtered watch open on a busy namespace: bookmarks keep it current, it never relists', async function () {
    // Past the 30 s after which client-node's watch used to give up on a silent stream, and past the
    // API server's first bookmark (about a minute).
    this.timeout(150_000);
    const namespace = await freshNamespace('inf-quiet');
    const w = watch(namespace, 'ha-operator.example.com/nothing-has-this=label');
    await w.informer.whenSynced();
    const openedAt = performance.now();
    const failed: unknown[] = [];
    let writes = 0;
    const busy = setInterval(() => void put(namespace, `busy-${writes++ % 20}`, String(writes)).catch((e: unknown) => failed.push(e)), 200);
    try {
      // Nothing matches the selector, so only a bookmark moves the version on; wait for one more than 30 s in.
      await new Promise<void>((resolve, reject) => {
        let seen = w.informer.lastSyncResourceVersion;
        const deadline = setTimeout(() => reject(new Error(`no bookmark 30 to 100 s into the watch; at ${seen}`)), 100_000);
        const check = setInterval(() => {
          const now = w.informer.lastSyncResourceVersion;
          if (now === seen) return;
          seen = now;
          if (performance.now() - openedAt < 30_000) return;
          clearInterval(check);
          clearTimeout(deadline);
          resolve();
        }, 250);
      });
    } finally {
      clearInterval(busy);
    }
    expect(failed).to.deep.equal([]);
    expect(writes, 'the namespace was not busy').to.be.greaterThan(100);
    expect(w.events, 'the filtered watch saw an object').to.deep.equal([]);
    expect(w.informer.watchesOpened, 'the watch was cut and opened again').to.equal(1);
    expect(w.informer.listCount).to.equal(1);
    expect(w.relists).to.deep.equal([]);
  });
});
