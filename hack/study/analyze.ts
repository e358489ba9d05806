/**
 * Pure analysis of what a scenario recorded: leadership terms from the
 * replicas' log lines, writes attributed to terms, overlapping terms and the
 * writes made in them, handovers, convergence latency and statistics. No I/O,
 * no clock: test/study/analyze.test.ts drives it with fixtures.
 */
import type { Change, Handover, Overlap, Phase, ReplicaTimeline, Span, Stats, Term, WriteBins } from './types.ts';
import type { Observation } from '../lib/convergence-watch.ts';

/** The lease of the terms of replicas that run without leader election. */
export const NO_LEASE = '(no lease)';

/** One log line of a replica that the analysis uses, its time already relative to the scenario's t0. */
export interface LogRecord {
  replica: string;
  at: number;
  message: string;
  /** The `lease` field without its namespace ('started leading', 'stopped leading'). */
  lease?: string;
  /** The `key` field ('write', 'reconciled'). */
  key?: string;
  /** The `write` field: what was written ("apply ConfigMap ns/name"). */
  write?: string;
  reason?: string;
  durationMs?: number;
}

/** "namespace/name" → "name"; anything else as a string. */
export function leaseName(field: unknown): string {
  const text = typeof field === 'string' ? field : '';
  const slash = text.lastIndexOf('/');
  return slash === -1 ? text : text.slice(slash + 1);
}

/** Nearest-rank percentile of ascending `sorted` (q in (0, 1]). */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) throw new RangeError('percentile of no values');
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export function stats(values: readonly number[]): Stats {
  if (values.length === 0) return { count: 0, p50: null, p95: null, max: null };
  const sorted = [...values].sort((a, b) => a - b);
  return { count: sorted.length, p50: percentile(sorted, 0.5), p95: percentile(sorted, 0.95), max: sorted.at(-1)! };
}

/**
 * Leadership terms from the log lines of each replica, in the order each
 * replica logged them: 'started leading' opens a term on its lease, 'stopped
 * leading' closes it; a term still open is closed by the replica's exit or
 * by `end`. Without leader election each replica has one term on NO_LEASE,
 * from 'caches synced' (when its workers start) to its exit.
 */
export function extractTerms(records: readonly LogRecord[], replicas: readonly ReplicaTimeline[], end: number): Term[] {
  const terms: Term[] = [];
  for (const replica of replicas) {
    const own = records.filter((r) => r.replica === replica.name);
    const closeAt = replica.exitedAt ?? end;
    const closeReason = replica.exitedAt === null ? 'end of scenario' : `exited (${replica.exit ?? 'unknown'})`;
    if (!replica.leaderElection) {
      const synced = own.find((r) => r.message === 'caches synced');
      if (synced) terms.push({ replica: replica.name, lease: NO_LEASE, start: synced.at, end: closeAt, endReason: closeReason, writes: 0 });
      continue;
    }
    const open = new Map<string, number>();
    for (const record of own) {
      if (record.lease === undefined) continue;
      if (record.message === 'started leading' && !open.has(record.lease)) {
        open.set(record.lease, record.at);
      } else if (record.message === 'stopped leading') {
        const start = open.get(record.lease);
        if (start === undefined) continue;
        open.delete(record.lease);
        terms.push({ replica: replica.name, lease: record.lease, start, end: record.at, endReason: record.reason ?? 'stopped', writes: 0 });
      }
    }
    for (const [lease, start] of open) terms.push({ replica: replica.name, lease, start, end: closeAt, endReason: closeReason, writes: 0 });
  }
  return terms.sort(byStartThenReplica);
}

function byStartThenReplica(a: { start: number; replica: string; lease: string }, b: { start: number; replica: string; lease: string }): number {
  return a.start - b.start || compareText(a.replica, b.replica) || compareText(a.lease, b.lease);
}

export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Counts each write into the term of its replica that covers the write's
 * key (by `leaseOf`) at the write's time (ends inclusive: the gate closes
 * when the term ends). Returns new terms and the writes no term covers.
 */
export function attributeWrites(
  terms: readonly Term[],
  writes: readonly LogRecord[],
  leaseOf: (key: string) => string,
): { terms: Term[]; outside: LogRecord[] } {
  const counted = terms.map((t) => ({ ...t, writes: 0 }));
  const outside: LogRecord[] = [];
  for (const write of writes) {
    const lease = leaseOf(write.key ?? '');
    const term = counted.find((t) => t.replica === write.replica && t.lease === lease && t.start <= write.at && write.at <= t.end);
    if (term) term.writes++;
    else outside.push(write);
  }
  return { terms: counted, outside };
}

/**
 * Every pair of terms of two replicas on the same lease that overlap in
 * time, with the writes both made to the same keys within the overlap.
 */
export function findOverlaps(terms: readonly Term[], writes: readonly LogRecord[], leaseOf: (key: string) => string): Overlap[] {
  const overlaps: Overlap[] = [];
  for (let i = 0; i < terms.length; i++) {
    for (let j = i + 1; j < terms.length; j++) {
      const a = terms[i]!;
      const b = terms[j]!;
      if (a.lease !== b.lease || a.replica === b.replica) continue;
      const start = Math.max(a.start, b.start);
      const end = Math.min(a.end, b.end);
      if (!(start < end)) continue;
      const [first, second] = compareText(a.replica, b.replica) <= 0 ? [a, b] : [b, a];
      const within = (replica: string): LogRecord[] =>
        writes.filter((w) => w.replica === replica && w.at >= start && w.at <= end && leaseOf(w.key ?? '') === a.lease);
      const byFirst = within(first.replica);
      const bySecond = within(second.replica);
      const secondKeys = new Set(bySecond.map((w) => w.key));
      const both = new Set(byFirst.map((w) => w.key).filter((k) => secondKeys.has(k)));
      const shared = [...byFirst, ...bySecond].filter((w) => both.has(w.key));
      overlaps.push({
        lease: a.lease,
        replicas: [first.replica, second.replica],
        start,
        end,
        keys: both.size,
        writes: shared.length,
        sameTargetWithin1s: countSameTarget(byFirst, bySecond, 1_000) + countSameTarget(bySecond, byFirst, 1_000),
      });
    }
  }
  return overlaps.sort((x, y) => x.start - y.start || compareText(x.lease, y.lease));
}

