/**
 * Crash failover on real nodes (issue 16): how soon the standby holds the
 * Lease after the leader's process ends, for four ways it ends — SIGKILL, an
 * OOM kill, a liveness-probe kill, the node lost — with failover from the
 * pod's status on (the default manifests) and off (FAILOVER_ON_POD_STATUS=false
 * patched into the Deployment), in the same run. Prints Markdown tables.
 *
 *   node hack/bench/crash-failover.ts [trials=20] [--kinds=sigkill,oom,liveness,node-loss] [--out=FILE.json]
 *
 * Needs root: a local cluster of two real nodes (hack/cluster/: containerd and
 * a kubelet each, in a network namespace with no route out) with the
 * kube-apiserver's audit log on. The operator runs as `kubectl apply -k
 * manifests/` deploys it — two replicas, one per node, the production lease
 * timings (lease 15 s, renew deadline 10 s, retry 2 s), its image built from
 * the current sources — and three objects of SAMPLE_KIND (hack/kinds.ts: its
 * profile's sample) in the namespace `load`.
 *
 * Each trial starts once two Ready replicas run on different nodes, the
 * leader has renewed since and every change landed (all awaited by watches,
 * never by sleeps), at a random point of the leader's 2 s renewal cycle, with
 * one change (the profile's) every 100 ms under way until the takeover:
 * - sigkill: SIGKILL to the leader's process (found by its pod's cgroup);
 * - oom: a process of this script joins the leader container's memory cgroup
 *   and allocates past its 512Mi limit, the operator's oom_score_adj raised to
 *   1000 so that the kernel picks it; the crash is the moment the hog is told
 *   to start (it fills the cgroup in about 0.1 s);
 * - liveness: SIGSTOP to the leader's process, with the probe the disruption
 *   test patches in, in both modes (period 2 s, timeout 2 s, failureThreshold
 *   3, probe-level terminationGracePeriodSeconds 1; the lease stays 15 s): the
 *   kubelet kills the process after three failed probes;
 * - node-loss: ClusterNode.lose() on the leader's node (kubelet, containerd,
 *   shims and containers killed at once: nobody reports), restore() once the
 *   successor holds.
 *
 * Figures, all on this host's wall clock (kube-apiserver, the kubelets, the
 * operator and this script share it):
 * - crash → takeover: from the crash to the stageTimestamp, in the audit log,
 *   of the successor's first committed Lease write (the lease watch saw it
 *   "watch lag" later);
 * - process ended → takeover: from the moment the process was gone (or a
 *   zombie), seen in /proc every 10 ms — a measurement, not a wait — to that
 *   write. For SIGKILL and a lost node it is the crash; for an OOM kill the
 *   kernel's kill once the hog has filled the cgroup; for the probe the
 *   kubelet's SIGKILL, 1 s (the probe's grace) after it gave up on the
 *   stopped process. This is what the goal is judged on for the crashes the
 *   kubelet sees;
 * - last renewal → takeover: from the old holder's last committed renewal to
 *   that write (what test/integration/nodes/disruptions.test.ts prints);
 * - the kubelet's report: its first pods/status write that shows the holder's
 *   process ended, as the standby judges it (processEnded, src/runtime/holder.ts).
 *
 * After a kubelet-seen crash the crashed pod is deleted (the kubelet's
 * crash-loop back-off would grow with every trial) and the Deployment
 * replaces it on the same node, since the spread constraint keeps one replica
 * per node; a lost node is restored and its kubelet restarts the pod in place.
 * The trials run in blocks, on: sigkill, oom, node-loss, liveness; off:
 * liveness, node-loss, oom, sigkill — each mode change a rollout. At the end
 * the audit checker (hack/lib/audit.ts) judges every write to `load`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CustomObjectsApi, KubeConfig, KubernetesObjectApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { LocalCluster } from '../cluster/cluster.ts';
import type { ClusterNode } from '../cluster/node.ts';
import { operatorProcess } from '../cluster/pods.ts';
import { buildImages, PAUSE_IMAGE } from '../images/build.ts';
import { SAMPLE_KIND } from '../kinds.ts';
import type { StoredObject } from '../lib/kind-profile.ts';
import { checkAudit, summarize, type AuditEvent } from '../lib/audit.ts';
import { REPO_ROOT } from '../lib/replica.ts';
import { holderOf, podOfIdentity, processEnded, type HolderProcess, type PodStatusView } from '../../src/runtime/holder.ts';
import type { CachedObject } from '../../src/runtime/informer.ts';
import type { Lease } from '../../src/runtime/leases.ts';
import { loadAverage, percentile } from './support.ts';
import { InformerSet } from '../lib/informer-set.ts';

const KINDS = ['sigkill', 'oom', 'liveness', 'node-loss'] as const;
type Kind = (typeof KINDS)[number];
type Mode = 'on' | 'off';
/** The kubelet sees these crashes and reports them in the pod's status. */
const SEEN: readonly Kind[] = ['sigkill', 'oom', 'liveness'];

