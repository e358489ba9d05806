/**
 * The study on real nodes (`make study-nodes`, or `--nodes`): a local cluster
 * of two nodes (hack/cluster/: containerd and a kubelet each, in a network
 * namespace with no route out), the project's images built and loaded, the
 * operator deployed by `kubectl apply -k manifests/`, and five disruptions
 * dealt by Kubernetes itself — a rollout by the Deployment controller, the
 * leader's process SIGKILLed (failover from the pod's status on, then off),
 * the leader's node lost (the pods' default tolerations, then 30 s ones) —
 * each under the study's load, with the samples/ running real pods beside it.
 *
 * Every scenario is a ScenarioRun (hack/study/scenarios.ts) whose replicas are
 * the operator's container instances: their terms and writes come from their
 * own logs (followed with `kubectl logs -f`), and each handover and a lost
 * node's tail from the API server's audit log (hack/study/cluster-figures.ts).
 * Waits are on watches and `kubectl rollout status`; the only sleeps are the
 * study's fixed phases under load.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeConfig, KubernetesObjectApi, loadAllYaml, type KubernetesObject } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { buildNodeBinaries, LocalCluster } from '../cluster/cluster.ts';
import { operatorProcess } from '../cluster/pods.ts';
import { buildImages, PAUSE_IMAGE, WEB_IMAGE } from '../images/build.ts';
import { readAuditLog } from '../lib/audit.ts';
import type { KindProfile } from '../lib/kind-profile.ts';
import { REPO_ROOT } from '../lib/replica.ts';
import { podOfIdentity } from '../../src/runtime/holder.ts';
import type { LogRecord } from './analyze.ts';
import { auditHandover, auditTail, clipToScenario, kubeletReportAt, mergePatch, podDeletedAt, waitingDuring, type ClusterAuditEvent, type LostPod } from './cluster-figures.ts';
import { ClusterWatch, identityOf, isNodeReady, isPodReady, OperatorLogs, type ContainerInstance, type PodView } from './cluster-watch.ts';
import { formatMs } from './charts.ts';
import { LEASE, logRecordsOf, reportChecks, runScenario, ScenarioRun, TIMING_PRESETS, type ScenarioDefinition, type StudyContext, type StudySettings } from './scenarios.ts';
import type { Check, ClusterEnvironment, ClusterFigures, ClusterHandover, FinalState, ReplicaTimeline, ScenarioResult } from './types.ts';

export const OPERATOR_NAMESPACE = 'ha-operator';
const DEPLOYMENT = 'deployment/ha-operator';
const CONTAINER = 'operator';
const OPERATOR_LABEL = 'app.kubernetes.io/name';
/** manifests/base sets no lease timings: the operator's defaults, client-go's. */
const TIMINGS = TIMING_PRESETS.production!;
const LEASE_MS = TIMINGS.leaseDurationSeconds * 1000;
const SETTLE_TIMEOUT_MS = 240_000;
/** The tolerationSeconds the DefaultTolerationSeconds admission plugin gives pods that set none. */
const DEFAULT_TOLERATION_SECONDS = 300;
/** What manifests/base sets for node.kubernetes.io/not-ready and unreachable. */
const BASE_TOLERATION_SECONDS = baseTolerationSeconds();

/** What the Deployment is made to be before a scenario, by one patch (a rollout when it changes anything). */
export interface DeploymentShape {
  failoverOnPodStatus: boolean;
  /** tolerationSeconds for node.kubernetes.io/not-ready and unreachable (NoExecute); null: none set, the admission plugin's default. */
  tolerationSeconds: number | null;
}

function baseTolerationSeconds(): number | null {
  const deployment = parse(readFileSync(join(REPO_ROOT, 'manifests/base/deployment.yaml'), 'utf8')) as
    { spec: { template: { spec: { tolerations?: { key: string; tolerationSeconds?: number }[] } } } };
  const unreachable = deployment.spec.template.spec.tolerations?.find((t) => t.key === 'node.kubernetes.io/unreachable');
  return unreachable?.tolerationSeconds ?? null;
}

export interface NodeScenarioDefinition extends ScenarioDefinition<NodeScenarioRun> {
  deployment: DeploymentShape;
  /** Checks of what the audit log recorded (scenario.cluster is set). */
  clusterChecks: (s: ScenarioResult) => Check[];
}

/** The same strategic merge patch sets every field of the shape, so the patch is the whole difference from manifests/base. */
export function deploymentPatch(shape: DeploymentShape): object {
  const env = [
    { name: 'LOG_LEVEL', value: 'debug' },
    shape.failoverOnPodStatus ? { name: 'FAILOVER_ON_POD_STATUS', $patch: 'delete' } : { name: 'FAILOVER_ON_POD_STATUS', value: 'false' },
  ];
  const tolerations = shape.tolerationSeconds === null ? null : ['not-ready', 'unreachable'].map((condition) => ({
    key: `node.kubernetes.io/${condition}`, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: shape.tolerationSeconds,
  }));
  return { spec: { template: { spec: { tolerations, containers: [{ name: CONTAINER, env }] } } } };
}

