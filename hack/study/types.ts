/**
 * The study's results as written to results.json: everything the report is
 * rendered from (hack/study/render.ts reads nothing else). Times inside a
 * scenario are milliseconds since that scenario's `t0`, measured on the one
 * wall clock of the machine: the harness's Date.now() and the replicas' own
 * log timestamps (same host, so one clock).
 */

// 2: the kind studied is recorded (environment.workload); the load and the final state count its objects.
// 3: scenarios on real nodes (environment.cluster, scenario.cluster). A results.json of version 2 is a
//    version 3 without them, and is read as one.
export const RESULTS_SCHEMA_VERSION = 3;
export const READABLE_SCHEMA_VERSIONS: readonly number[] = [2, 3];

export interface StudyResults {
  schemaVersion: typeof RESULTS_SCHEMA_VERSION | 2;
  /** ISO 8601 start and end of the whole study. */
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  environment: StudyEnvironment;
  scenarios: ScenarioResult[];
}

export interface StudyEnvironment {
  /** process.version of the harness and of the replicas (the same Node). */
  node: string;
  /** The control plane's cache directory name, e.g. kubernetes-v1.36.3-etcd-v3.6.8. */
  controlPlane: string;
  cpus: number;
  /** `production` (client-go's defaults) or `fast`. */
  timingPreset: string;
  leaseDurationSeconds: number;
  renewDeadlineSeconds: number;
  retryPeriodSeconds: number;
  load: LoadSettings;
  workload: Workload;
  /** How long each scenario runs under load before its event, and after the event window. */
  steadyMs: number;
  afterMs: number;
  /** Where the scenarios on real nodes ran, when any did (their own run: it may come from another study than the rest). */
  cluster?: ClusterEnvironment;
}

/** The local cluster of real nodes (hack/cluster/) the scenarios with `cluster` ran on. */
export interface ClusterEnvironment {
  /** ISO 8601 start and end of the scenarios on real nodes. */
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  /** The git commit the operator's image was built from (`git describe --always --dirty`). */
  commit: string;
  nodes: string[];
  /** The node binaries' cache directory name, e.g. kubernetes-v1.36.3-containerd-v2.4.2. */
  nodeBinaries: string;
  controlPlane: string;
  /** What runs the operator, in words: `kubectl apply -k manifests/` and what every scenario changes in it. */
  deployment: string;
  /** The objects that run pods beside the load's, in words. */
  samples: string;
  /** /proc/loadavg (1, 5, 15 minutes) before the first scenario and after the last. */
  loadBefore: string;
  loadAfter: string;
  /** Other measuring work found running on the machine at the start (pgrep), if any. */
  concurrent: string[];
}

/** The kind whose objects the load created and changed, and what its profile (hack/lib/kind-profile.ts) made of them, in words. */
export interface Workload {
  kind: string;
  sample: string;
  change: string;
  converged: string;
}

export interface LoadSettings {
  /** Changes per second the load generator sends (open loop: it does not wait for answers). */
  opsPerSecond: number;
  /** Every n-th change creates a new object; the others update the spec of an existing one. */
  createEvery: number;
  /** Objects created in each namespace before the replicas start. */
  initialObjects: number;
}

export type Phase = 'steady' | 'event' | 'after';
export const PHASES: readonly Phase[] = ['steady', 'event', 'after'];

export interface Stats {
  count: number;
  /** Nearest-rank percentiles; null when count is 0. */
  p50: number | null;
  p95: number | null;
  max: number | null;
}

export interface ReplicaTimeline {
  name: string;
  /** What the scenario uses it for, e.g. "old leader", "surge". */
  role: string;
  spawnedAt: number;
  /** GET /readyz first answered 200. */
  readyAt: number | null;
  exitedAt: number | null;
  /** "code 0", "SIGKILL", or null while it was still running when the record was made. */
  exit: string | null;
  leaderElection: boolean;
  /** "via proxy" when it reached the API server through the cuttable TCP proxy. */
  note?: string;
}

