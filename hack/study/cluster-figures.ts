/**
 * Pure analysis of the scenarios on real nodes (hack/study/nodes.ts): what
 * the API server's audit log recorded of a handover (the leader's last
 * renewal or release, the kubelet's report of its crash, the successor's
 * acquisition and first write) and of a lost node's tail (the node
 * controller's Unknown and taint, each pod's eviction and its replacement's
 * create, binding and Ready); and the operator's log lines of a container
 * that ran before the scenario began, clipped to it. No I/O, no clock:
 * test/study/cluster-figures.test.ts drives it with fixtures.
 */
import { holderOf, podOfIdentity, processEnded, type HolderProcess } from '../../src/runtime/holder.ts';
import type { Lease } from '../../src/runtime/leases.ts';
import { stats, type LogRecord } from './analyze.ts';
import type { AuditEvent } from '../lib/audit.ts';
import type { Change, Stats, TailPod } from './types.ts';

/** An audit event with the fields of pods, nodes and bindings that the figures read (the policy records bodies of every write). */
export interface ClusterAuditEvent extends AuditEvent {
  requestObject?: AuditEvent['requestObject'] & { target?: { name?: string } };
  responseObject?: AuditEvent['responseObject'] & {
    metadata?: { uid?: string; annotations?: Record<string, string>; ownerReferences?: { kind?: string; name?: string }[] };
    spec?: { nodeName?: string; taints?: { key?: string; effect?: string }[] };
    status?: {
      conditions?: { type?: string; status?: string }[];
      containerStatuses?: { name: string; state?: object; lastState?: object }[];
    };
  };
}

/** "ha-operator-7d9c5b6f4-x2k8q", 1 → "x2k8q#1": short enough for a lane's label. */
export function replicaName(pod: string, restartCount: number): string {
  const last = pod.slice(pod.lastIndexOf('-') + 1) || pod;
  return restartCount > 0 ? `${last}#${restartCount}` : last;
}

/**
 * The log records of replicas that may have started before the scenario
 * (time 0): every line before 0 is dropped, except a 'started leading' whose
 * term was still open at 0 — that one moves to 0, so the term shows from the
 * scenario's start. Records keep their order.
 */
export function clipToScenario(records: readonly LogRecord[]): LogRecord[] {
  const openAtZero = new Map<string, LogRecord>();
  for (const record of records) {
    if (record.at >= 0 || record.lease === undefined) continue;
    const key = `${record.replica}\u0000${record.lease}`;
    if (record.message === 'started leading' && !openAtZero.has(key)) openAtZero.set(key, record);
    else if (record.message === 'stopped leading') openAtZero.delete(key);
  }
  const kept = new Set(openAtZero.values());
  return records.flatMap((r) => (r.at >= 0 ? [r] : kept.has(r) ? [{ ...r, at: 0 }] : []));
}

/** Changes that were waiting for the operator at any time in [start, end], and how long each took (never-converged ones left out). */
export function waitingDuring(changes: readonly Change[], start: number, end: number): Stats {
  return stats(changes
    .filter((c) => c.sentAt <= end && (c.convergedAt ?? Number.POSITIVE_INFINITY) >= start && c.convergedAt !== null)
    .map((c) => c.convergedAt! - c.sentAt));
}

const ok = (e: AuditEvent): boolean => (e.responseStatus?.code ?? 0) >= 200 && (e.responseStatus?.code ?? 0) < 300;
const at = (e: AuditEvent): number => Date.parse(e.stageTimestamp ?? '');
const holderIn = (e: AuditEvent): string => e.responseObject?.spec?.holderIdentity ?? '';

function byVersion(a: AuditEvent, b: AuditEvent): number {
  const [x, y] = [BigInt(a.responseObject?.metadata?.resourceVersion ?? '0'), BigInt(b.responseObject?.metadata?.resourceVersion ?? '0')];
  return x < y ? -1 : x > y ? 1 : 0;
}