/** The shape's difference from manifests/base, in words. */
export function describeShape(shape: DeploymentShape): string[] {
  return [
    'LOG_LEVEL=debug (one write line per fenced write)',
    ...(shape.failoverOnPodStatus ? [] : ['FAILOVER_ON_POD_STATUS=false']),
    ...(shape.tolerationSeconds === BASE_TOLERATION_SECONDS ? []
      : shape.tolerationSeconds === null ? [`no tolerations: the DefaultTolerationSeconds admission plugin's ${DEFAULT_TOLERATION_SECONDS} s for node.kubernetes.io/not-ready and unreachable`]
        : [`tolerations: node.kubernetes.io/not-ready and unreachable, NoExecute, tolerationSeconds ${shape.tolerationSeconds}`]),
  ];
}

/** The cluster, the operator on it, and the watch every scenario waits with. */
export class NodeStudy {
  readonly cluster: LocalCluster;
  readonly kubeConfig: KubeConfig;
  readonly watch: ClusterWatch;
  readonly environment: ClusterEnvironment;
  private readonly imagesDir: string;
  private shape: DeploymentShape | undefined;

  private constructor(cluster: LocalCluster, kubeConfig: KubeConfig, watch: ClusterWatch, environment: ClusterEnvironment, imagesDir: string) {
    this.cluster = cluster;
    this.kubeConfig = kubeConfig;
    this.watch = watch;
    this.environment = environment;
    this.imagesDir = imagesDir;
  }

  static async start(profile: KindProfile, progress: (line: string) => void): Promise<NodeStudy> {
    const startedAt = new Date();
    const loadBefore = loadAverage();
    const concurrent = otherWork();
    const imagesDir = mkdtempSync(join(tmpdir(), 'ha-operator-study-images-'));
    progress(`real nodes: building the images (pause, web, operator from the current sources) and starting two nodes; load average ${loadBefore}`
      + `${concurrent.length > 0 ? `; also running: ${concurrent.join('; ')}` : ''}`);
    const images = await buildImages(imagesDir);
    // Not directly in the temporary directory, where `make test` looks for what its own clusters left behind.
    const cluster = await LocalCluster.start({
      nodes: 2, audit: true, parentDir: join(tmpdir(), 'ha-operator-study'), images: { archives: images.map((i) => i.archivePath), sandboxImage: PAUSE_IMAGE },
    });
    try {
      const kubeConfig = new KubeConfig();
      kubeConfig.loadFromFile(cluster.kubeconfigPath);
      await cluster.kubectl(['apply', '-k', join(REPO_ROOT, 'manifests')]);
      await cluster.kubectl(['wait', '--for=condition=Established', `crd/${profile.resource.plural}.${profile.resource.group}`, '--timeout=60s']);
      const watch = new ClusterWatch(kubeConfig, OPERATOR_NAMESPACE);
      await watch.start();
      const local = profile.onLocalNodes?.(WEB_IMAGE);
      const environment: ClusterEnvironment = {
        startedAt: startedAt.toISOString(),
        finishedAt: startedAt.toISOString(),
        durationMs: 0,
        commit: commitOf(),
        nodes: cluster.nodes.map((n) => n.name),
        nodeBinaries: basename(await buildNodeBinaries()),
        controlPlane: basename(cluster.plane.binDir),
        deployment: 'kubectl apply -k manifests/ (2 replicas, maxSurge 1, maxUnavailable 0, lease 15 s / renew deadline 10 s / retry 2 s, '
          + 'terminationGracePeriodSeconds 35, one replica per node), then one strategic merge patch per scenario (its rollout awaited before the scenario begins)',
        samples: `samples/*.yaml in each scenario's namespace${local ? `, merged with ${JSON.stringify(local)}` : ''}: their pods run on the nodes (${WEB_IMAGE}: busybox httpd, non-root, port 8080)`,
        loadBefore,
        loadAfter: loadBefore,
        concurrent,
      };
      return new NodeStudy(cluster, kubeConfig, watch, environment, imagesDir);
    } catch (error) {
      await cluster.stop();
      rmSync(imagesDir, { recursive: true, force: true });
      throw error;
    }
  }

  kubectl(args: string[]): Promise<string> {
    return this.cluster.kubectl(args);
  }