/** One replica's leadership of one lease (or, without leader election, its whole working life). */
export interface Term {
  replica: string;
  /** The lease's name (no namespace), or "(no lease)" without leader election. */
  lease: string;
  start: number;
  end: number;
  /** Why it ended: the 'stopped leading' reason, "exited (SIGKILL)", "end of scenario". */
  endReason: string;
  writes: number;
}

/** A moment in the scenario worth a line on the charts. */
export interface Marker {
  at: number;
  label: string;
}

/** An interval worth shading on the charts (API server down, a replica cut off, two replicas working). */
export interface Span {
  start: number;
  end: number;
  label: string;
}

export interface Handover {
  lease: string;
  /** What started it, e.g. "SIGTERM a". */
  cause: string;
  /** When the cause happened (the signal was sent, the proxy cut, the API server became ready again). */
  causeAt: number;
  /** The replica leading the lease at `causeAt`, if any. */
  from: string | null;
  /** When `from` stopped leading (its 'stopped leading' line or its exit). */
  fromEndedAt: number | null;
  /** The next replica to lead the lease, if any did. */
  to: string | null;
  leadAt: number | null;
  /** The new leader's first write after it started leading. */
  firstWriteAt: number | null;
  /** leadAt - causeAt. */
  handoverMs: number | null;
  /** leadAt - fromEndedAt: how long nobody led the lease. */
  leaderlessMs: number | null;
}

/** Two replicas entitled to write the same keys at the same time. */
/** The audit checker's figures for one scenario. */
export interface AuditFigures {
  terms: number;
  /** Committed writes made under a term. */
  writes: number;
  /** Writes of an earlier term that committed after a later term's on the same object (0 expected). */
  outOfTerm: number;
  /** Committed after their term had ended (harmless unless a later term also wrote the object). */
  lateCommits: number;
  /** Objects written by overlapping terms. */
  overlaps: number;
  /** Requests the server refused with 409 (a precondition, AlreadyExists). */
  conflicts: number;
  unattributed: number;
  /** The first few out-of-term writes, described. */
  examples: string[];
}

export interface Overlap {
  lease: string;
  replicas: [string, string];
  start: number;
  end: number;
  /** Keys written by both replicas within the overlap. */
  keys: number;
  /** Writes, by either replica within the overlap, to keys both wrote. */
  writes: number;
  /** Writes whose very target (the same child, the same status) the other replica also wrote within 1 s. */
  sameTargetWithin1s: number;
}

export interface WriteBins {
  binMs: number;
  /** Writes per bin, per replica; bin i covers [i × binMs, (i + 1) × binMs). */
  byReplica: Record<string, number[]>;
}

/** One create or spec update sent by the load generator. */
export interface Change {
  name: string;
  op: 'create' | 'update';
  /** metadata.generation the API server gave the object. */
  generation: number;
  sentAt: number;
  answeredAt: number;
  /** When the harness's watch first saw status.observedGeneration >= generation; null if never. */
  convergedAt: number | null;
  phase: Phase;
}

export interface FinalState {
  objects: number;
  /** Converged, as the workload's `converged` says. */
  converged: number;
  /** Names of the objects that were not converged (at most 20). */
  problems: string[];
}

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export interface ScenarioResult {
  id: string;
  number: number;
  title: string;
  /** What the scenario does, one paragraph. */
  description: string;
  namespace: string;
  /** ISO wall time of time 0. */
  t0: string;
  durationMs: number;
  leaderElection: boolean;
  shards: number;
  /** The lease names the lanes show, in order. */
  leases: string[];
  replicas: ReplicaTimeline[];
  terms: Term[];
  markers: Marker[];
  spans: Span[];
  /** The event: the interval that `phase: 'event'` refers to. */
  window: Span;
  /** When the load ran. */
  load: { start: number; end: number; failedRequests: number };
  handovers: Handover[];
  /** What the API server's audit log recorded of this scenario's writes (hack/lib/audit.ts); absent in older results. */
  audit?: AuditFigures;
  overlaps: Overlap[];
  /** Writes logged outside any term of their replica (none expected). */
  writesOutsideTerms: number;
  writes: { total: number; byReplica: Record<string, number>; bins: WriteBins };
  /** Whether this scenario is expected to show writes by two replicas in overlapping terms. */
  duplicatesExpected: boolean;
  changes: Change[];
  /** Time from each change until its status.observedGeneration caught up, by phase. */
  latency: Record<Phase, Stats>;
  /** The replicas' 'reconciled' durationMs, by phase of the line's time. */
  reconcile: Record<Phase, Stats>;
  final: FinalState;
  checks: Check[];
  /** Set when the scenario could not run to its end. */
  error?: string;
  /** What the scenarios on real nodes measure beyond the rest: the pods, and the API server's audit log of each handover. */
  cluster?: ClusterFigures;
}

