/**
 * The API server as the witness: reads kube-apiserver's audit log (JSON
 * lines, as a ControlPlane started with `audit: true` writes it) and derives
 * from what the server recorded — not from the operator's own log lines —
 *
 * - each lease's terms: the successful Lease writes that changed its holder,
 *   in resourceVersion order;
 * - for every object, the committed mutating requests in resourceVersion
 *   order, with the replica (the User-Agent's "(<pod>)") and the term
 *   (the User-Agent's "term/<lease>@<resourceVersion>") that made each.
 *
 * Safety property: once a write made in a later term has committed on an
 * object, no write from an earlier term commits on it. Terms are ordered by
 * the resourceVersion of the write that began them — one etcd revision
 * order across all leases, so a shard-scheme change (different leases for
 * the same keys) is judged too. Also reported: writes that committed after
 * their term had ended (harmless on their own when no later term wrote the
 * object, but they show requests outliving their term on the server side).
 *
 *   const report = await checkAudit(plane.auditLogPath!, { namespace, leaseNamespace });
 *   expect(report.violations).to.deep.equal([]);
 */
import { readFile } from 'node:fs/promises';
import { podOfIdentity } from '../../src/runtime/holder.ts';

export interface AuditEvent {
  auditID: string;
  stage: string;
  verb: string;
  userAgent?: string;
  user?: { username?: string; extra?: Record<string, string[]> };
  sourceIPs?: string[];
  objectRef?: { resource?: string; namespace?: string; name?: string; apiGroup?: string; subresource?: string };
  responseStatus?: { code?: number };
  requestObject?: { metadata?: { name?: string } };
  responseObject?: {
    kind?: string;
    metadata?: { name?: string; resourceVersion?: string; labels?: Record<string, string> };
    spec?: { holderIdentity?: string | null; leaseDurationSeconds?: number };
  };
  stageTimestamp?: string;
}

export interface AuditTerm {
  /** `<namespace>/<lease>`. */
  lease: string;
  holder: string;
  /** resourceVersion of the write that began the term. */
  startRv: bigint;
  /** resourceVersion of the write that ended it (release or takeover); undefined while it lasts. */
  endRv: bigint | undefined;
  startedAt: string;
}

export interface AuditWrite {
  /** `<resource>/<namespace>/<name>`; a status write counts on its object. */
  object: string;
  verb: string;
  subresource: string | undefined;
  replica: string | undefined;
  /** The term as the writer named it, resolved to the audit-derived term. */
  term: AuditTerm | undefined;
  /** What the User-Agent claimed, e.g. "ha-operator-0@1234". */
  claimedTerm: string | undefined;
  rv: bigint | undefined;
  at: string;
  userAgent: string;
}

export interface AuditReport {
  terms: AuditTerm[];
  /** Committed writes made under a term, per object in commit order. */
  writes: AuditWrite[];
  /** Writes from an earlier term that committed after a later term's write on the same object. */
  violations: string[];
  /** Writes that committed after their term had ended. */
  lateCommits: AuditWrite[];
  /**
   * Objects written by two terms at once: a write of an earlier term committed
   * after a later term (of any lease) had begun, and the later term wrote the
   * object too, in either order. Stricter than `violations`: a late commit that
   * the later term's precondition then met counts here. Two schemes leading the
   * same keys show up here even when their writes did not interleave.
   */
  overlaps: string[];
  /** Writes whose claimed term matches no lease write of that holder (a bug in the writer or the checker). */
  unattributed: AuditWrite[];
  /** Requests refused with 409, by the precondition or an AlreadyExists (term writes only). */
  conflicts: number;
}

export interface AuditScope {
  /** Only objects in these namespaces count (the test's own). */
  namespaces: string[];
  /** Where the leases live (the terms' lease namespace). */
  leaseNamespace: string;
}

const TERM = /\bterm\/([^@\s]+)@(\d+)/;
const REPLICA = /\(([^)]+)\)/;

export async function readAuditLog(path: string): Promise<AuditEvent[]> {
  const text = await readFile(path, 'utf8');
  const events: AuditEvent[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    events.push(JSON.parse(line) as AuditEvent);
  }
  return events.filter((e) => e.stage === 'ResponseComplete');
}

export async function checkAudit(path: string, scope: AuditScope): Promise<AuditReport> {
  return analyzeAudit(await readAuditLog(path), scope);
}

