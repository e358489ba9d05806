import { sleep, systemClock, type Clock } from './clock.ts';
import type { Informer } from './informer.ts';
import { microTime, type Lease, type LeaseClient } from './leases.ts';
import type { Logger } from './logging.ts';

/** Which Leases belong to the operator: members (one per replica) and shard leases. Listed and watched by this label. */
export const LEASE_ROLE_LABEL = 'ha-operator.example.com/lease-role';
/** The LEASE_NAME of the replica (member) or of the scheme the lease belongs to (shard). */
export const LEASE_GROUP_LABEL = 'ha-operator.example.com/lease-group';
/** A member's SHARDS. */
export const SHARDS_ANNOTATION = 'ha-operator.example.com/shards';

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

/** The labels each shard lease of `scheme` carries. */
export function shardLeaseLabels(scheme: ShardScheme): Record<string, string> {
  return { [LEASE_ROLE_LABEL]: 'shard', [LEASE_GROUP_LABEL]: scheme.leaseName };
}

export interface MembershipOptions {
  leases: LeaseClient;
  /** Lists and watches the Leases labelled with LEASE_ROLE_LABEL in the lease namespace. */
  operatorLeases: Informer<Lease>;
  scheme: ShardScheme;
  identity: string;
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
 *   last of them has left, then the new scheme takes over);
 * - nor while its view is not current (the watch of the operator's Leases
 *   is down): a member silent only in a stale view is not gone.
 *
 * A leader is never stopped by these rules; they only hold back campaigns,
 * so the old scheme drains by its replicas leaving, as in a rollout.
 */
export class Membership {
  private readonly options: MembershipOptions;
  private readonly clock: Clock;
  private readonly ownLeaseNames: Set<string>;
  private readonly seen = new Map<string, Seen>();
  private readonly stopController = new AbortController();
  private heartbeat: Promise<void> | undefined;
  private ownCreatedAt: string | undefined;
  private lastBlocker: string | undefined;

  constructor(options: MembershipOptions) {
    this.options = options;
    this.clock = options.clock ?? systemClock;
    this.ownLeaseNames = new Set(schemeLeaseNames(options.scheme));
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
    if (this.ownCreatedAt === undefined) return 'this replica\'s membership lease is not written yet';
    const now = this.clock.monotonicMs();
    for (const [name, seen] of this.seen) {
      if (seen.lease.metadata.labels?.[LEASE_ROLE_LABEL] !== 'shard' || this.ownLeaseNames.has(name)) continue;
      const holder = seen.lease.spec?.holderIdentity ?? '';
      if (holder !== '' && now - seen.atMs < durationMs(seen.lease, this.options.leaseDurationMs)) {
        return `lease ${name} of another shard scheme is held by ${holder}`;
      }
    }
    // Our scheme's seniority: its oldest live member (this replica at least), by join time, then identity.
    const own = this.oldestLiveOf(this.options.scheme) ?? { createdAt: this.ownCreatedAt, identity: this.options.identity };
    for (const member of this.liveMembers()) {
      if (sameScheme(member.scheme, this.options.scheme)) continue;
      if (member.createdAt < own.createdAt || (member.createdAt === own.createdAt && member.identity < own.identity)) {
        return `replica ${member.identity} of shard scheme ${describeScheme(member.scheme)} joined earlier and is live`;
      }
    }
    return undefined;
  }

  private oldestLiveOf(scheme: ShardScheme): { createdAt: string; identity: string } | undefined {
    let oldest: { createdAt: string; identity: string } | undefined;
    for (const member of this.liveMembers()) {
      if (!sameScheme(member.scheme, scheme)) continue;
      if (!oldest || member.createdAt < oldest.createdAt || (member.createdAt === oldest.createdAt && member.identity < oldest.identity)) oldest = member;
    }
    return oldest;
  }

  private *liveMembers(): Generator<{ identity: string; scheme: ShardScheme; createdAt: string }> {
    const now = this.clock.monotonicMs();
    for (const seen of this.seen.values()) {
      const { labels, annotations, creationTimestamp } = seen.lease.metadata;
      const identity = seen.lease.spec?.holderIdentity;
      if (labels?.[LEASE_ROLE_LABEL] !== 'member' || !identity) continue;
      const live = identity === this.options.identity || now - seen.atMs < durationMs(seen.lease, this.options.leaseDurationMs);
      if (!live) continue;
      const shards = Number(annotations?.[SHARDS_ANNOTATION] ?? '1');
      yield { identity, scheme: { leaseName: labels[LEASE_GROUP_LABEL] ?? '', shards }, createdAt: creationTimestamp ?? '' };
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
    const metadata = {
      name,
      labels: { [LEASE_ROLE_LABEL]: 'member', [LEASE_GROUP_LABEL]: scheme.leaseName },
      annotations: { [SHARDS_ANNOTATION]: String(scheme.shards) },
    };
    const signal = this.stopController.signal;
    while (!signal.aborted) {
      const spec = { holderIdentity: identity, leaseDurationSeconds: Math.ceil(leaseDurationMs / 1000), renewTime: microTime(this.clock.wallNow()) };
      try {
        const current = await leases.read(name, signal);
        const written = current
          ? await leases.replace({ ...current, metadata: { ...current.metadata, labels: { ...current.metadata.labels, ...metadata.labels }, annotations: { ...current.metadata.annotations, ...metadata.annotations } }, spec: { ...current.spec, ...spec } }, signal)
          : await leases.create({ metadata, spec }, signal);
        if (this.ownCreatedAt === undefined) {
          this.ownCreatedAt = written.metadata.creationTimestamp ?? '';
          this.options.onChange();
        }
      } catch (error) {
        if (!signal.aborted) this.options.logger.warn(`could not renew membership lease ${leases.namespace}/${name}`, { error: (error as Error).message });
      }
      await sleep(this.clock, retryPeriodMs, signal).catch(() => undefined);
    }
  }
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
