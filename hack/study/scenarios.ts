/**
 * The six scenarios of the study and the harness they share. Each scenario
 * runs in a namespace of its own with fresh operator replicas (OS processes,
 * hack/lib/replica.ts) under a steady load (hack/study/load.ts), and returns
 * a ScenarioResult built by the pure functions of hack/study/analyze.ts.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import type { ControlPlane } from '../controlplane/plane.ts';
import { Replica, type LogLine } from '../lib/replica.ts';
import { TcpProxy, writeProxiedKubeconfig } from '../lib/tcp-proxy.ts';
import { shardOf } from '../../src/runtime/gate.ts';
import {
  NO_LEASE,
  attributeWrites,
  binWrites,
  changePhase,
  convergedAt,
  extractTerms,
  findOverlaps,
  handoverAfter,
  latencyByPhase,
  leaseName,
  reconcileByPhase,
  type HandoverQuery,
  type LogRecord,
} from './analyze.ts';
import { formatMs } from './charts.ts';
import { ConvergenceWatch } from '../lib/convergence-watch.ts';
import { checkAudit } from '../lib/audit.ts';
import type { KindProfile, StoredObject } from '../lib/kind-profile.ts';
import { LoadGenerator, describe } from './load.ts';
import type { AuditFigures, Change, Check, FinalState, Handover, LoadSettings, Marker, ReplicaTimeline, ScenarioResult, Span } from './types.ts';

export const LEASE = 'ha-operator';
/** Bins of the write-rate strips under the leadership lanes. */
const WRITE_BIN_MS = 1_000;
const START_TIMEOUT_MS = 60_000;

export interface Timings {
  preset: string;
  leaseDurationSeconds: number;
  renewDeadlineSeconds: number;
  retryPeriodSeconds: number;
}

export const TIMING_PRESETS: Record<string, Timings> = {
  // client-go's defaults, which are also the operator's.
  production: { preset: 'production', leaseDurationSeconds: 15, renewDeadlineSeconds: 10, retryPeriodSeconds: 2 },
  fast: { preset: 'fast', leaseDurationSeconds: 6, renewDeadlineSeconds: 4, retryPeriodSeconds: 1 },
};

export interface StudySettings {
  timings: Timings;
  load: LoadSettings;
  /** Under load before the event. */
  steadyMs: number;
  /** Under load after the event window. */
  afterMs: number;
  /** How long the API server stays down in scenario 3. */
  outageMs: number;
  /** How long the two replicas without leader election run together in scenario 5. */
  overlapMs: number;
}

export interface StudyContext {
  plane: ControlPlane;
  kubeConfig: KubeConfig;
  /** The kind whose objects the load creates and changes. */
  profile: KindProfile;
  settings: StudySettings;
  progress: (line: string) => void;
}

/** A scenario; `R` is the run it drives (hack/study/nodes.ts runs its own on real nodes). */
export interface ScenarioDefinition<R = ScenarioRun> {
  id: string;
  number: number;
  title: string;
  description: string;
  leaderElection: boolean;
  shards: number;
  duplicatesExpected: boolean;
  run: (run: R) => Promise<void>;
  /** Checks of this scenario's own expectations, from the analysed result. */
  checks?: (result: ScenarioResult, timings: Timings) => Check[];
}

interface ReplicaEntry {
  replica: Replica;
  timeline: ReplicaTimeline;
}

/** The state of one scenario while it runs: its replicas, load, watch, and what happened when. */
export class ScenarioRun {
  readonly t0 = Date.now();
  readonly namespace: string;
  readonly context: StudyContext;
  readonly definition: ScenarioDefinition<never>;
  /** Where the scenario's Leases live (the audit's terms): its own namespace, unless a subclass says otherwise. */
  readonly leaseNamespace: string;
  readonly markers: Marker[] = [];
  readonly spans: Span[] = [];
  readonly handoverQueries: HandoverQuery[] = [];
  readonly checks: Check[] = [];
  readonly load: LoadGenerator;
  readonly watch: ConvergenceWatch;
  window: Span | undefined;
  loadStart: number | undefined;
  loadEnd: number | undefined;
  apiServerDown = false;
  private readonly entries = new Map<string, ReplicaEntry>();
  private readonly proxies: TcpProxy[] = [];

