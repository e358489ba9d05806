/**
 * The process around one Manager: read the configuration and the kubeconfig,
 * build the Manager, let the entry point register its controllers, start, and
 * run the SIGTERM sequence on a signal. src/main.ts calls it with the
 * operator's controllers; a test operator calls it with its own.
 */
import { KubeConfig } from '@kubernetes/client-node';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { createLogger, type Logger } from './logging.ts';
import { Manager } from './manager.ts';
import { OperatorMetrics } from './metrics.ts';
import packageJson from '../../package.json' with { type: 'json' };

const FIELD_MANAGER = 'ha-operator';

function readConfig(): Config {
  try {
    return loadConfig(process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`ha-operator: ${error.message}\n`);
    process.exit(2);
  }
}

/** The kubeconfig of KUBECONFIG, ~/.kube/config or the pod's service account; exit 2 with one line when it cannot be read. */
function readKubeConfig(): KubeConfig {
  const kubeConfig = new KubeConfig();
  try {
    kubeConfig.loadFromDefault();
  } catch (error) {
    process.stderr.write(`ha-operator: cannot load the kubeconfig: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(2);
  }
  return kubeConfig;
}

/**
 * Runs the operator until a signal stops it: `register` adds the controllers
 * (and their informers) to the Manager before it starts. Exit codes: 0 after
 * a clean shutdown, 1 after a failed start, a fatal error or a failed
 * shutdown, 2 for a configuration or kubeconfig that cannot be used.
 */
export async function runOperator(register: (manager: Manager) => void): Promise<void> {
  const config = readConfig();
  const logger = createLogger({ level: config.logLevel, format: config.logFormat });
  const kubeConfig = readKubeConfig();
  // Names this replica on every request, so the API server's audit log (and its own logs) tell replicas apart.
  const userAgent = `${FIELD_MANAGER}/${packageJson.version} (${config.podName})`;
  const manager = new Manager({ config, kubeConfig, logger, metrics: new OperatorMetrics(), fieldManager: FIELD_MANAGER, userAgent });
  register(manager);

  let stopping = false;
  const stop = async (reason: string, exitCode: number): Promise<void> => {
    if (stopping) {
      logger.warn('second signal: exiting at once', { reason });
      process.exit(1);
    }
    stopping = true;
    try {
      await manager.shutdown(reason);
    } catch (error) {
      logger.error('shutdown failed', { error });
      exitCode = 1;
    }
    await exit(logger, exitCode);
  };
  process.on('SIGTERM', () => void stop('SIGTERM', 0));
  process.on('SIGINT', () => void stop('SIGINT', 0));
  process.on('uncaughtException', (error) => {
    logger.error('uncaught exception', { error });
    void stop('uncaught exception', 1);
  });
  process.on('unhandledRejection', (error) => {
    logger.error('unhandled rejection', { error });
    void stop('unhandled rejection', 1);
  });

  logger.info('starting', {
    // Node's start-up and the evaluation of the program, until here (performance's origin is the process start).
    loadedInMs: Math.round(performance.now()),
    identity: manager.identity,
    leaderElection: config.leaderElection,
    lease: `${config.leaseNamespace}/${config.leaseName}`,
    shards: config.shards,
    server: kubeConfig.getCurrentCluster()?.server,
  });
  try {
    await manager.start((reason) => void stop(reason, 1));
  } catch (error) {
    logger.error('start failed', { error });
    await exit(logger, 1);
  }
  logger.info('running', { httpPort: manager.httpPort, sinceProcessStartMs: Math.round(performance.now()) });
}

/** Flushes the log stream before exiting, so the last lines of the shutdown are not lost. */
async function exit(logger: Logger, code: number): Promise<never> {
  await new Promise<void>((resolve) => {
    logger.on('finish', resolve);
    logger.end();
  });
  process.exit(code);
}
