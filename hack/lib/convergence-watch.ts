/**
 * Watches the Websites of one namespace through the project's Informer (a
 * watch, no polling; a short reconnect backoff, so that an API server outage
 * does not leave the measurement behind) and tells when they have converged:
 * status.observedGeneration == metadata.generation. It also records when each
 * Website's observedGeneration moved, which is when the operator's status
 * write for that generation became visible to a client. The study and the
 * benchmarks measure with it.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { Informer } from '../../src/runtime/informer.ts';
import { KubeClient } from '../../src/runtime/kube.ts';
import { createLogger } from '../../src/runtime/logging.ts';
import { WEBSITE_API_VERSION, WEBSITE_KIND, WEBSITE_PLURAL, type Website } from '../../src/website/types.ts';

/** A status.observedGeneration the watch saw, and when. */
export interface Observation {
  at: number;
  observedGeneration: number;
}

export interface ConvergenceTarget {
  /** At least this many Websites cached (the creates may still be reaching the watch). */
  count?: number;
  /** For each name, at least this generation observed (a fresh read can be ahead of the watch). */
  atLeast?: ReadonlyMap<string, number>;
}

export class ConvergenceWatch {
  readonly observations = new Map<string, Observation[]>();
  private readonly informer: Informer<Website>;
  private readonly now: () => number;
  /** Names cached, and those whose status has not caught up with their generation: kept per event, so that a check scans nothing. */
  private readonly cached = new Set<string>();
  private readonly behind = new Set<string>();
  private readonly listeners = new Set<() => void>();

  /** `now` stamps observations and convergence; default performance.now(). */
  constructor(options: { kubeConfig: KubeConfig; namespace: string; now?: () => number }) {
    this.now = options.now ?? (() => performance.now());
    this.informer = new Informer<Website>({
      client: new KubeClient(options.kubeConfig, { userAgent: 'ha-operator-convergence-watch' }),
      resource: { apiVersion: WEBSITE_API_VERSION, kind: WEBSITE_KIND, plural: WEBSITE_PLURAL, namespace: options.namespace },
      logger: createLogger({ level: 'error', format: 'json' }),
      backoff: { initialMs: 100, maxMs: 500 },
    });
    this.informer.subscribe((event) => {
      if (event.type === 'resync') return;
      const website = event.object;
      const name = website.metadata.name;
      if (event.type === 'deleted') {
        this.cached.delete(name);
        this.behind.delete(name);
      } else {
        this.cached.add(name);
        const observed = website.status?.observedGeneration;
        if (observed === website.metadata.generation) this.behind.delete(name);
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

  /** Names of the cached Websites whose status has not caught up with their generation. */
  pending(): string[] {
    return [...this.behind].sort();
  }

  /**
   * Resolves with now() at the event that made every cached Website converged
   * and `target` met, or rejects after `timeoutMs` naming the Websites behind.
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
        reject(new Error(`Websites not converged after ${timeoutMs} ms (${this.cached.size} cached${target.count ? ` of ${target.count}` : ''}): ${[...new Set(lagging())].sort().slice(0, 20).join(', ')}`));
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
