import {
  ApiException,
  V1MicroTime,
  Watch,
  type CoordinationV1Api,
  type KubeConfig,
  type V1Lease,
  type V1LeaseSpec,
} from '@kubernetes/client-node';
import { sleep, systemClock, type Clock, type Timer } from './clock.ts';
import type { Logger } from './logging.ts';
import type { LeaderMetrics } from './metrics.ts';

export interface LeaseTiming {
  /** How long a standby waits, after it last saw the lease record change, before it may take the lease. */
  leaseDurationMs: number;
  /** How long the leader keeps leading (and writing) without a successful renewal. */
  renewDeadlineMs: number;
  /** Renewal interval of the leader, poll interval of the standbys. */
  retryPeriodMs: number;
}

/** client-go's JitterFactor: polls are spread over [retryPeriod, retryPeriod × 1.2]. */
export const JITTER_FACTOR = 1.2;

/** client-go's rule, checked up front: leaseDuration > renewDeadline > retryPeriod × 1.2. */
export function validateLeaseTiming(t: LeaseTiming): void {
  if (!(t.retryPeriodMs > 0)) throw new RangeError(`retryPeriod must be > 0 (got ${t.retryPeriodMs} ms)`);
  if (!(t.renewDeadlineMs > t.retryPeriodMs * JITTER_FACTOR)) {
    throw new RangeError(`renewDeadline (${t.renewDeadlineMs} ms) must be greater than retryPeriod × ${JITTER_FACTOR} (${t.retryPeriodMs * JITTER_FACTOR} ms)`);
  }
  if (!(t.leaseDurationMs > t.renewDeadlineMs)) {
    throw new RangeError(`leaseDuration (${t.leaseDurationMs} ms) must be greater than renewDeadline (${t.renewDeadlineMs} ms)`);
  }
}

export interface LeaseElectorOptions extends LeaseTiming {
  /**
   * Lease calls. Give it a request timeout no longer than renewDeadline (the
   * manager does): a request lost in a partition then cannot hold up a
   * renewal, a campaign or the release on shutdown.
   */
  leases: CoordinationV1Api;
  /** For the standby's watch on its Lease. */
  kubeConfig: KubeConfig;
  namespace: string;
  name: string;
  identity: string;
  /** Standbys watch the Lease and act on a release or expiry at once; false polls only, like client-go. */
  watch: boolean;
  logger: Logger;
  metrics: LeaderMetrics;
  clock?: Clock;
  onStartedLeading(): void;
  /**
   * Consulted before each attempt to take the lease from nobody (sharding:
   * false while this replica already holds its fair share).
   */
  shouldCampaign?(): boolean;
  /** Awaited between giving up leadership in a hand-over and releasing the lease. */
  beforeRelease?(): Promise<void>;
  /** `reason` says why: renewal deadline passed, another holder, or released on shutdown. */
  onStoppedLeading(reason: string): void;
}

type Observed = { record: string; atMs: number; lease: V1Lease };

/**
 * Leader election on a coordination.k8s.io/v1 Lease with client-go's
 * semantics — create or take over with a resourceVersion precondition, renew
 * every retryPeriod, stop leading when no renewal succeeded within
 * renewDeadline, release by writing an empty holder — and two improvements:
 *
 * - Expiry is judged only from this process's monotonic clock: the lease is
 *   expired leaseDuration after this replica last SAW its record change. The
 *   remote renewTime is never compared with the local clock, so clock skew
 *   between replicas cannot make a live lease look expired.
 * - Standbys watch the Lease (the jittered poll stays as the fallback) and
 *   try to acquire the moment it is released, or at the exact instant it
 *   expires, instead of at their next poll.
 */
