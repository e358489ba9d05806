import { resolve } from 'node:path';
import { Writable } from 'node:stream';
import type { KubernetesObject, V1CustomResourceDefinition } from '@kubernetes/client-node';
import { loadConfig } from '../../../src/runtime/config.ts';
import type { Informer } from '../../../src/runtime/informer.ts';
import { createLogger } from '../../../src/runtime/logging.ts';
import { Manager } from '../../../src/runtime/manager.ts';
import { OperatorMetrics } from '../../../src/runtime/metrics.ts';
import { registerWebsiteController, type WebsiteController } from '../../../src/website/controller.ts';
import type { ReconcileReport } from '../../../src/website/reconcile.ts';
import { adminKubeConfig, cluster } from './cluster.ts';
import { waitForObject } from './wait.ts';

const repoRoot = resolve(import.meta.dirname, '..', '..', '..');
const WEBSITE_CRD = 'websites.ha-operator.example.com';

let crdInstalled: Promise<void> | undefined;

/** Applies crds/websites.yaml to the test plane (once per run) and waits until it is Established. */
export function installWebsiteCrd(): Promise<void> {
  crdInstalled ??= (async () => {
    // The same client-side apply as the other suites that install it, so the order of the files does not matter.
    await cluster().kubectl(['apply', '-f', resolve(repoRoot, 'crds', 'websites.yaml')]);
    await waitForObject<V1CustomResourceDefinition>(adminKubeConfig(), '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', WEBSITE_CRD,
      (crd) => crd?.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ?? false);
  })();
  return crdInstalled;
}

const running = new Set<Manager>();

/** Resolves once every operator running in this process has sent the events its reconciles recorded so far. */
export async function eventsSent(): Promise<void> {
  await Promise.all([...running].map((manager) => manager.events.whenIdle()));
}

/** An operator running in this process against the test plane, watching one namespace. */
export interface TestOperator {
  readonly namespace: string;
  readonly manager: Manager;
  readonly website: WebsiteController;
  /** Every reconcile so far, in the order they ended. */
  readonly reports: readonly ReconcileReport[];
  /** Every log line so far (JSON, debug level). */
  readonly logLines: readonly string[];
  /** Resolves with the first reconcile to end from now on that matches. */
  nextReconcile(matches: (report: ReconcileReport) => boolean, timeoutMs?: number): Promise<ReconcileReport>;
  /**
   * Queues the Website `name` (trigger "test") and resolves with the report of
   * the first reconcile of it that starts afterwards — whatever queued it, since
   * any of them sees caches at least as new as they were at the call.
   */
  reconcileNow(name: string, timeoutMs?: number): Promise<ReconcileReport>;
  /** Shuts the manager down (drain, close the gate, stop the caches and the HTTP server). */
  stop(): Promise<void>;
}

/**
 * Builds a Manager from an environment as the Deployment would set it (no
 * leader election, WATCH_NAMESPACE = `namespace`), registers the Website
 * controller, and starts it; resolves once its caches are synced.
 */
export async function startOperator(namespace: string, env: Record<string, string> = {}): Promise<TestOperator> {
  const logLines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logLines.push(...chunk.toString().split('\n').filter((line) => line !== ''));
      done();
    },
  });
  const config = loadConfig({
    LEADER_ELECTION: 'false',
    WATCH_NAMESPACE: namespace,
    POD_NAME: `operator-${namespace}`,
    LEASE_NAMESPACE: namespace,
    HTTP_HOST: '127.0.0.1',
    // Any free port: several operators may run in one test process.
    HTTP_PORT: '0',
    LOG_LEVEL: 'debug',
    DRAIN_TIMEOUT_SECONDS: '5',
    ...env,
  }, () => undefined);
  const logger = createLogger({ level: config.logLevel, format: 'json', stream });
  const manager = new Manager({ config, kubeConfig: adminKubeConfig(), logger, metrics: new OperatorMetrics(), fieldManager: 'ha-operator', userAgent: `ha-operator/test (operator-${namespace})` });

  const reports: ReconcileReport[] = [];
  const waiters = new Set<(report: ReconcileReport) => void>();
  const website = registerWebsiteController(manager, {
    onReconciled: (report) => {
      reports.push(report);
      for (const waiter of [...waiters]) waiter(report);
    },
  });

  const nextReconcile = (matches: (report: ReconcileReport) => boolean, timeoutMs = 30_000): Promise<ReconcileReport> =>
    new Promise((resolvePromise, reject) => {
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        reject(new Error(`no matching reconcile within ${timeoutMs} ms; last reports: ${JSON.stringify(reports.slice(-5).map(summary))}`));
      }, timeoutMs);
      const waiter = (report: ReconcileReport): void => {
        if (!matches(report)) return;
        clearTimeout(timer);
        waiters.delete(waiter);
        resolvePromise(report);
      };
      waiters.add(waiter);
    });

  await manager.start((reason) => logger.error('fatal', { reason }));
  running.add(manager);
  return {
    namespace,
    manager,
    website,
    reports,
    logLines,
    nextReconcile,
    reconcileNow(name, timeoutMs) {
      const key = `${namespace}/${name}`;
      const queuedAt = manager.clock.monotonicMs();
      const done = nextReconcile((r) => r.key === key && r.startedAtMs >= queuedAt, timeoutMs);
      website.controller.enqueue(key, 'test');
      return done;
    },
    async stop() {
      await manager.shutdown('test finished');
      running.delete(manager);
    },
  };
}

/**
 * Resolves once the informer's cached copy of `key` satisfies `predicate`
 * (called with undefined while it is absent): at once, or on the event that
 * makes it so.
 */
export function untilCached<T extends KubernetesObject>(
  informer: Informer<T>,
  key: string,
  predicate: (object: T | undefined) => boolean,
  timeoutMs = 30_000,
): Promise<T | undefined> {
  return new Promise((resolvePromise, reject) => {
    if (predicate(informer.get(key))) return resolvePromise(informer.get(key));
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`the ${informer.resource.plural} cache did not reach the expected state of ${key} within ${timeoutMs} ms`));
    }, timeoutMs);
    const unsubscribe = informer.subscribe(() => {
      const object = informer.get(key);
      if (!predicate(object)) return;
      clearTimeout(timer);
      unsubscribe();
      resolvePromise(object);
    });
  });
}

function summary(report: ReconcileReport): Record<string, unknown> {
  const { key, trigger, outcome, writes, applied, statusWritten, events } = report;
  return { key, trigger, outcome, writes, applied, statusWritten, events };
}
