import { sleep, systemClock, type Clock } from './clock.ts';
import type { Informer } from './informer.ts';
import { microTime, type Lease, type LeaseClient } from './leases.ts';
import type { Logger } from './logging.ts';

/** Which Leases belong to the operator: members (one per replica) and shard leases. Listed and watched by this label. */
export const LEASE_ROLE_LABEL = 'ha-operator.example.com/lease-role';
/** The LEASE_NAME of the replica (member) or of the scheme the lease belongs to (shard). */
export const LEASE_GROUP_LABEL = 'ha-operator.example.com/lease-group';
/** The SHARDS of the replica (member) or of the scheme the lease was last held under (shard). */
export const SHARDS_LABEL = 'ha-operator.example.com/shards';

/**
 * How a replica splits the keys between leases: LEASE_NAME and SHARDS. Two
 * replicas of different schemes lead different leases for the same keys, so
 * they must never lead at the same time.
 */
export interface ShardScheme {
  leaseName: string;
  shards: number;
}

/** The lease names of a scheme: the lease name itself for one shard, `<name>-<i>` for several. */
export function schemeLeaseNames(scheme: ShardScheme): string[] {
  return scheme.shards === 1 ? [scheme.leaseName] : Array.from({ length: scheme.shards }, (_, i) => `${scheme.leaseName}-${i}`);
}

export function describeScheme(scheme: ShardScheme): string {
  return `${scheme.leaseName} with ${scheme.shards} shard${scheme.shards === 1 ? '' : 's'}`;
}

/**
 * The labels each shard lease of `scheme` carries, written with every write of
 * its holder: two schemes may share lease names (ha-operator-0..2 of three
 * shards and ha-operator-0..5 of six), so a lease belongs to the scheme it was
 * last held under, not to the scheme its name fits.
 */
export function shardLeaseLabels(scheme: ShardScheme): Record<string, string> {
  return { [LEASE_ROLE_LABEL]: 'shard', [LEASE_GROUP_LABEL]: scheme.leaseName, [SHARDS_LABEL]: String(scheme.shards) };
}

/** The scheme a labelled operator Lease belongs to; undefined without the labels. */
function schemeOf(lease: Lease): ShardScheme | undefined {
  const labels = lease.metadata.labels ?? {};
  const leaseName = labels[LEASE_GROUP_LABEL];
  const shards = Number(labels[SHARDS_LABEL]);
  return leaseName && Number.isInteger(shards) && shards > 0 ? { leaseName, shards } : undefined;
}

export interface MembershipOptions {
  leases: LeaseClient;
  /** Lists and watches the Leases labelled with LEASE_ROLE_LABEL in the lease namespace. */
  operatorLeases: Informer<Lease>;
  scheme: ShardScheme;
  identity: string;
  /** Written on this replica's membership Lease with every heartbeat: its process (holder.ts). */
  annotations?: Record<string, string>;
  /** Why the API server shows a member's process as ended, if it does: the member is then gone before its Lease expires. */
  memberEnded?(lease: Lease): string | undefined;
  leaseDurationMs: number;
  retryPeriodMs: number;
  logger: Logger;
  clock?: Clock;
  /** Called whenever the number of live replicas, or what holds back the campaign, may have changed. */
  onChange(): void;
}

interface Seen {
  lease: Lease;
  record: string;
  /** Monotonic time this replica saw the record change. */
  atMs: number;
}

