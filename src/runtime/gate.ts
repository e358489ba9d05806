import { systemClock, type Clock } from './clock.ts';
import type { WorkPermit } from './controller.ts';
import { NotLeaderError } from './errors.ts';

/**
 * The shard of an object key: FNV-1a (32-bit) of "namespace/name", modulo the
 * shard count. Stable across processes, versions and restarts, so every
 * replica agrees on which lease covers which object.
 */
export function shardOf(key: string, shards: number): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(key, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % shards;
}

/** What the gate needs to know of an elector: when it last proved it leads, and which term it leads in. */
export interface RenewalClock {
  lastRenewedAtMs(): number;
  /** `<lease>@<resourceVersion>` of the write that began the term. */
  term(): string | undefined;
}

interface Term {
  renewals: RenewalClock;
  abort: AbortController;
}

/**
 * What a write needs from the gate to go out: the term's signal (it aborts
 * when the term ends), the latest moment the request may still run (the
 * term's end if no renewal succeeds meanwhile: last renewal sent +
 * renewDeadline, on the monotonic clock), and the term's identity, which the
 * request carries in its User-Agent for the audit log.
 */
export interface WritePermit {
  signal: AbortSignal;
  deadlineMs: number;
  term: string | undefined;
}

/**
 * The write gate. Work on a key may start, and a write may go out, only while
 * this replica leads the key's shard AND its last successful renewal was sent
 * less than renewDeadline ago by the monotonic clock — so a leader cut off
 * from the API server stops writing before any standby can see the lease
 * expire (leaseDuration > renewDeadline). Closing the gate (shutdown) refuses
 * everything from then on. A term's signal aborts the reconciles running
 * under it when leadership of its shard ends.
 */
export class LeaseGate implements WorkPermit {
  private readonly shards: number;
  private readonly renewDeadlineMs: number;
  private readonly clock: Clock;
  private readonly terms = new Map<number, Term>();
  private closedReason: string | undefined;

  constructor(options: { shards: number; renewDeadlineMs: number; clock?: Clock }) {
    this.shards = options.shards;
    this.renewDeadlineMs = options.renewDeadlineMs;
    this.clock = options.clock ?? systemClock;
  }

  shardOf(key: string): number {
    return shardOf(key, this.shards);
  }

  /** Leadership of `shard` began; `renewals` tells from now on when it last renewed. */
  started(shard: number, renewals: RenewalClock): void {
    this.terms.get(shard)?.abort.abort(new NotLeaderError(`term of shard ${shard} replaced`));
    this.terms.set(shard, { renewals, abort: new AbortController() });
  }

  /** Leadership of `shard` ended: abort the work running under it. */
  stopped(shard: number, reason: string): void {
    const term = this.terms.get(shard);
    this.terms.delete(shard);
    term?.abort.abort(new NotLeaderError(`lost leadership of shard ${shard}: ${reason}`));
  }

  /** Refuses every write from now on (shutdown step 3). */
  close(reason: string): void {
    this.closedReason = reason;
    for (const shard of [...this.terms.keys()]) this.stopped(shard, reason);
  }

  leadsShard(shard: number): boolean {
    return this.refusal(shard) === undefined;
  }

  acquire(key: string): AbortSignal | undefined {
    const shard = this.shardOf(key);
    return this.refusal(shard) === undefined ? this.terms.get(shard)?.abort.signal : undefined;
  }

  /** The permit for a write for `key` now; throws NotLeaderError when it may not go out. */
  permitFor(key: string): WritePermit {
    const shard = this.shardOf(key);
    const refusal = this.refusal(shard);
    if (refusal) throw new NotLeaderError(`write for ${key} refused: ${refusal}`);
    const term = this.terms.get(shard)!;
    return { signal: term.abort.signal, deadlineMs: term.renewals.lastRenewedAtMs() + this.renewDeadlineMs, term: term.renewals.term() };
  }

  private refusal(shard: number): string | undefined {
    if (this.closedReason !== undefined) return `the write gate is closed (${this.closedReason})`;
    const term = this.terms.get(shard);
    if (!term) return `this replica does not lead shard ${shard}`;
    const sinceRenewal = this.clock.monotonicMs() - term.renewals.lastRenewedAtMs();
    if (sinceRenewal >= this.renewDeadlineMs) {
      return `last lease renewal of shard ${shard} was ${Math.round(sinceRenewal)} ms ago (renewDeadline ${this.renewDeadlineMs} ms)`;
    }
    return undefined;
  }
}

/** For a single replica run without leader election: every key, always. */
export class OpenGate implements WorkPermit {
  private readonly abort = new AbortController();
  private closedReason: string | undefined;

  acquire(): AbortSignal | undefined {
    return this.closedReason === undefined ? this.abort.signal : undefined;
  }

  permitFor(key: string): WritePermit {
    if (this.closedReason !== undefined) throw new NotLeaderError(`write for ${key} refused: the write gate is closed (${this.closedReason})`);
    return { signal: this.abort.signal, deadlineMs: Number.POSITIVE_INFINITY, term: undefined };
  }

  close(reason: string): void {
    this.closedReason = reason;
    this.abort.abort(new NotLeaderError(`the write gate is closed (${reason})`));
  }
}

export type WriteGate = LeaseGate | OpenGate;
