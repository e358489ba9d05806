import { sleep, systemClock, type Clock, type Timer } from './clock.ts';
import { isStatus } from './kube.ts';
import { microTime, type Lease, type LeaseClient, type LeaseSpec } from './leases.ts';
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

/**
 * The longest one turn of the election loop takes when nothing is wrong: a
 * jittered retry period, then an attempt bounded by renewDeadline (or, for a
 * hand-over, the drain and the release, each bounded by renewDeadline).
 * A loop silent for longer than this (plus a margin) is stuck.
 */
export function maxLoopTurnMs(t: LeaseTiming): number {
  // A hand-over's turn is the longest: the wait, the shard's drain and the release, each bounded by renewDeadline.
  return t.retryPeriodMs * JITTER_FACTOR + 2 * t.renewDeadlineMs;
}

export interface LeaseElectorOptions extends LeaseTiming {
  /**
   * Lease calls. Give it a request timeout no longer than renewDeadline (the
   * manager does): a request lost in a partition then cannot hold up a
   * renewal, a campaign or the release on shutdown.
   */
  leases: LeaseClient;
  name: string;
  identity: string;
  /** Labels written on the Lease with every write of this elector. */
  labels?: Record<string, string>;
  /** Annotations written with every write of this elector: the holder's process (src/runtime/holder.ts). */
  annotations?: Record<string, string>;
  /**
   * Why the API server shows the process holding `lease` as ended, if it does
   * (holder.ts says what counts). A standby then takes the lease without
   * waiting for it to expire, by a write conditional on the resourceVersion
   * it saw with that evidence: a holder that renewed since is alive, and the
   * write fails with 409.
   */
  holderEnded?(lease: Lease): string | undefined;
  /** Standbys watch the Lease and act on a release or expiry at once; false polls only, like client-go. */
  watch: boolean;
  logger: Logger;
  metrics: LeaderMetrics;
  clock?: Clock;
  onStartedLeading(): void;
  /**
   * Consulted before each attempt to take the lease from nobody (sharding:
   * false while this replica already holds its fair share, or while replicas
   * of another shard scheme are live).
   */
  shouldCampaign?(): boolean;
  /** Awaited between giving up leadership in a hand-over and releasing the lease. */
  beforeRelease?(): Promise<void>;
  /** `reason` says why: renewal deadline passed, another holder, or released on shutdown. */
  onStoppedLeading(reason: string): void;
}

/** What this replica last saw of the Lease: the record, when it last changed (monotonic), and whether it has been deleted since. */
type Observed = { record: string; atMs: number; lease: Lease; deleted: boolean };

/**
 * Leader election on a coordination.k8s.io/v1 Lease with client-go's
 * semantics — create or take over with a resourceVersion precondition, renew
 * every retryPeriod, stop leading when no renewal succeeded within
 * renewDeadline, release by writing an empty holder — and these departures:
 *
 * - Expiry is judged only from this process's monotonic clock: the lease is
 *   expired leaseDuration after this replica last SAW its record change. The
 *   remote renewTime is never compared with the local clock, so clock skew
 *   between replicas cannot make a live lease look expired.
 * - Everyone watches the Lease (the jittered poll stays as the fallback).
 *   Standbys try to acquire the moment it is released, or at the exact
 *   instant it expires; a leader stops leading the moment the watch shows
 *   another holder or the Lease deleted, not at its next renewal. A Lease
 *   that disappears is created again only once the holder last seen on it
 *   would have expired.
 * - Each term has an identity, `<lease>@<resourceVersion>` of the write that
 *   began it, which the write gate puts on every write made under it (the
 *   User-Agent), so the API server's audit log tells which term made a write.
 * - stop() ends the lease request in flight and releases the lease if this
 *   replica may hold it — also when the stop came in the middle of an
 *   acquisition — re-reading it after a 409.
 */