  /** Makes the Deployment `shape` (a rollout if that changes it) and waits until it has settled. */
  async ensure(shape: DeploymentShape, progress: (line: string) => void): Promise<void> {
    if (JSON.stringify(shape) !== JSON.stringify(this.shape)) {
      progress(`deployment: ${describeShape(shape).join('; ')}`);
      await this.kubectl(['patch', '-n', OPERATOR_NAMESPACE, DEPLOYMENT, '--type=strategic', '-p', JSON.stringify(deploymentPatch(shape))]);
      this.shape = shape;
    }
    await this.kubectl(['rollout', 'status', '-n', OPERATOR_NAMESPACE, DEPLOYMENT, `--timeout=${SETTLE_TIMEOUT_MS / 1000}s`]);
    const pods = await this.settled(false);
    if (new Set(pods.map((p) => p.spec?.nodeName)).size < 2) {
      // A lost node's replacement went where the survivor runs; the spread constraint acts only when a pod is scheduled.
      progress('both replicas run on one node: kubectl rollout restart spreads them again');
      await this.kubectl(['rollout', 'restart', '-n', OPERATOR_NAMESPACE, DEPLOYMENT]);
      await this.kubectl(['rollout', 'status', '-n', OPERATOR_NAMESPACE, DEPLOYMENT, `--timeout=${SETTLE_TIMEOUT_MS / 1000}s`]);
    }
    await this.settled();
  }

  /**
   * Resolves with the two operator pods once both are Ready, none is
   * terminating, every node is Ready and untainted and one of the two holds
   * the Lease — and, when `spread`, they run on different nodes.
   */
  async settled(spread = true): Promise<PodView[]> {
    return this.watch.until(`two Ready operator pods${spread ? ' on two nodes' : ''}, every node Ready, one of them holding the Lease`, () => {
      const all = this.watch.pods.list().filter((p) => p.metadata.namespace === OPERATOR_NAMESPACE && p.metadata.labels?.[OPERATOR_LABEL] === 'ha-operator');
      if (all.length !== 2 || all.some((p) => p.metadata.deletionTimestamp !== undefined || !isPodReady(p))) return undefined;
      if (spread && new Set(all.map((p) => p.spec?.nodeName)).size !== 2) return undefined;
      if (!this.watch.nodes.list().every(isNodeReady)) return undefined;
      return all.some((p) => p.metadata.name === podOfIdentity(this.watch.holder(LEASE))) ? all : undefined;
    }, SETTLE_TIMEOUT_MS);
  }

  /** Brings every lost node back and waits until it is Ready and its pods that were deleted meanwhile are gone. */
  async restoreLostNodes(lost: readonly string[], progress: (line: string) => void): Promise<void> {
    for (const name of lost) {
      progress(`restoring ${name}`);
      await this.cluster.nodes.find((n) => n.name === name)!.restore();
      await this.watch.until(`${name} Ready and untainted, its deleted pods gone`, () => {
        const node = this.watch.nodes.get(name);
        if (!node || !isNodeReady(node)) return undefined;
        return this.watch.pods.list().some((p) => p.spec?.nodeName === name && p.metadata.deletionTimestamp !== undefined) ? undefined : true;
      }, SETTLE_TIMEOUT_MS);
    }
  }

  async stop(): Promise<void> {
    this.environment.finishedAt = new Date().toISOString();
    this.environment.durationMs = Date.parse(this.environment.finishedAt) - Date.parse(this.environment.startedAt);
    this.environment.loadAfter = loadAverage();
    try {
      await this.watch.stop();
    } finally {
      await this.cluster.stop();
      rmSync(this.imagesDir, { recursive: true, force: true });
    }
  }
}

/** What a scenario's handover needs from the harness: what ended the term, when, and whose. */
interface HandoverCause {
  cause: string;
  /** Epoch ms. */
  causeAt: number;
  instance: ContainerInstance;
  identity: string;
  /** The kubelet reports this one (a crash of the process), so its report is looked for. */
  reported: boolean;
}

/** A scenario on real nodes: replicas are the operator's container instances, their lines from `kubectl logs -f`. */
export class NodeScenarioRun extends ScenarioRun {
  readonly study: NodeStudy;
  readonly logs: OperatorLogs;
  readonly nodeDefinition: NodeScenarioDefinition;
  readonly causes: HandoverCause[] = [];
  /** Set by a node-loss scenario. */
  lostNode: { node: string; lostAt: number; pods: LostPod[] } | undefined;
  /** Instances running at time 0, the leader first. */
  private initial: ContainerInstance[] = [];

  constructor(context: StudyContext, definition: NodeScenarioDefinition, study: NodeStudy) {
    super(context, definition, OPERATOR_NAMESPACE);
    this.study = study;
    this.nodeDefinition = definition;
    this.logs = new OperatorLogs({
      watch: study.watch,
      kubectl: { binary: join(study.cluster.plane.binDir, 'kubectl'), kubeconfig: study.cluster.kubeconfigPath },
      namespace: OPERATOR_NAMESPACE,
      container: CONTAINER,
    });
  }

  /** The namespace with the load's first objects and samples/ (their pods running), the logs followed. */
  override async prepare(): Promise<void> {
    this.logs.start();
    const leader = podOfIdentity(this.study.watch.holder(LEASE));
    this.initial = this.logs.instances().sort((a, b) => Number(b.pod === leader) - Number(a.pod === leader));
    await super.prepare();
    const names = await applySamples(this.context.kubeConfig, this.context.profile, this.namespace);
    await this.study.kubectl(['wait', '--for=condition=Ready', '-n', this.namespace, ...names.map((n) => `${this.context.profile.resource.plural}/${n}`), '--timeout=180s']);
    this.progress(`samples Ready with their pods: ${names.join(', ')}`);
  }

