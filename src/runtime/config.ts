import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const LOG_FORMATS = ['json', 'text'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

const LEADERSHIP_LOST_ACTIONS = ['standby', 'exit'] as const;
export type LeadershipLostAction = (typeof LEADERSHIP_LOST_ACTIONS)[number];

/** Every setting of the operator; durations are in milliseconds. */
export interface Config {
  logLevel: LogLevel;
  logFormat: LogFormat;
  httpPort: number;
  httpHost: string;
  /** '' watches all namespaces. */
  watchNamespace: string;
  maxConcurrentReconciles: number;
  reconcileTimeoutMs: number;
  /** 0 turns periodic resync off. */
  resyncPeriodMs: number;
  /** Fill the caches with a streaming list (WatchList) where the API server serves one; paged lists otherwise. */
  streamingList: boolean;
  backoffBaseMs: number;
  backoffMaxMs: number;
  queueQps: number;
  queueBurst: number;
  leaderElection: boolean;
  leaseName: string;
  leaseNamespace: string;
  /** The pod's name (POD_NAME); the holder identity is this plus a suffix new for every process (holder.ts). */
  podName: string;
  /**
   * The pod this replica runs in (POD_NAMESPACE and POD_UID from the downward
   * API, CONTAINER_NAME as the Deployment names it), which its Lease
   * annotations name so that standbys can see its crash in the pod's status.
   * Undefined outside a pod (POD_UID unset).
   */
  pod: { namespace: string; uid: string; container: string } | undefined;
  /** A standby takes a lease before it expires when the holder's pod shows the holding process ended (holder.ts). */
  failoverOnPodStatus: boolean;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  /** Standbys watch the Lease as well as polling it every retry period. */
  leaseWatch: boolean;
  releaseOnCancel: boolean;
  onLeadershipLost: LeadershipLostAction;
  shards: number;
  drainTimeoutMs: number;
  /** The pod's terminationGracePeriodSeconds, when told: the shutdown budget must fit in it. */
  terminationGracePeriodMs: number | undefined;
}

/**
 * The longest the SIGTERM sequence takes: the drain, the grace for aborted
 * reconciles to return, leaving the group (bounded by retryPeriod), releasing
 * the leases (bounded by renewDeadline), plus a margin for closing the
 * caches, the HTTP server and the log. A renewal in flight at the signal does
 * not count: stopping the elector ends it.
 */
export function shutdownBudgetMs(c: Pick<Config, 'drainTimeoutMs' | 'renewDeadlineMs' | 'retryPeriodMs' | 'leaderElection'>): number {
  return c.drainTimeoutMs + ABORT_GRACE_MS + (c.leaderElection ? c.retryPeriodMs + c.renewDeadlineMs : 0) + SHUTDOWN_MARGIN_MS;
}

/** How long the shutdown waits for the reconciles it aborted to return (Controller.shutdown). */
export const ABORT_GRACE_MS = 1_000;
const SHUTDOWN_MARGIN_MS = 2_000;

/** Lists every invalid setting, one line each, so an operator can fix them all in one go. */
export class ConfigError extends Error {
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

const SERVICE_ACCOUNT_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

/** The namespace the pod runs in, from its service account mount; undefined outside a cluster. */
function readServiceAccountNamespace(): string | undefined {
  try {
    return readFileSync(SERVICE_ACCOUNT_NAMESPACE_FILE, 'utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

// client-go's JitterFactor: renewDeadline must leave room for a jittered retry.
const RETRY_JITTER = 1.2;

const WHOLE = /^\d+$/;
// Seconds are held as milliseconds, so finer fractions would be silently lost.
const SECONDS = /^\d+(\.\d{1,3})?$/;
const DECIMAL = /^\d+(\.\d+)?$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** How to read one variable: `parse` returns undefined for a value outside `allowed`. */
interface Setting<T> {
  allowed: string;
  parse(raw: string): T | undefined;
}

function wholeNumber(min: number, max?: number): Setting<number> {
  return {
    allowed: max === undefined ? `a whole number, at least ${min}` : `a whole number from ${min} to ${max}`,
    parse(raw) {
      const n = Number(raw);
      return WHOLE.test(raw) && Number.isSafeInteger(n) && n >= min && n <= (max ?? Infinity) ? n : undefined;
    },
  };
}

const positiveNumber: Setting<number> = {
  allowed: 'a number greater than 0 (digits and an optional decimal point)',
  parse(raw) {
    const n = Number(raw);
    return DECIMAL.test(raw) && n > 0 && Number.isFinite(n) ? n : undefined;
  },
};

const HOUR_S = 3_600;
const DAY_S = 86_400;

/**
 * Seconds in, milliseconds out, at most `maxSeconds`: past a sensible bound a
 * duration is a typo (milliseconds given as seconds), and the configuration
 * says so rather than waiting for days.
 */
function seconds(maxSeconds: number, options: { zeroAllowed?: boolean; whole?: boolean } = {}): Setting<number> {
  const range = `${options.zeroAllowed ? 'from 0' : 'greater than 0'} to ${maxSeconds}`;
  return {
    allowed: options.whole ? `a whole number of seconds ${range}` : `a number of seconds ${range}, at most 3 decimals`,
    parse(raw) {
      const ms = Math.round(Number(raw) * 1000);
      const valid = (options.whole ? WHOLE : SECONDS).test(raw) && Number.isSafeInteger(ms) && ms <= maxSeconds * 1000;
      return valid && (ms > 0 || options.zeroAllowed) ? ms : undefined;
    },
  };
}

function oneOf<T extends string>(values: readonly T[]): Setting<T> {
  return {
    allowed: `one of ${values.join(', ')}`,
    parse: (raw) => values.find((v) => v === raw),
  };
}

const boolean: Setting<boolean> = {
  allowed: 'true or false',
  parse: (raw) => (raw === 'true' ? true : raw === 'false' ? false : undefined),
};

const dns1123Label: Setting<string> = {
  allowed: 'a DNS-1123 label (at most 63 lowercase letters, digits and "-", starting and ending alphanumeric)',
  parse: (raw) => (raw.length <= 63 && DNS1123_LABEL.test(raw) ? raw : undefined),
};

const dns1123Subdomain: Setting<string> = {
  allowed:
    'a DNS-1123 subdomain (at most 253 lowercase letters, digits, "-" and ".", ' +
    'each part starting and ending alphanumeric)',
  parse: (raw) => (raw.length <= 253 && DNS1123_SUBDOMAIN.test(raw) ? raw : undefined),
};

const namespaceOrAll: Setting<string> = {
  allowed: `empty (all namespaces) or ${dns1123Label.allowed}`,
  parse: (raw) => (raw === '' ? raw : dns1123Label.parse(raw)),
};

const nonBlank: Setting<string> = {
  allowed: 'a non-empty value without whitespace',
  parse: (raw) => (raw !== '' && !/\s/.test(raw) ? raw : undefined),
};

/** Collects problems instead of stopping at the first, and remembers which variables were bad. */
class EnvReader {
  readonly problems: string[] = [];
  private readonly invalid = new Set<string>();
  private readonly env: Record<string, string | undefined>;

  constructor(env: Record<string, string | undefined>) {
    this.env = env;
  }

  /** The parsed value, or `fallback` when unset (or invalid, after recording the problem). */
  read<T>(name: string, fallback: T, setting: Setting<T>): T {
    const raw = this.env[name];
    if (raw === undefined) return fallback;
    const value = setting.parse(raw);
    if (value !== undefined) return value;
    this.invalid.add(name);
    this.problems.push(`${name}=${JSON.stringify(raw)}: must be ${setting.allowed}`);
    return fallback;
  }

  isSet(name: string): boolean {
    return this.env[name] !== undefined;
  }

  /** True when none of `names` was rejected, so a rule across them compares real values. */
  valid(...names: string[]): boolean {
    return names.every((n) => !this.invalid.has(n));
  }
}

/**
 * Reads the operator's settings from `env` (normally process.env). Throws
 * ConfigError naming every bad variable. `readInClusterNamespace` is consulted
 * only when neither LEASE_NAMESPACE nor POD_NAMESPACE is set.
 */
export function loadConfig(
  env: Record<string, string | undefined>,
  readInClusterNamespace: () => string | undefined = readServiceAccountNamespace,
): Config {
  const r = new EnvReader(env);
  const config: Config = {
    logLevel: r.read('LOG_LEVEL', 'info', oneOf(LOG_LEVELS)),
    logFormat: r.read('LOG_FORMAT', 'json', oneOf(LOG_FORMATS)),
    // 0 binds any free port (several replicas on one machine, tests); the 'running' log line says which.
    httpPort: r.read('HTTP_PORT', 8080, wholeNumber(0, 65535)),
    httpHost: r.read('HTTP_HOST', '0.0.0.0', nonBlank),
    watchNamespace: r.read('WATCH_NAMESPACE', '', namespaceOrAll),
    maxConcurrentReconciles: r.read('MAX_CONCURRENT_RECONCILES', 2, wholeNumber(1, 256)),
    reconcileTimeoutMs: r.read('RECONCILE_TIMEOUT_SECONDS', 60_000, seconds(DAY_S)),
    resyncPeriodMs: r.read('RESYNC_PERIOD_SECONDS', 0, seconds(7 * DAY_S, { zeroAllowed: true })),
    streamingList: r.read('STREAMING_LIST', true, boolean),
    backoffBaseMs: r.read('BACKOFF_BASE_MS', 5, wholeNumber(1)),
    backoffMaxMs: r.read('BACKOFF_MAX_SECONDS', 1_000_000, seconds(DAY_S)),
    queueQps: r.read('QUEUE_QPS', 10, positiveNumber),
    queueBurst: r.read('QUEUE_BURST', 100, wholeNumber(1)),
    leaderElection: r.read('LEADER_ELECTION', true, boolean),
    leaseName: r.read('LEASE_NAME', 'ha-operator', dns1123Subdomain),
    leaseNamespace: leaseNamespace(r, readInClusterNamespace),
    podName: r.read('POD_NAME', `${hostname()}-${randomBytes(3).toString('hex')}`, nonBlank),
    pod: ownPod(r),
    failoverOnPodStatus: r.read('FAILOVER_ON_POD_STATUS', true, boolean),
    // The Lease stores leaseDurationSeconds as an integer.
    leaseDurationMs: r.read('LEASE_DURATION_SECONDS', 15_000, seconds(HOUR_S, { whole: true })),
    renewDeadlineMs: r.read('RENEW_DEADLINE_SECONDS', 10_000, seconds(HOUR_S)),
    retryPeriodMs: r.read('RETRY_PERIOD_SECONDS', 2_000, seconds(HOUR_S)),
    leaseWatch: r.read('LEASE_WATCH', true, boolean),
    releaseOnCancel: r.read('RELEASE_ON_CANCEL', true, boolean),
    onLeadershipLost: r.read('ON_LEADERSHIP_LOST', 'standby', oneOf(LEADERSHIP_LOST_ACTIONS)),
    shards: r.read('SHARDS', 1, wholeNumber(1, 64)),
    drainTimeoutMs: r.read('DRAIN_TIMEOUT_SECONDS', 20_000, seconds(HOUR_S)),
    terminationGracePeriodMs: r.read<number | undefined>('TERMINATION_GRACE_PERIOD_SECONDS', undefined, seconds(DAY_S, { whole: true })),
  };
  checkBackoff(r, config);
  checkLeaderElectionTiming(r, config);
  checkShutdownBudget(r, config);
  if (r.problems.length > 0) throw new ConfigError(r.problems);
  return config;
}

/** POD_UID set: the pod, which then needs POD_NAMESPACE too. */
function ownPod(r: EnvReader): Config['pod'] {
  const container = r.read('CONTAINER_NAME', 'operator', dns1123Label);
  if (!r.isSet('POD_UID')) return undefined;
  const uid = r.read('POD_UID', '', nonBlank);
  if (!r.isSet('POD_NAMESPACE')) {
    r.problems.push('POD_UID is set but POD_NAMESPACE is not: set both from the downward API (metadata.uid, metadata.namespace)');
    return undefined;
  }
  return { namespace: r.read('POD_NAMESPACE', 'default', dns1123Label), uid, container };
}

/** LEASE_NAMESPACE, else POD_NAMESPACE, else the namespace the pod runs in, else "default". */
function leaseNamespace(r: EnvReader, readInClusterNamespace: () => string | undefined): string {
  for (const name of ['LEASE_NAMESPACE', 'POD_NAMESPACE']) {
    if (r.isSet(name)) return r.read(name, 'default', dns1123Label);
  }
  try {
    return readInClusterNamespace() || 'default';
  } catch (err) {
    r.problems.push(
      `LEASE_NAMESPACE and POD_NAMESPACE are unset, and reading ${SERVICE_ACCOUNT_NAMESPACE_FILE} failed: ` +
        (err as Error).message,
    );
    return 'default';
  }
}

function checkBackoff(r: EnvReader, c: Config): void {
  if (r.valid('BACKOFF_BASE_MS', 'BACKOFF_MAX_SECONDS') && c.backoffMaxMs <= c.backoffBaseMs) {
    r.problems.push(
      `BACKOFF_BASE_MS=${c.backoffBaseMs}, BACKOFF_MAX_SECONDS=${c.backoffMaxMs / 1000}: ` +
        'the maximum backoff must be greater than the base backoff',
    );
  }
}

function checkShutdownBudget(r: EnvReader, c: Config): void {
  if (c.terminationGracePeriodMs === undefined || !r.valid('DRAIN_TIMEOUT_SECONDS', 'RENEW_DEADLINE_SECONDS', 'RETRY_PERIOD_SECONDS', 'TERMINATION_GRACE_PERIOD_SECONDS')) return;
  const budget = shutdownBudgetMs(c);
  if (budget > c.terminationGracePeriodMs) {
    r.problems.push(
      `TERMINATION_GRACE_PERIOD_SECONDS=${c.terminationGracePeriodMs / 1000}: the shutdown may take ${budget / 1000} s ` +
        `(DRAIN_TIMEOUT_SECONDS=${c.drainTimeoutMs / 1000} + ${ABORT_GRACE_MS / 1000} s for aborted reconciles` +
        `${c.leaderElection ? ` + RETRY_PERIOD_SECONDS=${c.retryPeriodMs / 1000} to leave the group + RENEW_DEADLINE_SECONDS=${c.renewDeadlineMs / 1000} to release the leases` : ''} + ${SHUTDOWN_MARGIN_MS / 1000} s), ` +
        'so the kubelet would kill the process before it released its leases: raise the grace period or lower DRAIN_TIMEOUT_SECONDS',
    );
  }
}

function checkLeaderElectionTiming(r: EnvReader, c: Config): void {
  if (!r.valid('LEASE_DURATION_SECONDS', 'RENEW_DEADLINE_SECONDS', 'RETRY_PERIOD_SECONDS')) return;
  const lease = `LEASE_DURATION_SECONDS=${c.leaseDurationMs / 1000}`;
  const renew = `RENEW_DEADLINE_SECONDS=${c.renewDeadlineMs / 1000}`;
  const retry = `RETRY_PERIOD_SECONDS=${c.retryPeriodMs / 1000}`;
  const rule =
    'rule, as in client-go: ' +
    `LEASE_DURATION_SECONDS > RENEW_DEADLINE_SECONDS > ${RETRY_JITTER} × RETRY_PERIOD_SECONDS`;
  if (c.leaseDurationMs <= c.renewDeadlineMs) {
    r.problems.push(`${lease}, ${renew}: the lease duration must be greater than the renew deadline (${rule})`);
  }
  if (c.renewDeadlineMs <= RETRY_JITTER * c.retryPeriodMs) {
    r.problems.push(
      `${renew}, ${retry}: the renew deadline must be greater than ${RETRY_JITTER} × the retry period (${rule})`,
    );
  }
}