/**
 * Which replicas are alive, and of which shard scheme. Every replica
 * heartbeats a Lease of its own (`<LEASE_NAME>-member-<identity>`) every
 * retryPeriod, labelled with its scheme; a member is live while its record
 * keeps changing, judged like lease expiry on this process's monotonic clock
 * — never by comparing its renewTime with the local wall clock.
 *
 * Within a scheme this gives each replica its fair share of shard leases:
 * ceil(shards / live replicas). Across schemes (a rolling update that
 * changes SHARDS or LEASE_NAME) it decides who may campaign at all:
 *
 * - a replica does not campaign while a shard lease of another scheme is
 *   held and unexpired by its clock (that scheme's leader may be writing);
 * - nor while a live member of another scheme that joined earlier exists
 *   (the scheme whose oldest live member is oldest goes first: replicas of
 *   the old scheme keep leading and failing over among themselves until the
 *   last of them has left, then the new scheme takes over). Every replica
 *   computes this order alike from the same Leases, so at most one scheme
 *   campaigns; and since a lease belongs to the scheme it was last held
 *   under (its labels), a scheme that gains precedence still waits for the
 *   other's held leases, whose names may be its own too.
 * - nor while its view is not current (the watch of the operator's Leases
 *   is down): a member silent only in a stale view is not gone.
 *
 * A leader is never stopped by these rules; they only hold back campaigns,
 * so the old scheme drains by its replicas leaving, as in a rollout.
 */
export class Membership {
  private readonly options: MembershipOptions;
  private readonly clock: Clock;
  private readonly seen = new Map<string, Seen>();
  private readonly stopController = new AbortController();
  private heartbeat: Promise<void> | undefined;
  private ownJoined: string | undefined;
  private lastBlocker: string | undefined;

  constructor(options: MembershipOptions) {
    this.options = options;
    this.clock = options.clock ?? systemClock;
    options.operatorLeases.subscribe((event) => {
      const name = event.object.metadata.name;
      if (event.type === 'deleted') this.seen.delete(name);
      else if (event.type !== 'resync') this.observe(event.object);
      options.onChange();
    });
  }

  get leaseName(): string {
    return `${this.options.scheme.leaseName}-member-${this.options.identity}`;
  }

  start(): void {
    this.heartbeat ??= this.beat();
  }

  /** Live replicas of this replica's scheme, this one included. */
  liveCount(): number {
    let live = 1;
    for (const member of this.liveMembers()) {
      if (member.identity !== this.options.identity && sameScheme(member.scheme, this.options.scheme)) live++;
    }
    return live;
  }

  /** Why this replica must not campaign now, or undefined when it may. */
  campaignBlocker(): string | undefined {
    const blocker = this.findBlocker();
    if (blocker !== this.lastBlocker) {
      this.lastBlocker = blocker;
      if (blocker) this.options.logger.info('not campaigning', { reason: blocker });
      else this.options.logger.info('campaigning: no replica of another shard scheme holds it back');
    }
    return blocker;
  }

  /** Stops the heartbeat and deletes this replica's membership Lease (within `timeoutMs`) so the others rebalance at once. */
  async stop(timeoutMs: number): Promise<void> {
    this.stopController.abort();
    await this.heartbeat;
    await this.options.leases.delete(this.leaseName, AbortSignal.timeout(timeoutMs)).catch((error: unknown) => {
      this.options.logger.warn('could not delete the membership lease; the others see it expire', { error: (error as Error).message });
    });
  }

  private findBlocker(): string | undefined {
    if (!this.options.operatorLeases.isWatching()) return 'the watch of the operator\'s leases is not connected, so replicas of other shard schemes may be unseen';
    if (this.ownJoined === undefined) return 'this replica\'s membership lease is not written yet';
    const now = this.clock.monotonicMs();
    for (const [name, seen] of this.seen) {
      if (seen.lease.metadata.labels?.[LEASE_ROLE_LABEL] !== 'shard') continue;
      const scheme = schemeOf(seen.lease);
      if (scheme && sameScheme(scheme, this.options.scheme)) continue;
      const holder = seen.lease.spec?.holderIdentity ?? '';
      if (holder !== '' && now - seen.atMs < durationMs(seen.lease, this.options.leaseDurationMs)) {
        return `lease ${name} of another shard scheme is held by ${holder}`;
      }
    }
    // Our scheme's seniority: its oldest live member (this replica at least).
    const own = this.oldestLiveOf(this.options.scheme) ?? { joined: this.ownJoined, identity: this.options.identity };
    for (const member of this.liveMembers()) {
      if (sameScheme(member.scheme, this.options.scheme)) continue;
      if (earlier(member, own)) return `replica ${member.identity} of shard scheme ${describeScheme(member.scheme)} joined earlier and is live`;
    }
    return undefined;
  }