/** A scenario on real nodes: replicas are the operator's containers, run by the Deployment controller and the kubelets. */
export interface ClusterFigures {
  /** How the Deployment differed from manifests/base during the scenario, each in words. */
  deployment: string[];
  /** Each operator container instance of the scenario (a replica of the lanes). */
  pods: PodInstance[];
  /** Each handover, timed by the audit log (and the operator's own log for its SIGTERM). */
  handovers: ClusterHandover[];
  /** A lost node, until its pods ran elsewhere. */
  tail?: NodeLossTail;
}

export interface PodInstance {
  /** The replica's name in the scenario: the pod name's last part, `#n` for its n-th restart in place. */
  replica: string;
  pod: string;
  node: string;
  restartCount: number;
  /** Its holderIdentity when it campaigned, as its log says. */
  identity: string | null;
}

/** Times are ms since the scenario's t0; `null` when the audit log (or the log) had no such event. */
export interface ClusterHandover {
  /** What ended the leader's term, e.g. "rollout", "SIGKILL", "node lost". */
  cause: string;
  causeAt: number;
  from: string | null;
  to: string | null;
  fromIdentity: string;
  toIdentity: string | null;
  /** Audit: the delete of the leader's pod (by the ReplicaSet controller, in a rollout). */
  podDeletedAt: number | null;
  /** The leader's own 'shutting down' line: when the kubelet's SIGTERM reached it. */
  sigtermAt: number | null;
  /** Audit: the kubelet's pods/status write that showed the leader's process ended. */
  kubeletReportAt: number | null;
  /** Audit: the leader's last committed Lease write that held it (a renewal or its acquisition). */
  lastRenewalAt: number | null;
  /** Audit: its release (holder emptied), if it released. */
  releasedAt: number | null;
  /** Audit: the successor's first committed Lease write. */
  acquiredAt: number | null;
  /** The successor logged that it took the lease before it expired, from the pod's status. */
  byEvidence: boolean;
  /** Audit: the first write of the successor's term that committed in the scenario's namespace. */
  firstWriteAt: number | null;
  /** acquiredAt − (releasedAt, or else lastRenewalAt): how long the Lease named no live holder. */
  noHolderMs: number | null;
  /** Convergence of the changes that were waiting at any time from causeAt to firstWriteAt. */
  waiting: Stats;
}

/** A lost node's pods, from the audit log: when Kubernetes gave up on them and ran them elsewhere. */
export interface NodeLossTail {
  node: string;
  lostAt: number;
  /** The node controller's status write that made the node's Ready condition Unknown. */
  unknownAt: number | null;
  /** The node.kubernetes.io/unreachable:NoExecute taint added. */
  taintedAt: number | null;
  /** Every pod that ran on the node when it was lost. */
  pods: TailPod[];
}

export interface TailPod {
  pod: string;
  /** "operator", or the workload whose pods these are (e.g. "Deployment team-page"). */
  workload: string;
  /** tolerationSeconds of its node.kubernetes.io/unreachable toleration (300 when the admission plugin added it). */
  tolerationSeconds: number | null;
  /** Audit: the taint eviction's delete. */
  evictedAt: number | null;
  replacement: string | null;
  replacementNode: string | null;
  /** Audit: the replacement's create, its binding, and the kubelet's first status write with Ready True. */
  createdAt: number | null;
  scheduledAt: number | null;
  readyAt: number | null;
}