/** The committed writes of one Lease, in commit order. */
export function leaseWrites(events: readonly ClusterAuditEvent[], namespace: string, name: string): ClusterAuditEvent[] {
  return events
    .filter((e) => e.objectRef?.resource === 'leases' && e.objectRef.namespace === namespace && e.objectRef.name === name
      && ['create', 'update', 'patch'].includes(e.verb) && ok(e))
    .sort(byVersion);
}

/** A handover of one Lease as the audit log shows it; times in ms since the epoch (the API server's clock, this host's). */
export interface AuditHandover {
  lastRenewalAt: number | null;
  releasedAt: number | null;
  acquiredAt: number | null;
  toIdentity: string | null;
  firstWriteAt: number | null;
  /** The old holder's process as its last Lease write named it (for the kubelet's report). */
  holder: HolderProcess | undefined;
}

/**
 * How the term of `fromIdentity` on a Lease ended: its last committed write
 * holding the Lease, the release right after it (if the next write emptied
 * the holder), the next write that named another holder, and that holder's
 * first committed write (its User-Agent names the Lease's term and its pod)
 * in `namespace` at or after the acquisition.
 */
export function auditHandover(events: readonly ClusterAuditEvent[], lease: { namespace: string; name: string }, fromIdentity: string, namespace: string): AuditHandover {
  const writes = leaseWrites(events, lease.namespace, lease.name);
  const last = writes.findLastIndex((e) => holderIn(e) === fromIdentity);
  const lastRenewal = last === -1 ? undefined : writes[last];
  const next = last === -1 ? undefined : writes[last + 1];
  const released = next && holderIn(next) === '' ? next : undefined;
  const acquired = last === -1 ? undefined : writes.slice(last + 1).find((e) => holderIn(e) !== '' && holderIn(e) !== fromIdentity);
  const toIdentity = acquired ? holderIn(acquired) : null;
  let firstWriteAt: number | null = null;
  if (acquired && toIdentity) {
    const pod = podOfIdentity(toIdentity);
    const term = new RegExp(`\\bterm/${escapeRegExp(lease.name)}@\\d+`);
    const first = events
      .filter((e) => e.objectRef?.namespace === namespace && e.objectRef.resource !== 'leases' && ok(e)
        && term.test(e.userAgent ?? '') && (e.userAgent ?? '').includes(`(${pod})`) && at(e) >= at(acquired))
      .sort((a, b) => at(a) - at(b))[0];
    firstWriteAt = first ? at(first) : null;
  }
  return {
    lastRenewalAt: lastRenewal ? at(lastRenewal) : null,
    releasedAt: released ? at(released) : null,
    acquiredAt: acquired ? at(acquired) : null,
    toIdentity,
    firstWriteAt,
    holder: lastRenewal?.responseObject ? holderOf(lastRenewal.responseObject as Lease) : undefined,
  };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The first committed delete of pod `namespace/name` at or after `afterMs`, in ms since the epoch. */
export function podDeletedAt(events: readonly ClusterAuditEvent[], namespace: string, name: string, afterMs: number): number | null {
  const deleted = events.find((e) => e.verb === 'delete' && e.objectRef?.resource === 'pods' && e.objectRef.subresource === undefined
    && e.objectRef.namespace === namespace && e.objectRef.name === name && ok(e) && at(e) >= afterMs);
  return deleted ? at(deleted) : null;
}

/**
 * The kubelet's first pods/status write, at or after `afterMs`, whose pod
 * shows `holder`'s process ended — as the standbys judge it (processEnded).
 */
export function kubeletReportAt(events: readonly ClusterAuditEvent[], holder: HolderProcess | undefined, afterMs: number): number | null {
  const pod = holder?.pod;
  if (!holder || !pod) return null;
  const report = events.find((e) => e.objectRef?.resource === 'pods' && e.objectRef.subresource === 'status' && e.objectRef.namespace === pod.namespace
    && e.objectRef.name === pod.name && ok(e) && at(e) >= afterMs
    && processEnded(holder, e.responseObject) !== undefined);
  return report ? at(report) : null;
}

/** A pod on the node when it was lost, as the harness saw it. */
export interface LostPod {
  namespace: string;
  name: string;
  /** Its controller (a ReplicaSet's name): the replacement is the next pod of the same controller. */
  owner: string;
  workload: string;
  tolerationSeconds: number | null;
}

export interface AuditTail {
  unknownAt: number | null;
  taintedAt: number | null;
  /** Times in ms since the epoch. */
  pods: TailPod[];
}

const isReady = (e: ClusterAuditEvent): boolean => e.responseObject?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;

/**
 * What the audit log recorded after node `node` was lost at `lostAtMs`: the
 * first status write that made its Ready condition Unknown, the first write
 * that gave it the unreachable NoExecute taint, and for each of `pods` its
 * eviction (the first delete after the loss) and its replacement — the first
 * pod of the same owner created after that delete and not taken by an
 * earlier eviction — with its binding and its first Ready status.
 */
export function auditTail(events: readonly ClusterAuditEvent[], node: string, lostAtMs: number, pods: readonly LostPod[]): AuditTail {
  const after = events.filter((e) => ok(e) && at(e) >= lostAtMs);
  const nodeWrites = after.filter((e) => e.objectRef?.resource === 'nodes' && e.objectRef.name === node && ['update', 'patch'].includes(e.verb));
  const unknown = nodeWrites.find((e) => e.objectRef?.subresource === 'status'
    && e.responseObject?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'Unknown'));
  const tainted = nodeWrites.find((e) => e.responseObject?.spec?.taints?.some((t) => t.key === 'node.kubernetes.io/unreachable' && t.effect === 'NoExecute'));
  const creates = after.filter((e) => e.verb === 'create' && e.objectRef?.resource === 'pods' && e.objectRef.subresource === undefined);
  const taken = new Set<ClusterAuditEvent>();
  const evictions = pods.map((pod) => ({ pod, at: podDeletedAt(after, pod.namespace, pod.name, lostAtMs) }))
    .sort((a, b) => (a.at ?? Number.POSITIVE_INFINITY) - (b.at ?? Number.POSITIVE_INFINITY));
  const result = evictions.map(({ pod, at: evictedAt }): TailPod => {
    const create = evictedAt === null ? undefined : creates.find((e) => !taken.has(e) && at(e) >= evictedAt && e.objectRef?.namespace === pod.namespace
      && (e.responseObject?.metadata?.ownerReferences ?? []).some((o) => o.name === pod.owner));
    if (create) taken.add(create);
    const name = create?.responseObject?.metadata?.name ?? null;
    const ofReplacement = (e: ClusterAuditEvent): boolean => name !== null && e.objectRef?.namespace === pod.namespace && e.objectRef.name === name;
    const binding = after.find((e) => ofReplacement(e) && e.verb === 'create' && e.objectRef?.subresource === 'binding');
    const ready = after.find((e) => ofReplacement(e) && e.objectRef?.subresource === 'status' && isReady(e));
    return {
      pod: pod.name,
      workload: pod.workload,
      tolerationSeconds: pod.tolerationSeconds,
      evictedAt,
      replacement: name,
      replacementNode: binding?.requestObject?.target?.name ?? null,
      createdAt: create ? at(create) : null,
      scheduledAt: binding ? at(binding) : null,
      readyAt: ready ? at(ready) : null,
    };
  });
  return { unknownAt: unknown ? at(unknown) : null, taintedAt: tainted ? at(tainted) : null, pods: result };
}

/** RFC 7386 JSON merge patch of `target` by `patch` (what the API server does with a merge patch), without changing either. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isPlainObject(patch)) return patch;
  const result: Record<string, unknown> = isPlainObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
