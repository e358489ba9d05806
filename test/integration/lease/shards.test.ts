import { expect } from 'chai';
import type { V1Lease } from '@kubernetes/client-node';
import { readAuditLog } from '../../../hack/lib/audit.ts';
import { Replica } from '../../../hack/lib/replica.ts';
import { Informer } from '../../../src/runtime/informer.ts';
import { KubeClient } from '../../../src/runtime/kube.ts';
import { createLogger } from '../../../src/runtime/logging.ts';
import { LEASE_GROUP_LABEL, LEASE_ROLE_LABEL } from '../../../src/runtime/membership.ts';
import { adminKubeConfig, cluster, freshNamespace } from '../support/cluster.ts';
import { installKind } from '../support/operator.ts';
import { WIDGET_OPERATOR, WIDGET_PROFILE } from '../support/widget/profile.ts';
import { podOfIdentity } from '../../../src/runtime/holder.ts';

const SHARDS = 6;
const quietLogger = createLogger({ level: 'error', format: 'json' });

/** Holder of each shard lease `ha-operator-<i>`, '' when free or not yet created. */
type Holders = string[];

describe('elected shards', function () {
  this.timeout(120_000);
  let replicas: Replica[] = [];
  let leases: Informer<V1Lease> | undefined;

  afterEach(async () => {
    await Promise.all(replicas.map((r) => r.stop(5_000)));
    replicas = [];
    await leases?.stop();
  });

  it('spreads 6 shards evenly over 3 replicas and moves a killed replica\'s shards to the others', async () => {
    // The replicas are Widget operators: their informers need the kind served.
    await installKind(WIDGET_PROFILE);
    const namespace = await freshNamespace('shards');
    leases = new Informer<V1Lease>({
      client: new KubeClient(adminKubeConfig()),
      resource: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', plural: 'leases', namespace },
      logger: quietLogger,
    });
    // By pod (replica) name: the holder identity adds a suffix of its process.
    const holders = (): Holders => Array.from({ length: SHARDS }, (_, i) => podOfIdentity(leases!.get(`${namespace}/ha-operator-${i}`)?.spec?.holderIdentity ?? ''));
    const until = (predicate: (h: Holders) => boolean, what: string): Promise<Holders> =>
      new Promise((resolvePromise, reject) => {
        const check = (): boolean => {
          const h = holders();
          if (!predicate(h)) return false;
          unsubscribe();
          clearTimeout(timer);
          resolvePromise(h);
          return true;
        };
        const unsubscribe = leases!.subscribe(() => void check());
        const timer = setTimeout(() => {
          unsubscribe();
          const logs = replicas.map((r) => `--- ${r.name}\n${r.lines.filter((l) => l.level !== 'debug' || /lease/.test(l.text)).slice(-25).map((l) => l.text).join('\n')}`);
          reject(new Error(`timed out waiting for ${what}; holders: ${JSON.stringify(holders())}\n${logs.join('\n')}`));
        }, 60_000);
        check();
      });
    leases.start();
    await leases.whenSynced();

    replicas = await Promise.all(['a', 'b', 'c'].map((name) => Replica.start({
      entry: WIDGET_OPERATOR,
      name,
      kubeconfig: cluster().kubeconfigPath,
      leaseNamespace: namespace,
      watchNamespace: namespace,
      env: { SHARDS: String(SHARDS), HTTP_PORT: '0' },
    })));

    const even = await until((h) => h.every(Boolean) && countsOf(h).every(([, n]) => n === 2) && countsOf(h).length === 3, 'two shards per replica');
    expect(countsOf(even).map(([name]) => name).sort()).to.deep.equal(['a', 'b', 'c']);
    const members = [...leases.list()].filter((l) => l.metadata?.labels?.[LEASE_ROLE_LABEL] === 'member' && l.metadata.labels[LEASE_GROUP_LABEL] === 'ha-operator');
    expect(members.map((l) => podOfIdentity(l.spec?.holderIdentity ?? '')).sort()).to.deep.equal(['a', 'b', 'c']);

    const victim = replicas.find((r) => r.name === 'c')!;
    const victimShards = even.flatMap((holder, shard) => (holder === 'c' ? [shard] : []));
    victim.sigkill();
    await victim.exited;

    const after = await until((h) => h.every((holder) => holder === 'a' || holder === 'b') && countsOf(h).every(([, n]) => n === 3),
      'the killed replica\'s shards on the two others, three each');
    for (const shard of victimShards) expect(after[shard]).to.be.oneOf(['a', 'b']);
    // Shards that were not the victim's stayed where they were: a crash moves only what it must.
    for (const [shard, holder] of even.entries()) if (holder !== 'c') expect(after[shard]).to.equal(holder);

    // Each survivor's own log agrees with the leases: it believes it leads exactly the shards it holds.
    for (const replica of replicas.filter((r) => r !== victim)) {
      const held = after.flatMap((holder, shard) => (holder === replica.name ? [`${namespace}/ha-operator-${shard}`] : []));
      // The lease write is visible through the watch before the replica's log line reaches us.
      const agrees = (): boolean => JSON.stringify(replica.leasesLedNow().sort()) === JSON.stringify(held.sort());
      await replica.waitForLog(agrees, 10_000, { description: `${replica.name} leading exactly ${held.join(', ')}` })
        .catch(() => expect(replica.leasesLedNow().sort(), `${replica.name}'s own view`).to.deep.equal(held.sort()));
    }

    // On SIGTERM a replica leaves the group before it releases its shards, so the others
    // count one replica fewer by the time they can take them — as the API server recorded it.
    const leaving = replicas.find((r) => r.name === 'a')!;
    const signalledAt = Date.now();
    leaving.sigterm();
    expect((await leaving.exited).code).to.equal(0);
    const events = (await readAuditLog(cluster().auditLogPath!)).filter((e) => e.objectRef?.resource === 'leases' && e.objectRef.namespace === namespace
      && /\(a\)/.test(e.userAgent ?? '') && (e.responseStatus?.code ?? 0) < 300);
    // Named after a's holder identity: the pod name and a suffix of its process.
    const left = events.find((e) => e.verb === 'delete' && /^ha-operator-member-a-[0-9a-f]{8}$/.test(e.objectRef?.name ?? ''));
    const releases = events.filter((e) => e.verb === 'update' && e.responseObject?.spec?.holderIdentity === '' && Date.parse(e.stageTimestamp!) >= signalledAt);
    expect(left, 'a never deleted its membership Lease').to.not.equal(undefined);
    expect(releases.map((e) => e.objectRef?.name).sort()).to.deep.equal(after.flatMap((h, i) => (h === 'a' ? [`ha-operator-${i}`] : [])).sort());
    for (const release of releases) expect(release.stageTimestamp! > left!.stageTimestamp!, `${release.objectRef?.name} released before a left the group`).to.be.true;
  });
});

function countsOf(holders: Holders): [string, number][] {
  const counts = new Map<string, number>();
  for (const holder of holders) if (holder) counts.set(holder, (counts.get(holder) ?? 0) + 1);
  return [...counts];
}