export class LeaseElector {
  readonly name: string;
  private readonly options: LeaseElectorOptions;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly stopController = new AbortController();
  private observed: Observed | undefined;
  private leading = false;
  private lastRenewStartMs = Number.NEGATIVE_INFINITY;
  /** When this standby first saw the lease free (released or expired), for the handover-gap metric. */
  private freeSinceMs: number | undefined;
  private wake: (() => void) | undefined;
  private watchController: AbortController | undefined;
  private running: Promise<void> | undefined;
  private attempting = false;
  private watchConnected = false;
  /** The last write against our copy of the lease got 409: read it before the next attempt. */
  private staleCopy = false;
  private handOverReason: string | undefined;

  constructor(options: LeaseElectorOptions) {
    validateLeaseTiming(options);
    this.options = options;
    this.name = options.name;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger.child({ lease: `${options.namespace}/${options.name}`, identity: options.identity });
  }

  /** Starts campaigning in the background. */
  start(): void {
    if (this.running) return;
    this.options.metrics.candidate(this.name);
    this.running = this.run();
  }

  isLeader(): boolean {
    return this.leading;
  }

  /** Monotonic time at which the last successful renewal (or acquisition) was sent. */
  lastRenewedAtMs(): number {
    return this.lastRenewStartMs;
  }

  /** Leading, or in the middle of an attempt to take the lease (so a replica never overshoots its share). */
  isLeaderOrAcquiring(): boolean {
    return this.leading || this.attempting;
  }

  /** Re-evaluates at once whether to campaign (the fair share changed). */
  nudge(): void {
    if (!this.leading) this.wake?.();
  }

  /**
   * Gives the lease to another replica and stays as a standby: stop leading
   * (which aborts the work under this lease), wait for beforeRelease, then
   * release. Used when this replica holds more than its fair share of shards.
   */
  handOver(reason: string): void {
    if (!this.leading || this.handOverReason !== undefined) return;
    this.handOverReason = reason;
    this.wake?.();
  }

  /** The holder this replica last saw, or undefined before the first read. */
  observedHolder(): string | undefined {
    return this.observed?.lease.spec?.holderIdentity ?? undefined;
  }

  /**
   * Stops campaigning and renewing. With `release`, a leader then gives the
   * lease up (holder "" and leaseDurationSeconds 1, only if it is still the
   * holder, bounded by the lease client's request timeout) so a standby takes over at once.
   */
  async stop(release: boolean): Promise<void> {
    this.stopController.abort();
    this.wake?.();
    this.watchController?.abort();
    await this.running;
    const wasLeading = this.leading;
    if (wasLeading) this.stopLeading('stopped');
    if (release && wasLeading) await this.release();
  }

  private get stopped(): boolean {
    return this.stopController.signal.aborted;
  }

  private async run(): Promise<void> {
    if (this.options.watch) this.watchLease();
    while (!this.stopped) {
      if (!(await this.acquire())) return;
      await this.renewUntilLost();
    }
  }

  /** Tries until this replica holds the lease; false if stopped first. */
  private async acquire(): Promise<boolean> {
    while (!this.stopped) {
      // While the watch is up it tells us of every change, so a lease that a live
      // holder keeps renewing needs no GET; the poll is the fallback.
      const worthReading = !this.watchConnected || !this.observed || this.available(this.clock.monotonicMs());
      if (worthReading && (await this.tryAcquireOrRenew()) && !this.stopped) {
        this.startLeading();
        return true;
      }
      await this.waitForChance();
    }
    return false;
  }

  /** Free, expired by our clock, or ours: worth an attempt. */
  private available(nowMs: number): boolean {
    const holder = this.observed?.lease.spec?.holderIdentity ?? '';
    return holder === '' || holder === this.options.identity || this.expired(nowMs);
  }