export class LeaseElector {
  readonly name: string;
  private readonly options: LeaseElectorOptions;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly stopController = new AbortController();
  private observed: Observed | undefined;
  private leading = false;
  private campaigning = true;
  private lastRenewStartMs = Number.NEGATIVE_INFINITY;
  /** resourceVersion of this elector's last successful write: watch events at or before it are old news. */
  private lastWriteVersion: string | undefined;
  private currentTerm: string | undefined;
  /** When this standby first saw the lease free (released or expired), for the handover-gap metric. */
  private freeSinceMs: number | undefined;
  private wake: (() => void) | undefined;
  private running: Promise<void> | undefined;
  private attempting = false;
  /** A write of the lease is on its way: if stopped now, it may have committed. */
  private writing = false;
  private watchConnected = false;
  /** The last write against our copy of the lease got 409: read it before the next attempt. */
  private staleCopy = false;
  private handOverReason: string | undefined;
  private lastTurnMs: number;
  private expiryTimer: Timer | undefined;

  constructor(options: LeaseElectorOptions) {
    validateLeaseTiming(options);
    this.options = options;
    this.name = options.name;
    this.clock = options.clock ?? systemClock;
    this.lastTurnMs = this.clock.monotonicMs();
    this.logger = options.logger.child({ lease: `${options.leases.namespace}/${options.name}`, identity: options.identity });
  }

  /** Starts campaigning in the background. */
  start(): void {
    if (this.running) return;
    this.options.metrics.candidate(this.name);
    this.lastTurnMs = this.clock.monotonicMs();
    this.running = this.run();
  }

  isLeader(): boolean {
    return this.leading;
  }

  /** Monotonic time at which the last successful renewal (or acquisition) was sent. */
  lastRenewedAtMs(): number {
    return this.lastRenewStartMs;
  }

  /** `<lease>@<resourceVersion>` of the write that began the current term; undefined while not leading. */
  term(): string | undefined {
    return this.leading ? this.currentTerm : undefined;
  }

  /** Leading, or in the middle of an attempt to take the lease (so a replica never overshoots its share). */
  isLeaderOrAcquiring(): boolean {
    return this.leading || this.attempting;
  }

  /** How long ago the election loop last finished a turn; large when it is stuck. */
  sinceLastTurnMs(): number {
    return this.running ? this.clock.monotonicMs() - this.lastTurnMs : 0;
  }

  /** Re-evaluates at once whether to campaign (the fair share changed). */
  nudge(): void {
    if (!this.leading) this.wake?.();
  }

  /**
   * No more attempts to take the lease (shutdown: a replica on its way out
   * must not win a lease only to hold it until it exits). A held lease is
   * still renewed until stop().
   */
  stopCampaigning(): void {
    this.campaigning = false;
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
   * Stops campaigning and renewing, ending the lease request in flight. With
   * `release`, the lease is then given up (holder "" and leaseDurationSeconds
   * 1, only if this replica is still the holder) so a standby takes over at
   * once. Bounded by the lease client's request timeout per call.
   */
  async stop(release: boolean): Promise<void> {
    // A write on its way when we stop may still commit: then our copy of the lease is stale.
    const uncertain = this.writing;
    this.campaigning = false;
    this.stopController.abort(new Error('elector stopped'));
    this.wake?.();
    this.expiryTimer?.cancel();
    await this.running;
    if (this.leading) this.stopLeading('stopped');
    if (release) await this.release(uncertain);
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
      if (this.campaigning && worthReading && (await this.tryAcquireOrRenew()) && !this.stopped) {
        this.startLeading();
        return true;
      }
      this.lastTurnMs = this.clock.monotonicMs();
      await this.waitForChance();
    }
    return false;
  }

  /** Free, expired by our clock, gone, ours, or its holder's process seen ended: worth an attempt. */
  private available(nowMs: number): boolean {
    const holder = this.observed?.lease.spec?.holderIdentity ?? '';
    return this.observed?.deleted === true || holder === '' || holder === this.options.identity || this.expired(nowMs)
      || this.options.holderEnded?.(this.observed!.lease) !== undefined;
  }