  constructor(context: StudyContext, definition: ScenarioDefinition<never>, leaseNamespace?: string) {
    this.context = context;
    this.definition = definition;
    this.namespace = `study-${definition.number}-${definition.id}-${randomBytes(2).toString('hex')}`;
    this.leaseNamespace = leaseNamespace ?? this.namespace;
    const now = (): number => this.now();
    const { kubeConfig, profile } = context;
    this.load = new LoadGenerator({ kubeConfig, namespace: this.namespace, profile, settings: context.settings.load, now });
    this.watch = new ConvergenceWatch({ kubeConfig, namespace: this.namespace, profile, now });
  }

  get settings(): StudySettings {
    return this.context.settings;
  }

  /** Milliseconds since t0. */
  now(): number {
    return Date.now() - this.t0;
  }

  mark(label: string): number {
    const at = this.now();
    this.markers.push({ at, label });
    this.progress(label);
    return at;
  }

  progress(text: string): void {
    this.context.progress(`[${this.definition.number} ${this.definition.id} +${(this.now() / 1000).toFixed(1)}s] ${text}`);
  }

  /** The namespace and its initial objects, and the watch on them. */
  async prepare(): Promise<void> {
    await this.context.kubeConfig.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: this.namespace } } });
    await this.load.createInitial();
    await this.watch.start();
  }

  /** Starts a replica, waits for its 'running' line and /readyz, and records its timeline. */
  async startReplica(name: string, role: string, options: { env?: Record<string, string>; kubeconfig?: string; note?: string } = {}): Promise<Replica> {
    const { timings } = this.settings;
    const leaderElection = this.definition.leaderElection;
    const timeline: ReplicaTimeline = {
      name, role, spawnedAt: this.now(), readyAt: null, exitedAt: null, exit: null, leaderElection, ...(options.note ? { note: options.note } : {}),
    };
    const replica = await Replica.start({
      name,
      kubeconfig: options.kubeconfig ?? this.context.plane.kubeconfigPath,
      leaseNamespace: this.namespace,
      watchNamespace: this.namespace,
      env: {
        LOG_LEVEL: 'debug',
        LEASE_DURATION_SECONDS: String(timings.leaseDurationSeconds),
        RENEW_DEADLINE_SECONDS: String(timings.renewDeadlineSeconds),
        RETRY_PERIOD_SECONDS: String(timings.retryPeriodSeconds),
        LEADER_ELECTION: String(leaderElection),
        SHARDS: String(this.definition.shards),
        ...options.env,
      },
    });
    this.entries.set(name, { replica, timeline });
    void replica.exited.then((exit) => {
      timeline.exitedAt = exit.at - this.t0;
      timeline.exit = exit.signal ?? `code ${exit.code}`;
    });
    this.progress(`started replica ${name} (${role}), pid ${replica.pid}`);
    const port = await replica.running(START_TIMEOUT_MS);
    await this.until(async () => readyz(port), START_TIMEOUT_MS, `${name} ready (GET /readyz)`);
    timeline.readyAt = this.now();
    return replica;
  }

  replica(name: string): Replica {
    const entry = this.entries.get(name);
    if (!entry) throw new Error(`no replica ${name}`);
    return entry.replica;
  }

  /** A kubeconfig that reaches the API server through a new cuttable proxy. */
  async proxiedKubeconfig(name: string): Promise<{ proxy: TcpProxy; kubeconfig: string }> {
    const proxy = await TcpProxy.start({ port: this.context.plane.apiServerPort });
    this.proxies.push(proxy);
    const kubeconfig = await writeProxiedKubeconfig(this.context.plane.kubeconfigPath, join(this.context.plane.dir, `${this.namespace}-${name}.kubeconfig`), proxy.port);
    return { proxy, kubeconfig };
  }

  /** Time of a replica's log line, ms since t0 (its own timestamp: the same wall clock). */
  timeOf(line: LogLine): number {
    return (line.loggedAt ?? line.receivedAt) - this.t0;
  }

  /** The leases `name` leads now, by its log. */
  leadsNow(name: string): string[] {
    const entry = this.entries.get(name);
    if (!entry || !entry.replica.isRunning) return [];
    const leading = new Set<string>();
    for (const line of entry.replica.lines) {
      if (line.message === 'started leading') leading.add(leaseName(line.json?.lease));
      if (line.message === 'stopped leading') leading.delete(leaseName(line.json?.lease));
    }
    return [...leading].sort();
  }

  /** The running replica that leads `lease` now, by the logs. */
  leaderOf(lease = LEASE): string | undefined {
    return [...this.entries.keys()].find((name) => this.leadsNow(name).includes(lease));
  }

  /** Resolves with the replica that started leading `lease` at or after `afterAt`, once one has. */
  async newLeader(lease: string, afterAt: number, timeoutMs: number): Promise<string> {
    let found: string | undefined;
    await this.until(() => {
      for (const [name, { replica }] of this.entries) {
        const line = replica.lines.find((l) => l.message === 'started leading' && leaseName(l.json?.lease) === lease && this.timeOf(l) >= afterAt);
        if (line && this.leadsNow(name).includes(lease)) found = name;
      }
      return found !== undefined;
    }, timeoutMs, `a replica leading ${lease} after +${(afterAt / 1000).toFixed(1)} s`);
    return found!;
  }

  /** Time of `name`'s first 'started leading' on `lease` at or after `afterAt`. */
  timeOfLead(name: string, lease: string, afterAt: number): number {
    const line = this.replica(name).lines.find((l) => l.message === 'started leading' && leaseName(l.json?.lease) === lease && this.timeOf(l) >= afterAt);
    if (!line) throw new Error(`${name} never started leading ${lease} after +${afterAt} ms`);
    return this.timeOf(line);
  }

  signal(name: string, signal: 'SIGTERM' | 'SIGKILL'): number {
    const at = this.mark(`${signal} ${name}`);
    if (signal === 'SIGTERM') this.replica(name).sigterm();
    else this.replica(name).sigkill();
    return at;
  }

  async exited(name: string): Promise<number> {
    const exit = await this.replica(name).exited;
    return exit.at - this.t0;
  }

  startLoad(): void {
    this.load.start();
    this.loadStart = this.mark('load started');
  }

  async steady(): Promise<void> {
    this.startLoad();
    await sleep(this.settings.steadyMs);
  }

  /** Polls `predicate` every 50 ms until it holds. */
  async until(predicate: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await predicate())) {
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await sleep(50);
    }
  }

  /** Stops the load, waits for convergence, reads the final state, stops every replica and proxy. */
  async finish(): Promise<FinalState> {
    if (this.loadStart !== undefined && this.loadEnd === undefined) {
      await this.load.stop();
      this.loadEnd = this.mark('load stopped');
    }
    if (this.apiServerDown) {
      await this.context.plane.startApiServer();
      this.apiServerDown = false;
    }
    for (const proxy of this.proxies) proxy.restore();
    try {
      await this.watch.untilConverged(90_000);
      // The watch cache may trail a fresh read: wait until it has seen the status for the
      // generation each object has now, so the final read below is not a race.
      await this.watch.untilConverged(30_000, { atLeast: await this.currentGenerations() });
    } catch (error) {
      this.progress(describe(error));
    }
    const final = await this.finalState();
    await Promise.all([...this.entries.values()].map(({ replica }) => replica.stop(20_000)));
    for (const proxy of this.proxies) await proxy.close();
    await this.watch.stop();
    return final;
  }

  private async listObjects(): Promise<StoredObject[]> {
    const { group, version, plural } = this.context.profile.resource;
    const list = (await this.context.kubeConfig.makeApiClient(CustomObjectsApi).listNamespacedCustomObject({
      group, version, namespace: this.namespace, plural,
    })) as { items: StoredObject[] };
    return list.items;
  }

  private async currentGenerations(): Promise<Map<string, number>> {
    return new Map((await this.listObjects()).map((o) => [o.metadata.name, o.metadata.generation]));
  }

  private async finalState(): Promise<FinalState> {
    const objects = await this.listObjects();
    const converged = objects.filter((o) => this.context.profile.converged(o));
    const problems = objects
      .filter((o) => !converged.includes(o))
      .map((o) => o.metadata.name)
      .sort()
      .slice(0, 20);
    return { objects: objects.length, converged: converged.length, problems };
  }

  /** The lease that covers `key` ('namespace/name') in this scenario. */
  leaseOf(key: string): string {
    if (!this.definition.leaderElection) return NO_LEASE;
    return this.definition.shards > 1 ? `${LEASE}-${shardOf(key, this.definition.shards)}` : LEASE;
  }

  /** What the API server recorded of this scenario's writes; call after finish() (the replicas have exited). */
  async audit(): Promise<AuditFigures | undefined> {
    const path = this.context.plane.auditLogPath;
    if (!path) return undefined;
    const report = await checkAudit(path, { namespaces: [this.namespace], leaseNamespace: this.leaseNamespace });
    return {
      terms: report.terms.length, writes: report.writes.length, outOfTerm: report.violations.length, lateCommits: report.lateCommits.length,
      overlaps: report.overlaps.length, conflicts: report.conflicts, unattributed: report.unattributed.length, examples: report.violations.slice(0, 3),
    };
  }

  /** The timelines of the scenario's replicas, in the order the lanes show them. */
  protected replicaTimelines(): ReplicaTimeline[] {
    return [...this.entries.values()].map((e) => e.timeline);
  }

  /** The log lines the analysis uses, of every replica, their times relative to t0. */
  protected logRecords(): LogRecord[] {
    return [...this.entries.values()].flatMap(({ replica }) => logRecordsOf(replica.name, replica.lines, (line) => this.timeOf(line)));
  }

  /** Everything recorded, analysed. */
  result(final: FinalState, error: string | undefined, audit?: AuditFigures): ScenarioResult {
    const definition = this.definition;
    const durationMs = this.now();
    const timelines = this.replicaTimelines();
    const records = this.logRecords();
    const leaseOf = (key: string): string => this.leaseOf(key);
    const writes = records.filter((r) => r.message === 'write');
    const { terms, outside } = attributeWrites(extractTerms(records, timelines, durationMs), writes, leaseOf);
    const overlaps = findOverlaps(terms, writes, leaseOf);
    const handovers = this.handoverQueries.map((q) => handoverAfter(terms, writes, leaseOf, q));
    const window = this.window ?? { start: durationMs, end: durationMs, label: 'not reached' };
    const changes: Change[] = this.load.changes.map((c) => {
      const converged = convergedAt(c, this.watch.observations.get(c.name) ?? []);
      return { ...c, convergedAt: converged, phase: changePhase(c.sentAt, converged, window) };
    }).sort((a, b) => a.sentAt - b.sentAt || (a.name < b.name ? -1 : 1));
    const byReplica: Record<string, number> = {};
    for (const t of timelines) byReplica[t.name] = writes.filter((w) => w.replica === t.name).length;
    const leases = !definition.leaderElection
      ? [NO_LEASE]
      : definition.shards > 1 ? Array.from({ length: definition.shards }, (_, i) => `${LEASE}-${i}`) : [LEASE];

    const scenario: ScenarioResult = {
      id: definition.id,
      number: definition.number,
      title: definition.title,
      description: definition.description,
      namespace: this.namespace,
      t0: new Date(this.t0).toISOString(),
      durationMs,
      leaderElection: definition.leaderElection,
      shards: definition.shards,
      leases,
      replicas: timelines,
      terms,
      markers: this.markers,
      spans: this.spans,
      window,
      load: { start: this.loadStart ?? 0, end: this.loadEnd ?? durationMs, failedRequests: this.load.failures.length + this.load.skipped },
      handovers,
      ...(audit ? { audit } : {}),
      overlaps,
      writesOutsideTerms: definition.leaderElection ? outside.length : 0,
      writes: { total: writes.length, byReplica, bins: binWrites(writes, timelines.map((t) => t.name), durationMs, WRITE_BIN_MS) },
      duplicatesExpected: definition.duplicatesExpected,
      changes,
      latency: latencyByPhase(changes),
      reconcile: reconcileByPhase(records, window),
      final,
      checks: [],
      ...(error ? { error } : {}),
    };
    scenario.checks = [...commonChecks(scenario), ...(definition.checks?.(scenario, this.settings.timings) ?? []), ...this.checks];
    if (error) scenario.checks.unshift({ name: 'the scenario ran to its end', ok: false, detail: error });
    return scenario;
  }
}

