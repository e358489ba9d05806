import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { expect } from 'chai';
import { CoreV1Api, CustomObjectsApi, KubeConfig, KubernetesObjectApi, PatchStrategy, setHeaderOptions, type V1Lease, type V1Pod } from '@kubernetes/client-node';
import type { LocalCluster } from '../../../hack/cluster/cluster.ts';
import { SAMPLE_KIND } from '../../../hack/kinds.ts';
import type { StoredObject } from '../../../hack/lib/kind-profile.ts';
import { checkAudit, readAuditLog, summarize, type AuditEvent } from '../../../hack/lib/audit.ts';
import { isAlive } from '../../../hack/controlplane/process.ts';
import { REPO_ROOT } from '../../../hack/lib/replica.ts';
import { podOfIdentity } from '../../../src/runtime/holder.ts';
import { apiError } from '../support/api.ts';
import { operatorProcess } from '../../../hack/cluster/pods.ts';
import { startLocalCluster } from '../support/nodes.ts';
import { waitForObject } from '../support/wait.ts';

/**
 * The disruptions a cluster deals the operator, dealt by Kubernetes itself on
 * real nodes: a rollout by the Deployment controller, a pod deleted, the
 * container killed and restarted in place by the kubelet, an eviction the
 * PodDisruptionBudget refuses, a node lost. Each runs under a stream of
 * changes to objects of SAMPLE_KIND; the API server's audit log judges that
 * no write of an earlier term landed after a later term's, and every change
 * must land.
 */

const NAMESPACE = 'ha-operator';
const LOAD = 'load';
const OBJECTS = ['one', 'two', 'three'];
const { group, version: apiVersion, plural } = SAMPLE_KIND.resource;
const objectsPath = `/apis/${group}/${apiVersion}/namespaces/${LOAD}/${plural}`;
/** manifests/base: LEASE_DURATION_SECONDS is not set, so the default. */
const LEASE_DURATION_MS = 15_000;