  private async renewUntilLost(): Promise<void> {
    while (!this.stopped && this.leading) {
      await this.pause(this.options.retryPeriodMs);
      if (this.stopped || !this.leading) return;
      if (this.handOverReason !== undefined) {
        await this.handOverNow(this.handOverReason);
        return;
      }
      // A renewal that hangs (a partition: no answer, no error) must not keep us leading past renewDeadline.
      const deadline = this.clock.setTimer(() => {
        if (!this.stopped) this.stopLeading(`no renewal succeeded within renewDeadline (${this.options.renewDeadlineMs} ms)`);
      }, this.lastRenewStartMs + this.options.renewDeadlineMs - this.clock.monotonicMs());
      const renewed = await this.tryAcquireOrRenew().finally(() => deadline.cancel());
      if (this.stopped) return;
      if (renewed) continue;
      const holder = this.observedHolder();
      if (holder && holder !== this.options.identity) {
        this.stopLeading(`another holder took the lease: ${holder}`);
      } else if (this.clock.monotonicMs() - this.lastRenewStartMs >= this.options.renewDeadlineMs) {
        this.stopLeading(`no renewal succeeded within renewDeadline (${this.options.renewDeadlineMs} ms)`);
      }
    }
  }

  private async handOverNow(reason: string): Promise<void> {
    this.handOverReason = undefined;
    this.stopLeading(`handing over: ${reason}`);
    await this.options.beforeRelease?.();
    await this.release();
  }

  private startLeading(): void {
    this.leading = true;
    this.expiryTimer?.cancel();
    this.options.metrics.leading(this.name, true);
    if (this.freeSinceMs !== undefined) {
      this.options.metrics.handoverGap(this.name, (this.clock.monotonicMs() - this.freeSinceMs) / 1000);
      this.freeSinceMs = undefined;
    }
    this.logger.info('started leading', { transitions: this.observed?.lease.spec?.leaseTransitions });
    this.options.onStartedLeading();
  }

  private stopLeading(reason: string): void {
    if (!this.leading) return;
    this.leading = false;
    this.lastRenewStartMs = Number.NEGATIVE_INFINITY;
    this.options.metrics.leading(this.name, false);
    // Stopping on shutdown or handing a shard over is routine; losing the lease is not.
    const routine = reason === 'stopped' || reason.startsWith('handing over');
    this.logger.log(routine ? 'info' : 'warn', 'stopped leading', { reason });
    this.options.onStoppedLeading(reason);
  }

  /**
   * One round of client-go's tryAcquireOrRenew: read, and write ourselves in
   * as holder if we hold it already, or it is free, or it has expired by our
   * own clock. Any failure is "not now"; the caller decides what that means.
   */
  private async tryAcquireOrRenew(): Promise<boolean> {
    const { leases, namespace, name, identity } = this.options;
    const startedMs = this.clock.monotonicMs();
    const now = new V1MicroTime(this.clock.wallNow().getTime());
    try {
      if (this.leading && (await this.renewFromObserved(now, startedMs))) return true;
      // A standby whose watch is up holds the latest record already: write against
      // it at once (the resourceVersion precondition catches a stale copy) and save
      // a round trip on every handover.
      const watched = !this.leading && this.watchConnected && !this.staleCopy ? this.observed?.lease : undefined;
      let current: V1Lease;
      try {
        current = watched ?? (await leases.readNamespacedLease({ namespace, name }));
        this.staleCopy = false;
      } catch (error) {
        if (!(error instanceof ApiException) || error.code !== 404) throw error;
        if (!this.claimAttempt()) return false;
        const created = await leases.createNamespacedLease({
          namespace,
          body: { metadata: { name, namespace }, spec: this.spec(now, now, 0) },
        }).finally(() => (this.attempting = false));
        this.observe(created, startedMs);
        this.lastRenewStartMs = startedMs;
        this.options.metrics.transitioned(this.name);
        return true;
      }
      // Seen when the answer arrived: a read that hung (a partition) may return a record written long after it was sent.
      this.observe(current, this.clock.monotonicMs());
      const spec = current.spec ?? {};
      const holder = spec.holderIdentity ?? '';
      const ours = holder === identity;
      if (!ours && holder !== '' && !this.expired(startedMs)) return false;
      if (!ours) this.freeSinceMs ??= startedMs;
      if (!ours && !this.claimAttempt()) return false;

      const transitions = (spec.leaseTransitions ?? 0) + (ours ? 0 : 1);
      const acquireTime = ours && spec.acquireTime ? new V1MicroTime(new Date(spec.acquireTime).getTime()) : now;
      const updated = await leases.replaceNamespacedLease({
        namespace,
        name,
        body: { ...current, spec: this.spec(now, acquireTime, transitions) },
      }).finally(() => (this.attempting = false));
      this.observe(updated, startedMs);
      this.lastRenewStartMs = startedMs;
      if (!ours) this.options.metrics.transitioned(this.name);
      return true;
    } catch (error) {
      if (error instanceof ApiException && error.code === 409) {
        this.staleCopy = true;
        this.logger.debug('lease changed under us (409); another replica wrote first');
      } else {
        this.logger.warn(`could not ${this.leading ? 'renew' : 'acquire'} lease ${namespace}/${name}`, { error: describe(error) });
      }
      return false;
    }
  }