const RECORDED = new Set(['started leading', 'stopped leading', 'write', 'reconciled', 'caches synced', 'released lease', 'shutting down']);

/** The lines of one replica that the analysis uses, as records, timed by `timeOf`. */
export function logRecordsOf<L extends Pick<LogLine, 'message' | 'json'>>(replica: string, lines: readonly L[], timeOf: (line: L) => number): LogRecord[] {
  const records: LogRecord[] = [];
  for (const line of lines) {
    if (!line.message || !RECORDED.has(line.message)) continue;
    const json = line.json ?? {};
    records.push({
      replica,
      at: timeOf(line),
      message: line.message,
      ...(json.lease !== undefined ? { lease: leaseName(json.lease) } : {}),
      ...(typeof json.key === 'string' ? { key: json.key } : {}),
      ...(typeof json.write === 'string' ? { write: json.write } : {}),
      ...(typeof json.reason === 'string' ? { reason: json.reason } : {}),
      ...(typeof json.durationMs === 'number' ? { durationMs: json.durationMs } : {}),
    });
  }
  return records;
}

async function readyz(port: number): Promise<boolean> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1_000) });
    await response.body?.cancel();
    return response.status === 200;
  } catch {
    return false;
  }
}

/** The checks every scenario makes: duplicate writes as expected, nothing lost, everything converged. */
function commonChecks(s: ScenarioResult): Check[] {
  const checks: Check[] = [];
  const duplicateWrites = s.overlaps.reduce((sum, o) => sum + o.writes, 0);
  if (s.duplicatesExpected) {
    checks.push({
      name: 'writes by two replicas to the same keys in overlapping terms (expected without the lease)',
      ok: duplicateWrites > 0,
      detail: `${duplicateWrites} writes to ${s.overlaps.reduce((sum, o) => sum + o.keys, 0)} keys`,
    });
  } else {
    if (s.audit) {
      checks.push({
        name: 'the API server\'s audit log: no write of an earlier term committed after a later term\'s write on the same object',
        ok: s.audit.outOfTerm === 0 && s.audit.unattributed === 0 && s.audit.writes > 0,
        detail: `${s.audit.outOfTerm} out of term of ${s.audit.writes} committed writes in ${s.audit.terms} terms; ${s.audit.lateCommits} committed after their term ended; `
          + `${s.audit.conflicts} refused with 409; ${s.audit.unattributed} unattributed${s.audit.examples.length ? `: ${s.audit.examples.join('; ')}` : ''}`,
      });
    }
    checks.push({
      name: 'no two replicas led the same lease at the same time',
      ok: s.overlaps.length === 0,
      detail: s.overlaps.length === 0 ? 'no overlapping terms' : s.overlaps.map((o) => `${o.replicas.join(' & ')} on ${o.lease} for ${o.end - o.start} ms`).join('; '),
    });
    checks.push({ name: 'no writes by two replicas in overlapping terms (their own logs, a cross-check)', ok: duplicateWrites === 0, detail: `${duplicateWrites} writes` });
    checks.push({ name: 'every write inside a leadership term of its replica (their own logs, a cross-check)', ok: s.writesOutsideTerms === 0, detail: `${s.writesOutsideTerms} writes outside` });
  }
  const lost = s.changes.filter((c) => c.convergedAt === null);
  checks.push({
    name: 'no change lost: the watch saw every change\'s generation observed',
    ok: lost.length === 0,
    detail: lost.length === 0 ? `${s.changes.length} of ${s.changes.length} changes` : `${lost.length} never observed: ${lost.slice(0, 5).map((c) => `${c.name}@${c.generation}`).join(', ')}`,
  });
  checks.push({
    name: 'every object converged at the end',
    ok: s.final.objects > 0 && s.final.converged === s.final.objects,
    detail: `${s.final.converged} of ${s.final.objects} converged${s.final.problems.length ? `; not: ${s.final.problems.join(', ')}` : ''}`,
  });
  return checks;
}


