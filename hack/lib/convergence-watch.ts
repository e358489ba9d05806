/**
 * Watches the objects of one kind in one namespace through the project's
 * Informer (a watch, no polling; a short reconnect backoff, so that an API
 * server outage does not leave the measurement behind) and tells when they
 * have converged, as the kind's profile judges it. It also records when each
 * object's status.observedGeneration moved, which is when the operator's
 * status write for that generation became visible to a client. The study and
 * the benchmarks measure with it.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { Informer } from '../../src/runtime/informer.ts';
import { KubeClient } from '../../src/runtime/kube.ts';
import { createLogger } from '../../src/runtime/logging.ts';
import type { KindProfile, StoredObject } from './kind-profile.ts';

/** A status.observedGeneration the watch saw, and when. */
export interface Observation {
  at: number;
  observedGeneration: number;
}

export interface ConvergenceTarget {
  /** At least this many objects cached (the creates may still be reaching the watch). */
  count?: number;
  /** For each name, at least this generation observed (a fresh read can be ahead of the watch). */
  atLeast?: ReadonlyMap<string, number>;
}

export class ConvergenceWatch {
  readonly observations = new Map<string, Observation[]>();
  private readonly informer: Informer<StoredObject>;
  private readonly kind: string;
  private readonly now: () => number;
  /** Names cached, and those not converged: kept per event, so that a check scans nothing. */
  private readonly cached = new Set<string>();
  private readonly behind = new Set<string>();
  private readonly listeners = new Set<() => void>();

  /** `now` stamps observations and convergence; default performance.now(). */
  constructor(options: { kubeConfig: KubeConfig; namespace: string; profile: KindProfile; now?: () => number }) {
    const { profile } = options;
    const { apiVersion, kind, plural } = profile.resource;
    this.kind = kind;
    this.now = options.now ?? (() => performance.now());
    this.informer = new Informer<StoredObject>({
      client: new KubeClient(options.kubeConfig, { userAgent: 'ha-operator-convergence-watch' }),
      resource: { apiVersion, kind, plural, namespace: options.namespace },
      logger: createLogger({ level: 'error', format: 'json' }),
      backoff: { initialMs: 100, maxMs: 500 },
    });
    this.informer.subscribe((event) => {
      if (event.type === 'resync') return;
      const object = event.object;
      const name = object.metadata.name;
      if (event.type === 'deleted') {
        this.cached.delete(name);
        this.behind.delete(name);
      } else {
        this.cached.add(name);
        const observed = profile.observedGeneration(object);
        if (profile.converged(object)) this.behind.delete(name);
        else this.behind.add(name);
        if (typeof observed === 'number') {
          const list = this.observations.get(name) ?? [];
          if (list.at(-1)?.observedGeneration !== observed) list.push({ at: this.now(), observedGeneration: observed });
          this.observations.set(name, list);
        }
      }
      for (const listener of this.listeners) listener();
    });
  }

  async start(): Promise<void> {
    this.informer.start();
    await this.informer.whenSynced();
  }

  stop(): Promise<void> {
    return this.informer.stop();
  }

  /** Names of the cached objects that have not converged. */
  pending(): string[] {
    return [...this.behind].sort();
  }

  /**
   * Resolves with now() at the event that made every cached object converged
   * and `target` met, or rejects after `timeoutMs` naming the objects behind.
   */
  untilConverged(timeoutMs: number, target: ConvergenceTarget = {}): Promise<number> {
    const lagging = (): string[] => [
      ...this.behind,
      ...[...(target.atLeast ?? [])]
        .filter(([name, generation]) => (this.observations.get(name)?.at(-1)?.observedGeneration ?? 0) < generation)
        .map(([name]) => name),
    ];
    const enough = (): boolean => this.cached.size >= (target.count ?? 0);
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (this.behind.size > 0 || !enough() || lagging().length > 0) return;
        done();
        resolve(this.now());
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.kind} objects not converged after ${timeoutMs} ms (${this.cached.size} cached${target.count ? ` of ${target.count}` : ''}): ${[...new Set(lagging())].sort().slice(0, 20).join(', ')}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
      check();
    });
  }
}