  /** Prepared, every object converged, then the steady phase under load. */
  async underLoad(): Promise<void> {
    await this.prepare();
    await this.watch.untilConverged(120_000);
    await this.steady();
  }

  /** The instance holding the Lease now. */
  leader(): ContainerInstance {
    const identity = this.study.watch.holder(LEASE);
    const instance = this.logs.withIdentity(identity) ?? this.logs.instances().find((i) => i.endedAt === null && i.pod === podOfIdentity(identity));
    if (!instance) throw new Error(`no running operator container holds the Lease (holder ${identity || 'none'})`);
    return instance;
  }

  /** Resolves, at the watch's event, with the time (ms since t0) the Lease named a holder other than `identity` and ''. */
  async nextHolder(identity: string, timeoutMs = 4 * LEASE_MS): Promise<number> {
    await this.study.watch.until(`a holder other than ${identity}`, () => {
      const holder = this.study.watch.holder(LEASE);
      return holder !== '' && holder !== identity ? holder : undefined;
    }, timeoutMs);
    return this.now();
  }

  /**
   * Marks that the harness ends the leading `instance` now, by `cause`
   * (`label` on the charts), and records the handover to look for.
   */
  ending(instance: ContainerInstance, cause: string, label: string, exit: string, reported: boolean): { at: number; identity: string } {
    const identity = identityOf(instance);
    if (!identity) throw new Error(`${instance.pod}'s log names no holder identity`);
    const at = this.mark(label);
    this.logs.ended(instance, this.t0 + at, exit);
    this.handoverQueries.push({ lease: LEASE, cause: label, causeAt: at });
    this.causes.push({ cause, causeAt: this.t0 + at, instance, identity, reported });
    return { at, identity };
  }

  /** Stops the load now (the rest of the scenario waits without it). */
  async stopLoad(): Promise<void> {
    await this.load.stop();
    this.loadEnd = this.mark('load stopped');
  }

  override async finish(): Promise<FinalState> {
    try {
      return await super.finish();
    } finally {
      await this.logs.stop();
    }
  }

  /** The instances of the scenario: those running at 0 (the leader first), then the others as they started. */
  private scenarioInstances(): ContainerInstance[] {
    const later = this.logs.instances().filter((i) => !this.initial.includes(i));
    return [...this.initial, ...later];
  }

  protected override replicaTimelines(): ReplicaTimeline[] {
    return this.scenarioInstances().map((i) => {
      const firstLine = i.lines[0]?.loggedAt ?? i.seenRunningAt;
      const lastLine = i.lines.at(-1)?.loggedAt;
      // A clean exit's last line is its last act; the watch shows the exit a moment later.
      const exitedAt = i.endedAt === null ? null : i.exit?.startsWith('exit code 0') && lastLine !== undefined ? Math.min(lastLine, i.endedAt) : i.endedAt;
      const started = this.initial.includes(i) ? '' : i.restartCount > 0 ? `, restart ${i.restartCount}` : ', new pod';
      return {
        name: i.replica,
        role: `${i.node}${started}`,
        spawnedAt: Math.max(0, firstLine - this.t0),
        readyAt: i.readyAt === null ? null : Math.max(0, i.readyAt - this.t0),
        exitedAt: exitedAt === null ? null : exitedAt - this.t0,
        exit: i.exit,
        leaderElection: true,
      };
    });
  }

  /** The instances' lines about this scenario's objects (and their terms), clipped to the scenario. */
  protected override logRecords(): LogRecord[] {
    const own = `${this.namespace}/`;
    const records = this.scenarioInstances().flatMap((i) => logRecordsOf(i.replica, i.lines, (l) => (l.loggedAt ?? l.receivedAt) - this.t0));
    return clipToScenario(records.filter((r) => r.key === undefined || r.key.startsWith(own)));
  }