  /**
   * Decides, synchronously right before the write, whether to try to take a
   * lease this replica does not hold — so several electors of one replica
   * that find leases free at the same moment never overshoot its share.
   */
  private claimAttempt(): boolean {
    if (this.options.shouldCampaign?.() === false) return false;
    this.attempting = true;
    return true;
  }

  /**
   * The leader's fast path (as in client-go): update the lease it last saw
   * without reading it first. False when that copy is stale (409); the
   * caller then reads and decides.
   */
  private async renewFromObserved(now: V1MicroTime, startedMs: number): Promise<boolean> {
    const lease = this.observed?.lease;
    if (!lease || lease.spec?.holderIdentity !== this.options.identity) return false;
    const { leases, namespace, name } = this.options;
    const acquireTime = lease.spec.acquireTime ? new V1MicroTime(new Date(lease.spec.acquireTime).getTime()) : now;
    try {
      const updated = await leases.replaceNamespacedLease({
        namespace,
        name,
        body: { ...lease, spec: this.spec(now, acquireTime, lease.spec.leaseTransitions ?? 0) },
      });
      this.observe(updated, startedMs);
      this.lastRenewStartMs = startedMs;
      return true;
    } catch (error) {
      if (error instanceof ApiException && error.code === 409) return false;
      throw error;
    }
  }

  private spec(renewTime: V1MicroTime, acquireTime: V1MicroTime, leaseTransitions: number): V1LeaseSpec {
    return {
      holderIdentity: this.options.identity,
      leaseDurationSeconds: Math.ceil(this.options.leaseDurationMs / 1000),
      acquireTime,
      renewTime,
      leaseTransitions,
    };
  }