const NAMESPACE = 'ha-operator';
const LEASE = 'ha-operator';
const LOAD = 'load';
const OBJECTS = ['one', 'two', 'three'];
const { group, version: apiVersion, plural } = SAMPLE_KIND.resource;
/** manifests/base sets no LEASE_DURATION_SECONDS: the default. */
const LEASE_DURATION_MS = 15_000;
const RETRY_PERIOD_MS = 2_000;
/** After its container's start, by when a standby's lease watch is up (start-up, caches, the watch): generous. */
const STANDBY_WATCHING_MS = 4_000;
const GOAL_SEEN_MS = 2_000;
const GOAL_LOST_MS = LEASE_DURATION_MS + 1_000;
const FAST_PROBE = { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 2, timeoutSeconds: 2, failureThreshold: 3, terminationGracePeriodSeconds: 1 };

const { values: options, positionals } = parseArgs({ allowPositionals: true, options: { kinds: { type: 'string' }, out: { type: 'string' } } });
const trials = Number(positionals[0] ?? 20);
if (!Number.isInteger(trials) || trials < 1) throw new Error(`trials: a whole number ≥ 1, not ${positionals[0]}`);
const kinds = (options.kinds?.split(',') ?? [...KINDS]) as Kind[];
for (const kind of kinds) if (!KINDS.includes(kind)) throw new Error(`--kinds: ${kind} is none of ${KINDS.join(', ')}`);

/** The blocks in run order: a mode change is a rollout, so each mode's trials run together, mirrored. */
const PLAN: { kind: Kind; mode: Mode }[] = [
  ...(['sigkill', 'oom', 'node-loss', 'liveness'] as const).map((kind) => ({ kind, mode: 'on' as const })),
  ...(['liveness', 'node-loss', 'oom', 'sigkill'] as const).map((kind) => ({ kind, mode: 'off' as const })),
].filter((block) => kinds.includes(block.kind));

interface Sample {
  crashToTakeoverMs: number;
  endedToTakeoverMs: number | undefined;
  renewalToTakeoverMs: number;
  crashToEndedMs: number | undefined;
  crashToReportMs: number | undefined;
  reportToTakeoverMs: number | undefined;
  /** How the kubelet's report says the container ended, e.g. "OOMKilled, 137". */
  reason: string | undefined;
  watchLagMs: number;
  /** The standby on the other node, or the crashed pod's container restarted in place. */
  successor: 'standby' | 'in place';
  /** The successor logged that it took over before the lease expired. */
  byEvidence: boolean;
  /** The whole trial: the wait for a settled Deployment, the crash, the takeover, the pod deleted or the node restored. */
  trialMs: number;
}

interface PodView extends CachedObject {
  metadata: { name: string; namespace?: string; uid: string; resourceVersion?: string; deletionTimestamp?: string };
  spec?: { nodeName?: string };
  status?: {
    conditions?: { type: string; status: string }[];
    containerStatuses?: { name: string; ready?: boolean; containerID?: string; restartCount?: number; state?: ContainerState; lastState?: ContainerState }[];
  };
}