  private async renewUntilLost(): Promise<void> {
    while (!this.stopped && this.leading) {
      this.lastTurnMs = this.clock.monotonicMs();
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
      if (this.stopped || !this.leading) return;
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
    this.stopLeading(`handing over: ${reason}`);
    await this.options.beforeRelease?.();
    if (!this.stopped) await this.release(false);
  }

  private startLeading(): void {
    this.leading = true;
    this.expiryTimer?.cancel();
    this.options.metrics.leading(this.name, true);
    if (this.freeSinceMs !== undefined) {
      this.options.metrics.handoverGap(this.name, (this.clock.monotonicMs() - this.freeSinceMs) / 1000);
      this.freeSinceMs = undefined;
    }
    this.logger.info('started leading', { term: this.currentTerm, transitions: this.observed?.lease.spec?.leaseTransitions });
    this.options.onStartedLeading();
  }

  private stopLeading(reason: string): void {
    if (!this.leading) return;
    this.leading = false;
    // A hand-over asked for in this term is not carried into the next one.
    this.handOverReason = undefined;
    this.lastRenewStartMs = Number.NEGATIVE_INFINITY;
    this.options.metrics.leading(this.name, false);
    // Stopping on shutdown or handing a shard over is routine; losing the lease is not.
    const routine = reason === 'stopped' || reason.startsWith('handing over');
    this.logger.log(routine ? 'info' : 'warn', 'stopped leading', { reason, term: this.currentTerm });
    this.options.onStoppedLeading(reason);
    this.scheduleExpiryWake();
  }

  /**
   * One round of client-go's tryAcquireOrRenew: read, and write ourselves in
   * as holder if we hold it already, or it is free, or it has expired by our
   * own clock. Any failure is "not now"; the caller decides what that means.
   */
  private async tryAcquireOrRenew(): Promise<boolean> {
    const { leases, name, identity } = this.options;
    // One attempt (a renewal, or a read then a write) ends within renewDeadline, as in client-go.
    const signal = AbortSignal.any([this.stopController.signal, AbortSignal.timeout(this.options.renewDeadlineMs)]);
    const startedMs = this.clock.monotonicMs();
    const now = microTime(this.clock.wallNow());
    try {
      if (this.leading && (await this.renewFromObserved(now, startedMs, signal))) return true;
      // A standby whose watch is up holds the latest record already: write against
      // it at once (the resourceVersion precondition catches a stale copy) and save
      // a round trip on every handover.
      const watched = !this.leading && this.watchConnected && !this.staleCopy && !this.observed?.deleted ? this.observed?.lease : undefined;
      const current = watched ?? (await leases.read(name, signal));
      this.staleCopy = false;
      if (!current) return await this.createLease(now, startedMs, signal);
      // Seen when the answer arrived: a read that hung (a partition) may return a record written long after it was sent.
      if (!watched) this.observe(current, this.clock.monotonicMs());
      const spec = current.spec ?? {};
      const holder = spec.holderIdentity ?? '';
      const ours = holder === identity;
      const ended = !ours && holder !== '' && !this.expired(startedMs) ? this.options.holderEnded?.(current) : undefined;
      if (!ours && holder !== '' && !this.expired(startedMs) && ended === undefined) return false;
      if (!ours) this.freeSinceMs ??= startedMs;
      const takingOver = !ours || !this.leading;
      if (takingOver && !this.claimAttempt()) return false;
      if (ended !== undefined) {
        this.logger.info('taking over before the lease expires: its holder\'s process has ended', { holder, evidence: ended, resourceVersion: current.metadata.resourceVersion });
      }

      const transitions = (spec.leaseTransitions ?? 0) + (ours ? 0 : 1);
      const acquireTime = ours && spec.acquireTime ? spec.acquireTime : now;
      const updated = await this.write(() => leases.replace({ ...current, metadata: this.withHolderMetadata(current.metadata), spec: this.spec(now, acquireTime, transitions) }, signal));
      this.wrote(updated, startedMs, takingOver);
      if (!ours) this.options.metrics.transitioned(this.name);
      return true;
    } catch (error) {
      if (isStatus(error, 409)) {
        this.staleCopy = true;
        this.logger.debug('lease changed under us (409); another replica wrote first');
      } else if (!this.stopped) {
        this.logger.warn(`could not ${this.leading ? 'renew' : 'acquire'} the lease`, { error: (error as Error).message });
      }
      return false;
    } finally {
      this.attempting = false;
    }
  }

  /**
   * There is no Lease. Create it — unless the holder last seen on it would not
   * have expired yet: a Lease deleted under a live leader must not give a
   * second replica a term while the first still writes.
   */
  private async createLease(now: string, startedMs: number, signal: AbortSignal): Promise<boolean> {
    const seen = this.observed;
    if (seen && (seen.lease.spec?.holderIdentity ?? '') !== '' && !this.expired(startedMs)) {
      if (!seen.deleted) this.observed = { ...seen, deleted: true };
      this.logger.debug('the lease is gone, but the holder last seen on it has not expired yet; waiting', { holder: seen.lease.spec?.holderIdentity });
      return false;
    }
    if (!this.claimAttempt()) return false;
    const created = await this.write(() => this.options.leases.create({
      metadata: this.withHolderMetadata({ name: this.options.name }),
      spec: this.spec(now, now, 0),
    }, signal));
    this.wrote(created, startedMs, true);
    this.options.metrics.transitioned(this.name);
    return true;
  }

  private async write(send: () => Promise<Lease>): Promise<Lease> {
    this.writing = true;
    try {
      return await send();
    } finally {
      this.writing = false;
    }
  }

  /** Bookkeeping after a successful write: what we saw, when our term began, our renewal time. */
  private wrote(lease: Lease, startedMs: number, termBegins: boolean): void {
    this.observe(lease, startedMs);
    this.lastWriteVersion = lease.metadata.resourceVersion;
    this.lastRenewStartMs = startedMs;
    if (termBegins) this.currentTerm = `${this.options.name}@${lease.metadata.resourceVersion ?? ''}`;
  }

  /**
   * Decides, synchronously right before the write, whether to try to take a
   * lease this replica does not hold — so several electors of one replica
   * that find leases free at the same moment never overshoot its share.
   */
  private claimAttempt(): boolean {
    if (!this.campaigning || this.stopped || this.options.shouldCampaign?.() === false) return false;
    this.attempting = true;
    return true;
  }

  /**
   * The leader's fast path (as in client-go): update the lease it last saw
   * without reading it first. False when that copy is stale (409); the
   * caller then reads and decides.
   */
  private async renewFromObserved(now: string, startedMs: number, signal: AbortSignal): Promise<boolean> {
    const lease = this.observed?.lease;
    if (!lease || this.observed?.deleted || lease.spec?.holderIdentity !== this.options.identity) return false;
    const acquireTime = lease.spec.acquireTime ?? now;
    try {
      const updated = await this.write(() => this.options.leases.replace(
        { ...lease, metadata: this.withHolderMetadata(lease.metadata), spec: this.spec(now, acquireTime, lease.spec?.leaseTransitions ?? 0) },
        signal,
      ));
      this.wrote(updated, startedMs, false);
      return true;
    } catch (error) {
      if (isStatus(error, 409)) return false;
      throw error;
    }
  }

  private spec(renewTime: string, acquireTime: string, leaseTransitions: number): LeaseSpec {
    return {
      holderIdentity: this.options.identity,
      leaseDurationSeconds: Math.ceil(this.options.leaseDurationMs / 1000),
      acquireTime,
      renewTime,
      leaseTransitions,
    };
  }

  private withHolderMetadata(metadata: Lease['metadata']): Lease['metadata'] {
    const { labels, annotations } = this.options;
    return {
      ...metadata,
      ...(labels ? { labels: { ...metadata.labels, ...labels } } : {}),
      ...(annotations ? { annotations: { ...metadata.annotations, ...annotations } } : {}),
    };
  }

  /**
   * Holder "" and leaseDurationSeconds 1 (0 is rejected), with a
   * resourceVersion precondition, if this replica holds the lease. Our copy
   * may be stale (a write in flight when we stopped may have committed, or a
   * 409 says it changed): then read it first, and release what it shows if
   * it is still ours. Gives up after a few tries or when it is someone else's.
   */
  private async release(uncertain: boolean): Promise<void> {
    const { leases, name, identity } = this.options;
    let lease = this.observed?.deleted ? undefined : this.observed?.lease;
    let fresh = !uncertain;
    const started = this.clock.monotonicMs();
    // However many tries it takes, the release ends within renewDeadline (the shutdown budget counts on it).
    const signal = AbortSignal.timeout(this.options.renewDeadlineMs);
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        if (!fresh) {
          lease = await leases.read(name, signal);
          fresh = true;
          if (lease) this.observe(lease, this.clock.monotonicMs());
        }
        if (!lease || lease.spec?.holderIdentity !== identity) return;
        const now = microTime(this.clock.wallNow());
        const released = await leases.replace({
          ...lease,
          spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: now, acquireTime: now },
        }, signal);
        this.observe(released, this.clock.monotonicMs());
        this.logger.info('released lease', { term: this.currentTerm, durationMs: Math.round(this.clock.monotonicMs() - started) });
        return;
      } catch (error) {
        if (isStatus(error, 409)) {
          fresh = false;
          continue;
        }
        this.logger.warn('could not release the lease; standbys take it when it expires', { error: (error as Error).message });
        return;
      }
    }
    this.logger.warn('could not release the lease: it kept changing under us (409); standbys take it when it expires');
  }

  private observe(lease: Lease, atMs: number): void {
    const record = recordOf(lease);
    if (this.observed?.record !== record || this.observed.deleted) this.observed = { record, atMs, lease, deleted: false };
    else this.observed = { ...this.observed, lease };
    if ((lease.spec?.holderIdentity ?? '') === '') this.freeSinceMs ??= atMs;
    this.scheduleExpiryWake();
  }

  /** Expired: leaseDuration (as written on the lease) has passed since we saw its record change. */
  private expired(nowMs: number): boolean {
    if (!this.observed) return false;
    return nowMs >= this.observed.atMs + leaseDurationMsOf(this.observed.lease, this.options.leaseDurationMs);
  }

  /** A standby wakes at the instant the lease it watches would expire. */
  private scheduleExpiryWake(): void {
    this.expiryTimer?.cancel();
    if (this.leading || !this.observed || this.stopped) return;
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

  /** Watches the one Lease; every change updates what we observed, may wake the campaign, and may end our term. */
  private watchLease(): void {
    const loop = async (): Promise<void> => {
      let failures = 0;
      while (!this.stopped) {
        try {
          await this.options.leases.watch({ fieldSelector: `metadata.name=${this.options.name}` }, this.stopController.signal, (event) => {
            failures = 0;
            this.watchConnected = true;
            if (event.type === 'ADDED' || event.type === 'MODIFIED') this.watched(event.object);
            else if (event.type === 'DELETED') this.watchedDeletion(event.object);
          });
        } catch (error) {
          failures++;
          this.logger.debug('lease watch ended; polling continues meanwhile', { error: (error as Error).message });
        } finally {
          this.watchConnected = false;
        }
        if (failures > 0 && !this.stopped) {
          await sleep(this.clock, Math.min(this.options.retryPeriodMs * failures, this.options.leaseDurationMs), this.stopController.signal)
            .catch(() => undefined);
        }
      }
    };
    void loop();
  }

  private watched(lease: Lease): void {
    const before = this.observed?.record;
    if (this.leading) {
      // Our own renewals come back on the watch too, and a watch may lag our writes: only a newer record counts.
      if (!isNewer(lease.metadata.resourceVersion, this.lastWriteVersion)) return;
      this.observe(lease, this.clock.monotonicMs());
      const holder = lease.spec?.holderIdentity ?? '';
      if (holder !== this.options.identity) this.stopLeading(`the lease watch shows another holder: ${holder || '(none)'}`);
      return;
    }
    this.observe(lease, this.clock.monotonicMs());
    if (before !== this.observed?.record && (lease.spec?.holderIdentity ?? '') === '') this.wake?.();
  }

  private watchedDeletion(lease: Lease): void {
    if (this.observed) this.observed = { ...this.observed, deleted: true };
    if (this.leading && isNewer(lease.metadata.resourceVersion, this.lastWriteVersion)) this.stopLeading('the lease watch shows the lease deleted');
  }
}

/**
 * Whether resourceVersion `a` is later than `b`. resourceVersions are opaque
 * to clients in general; on etcd they are its revision, a decimal number.
 * When either is not a number, `a` is taken as newer (act on the event).
 */
function isNewer(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined || !/^\d+$/.test(a) || !/^\d+$/.test(b)) return true;
  return BigInt(a) > BigInt(b);
}

/** The fields whose change proves the holder is alive (client-go compares the whole record). */
function recordOf(lease: Lease): string {
  const s = lease.spec ?? {};
  return JSON.stringify([s.holderIdentity ?? '', s.leaseDurationSeconds, s.renewTime ?? '', s.acquireTime ?? '', s.leaseTransitions]);
}

function leaseDurationMsOf(lease: Lease, fallbackMs: number): number {
  const seconds = lease.spec?.leaseDurationSeconds;
  return typeof seconds === 'number' && seconds > 0 ? seconds * 1000 : fallbackMs;
}
