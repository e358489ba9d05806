import { Writable } from 'node:stream';
import type { KubernetesObject } from '@kubernetes/client-node';
import { installCrd, type KindProfile } from '../../../hack/lib/kind-profile.ts';
import { loadConfig } from '../../../src/runtime/config.ts';
import type { Informer } from '../../../src/runtime/informer.ts';
import { createLogger } from '../../../src/runtime/logging.ts';
import { Manager } from '../../../src/runtime/manager.ts';
import { OperatorMetrics } from '../../../src/runtime/metrics.ts';
import { adminKubeConfig } from './cluster.ts';

const installed = new Map<string, Promise<void>>();

/** Applies the kind's CRD to the test plane (once per run) and resolves once it is Established. */
export function installKind(profile: KindProfile): Promise<void> {
  const name = profile.crd.metadata.name;
  let done = installed.get(name);
  if (!done) {
    done = installCrd(adminKubeConfig(), profile.crd);
    installed.set(name, done);
  }
  return done;
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
  /** Every log line so far (JSON, debug level). */
  readonly logLines: readonly string[];
  /** Shuts the manager down (drain, close the gate, stop the caches and the HTTP server). */
  stop(): Promise<void>;
}

/**
 * Builds a Manager from an environment as the Deployment would set it (no
 * leader election, WATCH_NAMESPACE = `namespace`), lets `register` add the
 * controllers, and starts it; resolves once its caches are synced.
 */
export async function startOperator(namespace: string, register: (manager: Manager) => void, env: Record<string, string> = {}): Promise<TestOperator> {
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
  register(manager);
  await manager.start((reason) => logger.error('fatal', { reason }));
  running.add(manager);
  return {
    namespace,
    manager,
    logLines,
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