/** Writes of `mine` whose target `theirs` also wrote within `withinMs`. */
function countSameTarget(mine: readonly LogRecord[], theirs: readonly LogRecord[], withinMs: number): number {
  const times = new Map<string, number[]>();
  for (const w of theirs) {
    const target = w.write ?? w.key ?? '';
    const list = times.get(target) ?? [];
    list.push(w.at);
    times.set(target, list);
  }
  return mine.filter((w) => (times.get(w.write ?? w.key ?? '') ?? []).some((at) => Math.abs(at - w.at) <= withinMs)).length;
}

export interface HandoverQuery {
  lease: string;
  cause: string;
  /** When the cause happened; handoverMs is measured from here. */
  causeAt: number;
  /** Whose leadership is being replaced: the term active at this time (default causeAt). */
  fromAt?: number;
}

/**
 * The handover of `lease` around an event: who led it at `fromAt`, when that
 * term ended, and the next term on the lease to start after it (or after
 * `fromAt`, when nobody led then), with its first write.
 */
export function handoverAfter(terms: readonly Term[], writes: readonly LogRecord[], leaseOf: (key: string) => string, query: HandoverQuery): Handover {
  const fromAt = query.fromAt ?? query.causeAt;
  const onLease = terms.filter((t) => t.lease === query.lease).sort(byStartThenReplica);
  const from = onLease.find((t) => t.start <= fromAt && fromAt <= t.end);
  const next = onLease.find((t) => t !== from && t.start >= fromAt && (!from || t.start >= from.start));
  const firstWrite = next
    ? writes.filter((w) => w.replica === next.replica && w.at >= next.start && leaseOf(w.key ?? '') === query.lease).sort((x, y) => x.at - y.at)[0]
    : undefined;
  return {
    lease: query.lease,
    cause: query.cause,
    causeAt: query.causeAt,
    from: from?.replica ?? null,
    fromEndedAt: from ? from.end : null,
    to: next?.replica ?? null,
    leadAt: next?.start ?? null,
    firstWriteAt: firstWrite?.at ?? null,
    handoverMs: next ? next.start - query.causeAt : null,
    leaderlessMs: next && from ? next.start - from.end : null,
  };
}

/** The first time, at or after `sentAt`, that the watch saw status.observedGeneration reach `generation`. */
export function convergedAt(change: { generation: number; sentAt: number }, observations: readonly Observation[]): number | null {
  for (const o of observations) {
    if (o.at >= change.sentAt && o.observedGeneration >= change.generation) return o.at;
  }
  return null;
}

/**
 * The phase of a change: `event` when it was waiting for the operator at any
 * time during the window, `steady` when it converged before the window,
 * `after` when it was sent after the window.
 */
export function changePhase(sentAt: number, converged: number | null, window: Span): Phase {
  if (sentAt > window.end) return 'after';
  if ((converged ?? Number.POSITIVE_INFINITY) >= window.start) return 'event';
  return 'steady';
}

/** The phase of a moment (a log line): before, inside or after the window. */
export function pointPhase(at: number, window: Span): Phase {
  if (at < window.start) return 'steady';
  return at <= window.end ? 'event' : 'after';
}

/** Latency (convergedAt - sentAt) of the converged changes of each phase. */
export function latencyByPhase(changes: readonly Change[]): Record<Phase, Stats> {
  const of = (phase: Phase): number[] =>
    changes.filter((c) => c.phase === phase && c.convergedAt !== null).map((c) => c.convergedAt! - c.sentAt);
  return { steady: stats(of('steady')), event: stats(of('event')), after: stats(of('after')) };
}

/** The 'reconciled' lines' durationMs by the phase of their time. */
export function reconcileByPhase(records: readonly LogRecord[], window: Span): Record<Phase, Stats> {
  const reconciled = records.filter((r) => r.message === 'reconciled' && typeof r.durationMs === 'number');
  const of = (phase: Phase): number[] => reconciled.filter((r) => pointPhase(r.at, window) === phase).map((r) => r.durationMs!);
  return { steady: stats(of('steady')), event: stats(of('event')), after: stats(of('after')) };
}

/** Writes per replica in bins of `binMs` from 0 to `durationMs`. */
export function binWrites(writes: readonly LogRecord[], replicas: readonly string[], durationMs: number, binMs: number): WriteBins {
  const count = Math.max(1, Math.ceil(durationMs / binMs));
  const byReplica: Record<string, number[]> = {};
  for (const name of replicas) byReplica[name] = new Array<number>(count).fill(0);
  for (const w of writes) {
    const bins = byReplica[w.replica];
    if (!bins) continue;
    const index = Math.min(count - 1, Math.max(0, Math.floor(w.at / binMs)));
    bins[index]!++;
  }
  return { binMs, byReplica };
}
