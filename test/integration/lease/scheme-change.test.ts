import { expect } from 'chai';
import { CustomObjectsApi } from '@kubernetes/client-node';

import { ConvergenceWatch } from '../../../hack/lib/convergence-watch.ts';
import { Replica } from '../../../hack/lib/replica.ts';
import { LoadGenerator } from '../../../hack/study/load.ts';
import { schemeLeaseNames } from '../../../src/runtime/membership.ts';
import { expectNoOutOfTermWrites } from '../support/audit.ts';
import { adminKubeConfig, cluster, freshNamespace } from '../support/cluster.ts';
import { installKind } from '../support/operator.ts';
import { WIDGET_OPERATOR, WIDGET_PROFILE } from '../support/widget/profile.ts';
import type { Widget } from '../support/widget/widget.ts';

/**
 * A rolling update that changes SHARDS hands the same keys to other leases:
 * the old replicas lead `ha-operator` (or ha-operator-0..2), the new ones
 * ha-operator-0..5. Both must never lead at once. Two replicas of each
 * scheme (Widget operators), a surge of one, under a steady load of creates
 * and spec changes; the API server's audit log judges whether any write of an
 * earlier term committed after a later term's.
 */

const LEASE = 'ha-operator';
const START_MS = 30_000;

describe('changing the shard scheme in a rolling update', function () {
  this.timeout(180_000);
  let replicas: Replica[] = [];

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      for (const r of replicas) {
        const lines = r.lines.filter((l) => l.level !== 'debug' && /leading|campaign|lease|shut|running/.test(l.message ?? ''));
        console.log(`--- ${r.name} ---\n${lines.map((l) => `  ${l.text.slice(0, 300)}`).join('\n')}`);
      }
    }
    await Promise.all(replicas.map((r) => r.stop(5_000)));
    replicas = [];
  });

  for (const [from, to] of [[1, 6], [3, 6]] as const) {
    it(`from SHARDS=${from} to SHARDS=${to}: the old scheme leads until its last replica has left, then the new one, no write out of term`, async () => {
      await installKind(WIDGET_PROFILE);
      const namespace = await freshNamespace(`scheme-${from}-${to}`);
      const start = async (name: string, shards: number): Promise<Replica> => {
        const replica = await Replica.start({
          entry: WIDGET_OPERATOR, name, kubeconfig: cluster().kubeconfigPath, leaseNamespace: namespace, watchNamespace: namespace, env: { SHARDS: String(shards) },
        });
        replicas.push(replica);
        await replica.running(START_MS);
        return replica;
      };
      /** Resolves once `group` leads every lease of `shards`, by their own logs. */
      const leadAll = async (group: Replica[], shards: number): Promise<void> => {
        const names = new Set(schemeLeaseNames({ leaseName: LEASE, shards }).map((n) => `${namespace}/${n}`));
        const held = (): Set<string> => new Set(group.flatMap((r) => r.leasesLedNow()).filter((l) => names.has(l)));
        await Promise.race(group.map((r) => r.waitForLog(() => held().size === names.size, 60_000, { description: `${shards} leases held` })));
      };

      const load = new LoadGenerator({
        kubeConfig: adminKubeConfig(), namespace, profile: WIDGET_PROFILE, now: () => Date.now(),
        settings: { initialObjects: 12, opsPerSecond: 10, createEvery: 4 },
      });
      await load.createInitial();
      const old = [await start('old-0', from), await start('old-1', from)];
      await leadAll(old, from);
      load.start();

      // Surge 1, unavailable 0: a new replica is up (ready) before an old one is told to stop;
      // each step lasts while the load gets reconciled.
      const fresh: Replica[] = [];
      for (const [i, replica] of old.entries()) {
        fresh.push(await start(`new-${i}`, to));
        await reconciledMore([...old.slice(i), ...fresh], 15);
        replica.sigterm();
        const exit = await replica.exited;
        expect(exit.code, `${replica.name} exited with ${exit.signal ?? exit.code}`).to.equal(0);
      }
      const lastOldTermEnd = Math.max(...old.flatMap((r) => r.messages('stopped leading').map((l) => l.loggedAt!)));
      await leadAll(fresh, to);
      await load.stop();

      const watch = new ConvergenceWatch({ kubeConfig: adminKubeConfig(), namespace, profile: WIDGET_PROFILE });
      await watch.start();
      try {
        const atLeast = new Map<string, number>();
        for (const change of load.changes) atLeast.set(change.name, Math.max(atLeast.get(change.name) ?? 0, change.generation));
        await watch.untilConverged(60_000, { atLeast });
      } finally {
        await watch.stop();
      }
      await Promise.all(replicas.map((r) => r.stop(5_000)));
      // Every change reached what the Widgets own, not only their status.
      const { group, version, plural } = WIDGET_PROFILE.resource;
      const widgets = (await adminKubeConfig().makeApiClient(CustomObjectsApi).listNamespacedCustomObject({ group, version, namespace, plural })) as { items: Widget[] };
      expect(await WIDGET_PROFILE.childrenBehind(adminKubeConfig(), namespace, widgets.items)).to.deep.equal([]);

      // By their own logs (a cross-check), no new replica led before the old scheme's last term ended.
      const firstNewTerm = Math.min(...fresh.flatMap((r) => r.messages('started leading').map((l) => l.loggedAt!)));
      expect(firstNewTerm, 'a replica of the new scheme led while one of the old scheme still did').to.be.at.least(lastOldTermEnd);
      const held = fresh.flatMap((r) => r.messages('not campaigning')).map((l) => String(l.json?.reason));
      expect(held.some((reason) => /of shard scheme ha-operator with \d+ shards? joined earlier and is live|of another shard scheme is held/.test(reason)),
        'the new replicas were never held back').to.be.true;
      expect(load.failures).to.deep.equal([]);
      const report = await expectNoOutOfTermWrites(namespace);
      expect(report.overlaps, 'objects written by both schemes at once').to.deep.equal([]);
      const leases = new Set(report.terms.map((t) => t.lease.split('/')[1]));
      for (const name of [...schemeLeaseNames({ leaseName: LEASE, shards: from }), ...schemeLeaseNames({ leaseName: LEASE, shards: to })]) {
        expect(leases, `no term of ${name} in the audit log`).to.include(name);
      }
    });
  }
});

/** Resolves once the replicas together have logged `count` more 'reconciled' lines than now. */
async function reconciledMore(group: Replica[], count: number): Promise<void> {
  const marks = new Map(group.map((r) => [r, r.lines.length]));
  const done = (): boolean => group.reduce((n, r) => n + r.lines.slice(marks.get(r)).filter((l) => l.message === 'reconciled').length, 0) >= count;
  await Promise.race(group.map((r) => r.waitForLog(done, 60_000, { description: `${count} more reconciles` })));
}
