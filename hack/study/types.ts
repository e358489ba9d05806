/**
 * The study's results as written to results.json: everything the report is
 * rendered from (hack/study/render.ts reads nothing else). Times inside a
 * scenario are milliseconds since that scenario's `t0`, measured on the one
 * wall clock of the machine: the harness's Date.now() and the replicas' own
 * log timestamps (same host, so one clock).
 */

// 2: the kind studied is recorded (environment.workload); the load and the final state count its objects.
export const RESULTS_SCHEMA_VERSION = 2;

export interface StudyResults {
  schemaVersion: typeof RESULTS_SCHEMA_VERSION;
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
}