  /** What the audit log (and the operator's own log, for SIGTERM) recorded of each handover and of a lost node. */
  async clusterFigures(scenario: ScenarioResult): Promise<ClusterFigures> {
    const events = (await readAuditLog(this.context.plane.auditLogPath!)) as ClusterAuditEvent[];
    const rel = (epoch: number | null): number | null => (epoch === null ? null : epoch - this.t0);
    const handovers = this.causes.map((c): ClusterHandover => {
      const audit = auditHandover(events, { namespace: OPERATOR_NAMESPACE, name: LEASE }, c.identity, this.namespace);
      const successor = audit.toIdentity ? this.logs.withIdentity(audit.toIdentity) : undefined;
      const sigterm = c.instance.lines.find((l) => l.message === 'shutting down' && (l.loggedAt ?? 0) >= this.t0);
      const byEvidence = successor?.lines.some((l) => l.message?.startsWith('taking over before the lease expires') === true && (l.loggedAt ?? 0) >= c.causeAt - 1_000) ?? false;
      const firstWriteAt = rel(audit.firstWriteAt);
      const start = c.causeAt - this.t0;
      return {
        cause: c.cause,
        causeAt: start,
        from: c.instance.replica,
        to: successor?.replica ?? null,
        fromIdentity: c.identity,
        toIdentity: audit.toIdentity,
        podDeletedAt: c.cause === 'rollout' ? rel(podDeletedAt(events, OPERATOR_NAMESPACE, c.instance.pod, this.t0)) : null,
        sigtermAt: sigterm?.loggedAt === undefined ? null : sigterm.loggedAt - this.t0,
        kubeletReportAt: c.reported ? rel(kubeletReportAt(events, audit.holder, c.causeAt)) : null,
        lastRenewalAt: rel(audit.lastRenewalAt),
        releasedAt: rel(audit.releasedAt),
        acquiredAt: rel(audit.acquiredAt),
        byEvidence,
        firstWriteAt,
        noHolderMs: audit.acquiredAt === null ? null : audit.acquiredAt - (audit.releasedAt ?? audit.lastRenewalAt ?? audit.acquiredAt),
        waiting: waitingDuring(scenario.changes, start, firstWriteAt ?? rel(audit.acquiredAt) ?? scenario.durationMs),
      };
    });
    const figures: ClusterFigures = {
      deployment: describeShape(this.nodeDefinition.deployment),
      pods: this.scenarioInstances().map((i) => ({ replica: i.replica, pod: i.pod, node: i.node, restartCount: i.restartCount, identity: identityOf(i) })),
      handovers,
    };
    if (this.lostNode) {
      const tail = auditTail(events, this.lostNode.node, this.t0 + this.lostNode.lostAt, this.lostNode.pods);
      figures.tail = {
        node: this.lostNode.node,
        lostAt: this.lostNode.lostAt,
        unknownAt: rel(tail.unknownAt),
        taintedAt: rel(tail.taintedAt),
        pods: tail.pods.map((p) => ({ ...p, evictedAt: rel(p.evictedAt), createdAt: rel(p.createdAt), scheduledAt: rel(p.scheduledAt), readyAt: rel(p.readyAt) })),
      };
    }
    return figures;
  }
}

/** samples/*.yaml (the sample kind's objects), each merged with the profile's patch for these nodes, created in `namespace`. */
async function applySamples(kubeConfig: KubeConfig, profile: KindProfile, namespace: string): Promise<string[]> {
  const client = KubernetesObjectApi.makeApiClient(kubeConfig);
  const dir = join(REPO_ROOT, 'samples');
  const local = profile.onLocalNodes?.(WEB_IMAGE) ?? {};
  const names: string[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort()) {
    for (const object of loadAllYaml(readFileSync(join(dir, file), 'utf8')) as KubernetesObject[]) {
      if (object.kind !== profile.resource.kind) continue;
      const body = mergePatch(object, { ...local, metadata: { namespace } }) as KubernetesObject;
      await client.create(body);
      names.push(body.metadata!.name!);
    }
  }
  return names;
}

/** The pods on `node` now (not being deleted), with what their replacement will be known by. */
function podsOn(watch: ClusterWatch, node: string): LostPod[] {
  return watch.pods.list()
    .filter((p) => p.spec?.nodeName === node && p.metadata.deletionTimestamp === undefined)
    .map((p): LostPod => {
      const owner = p.metadata.ownerReferences?.find((o) => o.controller) ?? p.metadata.ownerReferences?.[0];
      const operator = p.metadata.namespace === OPERATOR_NAMESPACE;
      const unreachable = p.spec?.tolerations?.find((t) => t.key === 'node.kubernetes.io/unreachable' && t.effect === 'NoExecute');
      return {
        namespace: p.metadata.namespace,
        name: p.metadata.name,
        owner: owner?.name ?? '',
        // A ReplicaSet is named after its Deployment, plus a hash.
        workload: operator ? 'operator' : owner?.kind === 'ReplicaSet' ? `Deployment ${owner.name.replace(/-[a-z0-9]+$/, '')}` : `${owner?.kind ?? 'Pod'} ${owner?.name ?? p.metadata.name}`,
        tolerationSeconds: unreachable?.tolerationSeconds ?? null,
      };
    })
    .sort((a, b) => Number(b.workload === 'operator') - Number(a.workload === 'operator') || (a.name < b.name ? -1 : 1));
}

/** Whether every owner among `pods` has as many Ready pods, none of them on `node` nor being deleted, as it had in all. */
function replaced(watch: ClusterWatch, node: string, pods: readonly LostPod[], counts: ReadonlyMap<string, number>): boolean {
  return [...new Set(pods.map((p) => p.owner))].every((owner) => watch.pods.list().filter((p: PodView) =>
    p.metadata.ownerReferences?.some((o) => o.name === owner) === true && p.spec?.nodeName !== node && p.metadata.deletionTimestamp === undefined && isPodReady(p),
  ).length >= (counts.get(owner) ?? 1));
}