/** Starts `name` and waits until it leads (the first replica of a scenario). */
async function startLeader(run: ScenarioRun, name: string, role: string, options: Parameters<ScenarioRun['startReplica']>[2] = {}): Promise<void> {
  const from = run.now();
  await run.startReplica(name, role, options);
  await run.newLeader(LEASE, from, START_TIMEOUT_MS);
}

/** The operator's warm pair, a leading and b standing by, converged and under load for the steady period. */
async function pairUnderLoad(run: ScenarioRun, options: { aKubeconfig?: string; aNote?: string } = {}): Promise<void> {
  await run.prepare();
  await startLeader(run, 'a', 'leader', { ...(options.aKubeconfig ? { kubeconfig: options.aKubeconfig } : {}), ...(options.aNote ? { note: options.aNote } : {}) });
  await run.startReplica('b', 'standby');
  await run.watch.untilConverged(START_TIMEOUT_MS);
  await run.steady();
}

function leaseMs(run: ScenarioRun): number {
  return run.settings.timings.leaseDurationSeconds * 1000;
}

export const SCENARIOS: ScenarioDefinition[] = [
  {
    id: 'rolling-update',
    number: 1,
    title: 'Rolling update with surge',
    description: 'Two replicas (a leads, b stands by) are replaced as a Deployment with maxSurge 1 and maxUnavailable 0 does it: '
      + 'start a new replica, wait until GET /readyz answers 200, SIGTERM an old one — the leader first — and repeat.',
    leaderElection: true,
    shards: 1,
    duplicatesExpected: false,
    run: async (run) => {
      await pairUnderLoad(run);
      const old = ['a', 'b'];
      const start = run.now();
      let end = start;
      for (const [index, name] of ['c', 'd'].entries()) {
        await run.startReplica(name, `surge ${index + 1}`);
        const leader = run.leaderOf();
        // Terminate the old leader first; then the other old replica.
        const victim = old.find((n) => n === leader) ?? old[0]!;
        old.splice(old.indexOf(victim), 1);
        const at = run.signal(victim, 'SIGTERM');
        if (victim === leader) run.handoverQueries.push({ lease: LEASE, cause: `SIGTERM ${victim}`, causeAt: at });
        end = await run.exited(victim);
        if (victim === leader) end = Math.max(end, await leaderAfter(run, at));
      }
      run.window = { start, end, label: 'rolling update' };
      await sleep(run.settings.afterMs);
    },
    checks: (s, t) => handoverChecks(s, 'a standby led sooner than a lease expiry would allow', (h) => h.handoverMs !== null && h.handoverMs < t.leaseDurationSeconds * 1000),
  },
  {
    id: 'crash',
    number: 2,
    title: 'Crash of the leader',
    description: 'Two replicas (a leads, b stands by); the leader is killed with SIGKILL: it releases nothing, and the standby may take the lease '
      + 'only once it has seen no change of it for a lease duration.',
    leaderElection: true,
    shards: 1,
    duplicatesExpected: false,
    run: async (run) => {
      await pairUnderLoad(run);
      const at = run.signal('a', 'SIGKILL');
      run.handoverQueries.push({ lease: LEASE, cause: 'SIGKILL a', causeAt: at });
      const end = await leaderAfter(run, at);
      run.window = { start: at, end, label: 'crash to new leader' };
      await sleep(run.settings.afterMs);
    },
    checks: (s, t) => {
      const lease = t.leaseDurationSeconds * 1000;
      const retry = t.retryPeriodSeconds * 1000;
      // The last renewal was sent at most a retry period before the kill; the standby then waits a lease duration, plus one jittered poll at worst.
      const [low, high] = [lease - retry - 500, lease + retry * 1.2 + 1_000];
      return handoverChecks(s, `the standby led once the lease expired: between ${formatMs(low)} and ${formatMs(high)} after the kill`,
        (h) => h.handoverMs !== null && h.handoverMs >= low && h.handoverMs <= high);
    },
  },
  {
    id: 'api-outage',
    number: 3,
    title: 'API server outage',
    description: 'Two replicas (a leads, b stands by); kube-apiserver is killed (SIGKILL, etcd keeps the data) and started again on the same port '
      + 'about 20 s later. Nobody can renew, so the leader stops leading at its renew deadline; when the API server is back, whoever acquires first leads.',
    leaderElection: true,
    shards: 1,
    duplicatesExpected: false,
    run: async (run) => {
      await pairUnderLoad(run);
      const killedAt = run.mark('API server killed');
      run.apiServerDown = true;
      await run.context.plane.killApiServer();
      await sleep(run.settings.outageMs);
      // Measured from the restart: the API server answers some requests before its /readyz says ready.
      const restartedAt = run.mark('API server restarted');
      await run.context.plane.startApiServer();
      run.apiServerDown = false;
      const readyAt = run.mark('API server ready');
      run.spans.push({ start: killedAt, end: restartedAt, label: 'API server down' });
      run.handoverQueries.push({ lease: LEASE, cause: 'API server restarted', causeAt: restartedAt, fromAt: killedAt });
      // A replica may acquire a moment before this process sees /readyz answer.
      const end = await leaderAfter(run, killedAt);
      run.window = { start: killedAt, end: Math.max(end, readyAt), label: 'outage to new leader' };
      await sleep(run.settings.afterMs);
      run.checks.push(stoppedWithinRenewDeadline(run, 'a', killedAt, 'the kill'));
    },
    checks: (s, t) => handoverChecks(s, `a replica led again within a lease duration (${formatMs(t.leaseDurationSeconds * 1000)}) of the restart`,
      (h) => h.handoverMs !== null && h.handoverMs <= t.leaseDurationSeconds * 1000),
  },
  {
    id: 'leader-cut-off',
    number: 4,
    title: 'Leader cut off from the API server',
    description: 'Replica a reaches the API server only through a TCP proxy; b directly. With a leading, the proxy is cut (blackhole: requests hang). '
      + 'a must stop writing at its renew deadline, before b may consider the lease expired; the proxy is restored half-way through the period after.',
    leaderElection: true,
    shards: 1,
    duplicatesExpected: false,
    run: async (run) => {
      const { proxy, kubeconfig } = await run.proxiedKubeconfig('a');
      await pairUnderLoad(run, { aKubeconfig: kubeconfig, aNote: 'via proxy' });
      const cutAt = run.mark('proxy of a cut');
      proxy.cut('blackhole');
      run.handoverQueries.push({ lease: LEASE, cause: 'a cut off', causeAt: cutAt });
      const end = await leaderAfter(run, cutAt);
      run.window = { start: cutAt, end, label: 'cut to new leader' };
      await sleep(run.settings.afterMs / 2);
      const restoredAt = run.mark('proxy of a restored');
      proxy.restore();
      run.spans.push({ start: cutAt, end: restoredAt, label: 'a cut off' });
      await sleep(run.settings.afterMs / 2);
      run.checks.push(stoppedWithinRenewDeadline(run, 'a', cutAt, 'the cut'));
      const restarted = run.replica('a').lines.filter((l) => l.message === 'started leading' && run.timeOf(l) > cutAt).length;
      run.checks.push({ name: 'after the partition healed, a stayed a standby', ok: restarted === 0, detail: `${restarted} new terms of a` });
    },
    checks: (s) => handoverChecks(s, 'the standby led only after the cut-off leader had stopped', (h) => h.leaderlessMs !== null && h.leaderlessMs > 0),
  },
  {
    id: 'no-leader-election',
    number: 5,
    title: 'Without leader election, during a surge rollout',
    description: 'LEADER_ELECTION=false: a single replica a, as the single-replica overlay runs it, is replaced with surge: the new replica b starts, '
      + 'becomes ready, and both work for a while before a gets SIGTERM. Both reconcile every change meanwhile: the duplicate work the lease prevents.',
    leaderElection: false,
    shards: 1,
    duplicatesExpected: true,
    run: async (run) => {
      await run.prepare();
      await run.startReplica('a', 'old');
      await run.watch.untilConverged(START_TIMEOUT_MS);
      await run.steady();
      await run.startReplica('b', 'surge');
      const readyAt = run.now();
      await sleep(run.settings.overlapMs);
      run.signal('a', 'SIGTERM');
      const exitedAt = await run.exited('a');
      run.window = { start: readyAt, end: exitedAt, label: 'old and new together' };
      await sleep(run.settings.afterMs);
    },
  },
  {
    id: 'shards',
    number: 6,
    title: 'Shards: one of three replicas killed',
    description: 'SHARDS=6 and three replicas: each holds its fair share of two shard leases. Replica c is killed with SIGKILL; '
      + 'its membership lease stops changing, the share of a and b grows to three, and they take c\'s shards as those leases expire.',
    leaderElection: true,
    shards: 6,
    duplicatesExpected: false,
    run: async (run) => {
      await run.prepare();
      for (const name of ['a', 'b', 'c']) await run.startReplica(name, 'member');
      await run.until(() => ['a', 'b', 'c'].every((n) => run.leadsNow(n).length === 2), 120_000, 'two shards on each replica');
      run.mark('balanced: 2 shards each');
      await run.watch.untilConverged(START_TIMEOUT_MS);
      await run.steady();
      const before = new Map(['a', 'b'].map((n) => [n, run.leadsNow(n)]));
      const victimShards = run.leadsNow('c');
      const at = run.signal('c', 'SIGKILL');
      for (const lease of victimShards) run.handoverQueries.push({ lease, cause: 'SIGKILL c', causeAt: at });
      let end = at;
      for (const lease of victimShards) end = Math.max(end, run.timeOfLead(await run.newLeader(lease, at, leaseMs(run) * 4), lease, at));
      run.window = { start: at, end, label: 'crash to all shards led' };
      await sleep(run.settings.afterMs);
      const moved = [...before].filter(([n, leases]) => leases.some((l) => !run.leadsNow(n).includes(l)));
      run.checks.push({
        name: 'the survivors kept their own shards (a crash moves only what it must)',
        ok: moved.length === 0,
        detail: moved.length === 0 ? `a: ${before.get('a')!.join(', ')}; b: ${before.get('b')!.join(', ')}` : `moved from ${moved.map(([n]) => n).join(', ')}`,
      });
    },
    checks: (s, t) => handoverChecks(s, `taken over within two lease durations (${formatMs(t.leaseDurationSeconds * 2000)})`,
      (h) => h.handoverMs !== null && h.handoverMs <= t.leaseDurationSeconds * 2000),
  },
];