interface ContainerState {
  running?: { startedAt?: string };
  terminated?: { reason?: string; exitCode?: number };
}


/**
 * Informers on what the trials wait for, and one way to wait: `until` checks
 * its condition at every event of any of them (and at once).
 */
class Caches extends InformerSet {
  readonly pods = this.watch<PodView>({ apiVersion: 'v1', kind: 'Pod', plural: 'pods', namespace: NAMESPACE, labelSelector: 'app.kubernetes.io/name=ha-operator' });
  readonly leases = this.watch<Lease & CachedObject>({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', plural: 'leases', namespace: NAMESPACE });
  readonly objects = this.watch<StoredObject & CachedObject>({ ...SAMPLE_KIND.resource, namespace: LOAD });

  constructor(kc: KubeConfig) {
    super(kc, 'ha-operator-crash-failover-bench');
  }

  lease(): Lease | undefined {
    return this.leases.get(`${NAMESPACE}/${LEASE}`);
  }
}

/**
 * Reads kube-apiserver's audit log as it grows (from where it left off) and
 * keeps the events of the operator's namespace this script measures with: the
 * election Lease's writes, the pods' status writes, the Events.
 */
class AuditTail {
  readonly leaseWrites: AuditEvent[] = [];
  readonly podStatusWrites: AuditEvent[] = [];
  private offset = 0;
  private partial = '';
  private readonly path: string;

  constructor(path: string) {
    this.path = path;
  }

  async read(): Promise<void> {
    const file = await open(this.path, 'r');
    try {
      const { size } = await file.stat();
      if (size <= this.offset) return;
      const buffer = Buffer.alloc(size - this.offset);
      const { bytesRead } = await file.read(buffer, 0, buffer.length, this.offset);
      this.offset += bytesRead;
      const lines = (this.partial + buffer.subarray(0, bytesRead).toString('utf8')).split('\n');
      this.partial = lines.pop() ?? '';
      for (const line of lines) {
        if (!line.includes(`"namespace":"${NAMESPACE}"`)) continue;
        const event = JSON.parse(line) as AuditEvent;
        const ref = event.objectRef;
        const code = event.responseStatus?.code ?? 0;
        if (event.stage !== 'ResponseComplete' || ref?.namespace !== NAMESPACE || code < 200 || code > 299) continue;
        if (ref.resource === 'leases' && ref.name === LEASE && ['create', 'update', 'patch'].includes(event.verb)) this.leaseWrites.push(event);
        else if (ref.resource === 'pods' && ref.subresource === 'status') this.podStatusWrites.push(event);
      }
    } finally {
      await file.close();
    }
  }

  /** Reads until `find` finds what a write the watch has shown must have left in the log. */
  async until<R>(what: string, find: () => R | undefined): Promise<R> {
    for (let attempt = 0; ; attempt++) {
      await this.read();
      const found = find();
      if (found !== undefined) return found;
      if (attempt >= 100) throw new Error(`the audit log has no ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/**
 * When a process ended: /proc/<pid>/stat read every 10 ms until it is gone,
 * a zombie, or another process's (a pid used again). A measurement of an
 * event nothing announces to this script, not a wait for a state.
 */
class ProcessEnd {
  ended: number | undefined;
  private readonly timer: NodeJS.Timeout;

  constructor(pid: number) {
    const path = `/proc/${pid}/stat`;
    // After the command's name (in parentheses, may hold spaces): the state is field 3, the start time field 22.
    const fields = (): string[] => {
      const stat = readFileSync(path, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    };
    const startTime = fields()[19];
    this.timer = setInterval(() => {
      let gone: boolean;
      try {
        const now = fields();
        gone = now[0] === 'Z' || now[0] === 'X' || now[19] !== startTime;
      } catch {
        gone = true;
      }
      if (!gone) return;
      this.ended = Date.now();
      clearInterval(this.timer);
    }, 10);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

const at = (event: AuditEvent): number => Date.parse(event.stageTimestamp!);
const holderIn = (event: AuditEvent): string => event.responseObject?.spec?.holderIdentity ?? '';
const isReady = (pod: PodView): boolean => pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true
  && (pod.status.containerStatuses ?? []).every((c) => c.ready === true);
const containerId = (pod: PodView): string | undefined => pod.status?.containerStatuses?.find((c) => c.name === 'operator')?.containerID;


const startedAt = new Date();
const loadBefore = loadAverage();
const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
console.log(`crash failover on real nodes: ${trials} trials per crash and mode; kinds ${kinds.join(', ')}; commit ${commit}`);
console.log(`machine: ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`);
console.log(`start ${startedAt.toISOString()}, load average ${loadBefore}`);

const imagesDir = mkdtempSync(join(tmpdir(), 'ha-operator-images-'));
const images = await buildImages(imagesDir);
const cluster = await LocalCluster.start({ nodes: 2, audit: true, images: { archives: images.map((i) => i.archivePath), sandboxImage: PAUSE_IMAGE } });
const kc = new KubeConfig();
kc.loadFromFile(cluster.kubeconfigPath);
const custom = kc.makeApiClient(CustomObjectsApi);
const caches = new Caches(kc);
const audit = new AuditTail(cluster.plane.auditLogPath!);
const results = new Map<string, Sample[]>();
/** The generation each object's last change gave it: every one must land. */
const lastGenerations = new Map<string, number>();
/** Operator containers that crashed: a pod showing one of them Ready is not back yet (a restored node's kubelet has not caught up). */
const deadContainers = new Set<string>();
let version = 0;
let changeErrors = 0;
let changesSent = 0;
let originalProbe: unknown;
const current = { mode: 'on' as Mode, fastProbe: false };

try {
  await cluster.kubectl(['apply', '-k', join(REPO_ROOT, 'manifests')]);
  await cluster.kubectl(['wait', '--for=condition=Established', `crd/${SAMPLE_KIND.crd.metadata.name}`, '--timeout=60s']);
  await cluster.kubectl(['create', 'namespace', LOAD]);
  for (const name of OBJECTS) {
    const created = (await KubernetesObjectApi.makeApiClient(kc).create(SAMPLE_KIND.sample(LOAD, name))) as StoredObject;
    lastGenerations.set(name, created.metadata.generation);
  }
  const deployment = JSON.parse(await cluster.kubectl(['get', 'deployment', '-n', NAMESPACE, 'ha-operator', '-o', 'json'])) as
    { spec: { template: { spec: { containers: { livenessProbe?: unknown }[] } } } };
  originalProbe = deployment.spec.template.spec.containers[0]!.livenessProbe;
  await caches.start();
  await settled();
  console.log(`cluster up, operator settled (${Math.round((Date.now() - startedAt.getTime()) / 1000)} s)\n`);

  for (const { kind, mode } of PLAN) {
    await configure(mode, kind === 'liveness');
    const samples: Sample[] = [];
    results.set(`${kind}/${mode}`, samples);
    for (let i = 1; i <= trials; i++) {
      const sample = await trial(kind);
      samples.push(sample);
      console.log(`${kind}, failover on pod status ${mode}, trial ${i}/${trials}: crash → takeover ${sample.crashToTakeoverMs} ms, last renewal → takeover ${sample.renewalToTakeoverMs} ms`
        + `${sample.endedToTakeoverMs === undefined ? '' : `, process ended → takeover ${sample.endedToTakeoverMs} ms`}${sample.crashToReportMs === undefined ? '' : `, crash → kubelet's report ${sample.crashToReportMs} ms (${sample.reason})`}`
        + `, successor ${sample.successor}${sample.byEvidence ? ' (evidence)' : ''}; trial ${Math.round(sample.trialMs / 1000)} s`);
    }
  }
  await settled();
} catch (error) {
  console.error(`the run stopped: ${(error as Error).stack ?? String(error)}`);
  console.error(await cluster.kubectl(['get', 'pods', '-A', '-o', 'wide']).catch((e: Error) => e.message));
  process.exitCode = 1;
} finally {
  const finishedAt = new Date();
  const loadAfter = loadAverage();
  try {
    printTables();
    const report = await checkAudit(cluster.plane.auditLogPath!, { namespaces: [LOAD], leaseNamespace: NAMESPACE });
    console.log(`\n${summarize(report)} (audit log ${Math.round(statSync(cluster.plane.auditLogPath!).size / 2 ** 20)} MiB)`);
    console.log(`${SAMPLE_KIND.resource.kind} changes sent during the trials: ${changesSent} (${changeErrors} refused)`);
    for (const violation of report.violations) console.log(`  out-of-term: ${violation}`);
    for (const write of report.unattributed.slice(0, 10)) console.log(`  unattributed: ${write.verb} ${write.object} by ${write.userAgent}`);
    if (report.violations.length > 0 || report.unattributed.length > 0) process.exitCode = 1;
    console.log(`\n${startedAt.toISOString()} – ${finishedAt.toISOString()} (${Math.round((finishedAt.getTime() - startedAt.getTime()) / 60_000)} min); load average before ${loadBefore}, after ${loadAfter}`);
    if (options.out) writeFileSync(options.out, JSON.stringify({ commit, trials, startedAt, finishedAt, loadBefore, loadAfter, results: Object.fromEntries(results) }, null, 2));
  } finally {
    await caches.stop();
    await cluster.stop();
    rmSync(imagesDir, { recursive: true, force: true });
  }
}

/** The Deployment as the block wants it: the feature on (the manifests' env) or off, the manifests' probe or the fast one (a rollout; the next trial waits for it). */
async function configure(mode: Mode, fastProbe: boolean): Promise<void> {
  if (mode === current.mode && fastProbe === current.fastProbe) return;
  if (mode !== current.mode) {
    await cluster.kubectl(['set', 'env', '-n', NAMESPACE, 'deployment/ha-operator', '-c', 'operator', mode === 'off' ? 'FAILOVER_ON_POD_STATUS=false' : 'FAILOVER_ON_POD_STATUS-']);
  }
  if (fastProbe !== current.fastProbe) {
    await cluster.kubectl(['patch', '-n', NAMESPACE, 'deployment/ha-operator', '--type=json', '-p', JSON.stringify([{
      op: 'replace', path: '/spec/template/spec/containers/0/livenessProbe', value: fastProbe ? FAST_PROBE : originalProbe,
    }])]);
  }
  Object.assign(current, { mode, fastProbe });
  console.log(`\n(Deployment: failover on pod status ${mode}, ${fastProbe ? 'the fast liveness probe' : 'the manifests\' liveness probe'})`);
}

/**
 * Two Ready replicas of the current template on different nodes, none
 * terminating and none still showing a crashed container; the Lease held by
 * one of them and renewed since this was called; every change landed.
 */
async function settled(): Promise<{ leader: PodView; standby: PodView; lease: Lease; holder: HolderProcess }> {
  await cluster.kubectl(['rollout', 'status', '-n', NAMESPACE, 'deployment/ha-operator', '--timeout=300s']);
  const since = Date.now();
  return caches.until('two Ready replicas on different nodes, a leader renewing and every change landed', () => {
    const pods = caches.pods.list();
    if (pods.length !== 2 || pods.some((p) => p.metadata.deletionTimestamp || !isReady(p) || deadContainers.has(containerId(p) ?? ''))) return undefined;
    if (pods[0]!.spec?.nodeName === pods[1]!.spec?.nodeName) return undefined;
    const lease = caches.lease();
    const identity = lease?.spec?.holderIdentity ?? '';
    const leader = pods.find((p) => p.metadata.name === podOfIdentity(identity));
    const holder = lease && holderOf(lease);
    if (!lease || !leader || !holder || Date.parse(String(lease.spec?.renewTime)) < since) return undefined;
    // The evidence must be later than the process's start by EVIDENCE_MARGIN_MS (2 s) on the kubelet's whole seconds.
    if (Date.now() - holder.startedAtMs < 5_000 || operatorProcess(cluster, leader) === undefined) return undefined;
    // A standby times a lease's expiry from when it first saw the lease's record, on its own clock (never
    // the leader's renewTime): one that started after the last renewal waits a lease duration from its
    // start. The trials measure a standby that was watching, so it must have seen a renewal: one written
    // later than its container's start (whole seconds) by the time its watch takes to connect.
    const standby = pods.find((p) => p !== leader)!;
    const standbyStarted = Date.parse(standby.status?.containerStatuses?.find((c) => c.name === 'operator')?.state?.running?.startedAt ?? '');
    if (!(Date.parse(String(lease.spec?.renewTime)) > standbyStarted + STANDBY_WATCHING_MS)) return undefined;
    // Converged at the last change's generation: the kind's status is written after its children.
    for (const [name, generation] of lastGenerations) {
      const object = caches.objects.get(`${LOAD}/${name}`);
      if (!object || object.metadata.generation < generation || !SAMPLE_KIND.converged(object)) return undefined;
    }
    return { leader, standby: pods.find((p) => p !== leader)!, lease, holder };
  }, 300_000);
}

/** One change every 100 ms, round robin, until stopped. */
function changesUnderway(): { stop: () => Promise<void> } {
  let stopping = false;
  const loop = (async () => {
    for (let i = 0; !stopping; i++) {
      const name = OBJECTS[i % OBJECTS.length]!;
      try {
        const changed = (await custom.patchNamespacedCustomObject({
          group, version: apiVersion, plural, namespace: LOAD, name, body: SAMPLE_KIND.change(name, ++version),
        }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch))) as StoredObject;
        lastGenerations.set(name, changed.metadata.generation);
        changesSent++;
      } catch {
        changeErrors++;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    async stop() {
      stopping = true;
      await loop;
    },
  };
}

async function trial(kind: Kind): Promise<Sample> {
  const trialStart = Date.now();
  const { leader, standby, holder } = await settled();
  // settled() resolves at an event, often a renewal: the crash falls at a random point of the
  // leader's renewal cycle instead, as a real one would. (Not a wait for anything.)
  await new Promise((r) => setTimeout(r, Math.random() * RETRY_PERIOD_MS));
  const identity = holder.identity;
  if (caches.lease()?.spec?.holderIdentity !== identity) throw new Error(`the lease changed hands before the crash: ${caches.lease()?.spec?.holderIdentity} after ${identity}`);
  const pid = operatorProcess(cluster, leader)!;
  const node = cluster.nodes.find((n) => n.name === leader.spec?.nodeName)!;
  const crashed = containerId(leader);
  let hog: ChildProcess | undefined;
  const end = new ProcessEnd(pid);
  const changes = changesUnderway();
  let crashAt: number;
  let seenAt = 0;
  try {
    const next = caches.until(`a holder other than ${identity}`, () => {
      const now = caches.lease()?.spec?.holderIdentity ?? '';
      if (now === '' || now === identity) return undefined;
      seenAt = Date.now();
      return now;
    }, 120_000);
    crashAt = crash(kind, pid, node, (started) => (hog = started));
    const successor = await next;
    await changes.stop();
    hog?.kill('SIGKILL');
    if (crashed) deadContainers.add(crashed);

    const takeover = await audit.until(`Lease write by ${successor}`, () => audit.leaseWrites.find((e) => holderIn(e) === successor));
    const lastRenewal = audit.leaseWrites.filter((e) => holderIn(e) === identity && at(e) <= at(takeover)).at(-1)!;
    const report = SEEN.includes(kind) ? audit.podStatusWrites.find((e) => e.objectRef?.name === leader.metadata.name && at(e) >= crashAt
      && processEnded(holder, e.responseObject as PodStatusView) !== undefined) : undefined;
    const ended = end.ended;
    const successorPod = podOfIdentity(successor);
    const logs = await cluster.kubectl(['logs', '-n', NAMESPACE, successorPod, '-c', 'operator', `--since-time=${new Date(crashAt - 1000).toISOString()}`]).catch(() => '');

    // Ready for the next trial: a lost node comes back and its kubelet restarts the pod in place;
    // a crashed pod goes, and the ReplicaSet puts a new one on its node.
    if (kind === 'node-loss') await node.restore();
    else await cluster.kubectl(['delete', 'pod', '-n', NAMESPACE, leader.metadata.name, '--wait=false']);
    return {
      crashToTakeoverMs: at(takeover) - crashAt,
      renewalToTakeoverMs: at(takeover) - at(lastRenewal),
      endedToTakeoverMs: ended && at(takeover) - ended,
      crashToEndedMs: ended && ended - crashAt,
      crashToReportMs: report && at(report) - crashAt,
      reportToTakeoverMs: report && at(takeover) - at(report),
      reason: report && terminationOf(report.responseObject as PodView),
      watchLagMs: seenAt - at(takeover),
      successor: successorPod === standby.metadata.name ? 'standby' : 'in place',
      byEvidence: /taking over before the lease expires/.test(logs),
      trialMs: Date.now() - trialStart,
    };
  } finally {
    end.stop();
    await changes.stop();
    hog?.kill('SIGKILL');
  }
}

/** "OOMKilled, 137": how the report says the operator's container ended. */
function terminationOf(pod: PodView): string | undefined {
  const status = pod.status?.containerStatuses?.find((c) => c.name === 'operator');
  const terminated = status?.state?.terminated ?? status?.lastState?.terminated;
  return terminated && `${terminated.reason ?? '?'}, ${terminated.exitCode ?? '?'}`;
}


/** Ends the leader's process (or its node) the way `kind` does; returns the moment, ms since the epoch. */
function crash(kind: Kind, pid: number, node: ClusterNode, started: (hog: ChildProcess) => void): number {
  switch (kind) {
    case 'sigkill': {
      const now = Date.now();
      process.kill(pid, 'SIGKILL');
      return now;
    }
    case 'oom': {
      // The operator is the OOM killer's first choice (raising oom_score_adj needs no privilege);
      // the hog waits in the container's memory cgroup for the word to allocate.
      const memory = /^\d+:memory:(.*)$/m.exec(readFileSync(`/proc/${pid}/cgroup`, 'utf8'))![1]!;
      writeFileSync(`/proc/${pid}/oom_score_adj`, '1000');
      const hog = spawn(process.execPath, ['-e', 'process.stdin.once("data", () => { const kept = []; setInterval(() => kept.push(Buffer.alloc(32 << 20, 1)), 5); })'],
        { stdio: ['pipe', 'ignore', 'ignore'] });
      started(hog);
      writeFileSync(`/sys/fs/cgroup/memory${memory}/cgroup.procs`, String(hog.pid));
      const now = Date.now();
      hog.stdin.write('go\n');
      return now;
    }
    case 'liveness': {
      // Stuck: it answers nothing, renews nothing, and the probe fails.
      const now = Date.now();
      process.kill(pid, 'SIGSTOP');
      return now;
    }
    case 'node-loss': {
      const now = Date.now();
      node.lose();
      return now;
    }
  }
}

function stats(values: (number | undefined)[]): { p50: string; p95: string; max: string } {
  const known = values.filter((v): v is number => v !== undefined);
  if (known.length === 0) return { p50: '—', p95: '—', max: '—' };
  const ms = (v: number): string => `${v.toLocaleString('en-US')} ms`;
  return { p50: ms(percentile(known, 0.5)), p95: ms(percentile(known, 0.95)), max: ms(Math.max(...known)) };
}

function printTables(): void {
  if (results.size === 0) return;
  const rows = KINDS.flatMap((kind) => (['on', 'off'] as const).map((mode) => ({ kind, mode, samples: results.get(`${kind}/${mode}`) ?? [] }))).filter((r) => r.samples.length > 0);
  console.log('\nms on the host clock; the takeover is the successor\'s first committed Lease write (kube-apiserver audit log, stageTimestamp)\n');
  console.log('| crash | failover on pod status | trials | crash → takeover p50 | p95 | max | process ended → takeover p50 | p95 | max | last renewal → takeover p50 | p95 | max |');
  console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const { kind, mode, samples } of rows) {
    const cells = [samples.map((s) => s.crashToTakeoverMs), samples.map((s) => s.endedToTakeoverMs), samples.map((s) => s.renewalToTakeoverMs)]
      .map(stats).flatMap(({ p50, p95, max }) => [p50, p95, max]);
    console.log(`| ${kind} | ${mode} | ${samples.length} | ${cells.join(' | ')} |`);
  }
  console.log('\nWhere the time went (p50 unless named):\n');
  console.log('| crash | failover on pod status | crash → process ended | crash → kubelet\'s report | p95 | kubelet\'s report → takeover | p95 | max | watch lag | max | successor: standby / in place | took over on evidence | the kubelet\'s reason |');
  console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |');
  for (const { kind, mode, samples } of rows) {
    const ended = stats(samples.map((s) => s.crashToEndedMs));
    const report = stats(samples.map((s) => s.crashToReportMs));
    const share = stats(samples.map((s) => s.reportToTakeoverMs));
    const lag = stats(samples.map((s) => s.watchLagMs));
    const standby = samples.filter((s) => s.successor === 'standby').length;
    const reasons = new Map<string, number>();
    for (const { reason } of samples) if (reason) reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
    const reasonCell = [...reasons].map(([reason, n]) => `${reason} ×${n}`).join('; ') || '—';
    console.log(`| ${kind} | ${mode} | ${ended.p50} | ${report.p50} | ${report.p95} | ${share.p50} | ${share.p95} | ${share.max} | ${lag.p50} | ${lag.max} | ${standby} / ${samples.length - standby} | ${samples.filter((s) => s.byEvidence).length} | ${reasonCell} |`);
  }
  console.log('\nRatio off ÷ on, process ended → takeover:');
  for (const kind of KINDS) {
    const on = results.get(`${kind}/on`)?.map((s) => s.endedToTakeoverMs).filter((v): v is number => v !== undefined);
    const off = results.get(`${kind}/off`)?.map((s) => s.endedToTakeoverMs).filter((v): v is number => v !== undefined);
    if (!on?.length || !off?.length) continue;
    console.log(`- ${kind}: p50 ${(percentile(off, 0.5) / percentile(on, 0.5)).toFixed(1)}×, p95 ${(percentile(off, 0.95) / percentile(on, 0.95)).toFixed(1)}×`);
  }
  console.log('\nGoals (issue 16):');
  for (const kind of SEEN) {
    const samples = results.get(`${kind}/on`);
    if (!samples?.length) continue;
    const p95 = percentile(samples.map((s) => s.endedToTakeoverMs ?? Infinity), 0.95);
    console.log(`- ${kind}, feature on: p95 process ended → takeover ${p95} ms, goal ≤ ${GOAL_SEEN_MS} ms: ${p95 <= GOAL_SEEN_MS ? 'met' : 'NOT met'}`);
  }
  for (const mode of ['on', 'off'] as const) {
    const samples = results.get(`node-loss/${mode}`);
    if (!samples?.length) continue;
    const p95 = percentile(samples.map((s) => s.renewalToTakeoverMs), 0.95);
    console.log(`- node-loss, feature ${mode}: p95 last renewal → takeover ${p95} ms, goal ≤ lease duration + 1 s = ${GOAL_LOST_MS} ms: ${p95 <= GOAL_LOST_MS ? 'met' : 'NOT met'}`);
  }
}