function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

/** Measuring work of other sessions on this machine (a benchmark, a test run), as pgrep names it. */
function otherWork(): string[] {
  try {
    return execFileSync('pgrep', ['-af', 'mocha|crash-failover|hack/bench/|hack/chaos'], { encoding: 'utf8' })
      .split('\n').filter((l) => l.trim() !== '' && !l.includes('pgrep')).map((l) => l.slice(0, 120));
  } catch {
    return [];
  }
}

function commitOf(): string {
  const git = (args: string[]): string => execFileSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
  const commit = git(['rev-parse', '--short', 'HEAD']);
  return git(['status', '--porcelain', '--', 'src', 'package.json', 'package-lock.json']) === '' ? commit : `${commit} (src/ modified)`;
}

/** Node-loss scenarios: the leader's node lost under load, then Kubernetes' own tail until its pods run elsewhere. */
async function nodeLoss(run: NodeScenarioRun): Promise<void> {
  await run.underLoad();
  const leader = run.leader();
  const node = run.study.cluster.nodes.find((n) => n.name === leader.node)!;
  const pods = podsOn(run.study.watch, node.name);
  const counts = new Map<string, number>();
  for (const owner of new Set(pods.map((p) => p.owner))) {
    counts.set(owner, run.study.watch.pods.list().filter((p) => p.metadata.deletionTimestamp === undefined && p.metadata.ownerReferences?.some((o) => o.name === owner)).length);
  }
  const operatorToleration = pods.find((p) => p.workload === 'operator')?.tolerationSeconds ?? DEFAULT_TOLERATION_SECONDS;
  const { at: lostAt, identity } = run.ending(leader, 'node lost', `${node.name} lost (leader ${leader.replica})`, 'node lost', false);
  node.lose();
  for (const instance of run.logs.instances()) if (instance.node === node.name) run.logs.ended(instance, run.t0 + lostAt, 'node lost');
  run.lostNode = { node: node.name, lostAt, pods };
  const ledAt = await run.nextHolder(identity);
  run.window = { start: lostAt, end: ledAt, label: 'node lost to new leader' };
  await sleep(run.settings.afterMs);
  await run.stopLoad();
  // Kubernetes' part: the node Unknown, the NoExecute taint, each pod evicted after its toleration, a replacement elsewhere.
  // Awaited for the operator and for whatever tolerates the node no longer than it (the rest would take the default 300 s).
  const awaited = pods.filter((p) => (p.tolerationSeconds ?? DEFAULT_TOLERATION_SECONDS) <= operatorToleration);
  const timeoutMs = (operatorToleration + 60) * 1000 + 180_000;
  await run.study.watch.until(`the pods of ${node.name} (${awaited.map((p) => p.name).join(', ')}) replaced by Ready pods elsewhere`,
    () => (replaced(run.study.watch, node.name, awaited, counts) ? true : undefined), timeoutMs);
  const back = run.mark(`replaced: ${awaited.length} ${awaited.length === 1 ? 'pod' : 'pods'} of ${node.name} Ready elsewhere`);
  run.spans.push({ start: lostAt, end: back, label: `${node.name} lost` });
  await sleep(5_000);
}

/** Crash scenarios: SIGKILL of the leader's process; the kubelet restarts its container in place. */
async function crash(run: NodeScenarioRun): Promise<void> {
  await run.underLoad();
  const leader = run.leader();
  const pod = run.study.watch.pods.get(`${OPERATOR_NAMESPACE}/${leader.pod}`);
  const pid = pod ? operatorProcess(run.study.cluster, pod) : undefined;
  if (pid === undefined) throw new Error(`the process of ${leader.pod}'s operator container was not found`);
  const { at, identity } = run.ending(leader, 'SIGKILL', `SIGKILL ${leader.replica}`, 'SIGKILL', true);
  process.kill(pid, 'SIGKILL');
  const ledAt = await run.nextHolder(identity);
  run.window = { start: at, end: ledAt, label: 'crash to new leader' };
  await sleep(run.settings.afterMs);
  await run.study.settled();
}

function leaseChecks(s: ScenarioResult, name: string, ok: (h: ClusterHandover) => boolean, detail: (h: ClusterHandover) => string): Check[] {
  const handovers = s.cluster?.handovers ?? [];
  if (handovers.length === 0) return [{ name: `the audit log: ${name}`, ok: false, detail: 'no handover recorded' }];
  return handovers.map((h) => ({
    name: `the audit log, ${h.cause} ${h.from ?? '?'}: ${name}`,
    ok: h.acquiredAt !== null && ok(h),
    detail: h.acquiredAt === null ? 'nobody acquired the Lease' : detail(h),
  }));
}