/**
 * Runs one scenario to its result: `body` (the scenario's own steps), then
 * the clean-up and the analysis, and `more` on the result (figures and
 * checks of its own); a step that throws is recorded in the result, not
 * thrown.
 */
export async function runScenario<R extends ScenarioRun>(run: R, body: (run: R) => Promise<void>, more?: (scenario: ScenarioResult) => Promise<void>): Promise<ScenarioResult> {
  run.progress(`${run.definition.title} (namespace ${run.namespace})`);
  let error: string | undefined;
  try {
    await body(run);
  } catch (e) {
    error = e instanceof Error ? e.message : String(e);
    run.progress(`FAILED: ${error}`);
  }
  try {
    const final = await run.finish();
    const scenario = run.result(final, error, await run.audit());
    await more?.(scenario);
    return scenario;
  } catch (e) {
    // Even the clean-up failed: record what there is.
    const message = e instanceof Error ? e.message : String(e);
    return run.result({ objects: 0, converged: 0, problems: [] }, error ? `${error}; then: ${message}` : message);
  }
}

/** Prints each check of `scenario`, as the run's progress. */
export function reportChecks(run: ScenarioRun, scenario: ScenarioResult): void {
  for (const check of scenario.checks) run.progress(`${check.ok ? 'pass' : 'FAIL'}: ${check.name} (${check.detail})`);
}