export function analyzeAudit(events: AuditEvent[], scope: AuditScope): AuditReport {
  const terms = deriveTerms(events, scope.leaseNamespace);
  const termsByLease = new Map<string, AuditTerm[]>();
  for (const term of terms) termsByLease.set(term.lease, [...(termsByLease.get(term.lease) ?? []), term]);

  const writes: AuditWrite[] = [];
  const unattributed: AuditWrite[] = [];
  let conflicts = 0;
  for (const event of events) {
    const ref = event.objectRef;
    if (!ref?.namespace || !scope.namespaces.includes(ref.namespace) || ref.resource === 'leases') continue;
    const userAgent = event.userAgent ?? '';
    const claimed = TERM.exec(userAgent);
    if (!claimed) continue;
    const code = event.responseStatus?.code ?? 0;
    if (code === 409) conflicts++;
    if (code < 200 || code > 299) continue;
    const replica = REPLICA.exec(userAgent)?.[1];
    const claimedRv = BigInt(claimed[2]!);
    const leaseTerms = termsByLease.get(`${scope.leaseNamespace}/${claimed[1]!}`) ?? [];
    // The term in force at the claimed version: the last one that began at or before it.
    const term = leaseTerms.filter((t) => t.startRv <= claimedRv).at(-1);
    const write: AuditWrite = {
      object: `${ref.resource ?? ''}/${ref.namespace}/${ref.name ?? event.responseObject?.metadata?.name ?? event.requestObject?.metadata?.name ?? ''}`,
      verb: event.verb,
      subresource: ref.subresource,
      replica,
      term: term && podOfIdentity(term.holder) === replica ? term : undefined,
      claimedTerm: `${claimed[1]!}@${claimed[2]!}`,
      rv: versionOf(event),
      at: event.stageTimestamp ?? '',
      userAgent,
    };
    if (!write.term) unattributed.push(write);
    else writes.push(write);
  }

  writes.sort((a, b) => compare(a.rv, b.rv) || a.at.localeCompare(b.at));
  const violations: string[] = [];
  const latest = new Map<string, AuditWrite>();
  for (const write of writes) {
    const before = latest.get(write.object);
    if (before && write.term!.startRv < before.term!.startRv) {
      violations.push(`${write.object}: ${write.verb}${write.subresource ? ` ${write.subresource}` : ''} by ${write.replica} in term ${describe(write.term!)} `
        + `committed at ${write.rv} after a write by ${before.replica} in the later term ${describe(before.term!)} (committed at ${before.rv})`);
    }
    if (!before || write.term!.startRv >= before.term!.startRv) latest.set(write.object, write);
  }
  const lateCommits = writes.filter((w) => w.term!.endRv !== undefined && w.rv !== undefined && w.rv > w.term!.endRv);
  const overlaps: string[] = [];
  const byObject = new Map<string, AuditWrite[]>();
  for (const write of writes) byObject.set(write.object, [...(byObject.get(write.object) ?? []), write]);
  for (const [object, list] of byObject) {
    const terms = [...new Set(list.map((w) => w.term!))];
    for (const earlierTerm of terms) {
      for (const laterTerm of terms) {
        if (laterTerm.startRv <= earlierTerm.startRv) continue;
        const late = list.find((w) => w.term === earlierTerm && w.rv !== undefined && w.rv > laterTerm.startRv);
        if (late) overlaps.push(`${object}: written in term ${describe(earlierTerm)} at ${late.rv}, after term ${describe(laterTerm)} had begun, which wrote it too`);
      }
    }
  }
  return { terms, writes, violations, lateCommits, overlaps, unattributed, conflicts };
}

/** Per lease (membership leases excepted), a term at each committed write that changed the holder to someone. */
function deriveTerms(events: AuditEvent[], leaseNamespace: string): AuditTerm[] {
  const leaseWrites = events
    .filter((e) => e.objectRef?.resource === 'leases' && e.objectRef.namespace === leaseNamespace
      && ['create', 'update', 'patch'].includes(e.verb) && (e.responseStatus?.code ?? 0) >= 200 && (e.responseStatus?.code ?? 0) < 300
      && e.responseObject?.metadata?.labels?.['ha-operator.example.com/lease-role'] !== 'member')
    .sort((a, b) => compare(versionOf(a), versionOf(b)));
  const terms: AuditTerm[] = [];
  const current = new Map<string, AuditTerm | undefined>();
  const holders = new Map<string, string>();
  for (const event of leaseWrites) {
    const lease = `${leaseNamespace}/${event.objectRef!.name ?? event.responseObject?.metadata?.name ?? ''}`;
    const holder = event.responseObject?.spec?.holderIdentity ?? '';
    const rv = versionOf(event)!;
    if (holders.get(lease) === holder && holders.has(lease)) continue;
    holders.set(lease, holder);
    const ending = current.get(lease);
    if (ending) ending.endRv = rv;
    const term = holder === '' ? undefined : { lease, holder, startRv: rv, endRv: undefined, startedAt: event.stageTimestamp ?? '' };
    current.set(lease, term);
    if (term) terms.push(term);
  }
  // Deletes end a lease's term too.
  for (const event of events) {
    if (event.objectRef?.resource !== 'leases' || event.objectRef.namespace !== leaseNamespace || event.verb !== 'delete') continue;
    if ((event.responseStatus?.code ?? 0) < 200 || (event.responseStatus?.code ?? 0) > 299) continue;
    const lease = `${leaseNamespace}/${event.objectRef.name ?? ''}`;
    const term = current.get(lease);
    const rv = versionOf(event);
    if (term && term.endRv === undefined && rv !== undefined && rv > term.startRv) term.endRv = rv;
  }
  return terms;
}

function versionOf(event: AuditEvent): bigint | undefined {
  const rv = event.responseObject?.metadata?.resourceVersion;
  return rv && /^\d+$/.test(rv) ? BigInt(rv) : undefined;
}

function compare(a: bigint | undefined, b: bigint | undefined): number {
  if (a === undefined || b === undefined) return a === b ? 0 : a === undefined ? 1 : -1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function describe(term: AuditTerm): string {
  return `${term.lease}@${term.startRv} (${term.holder})`;
}

/** One line for a test's output or a report. */
export function summarize(report: AuditReport): string {
  const holders = new Set(report.terms.map((t) => t.holder));
  return `audit: ${report.terms.length} terms (${holders.size} holders), ${report.writes.length} committed writes in term, `
    + `${report.violations.length} out-of-term writes, ${report.lateCommits.length} committed after their term ended, ${report.overlaps.length} objects written by overlapping terms, `
    + `${report.conflicts} refused by a precondition (409), ${report.unattributed.length} unattributed`;
}