  private oldestLiveOf(scheme: ShardScheme): Joined | undefined {
    let oldest: Joined | undefined;
    for (const member of this.liveMembers()) {
      if (sameScheme(member.scheme, scheme) && (!oldest || earlier(member, oldest))) oldest = member;
    }
    return oldest;
  }

  private *liveMembers(): Generator<Joined & { scheme: ShardScheme }> {
    const now = this.clock.monotonicMs();
    for (const seen of this.seen.values()) {
      const identity = seen.lease.spec?.holderIdentity;
      const scheme = schemeOf(seen.lease);
      if (seen.lease.metadata.labels?.[LEASE_ROLE_LABEL] !== 'member' || !identity || !scheme) continue;
      const live = identity === this.options.identity
        || (now - seen.atMs < durationMs(seen.lease, this.options.leaseDurationMs) && this.options.memberEnded?.(seen.lease) === undefined);
      if (live) yield { identity, scheme, joined: joinedAt(seen.lease) };
    }
  }

  private observe(lease: Lease): void {
    const record = JSON.stringify(lease.spec ?? {});
    const name = lease.metadata.name;
    if (this.seen.get(name)?.record !== record) this.seen.set(name, { lease, record, atMs: this.clock.monotonicMs() });
    else this.seen.set(name, { ...this.seen.get(name)!, lease });
  }

  private async beat(): Promise<void> {
    const { leases, scheme, identity, leaseDurationMs, retryPeriodMs } = this.options;
    const name = this.leaseName;
    const annotations = this.options.annotations ?? {};
    const metadata = { name, labels: { [LEASE_ROLE_LABEL]: 'member', [LEASE_GROUP_LABEL]: scheme.leaseName, [SHARDS_LABEL]: String(scheme.shards) }, annotations };
    const signal = this.stopController.signal;
    while (!signal.aborted) {
      const spec = { holderIdentity: identity, leaseDurationSeconds: Math.ceil(leaseDurationMs / 1000), renewTime: microTime(this.clock.wallNow()) };
      try {
        const current = await leases.read(name, signal);
        const written = current
          ? await leases.replace({
            ...current,
            metadata: { ...current.metadata, labels: { ...current.metadata.labels, ...metadata.labels }, annotations: { ...current.metadata.annotations, ...annotations } },
            spec: { ...current.spec, ...spec },
          }, signal)
          // acquireTime marks when this replica joined, finer than creationTimestamp (whole seconds).
          : await leases.create({ metadata, spec: { ...spec, acquireTime: spec.renewTime } }, signal);
        if (this.ownJoined === undefined) {
          this.ownJoined = joinedAt(written);
          this.options.onChange();
        }
      } catch (error) {
        if (!signal.aborted) this.options.logger.warn(`could not renew membership lease ${leases.namespace}/${name}`, { error: (error as Error).message });
      }
      await sleep(this.clock, retryPeriodMs, signal).catch(() => undefined);
    }
  }
}

/** When a member joined, comparable as a string: the server's creationTimestamp, then the member's own acquireTime. */
interface Joined {
  joined: string;
  identity: string;
}

function joinedAt(lease: Lease): string {
  return `${lease.metadata.creationTimestamp ?? ''}|${lease.spec?.acquireTime ?? ''}`;
}

/** A total order every replica computes alike from the same Leases: join time, then identity. */
function earlier(a: Joined, b: Joined): boolean {
  return a.joined < b.joined || (a.joined === b.joined && a.identity < b.identity);
}

function sameScheme(a: ShardScheme, b: ShardScheme): boolean {
  return a.leaseName === b.leaseName && a.shards === b.shards;
}

function durationMs(lease: Lease, fallbackMs: number): number {
  const seconds = lease.spec?.leaseDurationSeconds;
  return typeof seconds === 'number' && seconds > 0 ? seconds * 1000 : fallbackMs;
}

/** The fair share of `shards` among `replicas`: no replica needs more while the others are live. */
export function fairShare(shards: number, replicas: number): number {
  return Math.ceil(shards / Math.max(1, replicas));
}