/** Whether `name` logged 'stopped leading' within its renew deadline (+ 1 s for timers and logging on a loaded machine) of `at`. */
function stoppedWithinRenewDeadline(run: ScenarioRun, name: string, at: number, what: string): Check {
  const renewDeadlineMs = run.settings.timings.renewDeadlineSeconds * 1000;
  const stopped = run.replica(name).lines.find((l) => l.message === 'stopped leading' && run.timeOf(l) >= at);
  const after = stopped ? run.timeOf(stopped) - at : undefined;
  return {
    name: `the leader ${name} stopped leading within its renew deadline (${formatMs(renewDeadlineMs)}, + 1 s for scheduling) of ${what}`,
    ok: after !== undefined && after <= renewDeadlineMs + 1_000,
    detail: after === undefined ? 'it never stopped' : `after ${formatMs(after)}: ${typeof stopped!.json?.reason === 'string' ? stopped!.json.reason : ''}`,
  };
}

/** One check per handover of the scenario. */
function handoverChecks(s: ScenarioResult, what: string, ok: (h: Handover) => boolean): Check[] {
  if (s.handovers.length === 0) return [{ name: `a handover: ${what}`, ok: false, detail: 'no handover recorded' }];
  return s.handovers.map((h) => ({
    name: `${h.cause}${s.shards > 1 ? ` (${h.lease})` : ''}: ${what}`,
    ok: ok(h),
    detail: h.to === null ? 'nobody led afterwards' : `${h.to} led after ${formatMs(h.handoverMs)}${h.leaderlessMs !== null ? `, ${formatMs(h.leaderlessMs)} after ${h.from ?? '?'} stopped` : ''}`,
  }));
}

/** Waits for a replica to lead the (single) lease after `at`; returns the time of its 'started leading'. */
async function leaderAfter(run: ScenarioRun, at: number): Promise<number> {
  const name = await run.newLeader(LEASE, at, leaseMs(run) * 4 + run.settings.outageMs);
  return run.timeOfLead(name, LEASE, at);
}
