/**
 * Informers a harness starts and stops together, and one way to wait on
 * them: until() tests its condition at once and at every event of any of
 * them — never by polling. The crash-failover benchmark and the study on
 * real nodes watch the cluster with it.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { Informer, type CachedObject, type ResourceRef } from '../../src/runtime/informer.ts';
import { KubeClient } from '../../src/runtime/kube.ts';
import { createLogger } from '../../src/runtime/logging.ts';

export class InformerSet {
  private readonly client: KubeClient;
  private readonly logger = createLogger({ level: 'error', format: 'json' });
  private readonly informers: Informer<CachedObject>[] = [];
  private readonly waiters = new Set<() => void>();

  constructor(kubeConfig: KubeConfig, userAgent: string) {
    this.client = new KubeClient(kubeConfig, { userAgent });
  }

  /** A cache of `resource`, started with the others; a short reconnect backoff, so that a wait is not held up by an outage. */
  protected watch<T extends CachedObject>(resource: ResourceRef): Informer<T> {
    const informer = new Informer<T>({ client: this.client, logger: this.logger, backoff: { initialMs: 100, maxMs: 500 }, resource });
    informer.subscribe(() => {
      for (const waiter of [...this.waiters]) waiter();
    });
    this.informers.push(informer as unknown as Informer<CachedObject>);
    return informer;
  }

  async start(): Promise<void> {
    for (const informer of this.informers) informer.start();
    await Promise.all(this.informers.map((informer) => informer.whenSynced()));
  }

  async stop(): Promise<void> {
    await Promise.all(this.informers.map((informer) => informer.stop()));
  }

  /** Resolves with `check`'s first defined value, tested now and at every event; rejects after `timeoutMs`, or when `check` throws. */
  until<R>(what: string, check: () => R | undefined, timeoutMs: number): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const finish = (): void => {
        clearTimeout(timer);
        this.waiters.delete(test);
      };
      const test = (): void => {
        let result: R | undefined;
        try {
          result = check();
        } catch (error) {
          finish();
          reject(error instanceof Error ? error : new Error(String(error)));
          return;
        }
        if (result === undefined) return;
        finish();
        resolve(result);
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      this.waiters.add(test);
      test();
    });
  }
}