describe('disruptions on real nodes, dealt by Kubernetes', function () {
  this.timeout(240_000);
  let cluster: LocalCluster;
  let kc: KubeConfig;
  let custom: CustomObjectsApi;
  let version = 0;

  const leasePath = `/apis/coordination.k8s.io/v1/namespaces/${NAMESPACE}/leases`;
  const podsPath = `/api/v1/namespaces/${NAMESPACE}/pods`;

  async function operatorPods(): Promise<V1Pod[]> {
    const pods = JSON.parse(await cluster.kubectl(['get', 'pods', '-n', NAMESPACE, '-l', 'app.kubernetes.io/name=ha-operator', '-o', 'json'])) as { items: V1Pod[] };
    return pods.items.filter((p) => !p.metadata?.deletionTimestamp);
  }

  /**
   * The pod that leads now, and its holder identity: once the Lease names a
   * process of one of the current pods (a pod that was just replaced may still
   * be named on it until its successor writes).
   */
  async function currentLeader(): Promise<{ pod: V1Pod; identity: string }> {
    const pods = await operatorPods();
    const ofPod = (identity: string): V1Pod | undefined => pods.find((p) => podOfIdentity(identity) === p.metadata!.name);
    const lease = await waitForObject<V1Lease>(kc, leasePath, 'ha-operator', (l) => ofPod(l?.spec?.holderIdentity ?? '') !== undefined, 60_000);
    const identity = lease!.spec!.holderIdentity!;
    return { pod: ofPod(identity)!, identity };
  }

  /** Resolves once the Lease names a holder other than `previous`. */
  function nextHolder(previous: string, timeoutMs = 90_000): Promise<string> {
    return waitForObject<V1Lease>(kc, leasePath, 'ha-operator', (l) => {
      const holder = l?.spec?.holderIdentity ?? '';
      return holder !== '' && holder !== previous;
    }, timeoutMs).then((l) => l!.spec!.holderIdentity!);
  }

  async function holder(): Promise<string> {
    return (await currentLeader()).identity;
  }

  /** Back to two Ready replicas before the next disruption. */
  async function settled(): Promise<void> {
    await cluster.kubectl(['rollout', 'status', '-n', NAMESPACE, 'deployment/ha-operator', '--timeout=120s']);
  }

  /** Changes one object every 100 ms until stopped; resolves with the generation each change gave its object. */
  function changesUnderway(): { stop: () => Promise<Map<string, number>> } {
    const last = new Map<string, number>();
    let stopping = false;
    const loop = (async () => {
      for (let i = 0; !stopping; i++) {
        const name = OBJECTS[i % OBJECTS.length]!;
        const changed = (await custom.patchNamespacedCustomObject({
          group, version: apiVersion, plural, namespace: LOAD, name, body: SAMPLE_KIND.change(name, ++version),
        }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch))) as StoredObject;
        last.set(name, changed.metadata.generation);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    return {
      async stop() {
        stopping = true;
        await loop;
        return last;
      },
    };
  }

  /** Converged at `generation` (at least), and its children hold what its spec asks for. */
  async function convergedAt(name: string, generation: number): Promise<void> {
    const object = await waitForObject<StoredObject>(kc, objectsPath, name,
      (o) => o !== undefined && o.metadata.generation >= generation && SAMPLE_KIND.converged(o), 90_000);
    // Its status is written after its children: a status at this generation means they were applied for it.
    expect(await SAMPLE_KIND.childrenBehind(kc, LOAD, [object!]), name).to.deep.equal([]);
  }

  /** Every change landed: each object converged at the generation of its last change, its children with it. */
  async function everyChangeLanded(last: Map<string, number>): Promise<void> {
    for (const [name, generation] of last) await convergedAt(name, generation);
  }

  /** The audit log's verdict on everything the operator wrote so far. */
  async function expectCleanAudit(): Promise<void> {
    const report = await checkAudit(cluster.plane.auditLogPath!, { namespaces: [LOAD], leaseNamespace: NAMESPACE });
    console.log(`      ${summarize(report)}`);
    expect(report.unattributed.map((w) => `${w.verb} ${w.object} by ${w.userAgent}`), 'writes whose term the audit log does not show').to.deep.equal([]);
    expect(report.violations, 'writes from an earlier term after a later term\'s').to.deep.equal([]);
  }

  /** The Lease writes the API server committed, in order. */
  async function leaseWrites(): Promise<AuditEvent[]> {
    return (await readAuditLog(cluster.plane.auditLogPath!))
      .filter((e) => e.objectRef?.resource === 'leases' && e.objectRef.namespace === NAMESPACE && e.objectRef.name === 'ha-operator' && (e.responseStatus?.code ?? 0) < 300);
  }

  /** Whether `pod`'s replica released the Lease (holderIdentity emptied by its own write). */
  async function released(pod: string): Promise<boolean> {
    return (await leaseWrites()).some((e) => e.userAgent?.includes(`(${pod})`) && (e.responseObject?.spec?.holderIdentity ?? '') === '');
  }

  before(async function () {
    cluster = await startLocalCluster({ nodes: 2, audit: true });
    kc = new KubeConfig();
    kc.loadFromFile(cluster.kubeconfigPath);
    custom = kc.makeApiClient(CustomObjectsApi);
    await cluster.kubectl(['apply', '-k', join(REPO_ROOT, 'manifests')]);
    await cluster.kubectl(['wait', '--for=condition=Established', `crd/${SAMPLE_KIND.crd.metadata.name}`, '--timeout=60s']);
    await cluster.kubectl(['create', 'namespace', LOAD]);
    const objects = KubernetesObjectApi.makeApiClient(kc);
    for (const name of OBJECTS) await objects.create(SAMPLE_KIND.sample(LOAD, name));
    await settled();
    for (const name of OBJECTS) await convergedAt(name, 1);
  });
  // What a failed disruption needs explained: where the replicas ran and what they said.
  afterEach(async function () {
    if (this.currentTest?.state !== 'failed' || !cluster) return;
    const pods = await cluster.kubectl(['get', 'pods', '-n', NAMESPACE, '-o', 'wide']).catch((e: Error) => e.message);
    const logs = await Promise.all((await operatorPods()).map(async (p) =>
      `--- ${p.metadata!.name} on ${p.spec!.nodeName} ---\n${await cluster.kubectl(['logs', '-n', NAMESPACE, p.metadata!.name!, '--tail=15']).catch((e: Error) => e.message)}`));
    console.log(`${pods}\n${logs.join('\n')}`);
  });
  after(async () => {
    await cluster?.stop();
  });

  it('hands the Lease over with a release on `kubectl rollout restart` (surge 1, unavailable 0)', async () => {
    const before = await holder();
    const old = await operatorPods();
    const changes = changesUnderway();
    await cluster.kubectl(['rollout', 'restart', '-n', NAMESPACE, 'deployment/ha-operator']);
    await settled();
    const last = await changes.stop();
    const after = await holder();
    const now = await operatorPods();
    expect(now.map((p) => p.metadata!.uid)).to.not.include.members(old.map((p) => p.metadata!.uid!));
    expect(now.some((p) => after.startsWith(p.metadata!.name!)), `the new holder ${after} is a new pod`).to.equal(true);
    // Each old pod that led released on SIGTERM; the first leader among them certainly did.
    expect(await released(old.find((p) => before.startsWith(p.metadata!.name!))!.metadata!.name!)).to.equal(true);
    await everyChangeLanded(last);
    await expectCleanAudit();
  });

  it('hands over with a release when the leader pod is deleted', async () => {
    const { pod: leader, identity } = await currentLeader();
    const changes = changesUnderway();
    const next = nextHolder(identity);
    await cluster.kubectl(['delete', 'pod', '-n', NAMESPACE, leader.metadata!.name!, '--wait=false']);
    await next;
    const last = await changes.stop();
    expect(await released(leader.metadata!.name!)).to.equal(true);
    await settled();
    await everyChangeLanded(last);
    await expectCleanAudit();
  });

  /**
   * The crash of the leader's process, by `crash`, under a stream of changes:
   * the standby takes the lease as soon as the pod's status shows the crash,
   * before the lease would have expired, and the crashed container comes back
   * in place as a process of its own (a new holder identity), a standby.
   */
  async function crashFailsOverFast(crash: (pid: number) => void, reason: RegExp, leaseDurationMs = LEASE_DURATION_MS): Promise<void> {
    await settled();
    const { pod: leader, identity } = await currentLeader();
    const pid = operatorProcess(cluster, leader);
    expect(pid, 'the leader container\'s process').to.be.a('number');
    const changes = changesUnderway();
    const next = nextHolder(identity);
    crash(pid!);
    const successor = await next;
    const last = await changes.stop();

    const writes = await leaseWrites();
    const lastRenewal = writes.filter((e) => e.responseObject?.spec?.holderIdentity === identity).at(-1)!;
    const takeover = writes.find((e) => e.responseObject?.spec?.holderIdentity === successor)!;
    const gapMs = Date.parse(takeover.stageTimestamp!) - Date.parse(lastRenewal.stageTimestamp!);
    console.log(`      taken over ${gapMs} ms after the crashed leader's last renewal (lease ${leaseDurationMs} ms)`);
    // Before the lease would have expired: the evidence, not the expiry, gave it.
    expect(gapMs).to.be.below(leaseDurationMs);
    const successorPod = (await operatorPods()).find((p) => successor.startsWith(p.metadata!.name!))!;
    expect(await cluster.kubectl(['logs', '-n', NAMESPACE, successorPod.metadata!.name!])).to.match(/taking over before the lease expires/);

    const restarted = await waitForObject<V1Pod>(kc, podsPath, leader.metadata!.name!,
      (p) => (p?.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 1 && p?.status?.containerStatuses?.[0]?.ready === true, 120_000);
    expect(JSON.stringify(restarted!.status!.containerStatuses![0]!.lastState?.terminated)).to.match(reason);
    // In place, but a process of its own: it did not resume the crashed one's term.
    expect(await holder()).to.equal(successor);
    await everyChangeLanded(last);
    await expectCleanAudit();
  }

  it('fails over before the lease expires when the leader\'s process is SIGKILLed, and the kubelet restarts it in place as a standby', async () => {
    await crashFailsOverFast((pid) => process.kill(pid, 'SIGKILL'), /"exitCode":137/);
  });

  it('fails over before the lease expires when the leader\'s container is OOM-killed', async () => {
    let hog: ChildProcess | undefined;
    try {
      await crashFailsOverFast((pid) => {
        // A process of ours joins the container's memory cgroup and allocates past its limit; the
        // operator is made the OOM killer's first choice (raising oom_score_adj needs no privilege,
        // lowering the hog's would need CAP_SYS_RESOURCE, which these machines lack).
        const memory = /^\d+:memory:(.*)$/m.exec(readFileSync(`/proc/${pid}/cgroup`, 'utf8'))![1]!;
        writeFileSync(`/proc/${pid}/oom_score_adj`, '1000');
        hog = spawn(process.execPath, ['-e', 'process.stdin.once("data", () => { const kept = []; setInterval(() => kept.push(Buffer.alloc(32 << 20, 1)), 5); })'],
          { stdio: ['pipe', 'ignore', 'ignore'] });
        writeFileSync(`/sys/fs/cgroup/memory${memory}/cgroup.procs`, String(hog.pid));
        hog.stdin!.write('go\n');
      }, /OOMKilled/);
    } finally {
      hog?.kill('SIGKILL');
    }
  });

  it('fails over before the lease expires when the kubelet kills the leader for a failing liveness probe', async () => {
    // A probe that acts within seconds, no grace for a process found stuck, and a lease long
    // enough that the probe's kill, not the expiry, is what the standby goes by on a busy machine.
    const LIVENESS_LEASE_MS = 30_000;
    await cluster.kubectl(['patch', '-n', NAMESPACE, 'deployment/ha-operator', '--type=json', '-p', JSON.stringify([{
      op: 'replace', path: '/spec/template/spec/containers/0/livenessProbe',
      value: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 2, timeoutSeconds: 2, failureThreshold: 3, terminationGracePeriodSeconds: 1 },
    }, {
      op: 'add', path: '/spec/template/spec/containers/0/env/-', value: { name: 'LEASE_DURATION_SECONDS', value: String(LIVENESS_LEASE_MS / 1000) },
    }])]);
    try {
      // Stuck: it answers nothing, renews nothing, and the probe fails.
      await crashFailsOverFast((pid) => process.kill(pid, 'SIGSTOP'), /"exitCode":137/, LIVENESS_LEASE_MS);
    } finally {
      // The manifests' own Deployment again, whole: a probe this eager would restart replicas on a busy
      // machine. (Not `kubectl apply`: its three-way merge would keep what the patch added.)
      const deployment = parseAllDocuments(await cluster.kubectl(['kustomize', join(REPO_ROOT, 'manifests')]))
        .map((d) => d.toJS() as { kind?: string }).find((o) => o.kind === 'Deployment');
      const file = join(cluster.footprint.dir, 'deployment.json');
      writeFileSync(file, JSON.stringify(deployment));
      await cluster.kubectl(['replace', '-f', file]);
    }
  });

  it('does not take over before the lease expires from a leader whose pod was force-deleted while its process runs on', async () => {
    await settled();
    const { pod: leader, identity } = await currentLeader();
    const node = cluster.nodes.find((n) => n.name === leader.spec!.nodeName)!;
    const pid = operatorProcess(cluster, leader)!;
    // With its kubelet gone, nothing stops the process when the object goes.
    await node.stopKubelet();
    try {
      const next = nextHolder(identity);
      await cluster.kubectl(['delete', 'pod', '-n', NAMESPACE, leader.metadata!.name!, '--force', '--grace-period=0']);
      const successor = await next;
      expect(isAlive(pid), 'the old leader\'s process still runs').to.equal(true);
      // A missing pod is no evidence: the standby waited out the lease. (The old process stopped
      // renewing on its own: the API server refuses a token bound to a pod that no longer exists.)
      const writes = await leaseWrites();
      const lastRenewal = writes.filter((e) => e.responseObject?.spec?.holderIdentity === identity).at(-1)!;
      const takeover = writes.find((e) => e.responseObject?.spec?.holderIdentity === successor)!;
      const leaseMs = lastRenewal.responseObject!.spec!.leaseDurationSeconds! * 1000;
      expect(Date.parse(takeover.stageTimestamp!) - Date.parse(lastRenewal.stageTimestamp!)).to.be.at.least(leaseMs - 1000);
    } finally {
      process.kill(pid, 'SIGKILL');
      node.startKubelet();
    }
    await settled();
    await expectCleanAudit();
  });

  it('refuses, by the PodDisruptionBudget, an eviction that would leave no replica', async () => {
    await settled();
    const pods = await operatorPods();
    expect(pods).to.have.length(2);
    // Cordoned, the nodes take no replacement: the second eviction meets the budget, not a race with a new pod.
    for (const node of cluster.nodes) await cluster.kubectl(['cordon', node.name]);
    const [evicted, kept] = pods as [V1Pod, V1Pod];
    const core = kc.makeApiClient(CoreV1Api);
    const evict = (pod: V1Pod): Promise<unknown> => core.createNamespacedPodEviction({
      namespace: NAMESPACE, name: pod.metadata!.name!, body: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: pod.metadata!.name, namespace: NAMESPACE } },
    });
    await evict(evicted);
    const refused = await apiError(evict(kept));
    expect(refused.code).to.equal(429);
    expect(String(refused.body)).to.match(/disruption budget/);
    expect((await operatorPods()).map((p) => p.metadata!.name)).to.include(kept.metadata!.name);
    // The evicted pod's node first, alone: with the other still cordoned (a taint the spread
    // constraint's nodeTaintsPolicy Honor leaves out of the count) the replacement goes back there.
    await cluster.kubectl(['uncordon', evicted.spec!.nodeName!]);
    await settled();
    await cluster.kubectl(['uncordon', kept.spec!.nodeName!]);
    await settled();
  });

  it('fails over to the standby on the other node once the lease expires when the leader\'s node is lost', async () => {
    await settled();
    const { pod: leader, identity } = await currentLeader();
    const node = cluster.nodes.find((n) => n.name === leader.spec!.nodeName)!;
    expect((await operatorPods()).map((p) => p.spec!.nodeName).sort(), 'one replica per node').to.deep.equal(['node-1', 'node-2']);
    const changes = changesUnderway();
    const next = nextHolder(identity, 120_000);
    node.lose();
    const successor = await next;
    const last = await changes.stop();
    const standby = (await operatorPods()).find((p) => successor.startsWith(p.metadata!.name!));
    expect(standby?.spec?.nodeName).to.not.equal(node.name);

    // Never early: the takeover committed at least a lease duration after the lost leader's last renewal.
    const writes = await leaseWrites();
    const lastRenewal = writes.filter((e) => e.responseObject?.spec?.holderIdentity === identity).at(-1)!;
    const takeover = writes.find((e) => e.responseObject?.spec?.holderIdentity === successor)!;
    const gapMs = Date.parse(takeover.stageTimestamp!) - Date.parse(lastRenewal.stageTimestamp!);
    expect(gapMs).to.be.at.least(LEASE_DURATION_MS - 1000);
    await everyChangeLanded(last);
    await expectCleanAudit();
  });
});