const gapDetail = (h: ClusterHandover): string => `${h.to ?? '?'} acquired ${formatMs(h.noHolderMs)} after ${h.releasedAt !== null ? 'the release' : 'the last renewal'}`
  + `${h.byEvidence ? ', from the pod\'s status' : ''}`;

const neverEarly = (s: ScenarioResult): Check[] => leaseChecks(s, `no takeover sooner than a lease duration (${formatMs(LEASE_MS)}, − 1 s) after the last renewal, nor from evidence`,
  (h) => !h.byEvidence && h.releasedAt === null && (h.noHolderMs ?? 0) >= LEASE_MS - 1_000, gapDetail);

function tailChecks(s: ScenarioResult): Check[] {
  const tail = s.cluster?.tail;
  const operator = tail?.pods.find((p) => p.workload === 'operator');
  if (!tail || !operator) return [{ name: 'the lost node\'s operator pod was replaced', ok: false, detail: 'no operator pod on the lost node' }];
  const toleration = (operator.tolerationSeconds ?? DEFAULT_TOLERATION_SECONDS) * 1000;
  return [
    {
      name: `the operator's pod on ${tail.node} was evicted no sooner than its tolerationSeconds after the NoExecute taint`,
      ok: tail.taintedAt !== null && operator.evictedAt !== null && operator.evictedAt - tail.taintedAt >= toleration - 1_000,
      detail: `tainted at ${formatMs(tail.taintedAt)}, evicted at ${formatMs(operator.evictedAt)} (tolerationSeconds ${operator.tolerationSeconds ?? '–'})`,
    },
    {
      name: 'a replacement ran Ready on another node',
      ok: operator.readyAt !== null && operator.replacementNode !== null && operator.replacementNode !== tail.node,
      detail: `${operator.replacement ?? 'none'} on ${operator.replacementNode ?? '–'}, Ready at ${formatMs(operator.readyAt)} (${formatMs(operator.readyAt === null ? null : operator.readyAt - tail.lostAt)} after the loss)`,
    },
  ];
}

const BASE = { leaderElection: true, shards: 1, duplicatesExpected: false } as const;

export const NODE_SCENARIOS: NodeScenarioDefinition[] = [
  {
    ...BASE,
    id: 'nodes-rolling-update',
    number: 7,
    title: 'Real nodes: kubectl rollout restart',
    description: 'The two replicas that kubectl apply -k manifests/ runs, one per node, under load; `kubectl rollout restart` and the Deployment controller do the rest '
      + '(maxSurge 1, maxUnavailable 0): a new pod, Ready on its caches, then an old pod deleted and its container sent SIGTERM by the kubelet, twice. '
      + 'An old pod that leads drains, releases the Lease, and a standby — the other old pod or a new one — takes it.',
    deployment: { failoverOnPodStatus: true, tolerationSeconds: BASE_TOLERATION_SECONDS },
    run: async (run) => {
      await run.underLoad();
      const old = run.logs.instances();
      const start = run.mark('kubectl rollout restart');
      await run.study.kubectl(['rollout', 'restart', '-n', OPERATOR_NAMESPACE, DEPLOYMENT]);
      await run.study.kubectl(['rollout', 'status', '-n', OPERATOR_NAMESPACE, DEPLOYMENT, `--timeout=${SETTLE_TIMEOUT_MS / 1000}s`]);
      await run.study.settled();
      const end = run.mark('rollout done');
      // Each old instance that led when its SIGTERM came handed over (the Deployment controller chose the order).
      for (const instance of old) {
        const sigterm = instance.lines.find((l) => l.message === 'shutting down' && (l.loggedAt ?? 0) >= run.t0);
        if (sigterm?.loggedAt === undefined || !ledAt(instance, sigterm.loggedAt)) continue;
        const causeAt = sigterm.loggedAt - run.t0;
        run.markers.push({ at: causeAt, label: `SIGTERM ${instance.replica} (leader)` });
        run.handoverQueries.push({ lease: LEASE, cause: `SIGTERM ${instance.replica} (kubelet)`, causeAt });
        run.causes.push({ cause: 'rollout', causeAt: sigterm.loggedAt, instance, identity: identityOf(instance) ?? '', reported: false });
      }
      run.window = { start, end, label: 'rollout' };
      await sleep(run.settings.afterMs);
    },
    clusterChecks: (s) => leaseChecks(s, 'the leader released the Lease on SIGTERM and a standby acquired it sooner than a lease expiry would allow',
      (h) => h.releasedAt !== null && (h.noHolderMs ?? Number.POSITIVE_INFINITY) < LEASE_MS, gapDetail),
  },
  {
    ...BASE,
    id: 'nodes-crash',
    number: 8,
    title: 'Real nodes: SIGKILL of the leader\'s process',
    description: 'The leader\'s process is killed with SIGKILL (found by its pod\'s cgroup). The kubelet reports the container terminated and restarts it in place; '
      + 'the standby on the other node sees in the pod\'s status that the holder\'s process has ended and takes the Lease before it expires (FAILOVER_ON_POD_STATUS, the default).',
    deployment: { failoverOnPodStatus: true, tolerationSeconds: BASE_TOLERATION_SECONDS },
    run: crash,
    clusterChecks: (s) => leaseChecks(s, `the successor took the Lease from the pod's status, sooner than a lease duration (${formatMs(LEASE_MS)}) after the last renewal`,
      (h) => h.byEvidence && (h.noHolderMs ?? Number.POSITIVE_INFINITY) < LEASE_MS, gapDetail),
  },
  {
    ...BASE,
    id: 'nodes-crash-expiry',
    number: 9,
    title: 'Real nodes: SIGKILL, FAILOVER_ON_POD_STATUS=false',
    description: 'The same crash with failover from the pod\'s status turned off, in the same run: whatever the kubelet reports, the standby (or the container '
      + 'restarted in place, a process of its own) waits until the Lease has not changed for a lease duration.',
    deployment: { failoverOnPodStatus: false, tolerationSeconds: BASE_TOLERATION_SECONDS },
    run: crash,
    clusterChecks: neverEarly,
  },
  {
    ...BASE,
    id: 'nodes-node-loss',
    number: 10,
    title: 'Real nodes: the leader\'s node lost (default tolerations)',
    description: 'The leader\'s node is lost — its kubelet, containerd, shims and containers killed at once — so nobody reports anything: the standby on the other node '
      + `waits for the Lease to expire. Then Kubernetes' tail: the node controller marks the node Unknown, taints it unreachable (NoExecute), and evicts its pods once their toleration (${DEFAULT_TOLERATION_SECONDS} s, `
      + 'from the DefaultTolerationSeconds admission plugin once the tolerations manifests/base sets are removed) runs out; only then does the Deployment start a second replica elsewhere. '
      + 'The load stops after the takeover and the period after it.',
    deployment: { failoverOnPodStatus: true, tolerationSeconds: null },
    run: nodeLoss,
    clusterChecks: (s) => [...neverEarly(s), ...tailChecks(s)],
  },
  {
    ...BASE,
    id: 'nodes-node-loss-30s',
    number: 11,
    title: 'Real nodes: the leader\'s node lost (tolerationSeconds 30)',
    description: 'The same node loss with the tolerations manifests/base sets for node.kubernetes.io/not-ready and unreachable (NoExecute, tolerationSeconds 30): '
      + 'its pod on the lost node is evicted 30 s after the taint instead of 300 s, and the second replica runs again that much sooner. The samples\' pods keep the default.',
    deployment: { failoverOnPodStatus: true, tolerationSeconds: 30 },
    run: nodeLoss,
    clusterChecks: (s) => [...neverEarly(s), ...tailChecks(s)],
  },
];

