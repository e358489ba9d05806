import { copyFileSync, mkdtempSync } from 'node:fs';
import { basename, join } from 'node:path';
import { expect } from 'chai';
import {
  CoordinationV1Api,
  CoreV1Api,
  EventsV1Api,
  KubernetesObjectApi,
  type V1CustomResourceDefinition,
} from '@kubernetes/client-node';
import { buildOperator, OPERATOR_NODE_FLAGS } from '../../../hack/build.ts';
import { SAMPLE_KIND } from '../../../hack/kinds.ts';
import type { StoredObject } from '../../../hack/lib/kind-profile.ts';
import { Replica, type LogLine } from '../../../hack/lib/replica.ts';
import { LEASE_GROUP_LABEL, LEASE_ROLE_LABEL } from '../../../src/runtime/membership.ts';
import { adminKubeConfig, cluster, freshNamespace } from '../support/cluster.ts';
import { waitForObject } from '../support/wait.ts';
import { podOfIdentity } from '../../../src/runtime/holder.ts';

/**
 * The operator as the image runs it — dist/main.mjs, built by hack/build.ts and
 * copied alone into an empty directory, so no node_modules can be reached —
 * as OS processes outside the cluster,
 * authenticated with a token of the ServiceAccount from manifests/base and so
 * holding exactly the permissions of manifests/base/rbac.yaml, against the
 * RBAC-enforcing API server. It is configured as the Deployment configures it:
 * POD_NAMESPACE=ha-operator (the Lease lives there), every namespace watched.
 */

const OPERATOR_NAMESPACE = 'ha-operator';
const repoRoot = join(import.meta.dirname, '..', '..', '..');
let operatorEntry: string;

/** A line that shows the API server refused something for lack of permission. */
function forbidden(line: LogLine): boolean {
  return /\b403\b|forbidden/i.test(line.text);
}

/** Starts a replica as the operator ServiceAccount, configured like the Deployment in manifests/base. */
function startReplica(name: string, kubeconfig: string, env: Record<string, string> = {}): Promise<Replica> {
  return Replica.start({
    name,
    entry: operatorEntry,
    nodeArgs: [...OPERATOR_NODE_FLAGS],
    kubeconfig,
    // Placeholders: LEASE_NAMESPACE is removed below so that it defaults to POD_NAMESPACE, as in the pod.
    leaseNamespace: OPERATOR_NAMESPACE,
    watchNamespace: '',
    env: { LEASE_NAMESPACE: undefined, POD_NAMESPACE: OPERATOR_NAMESPACE, ...env },
  });
}

/** Resolves with whichever replica logs `message` first. */
async function first(replicas: Replica[], message: string, timeoutMs: number): Promise<Replica> {
  return Promise.any(replicas.map(async (r) => {
    await r.waitForMessage(message, timeoutMs);
    return r;
  }));
}