  /** Holder "" and leaseDurationSeconds 1 (0 is rejected), with a resourceVersion precondition. */
  private async release(): Promise<void> {
    const { leases, namespace, name, identity } = this.options;
    const lease = this.observed?.lease;
    if (!lease || lease.spec?.holderIdentity !== identity) return;
    const now = new V1MicroTime(this.clock.wallNow().getTime());
    const started = this.clock.monotonicMs();
    try {
      await leases.replaceNamespacedLease({
        namespace,
        name,
        body: {
          ...lease,
          spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: now, acquireTime: now },
        },
      });
      this.logger.info('released lease', { durationMs: Math.round(this.clock.monotonicMs() - started) });
    } catch (error) {
      // A 409 means someone else holds it already; either way there is nothing left to give up.
      this.logger.warn(`could not release lease ${namespace}/${name}; standbys take it when it expires`, { error: describe(error) });
    }
  }

  private observe(lease: V1Lease, atMs: number): void {
    const record = recordOf(lease);
    if (this.observed?.record !== record) this.observed = { record, atMs, lease };
    else this.observed = { ...this.observed, lease };
    if ((lease.spec?.holderIdentity ?? '') === '') this.freeSinceMs ??= atMs;
    this.scheduleExpiryWake();
  }

  /** Expired: leaseDuration (as written on the lease) has passed since we saw its record change. */
  private expired(nowMs: number): boolean {
    if (!this.observed) return false;
    return nowMs >= this.observed.atMs + leaseDurationMsOf(this.observed.lease, this.options.leaseDurationMs);
  }

  private expiryTimer: Timer | undefined;

  /** A standby wakes at the instant the lease it watches would expire. */
  private scheduleExpiryWake(): void {
    this.expiryTimer?.cancel();
    if (this.leading || !this.observed) return;
    const dueMs = this.observed.atMs + leaseDurationMsOf(this.observed.lease, this.options.leaseDurationMs);
    const fire = (): void => {
      // Node's timers may fire a millisecond or so before performance.now() reaches the due time; waking then finds the lease unexpired.
      const earlyMs = dueMs - this.clock.monotonicMs();
      if (earlyMs > 0) {
        this.expiryTimer = this.clock.setTimer(fire, earlyMs);
        return;
      }
      if (!this.leading) this.freeSinceMs ??= dueMs;
      this.wake?.();
    };
    this.expiryTimer = this.clock.setTimer(fire, dueMs - this.clock.monotonicMs());
  }

  /** Waits one jittered retry period, or less when the watch or the expiry timer says the lease is free. */
  private waitForChance(): Promise<void> {
    return this.pause(this.options.retryPeriodMs * (1 + Math.random() * (JITTER_FACTOR - 1)));
  }

  /** Sleeps on the campaign's own timer, which `wake` cuts short. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        timer.cancel();
        if (this.wake === done) this.wake = undefined;
        resolve();
      };
      const timer = this.clock.setTimer(done, ms);
      this.wake = done;
      if (this.stopped) done();
    });
  }

  /** Watches the one Lease; every change updates what we observed and may wake the campaign. */
  private watchLease(): void {
    const { kubeConfig, namespace, name } = this.options;
    const loop = async (): Promise<void> => {
      let failures = 0;
      while (!this.stopped) {
        let over = false;
        const ended = await new Promise<unknown>((settle) => {
          const resolve = (value: unknown): void => {
            over = true;
            settle(value);
          };
          new Watch(kubeConfig)
            .watch(`/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`, { fieldSelector: `metadata.name=${name}` },
              (type: string, lease: V1Lease) => {
                failures = 0;
                if (type !== 'ADDED' && type !== 'MODIFIED') return;
                const before = this.observed?.record;
                this.observe(lease, this.clock.monotonicMs());
                if (this.leading || before === this.observed?.record) return;
                if ((lease.spec?.holderIdentity ?? '') === '') this.wake?.();
              },
              resolve)
            .then((c) => {
              this.watchController = c;
              this.watchConnected = !over;
              if (this.stopped) c.abort();
            }, resolve);
        });
        this.watchConnected = false;
        if (this.stopped) return;
        // client-node ends a watch that was silent for 30 s (a released lease nobody renews): not a failure.
        if (ended && (ended as Error).name !== 'TimeoutError') {
          failures++;
          this.logger.debug('lease watch ended; polling continues meanwhile', { error: describe(ended) });
          await sleep(this.clock, Math.min(this.options.retryPeriodMs * failures, this.options.leaseDurationMs), this.stopController.signal)
            .catch(() => undefined);
        }
      }
    };
    void loop();
  }
}

/** The fields whose change proves the holder is alive (client-go compares the whole record). */
function recordOf(lease: V1Lease): string {
  const s = lease.spec ?? {};
  return JSON.stringify([s.holderIdentity ?? '', s.leaseDurationSeconds, String(s.renewTime ?? ''), String(s.acquireTime ?? ''), s.leaseTransitions]);
}

function leaseDurationMsOf(lease: V1Lease, fallbackMs: number): number {
  const seconds = lease.spec?.leaseDurationSeconds;
  return typeof seconds === 'number' && seconds > 0 ? seconds * 1000 : fallbackMs;
}

function describe(error: unknown): string {
  if (error instanceof ApiException) return `HTTP ${error.code}: ${typeof error.body === 'string' ? error.body : JSON.stringify(error.body)}`;
  return error instanceof Error ? error.message : String(error);
}