/** Whether `instance` led the Lease at `epochMs`, by its own lines. */
function ledAt(instance: ContainerInstance, epochMs: number): boolean {
  let leading = false;
  for (const line of instance.lines) {
    if ((line.loggedAt ?? 0) > epochMs) break;
    if (line.message === 'started leading') leading = true;
    if (line.message === 'stopped leading') leading = false;
  }
  return leading;
}

/**
 * Runs `selected` on a fresh local cluster, one after the other, and hands
 * each result to `record` as it is made (with the cluster's environment so
 * far). Lost nodes are restored between scenarios.
 */
export async function runNodeScenarios(options: {
  selected: readonly NodeScenarioDefinition[];
  profile: KindProfile;
  settings: StudySettings;
  progress: (line: string) => void;
  record: (scenario: ScenarioResult, environment: ClusterEnvironment) => Promise<void>;
}): Promise<ClusterEnvironment> {
  const { selected, profile, progress } = options;
  const settings: StudySettings = { ...options.settings, timings: TIMINGS };
  const study = await NodeStudy.start(profile, progress);
  try {
    const context: StudyContext = { plane: study.cluster.plane, kubeConfig: study.kubeConfig, profile, settings, progress };
    for (const definition of selected) {
      await study.ensure(definition.deployment, progress);
      const run = new NodeScenarioRun(context, definition, study);
      const scenario = await runScenario(run, definition.run, async (result) => {
        result.cluster = await run.clusterFigures(result);
        result.checks.push(...definition.clusterChecks(result));
      });
      if (run.lostNode) await study.restoreLostNodes([run.lostNode.node], progress);
      // The next scenario's operator should not keep resyncing this one's objects.
      await study.kubectl(['delete', 'namespace', run.namespace, '--wait=true', '--timeout=180s']).catch((e: Error) => run.progress(`namespace not deleted: ${e.message}`));
      study.environment.finishedAt = new Date().toISOString();
      study.environment.durationMs = Date.parse(study.environment.finishedAt) - Date.parse(study.environment.startedAt);
      study.environment.loadAfter = loadAverage();
      await options.record(scenario, study.environment);
      reportChecks(run, scenario);
    }
  } finally {
    await study.stop();
  }
  return study.environment;
}