describe('manifests: the operator runs with exactly the RBAC of its ServiceAccount', function () {
  this.timeout(120_000);
  let kubeconfig: string;
  const replicas: Replica[] = [];

  before(async () => {
    const bundle = await buildOperator();
    const imageDir = mkdtempSync(join(cluster().dir, 'image-'));
    operatorEntry = join(imageDir, basename(bundle));
    copyFileSync(bundle, operatorEntry);
    copyFileSync(`${bundle}.map`, `${operatorEntry}.map`);
    await cluster().kubectl(['apply', '-k', join(repoRoot, 'manifests')]);
    await waitForObject<V1CustomResourceDefinition>(adminKubeConfig(), '/apis/apiextensions.k8s.io/v1/customresourcedefinitions',
      SAMPLE_KIND.crd.metadata.name,
      (c) => c?.status?.conditions?.some((cond) => cond.type === 'Established' && cond.status === 'True') ?? false);
    const { status } = await adminKubeConfig().makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
      namespace: OPERATOR_NAMESPACE,
      name: 'ha-operator',
      body: { spec: { audiences: [], expirationSeconds: 3600 } },
    });
    kubeconfig = await cluster().writeKubeconfig(join(cluster().dir, 'ha-operator-operator-test.kubeconfig'), { token: status!.token! });
  });

  const createdNamespaces: string[] = [];

  afterEach(async () => {
    const stopping = replicas.splice(0);
    await Promise.all(stopping.map((r) => r.stop()));
  });

  after(async () => {
    // The sample object and its children must not be reconciled by operators of later tests.
    const core = adminKubeConfig().makeApiClient(CoreV1Api);
    await Promise.all(createdNamespaces.splice(0).map((name) => core.deleteNamespace({ name })));
  });

  it(`elects a leader, reconciles a ${SAMPLE_KIND.resource.kind}, its children and its status, records Events and hands over on SIGTERM, with no 403`, async () => {
    const a = await startReplica('sa-a', kubeconfig);
    const b = await startReplica('sa-b', kubeconfig);
    replicas.push(a, b);
    const leader = await first([a, b], 'started leading', 30_000);
    const standby = leader === a ? b : a;
    await standby.waitForMessage('caches synced', 30_000);

    const namespace = await freshNamespace('sa-op');
    createdNamespaces.push(namespace);
    const { apiVersion, plural } = SAMPLE_KIND.resource;
    const created = (await KubernetesObjectApi.makeApiClient(adminKubeConfig()).create(SAMPLE_KIND.sample(namespace, 'home'))) as StoredObject;

    // Its status written by server-side apply of the status subresource (patch).
    const object = (await waitForObject<StoredObject>(adminKubeConfig(), `/apis/${apiVersion}/namespaces/${namespace}/${plural}`, 'home',
      (o) => o !== undefined && o.metadata.uid === created.metadata.uid && SAMPLE_KIND.converged(o)))!;
    // Its children created (POST) and applied (patch), holding what its spec asks for, owned by it.
    expect(await SAMPLE_KIND.childrenBehind(adminKubeConfig(), namespace, [object])).to.deep.equal([]);

    // Only the leader wrote.
    const writes = (r: Replica) => r.messages('write', (l) => l.json?.key === `${namespace}/home`).length;
    expect(writes(leader)).to.be.greaterThan(0);
    expect(writes(standby)).to.equal(0);

    // SIGTERM: the leader releases the Lease (update), the standby sees it on its watch and takes over.
    leader.sigterm();
    await leader.waitForMessage('released lease', 30_000);
    expect((await leader.exited).code).to.equal(0);

    // Events created through events.k8s.io/v1: sent in the background, and by the time the leader
    // exits (its shutdown sends what its reconciles recorded before the gate closes).
    const events = await adminKubeConfig().makeApiClient(EventsV1Api).listNamespacedEvent({ namespace });
    expect(events.items.filter((e) => e.regarding?.uid === created.metadata.uid && e.reportingInstance === leader.name), 'events by the leader').to.not.be.empty;
    await standby.waitForMessage('started leading', 30_000);
    const lease = await adminKubeConfig().makeApiClient(CoordinationV1Api).readNamespacedLease({ namespace: OPERATOR_NAMESPACE, name: 'ha-operator' });
    expect(podOfIdentity(lease.spec?.holderIdentity ?? '')).to.equal(standby.name);

    const refused = [...a.lines, ...b.lines].filter(forbidden);
    expect(refused.map((l) => `[${l.replica}] ${l.text}`), 'lines about refused requests').to.deep.equal([]);
  });

  it('with SHARDS=6 (overlays/sharded) the replicas lead six shard Leases and keep membership Leases in ha-operator, with no 403', async () => {
    const leaseName = 'ha-operator-sa-sharded';
    const env = { SHARDS: '6', LEASE_NAME: leaseName };
    const a = await startReplica('sa-shard-a', kubeconfig, env);
    const b = await startReplica('sa-shard-b', kubeconfig, env);
    replicas.push(a, b);
    const leases = adminKubeConfig().makeApiClient(CoordinationV1Api);
    const names = Array.from({ length: 6 }, (_, shard) => `${leaseName}-${shard}`);
    for (const name of names) {
      await waitForObject(adminKubeConfig(), `/apis/coordination.k8s.io/v1/namespaces/${OPERATOR_NAMESPACE}/leases`, name,
        (l) => [a.name, b.name].includes(podOfIdentity((l as { spec?: { holderIdentity?: string } } | undefined)?.spec?.holderIdentity ?? '')));
    }
    // (Read again now, a lease may be between holders: the replicas rebalance to three each,
    // handing shards over. test/integration/lease/shards.test.ts checks the spread itself.)

    // Each replica heartbeats a membership Lease (create/update), lists and watches
    // the group's (list/watch), and deletes its own on shutdown (delete).
    const members = async () => (await leases.listNamespacedLease({ namespace: OPERATOR_NAMESPACE, labelSelector: `${LEASE_ROLE_LABEL}=member,${LEASE_GROUP_LABEL}=${leaseName}` }))
      .items.map((l) => l.metadata?.name).sort();
    // Named after each replica's holder identity (its pod name and a suffix of its process), which its 'starting' line gives.
    const memberNames = await Promise.all([a, b].map(async (r) => `${leaseName}-member-${String((await r.waitForMessage('starting', 10_000)).json?.identity)}`));
    for (const name of memberNames) {
      await waitForObject(adminKubeConfig(), `/apis/coordination.k8s.io/v1/namespaces/${OPERATOR_NAMESPACE}/leases`, name, (l) => l !== undefined);
    }
    expect(await members()).to.deep.equal(memberNames.sort());
    await Promise.all(replicas.splice(0).map(async (r) => expect((await r.stop()).code).to.equal(0)));
    expect(await members()).to.deep.equal([]);
    const refused = [...a.lines, ...b.lines].filter(forbidden);
    expect(refused.map((l) => `[${l.replica}] ${l.text}`), 'lines about refused requests').to.deep.equal([]);
  });
});
