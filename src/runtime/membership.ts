import { ApiException, V1MicroTime, type CoordinationV1Api, type V1Lease } from '@kubernetes/client-node';
import { sleep, systemClock, type Clock } from './clock.ts';
import type { Informer } from './informer.ts';
import type { Logger } from './logging.ts';

/** The label that ties a replica's membership Lease to its group of shard leases. */
export const MEMBER_GROUP_LABEL = 'ha-operator.example.com/lease-group';

export interface MembershipOptions {
  leases: CoordinationV1Api;
  /** Lists and watches the Leases labelled with this group. */
  members: Informer<V1Lease>;
  namespace: string;
  group: string;
  identity: string;
  leaseDurationMs: number;
  retryPeriodMs: number;
  logger: Logger;
  clock?: Clock;
  /** Called whenever the number of live replicas may have changed. */
  onChange(): void;
}

/**
 * Which replicas of a sharded operator are alive, so each can hold its fair
 * share of the shard leases: ceil(shards / live replicas). Every replica
 * heartbeats a Lease of its own (`<group>-member-<identity>`) every
 * retryPeriod; a member is live while its Lease record keeps changing, judged
 * like lease expiry on this process's monotonic clock — never by comparing
 * its renewTime with the local wall clock.
 */
export class Membership {
  private readonly options: MembershipOptions;
  private readonly clock: Clock;
  private readonly lastChange = new Map<string, { record: string; atMs: number }>();
  private readonly stopController = new AbortController();
  private heartbeat: Promise<void> | undefined;

  constructor(options: MembershipOptions) {
    this.options = options;
    this.clock = options.clock ?? systemClock;
    options.members.subscribe((event) => {
      const identity = event.object.spec?.holderIdentity;
      if (!identity) return;
      if (event.type === 'deleted') this.lastChange.delete(identity);
      else this.observe(identity, event.object);
      options.onChange();
    });
  }

  get leaseName(): string {
    return `${this.options.group}-member-${this.options.identity}`;
  }

  start(): void {
    this.heartbeat ??= this.beat();
  }

  /** Live replicas, this one included. */
  liveCount(): number {
    const now = this.clock.monotonicMs();
    let live = 1;
    for (const [identity, seen] of this.lastChange) {
      if (identity !== this.options.identity && now - seen.atMs < this.options.leaseDurationMs) live++;
    }
    return live;
  }

  /** Stops the heartbeat and deletes this replica's membership Lease so the others rebalance at once. */
  async stop(): Promise<void> {
    this.stopController.abort();
    await this.heartbeat;
    const { leases, namespace } = this.options;
    await leases.deleteNamespacedLease({ namespace, name: this.leaseName }).catch((error: unknown) => {
      if (!(error instanceof ApiException && error.code === 404)) {
        this.options.logger.warn('could not delete the membership lease; the others see it expire', { error });
      }
    });
  }

  private observe(identity: string, lease: V1Lease): void {
    const record = JSON.stringify(lease.spec ?? {});
    if (this.lastChange.get(identity)?.record !== record) this.lastChange.set(identity, { record, atMs: this.clock.monotonicMs() });
  }

  private async beat(): Promise<void> {
    const { leases, namespace, group, identity, leaseDurationMs, retryPeriodMs } = this.options;
    const name = this.leaseName;
    while (!this.stopController.signal.aborted) {
      const spec = { holderIdentity: identity, leaseDurationSeconds: Math.ceil(leaseDurationMs / 1000), renewTime: new V1MicroTime(this.clock.wallNow().getTime()) };
      try {
        const current = await leases.readNamespacedLease({ namespace, name }).catch((error: unknown) => {
          if (error instanceof ApiException && error.code === 404) return undefined;
          throw error;
        });
        if (current) await leases.replaceNamespacedLease({ namespace, name, body: { ...current, spec: { ...current.spec, ...spec } } });
        else await leases.createNamespacedLease({ namespace, body: { metadata: { name, namespace, labels: { [MEMBER_GROUP_LABEL]: group } }, spec } });
      } catch (error) {
        this.options.logger.warn(`could not renew membership lease ${namespace}/${name}`, { error });
      }
      await sleep(this.clock, retryPeriodMs, this.stopController.signal).catch(() => undefined);
    }
  }
}

/** The fair share of `shards` among `replicas`: no replica needs more while the others are live. */
export function fairShare(shards: number, replicas: number): number {
  return Math.ceil(shards / Math.max(1, replicas));
}
