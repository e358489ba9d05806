/**
 * One operator replica as a separate OS process (`node src/main.ts` with the
 * Node that runs this module), for the failover tests, the study and the
 * benchmarks. Every line it writes is kept, with the time it was received;
 * JSON lines are parsed. Tests await lines instead of sleeping:
 *
 *   const a = await Replica.start({ name: 'a', kubeconfig, leaseNamespace: ns, watchNamespace: ns });
 *   await a.waitForMessage('started leading', 10_000);
 *   a.sigterm();
 *   expect((await a.exited).code).to.equal(0);
 *
 * Every replica still running when this process exits is killed (SIGKILL),
 * so an interrupted run leaves none behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';

export const REPO_ROOT = resolve(import.meta.dirname, '..', '..');

/**
 * The environment every replica gets unless overridden: debug JSON logs (the
 * 'write' lines are debug), any free HTTP port on loopback (the 'running'
 * line says which) and short lease timings, which keep client-go's rule
 * (lease > renewDeadline > 1.2 × retry).
 */
export const DEFAULT_REPLICA_ENV: Readonly<Record<string, string>> = {
  LOG_LEVEL: 'debug',
  LOG_FORMAT: 'json',
  HTTP_PORT: '0',
  HTTP_HOST: '127.0.0.1',
  LEASE_DURATION_SECONDS: '3',
  RENEW_DEADLINE_SECONDS: '2',
  RETRY_PERIOD_SECONDS: '0.5',
};

export interface ReplicaOptions {
  /** POD_NAME: the pod name in its holder identity on the Lease (which adds a suffix per process), and the label of its lines. */
  name: string;
  /** KUBECONFIG for the replica. */
  kubeconfig: string;
  /** LEASE_NAMESPACE. */
  leaseNamespace: string;
  /** WATCH_NAMESPACE ('' watches all namespaces). */
  watchNamespace: string;
  /** More variables, or overrides of DEFAULT_REPLICA_ENV; undefined removes a variable. */
  env?: Record<string, string | undefined>;
  /** The program; default src/main.ts of this repository. */
  entry?: string;
  /** Flags for node before the program. */
  nodeArgs?: string[];
  /** A command that runs node for it (with node's command line appended), e.g. MemoryCgroup.launcher(). */
  launcher?: string[];
  /** Called with every line as it arrives (to stream a replica's log while debugging, say). */
  onLine?: (line: LogLine) => void;
  /**
   * Run in a process group of its own, so a Ctrl-C in the terminal reaches only
   * the harness, which then stops the replica with one SIGTERM (a second signal
   * would make the replica exit at once).
   */
  ownProcessGroup?: boolean;
}

export interface LogLine {
  /** The replica's name. */
  replica: string;
  /** Position in this replica's `lines`. */
  index: number;
  stream: 'stdout' | 'stderr';
  text: string;
  /** The parsed line when it is a JSON object; undefined otherwise (stderr, text format, a crash). */
  json: Record<string, unknown> | undefined;
  /** `json.message` when it is a string. */
  message: string | undefined;
  /** `json.level` when it is a string. */
  level: string | undefined;
  /** `json.timestamp` (the replica's wall clock when it logged, ms resolution) in ms since the epoch. */
  loggedAt: number | undefined;
  /** performance.now() of THIS process when the line arrived (monotonic; compare with other receive times). */
  receivedAtMs: number;
  /** Date.now() of this process when the line arrived. */
  receivedAt: number;
}

export interface ReplicaExit {
  /** The exit code, or null when a signal ended the process. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** performance.now() of this process when the exit was seen. */
  atMs: number;
  /** Date.now() of this process when the exit was seen. */
  at: number;
}

export type LinePredicate = (line: LogLine) => boolean;

export interface WaitOptions {
  /** Consider only lines after this one (or after this index); default: every line, the ones received already too. */
  after?: LogLine | number;
  /** What is awaited, for the timeout message. */
  description?: string;
}

interface Waiter {
  from: number;
  predicate: LinePredicate;
  resolve: (line: LogLine) => void;
  reject: (error: Error) => void;
}

const live = new Set<Replica>();

export class Replica {
  readonly name: string;
  /** Every line so far, in arrival order (stdout and stderr interleaved as received). */
  readonly lines: LogLine[] = [];
  /** Resolves once the process has exited and all of its output has been read. */
  readonly exited: Promise<ReplicaExit>;
  /** performance.now() when each signal was sent by this harness. */
  readonly signalsSentAtMs: Partial<Record<NodeJS.Signals, number>> = {};
  private readonly child: ChildProcess;
  private readonly spawned: Promise<void>;
  private readonly waiters = new Set<Waiter>();
  private readonly onLine: ((line: LogLine) => void) | undefined;
  private exit: ReplicaExit | undefined;

  private constructor(options: ReplicaOptions, env: NodeJS.ProcessEnv) {
    this.name = options.name;
    this.onLine = options.onLine;
    const nodeCommand = [process.execPath, ...(options.nodeArgs ?? []), options.entry ?? resolve(REPO_ROOT, 'src', 'main.ts')];
    const [command = process.execPath, ...args] = [...(options.launcher ?? []), ...nodeCommand];
    this.child = spawn(command, args, {
      cwd: REPO_ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: options.ownProcessGroup ?? false,
    });
    this.spawned = new Promise((resolveSpawn, rejectSpawn) => {
      this.child.once('spawn', resolveSpawn);
      this.child.once('error', (error) => rejectSpawn(new Error(`could not start replica ${this.name} (${command}): ${error.message}`, { cause: error })));
    });
    live.add(this);
    // Before its first output, so no line can arrive without a reader.
    const streamsDone = (['stdout', 'stderr'] as const).map((stream) => {
      const lines = createInterface({ input: this.child[stream]!, crlfDelay: Infinity });
      lines.on('line', (text) => this.receive(stream, text));
      return new Promise<void>((done) => lines.once('close', done));
    });
    const processDone = new Promise<ReplicaExit>((done) => {
      const ended = (code: number | null, signal: NodeJS.Signals | null): void => {
        live.delete(this);
        done({ code, signal, atMs: performance.now(), at: Date.now() });
      };
      this.child.once('exit', ended);
      // A process that could not be spawned emits no 'exit'.
      this.child.once('error', () => {
        if (this.child.pid === undefined) ended(null, null);
      });
    });
    this.exited = Promise.all([processDone, ...streamsDone]).then(([exit]) => {
      this.exit = exit;
      for (const waiter of this.waiters) {
        waiter.reject(new Error(`replica ${this.name} exited (${describeExit(exit)}) before the awaited line\n${this.tail()}`));
      }
      this.waiters.clear();
      return exit;
    });
  }

  /**
   * Starts a replica. Its environment is this process's, then
   * DEFAULT_REPLICA_ENV, then the options' KUBECONFIG, POD_NAME,
   * LEASE_NAMESPACE and WATCH_NAMESPACE, then `options.env`.
   */
  static async start(options: ReplicaOptions): Promise<Replica> {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...DEFAULT_REPLICA_ENV,
      KUBECONFIG: options.kubeconfig,
      POD_NAME: options.name,
      LEASE_NAMESPACE: options.leaseNamespace,
      WATCH_NAMESPACE: options.watchNamespace,
    };
    for (const [name, value] of Object.entries(options.env ?? {})) {
      if (value === undefined) delete env[name];
      else env[name] = value;
    }
    const replica = new Replica(options, env);
    await replica.spawned;
    return replica;
  }

  /** The process id. */
  get pid(): number {
    return this.child.pid!;
  }

  /** Every replica of this process that has not exited yet. */
  static running(): Replica[] {
    return [...live];
  }

  get isRunning(): boolean {
    return this.exit === undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The leases this replica's log says it leads now: 'started leading' not followed by 'stopped leading'. */
  leasesLedNow(): string[] {
    const leading = new Set<string>();
    for (const line of this.lines) {
      const lease = line.json?.lease;
      if (typeof lease !== 'string') continue;
      if (line.message === 'started leading') leading.add(lease);
      if (line.message === 'stopped leading') leading.delete(lease);
    }
    return [...leading];
  }

  /** Lines whose JSON message is `message` (and that match `where`, if given). */
  messages(message: string, where?: LinePredicate): LogLine[] {
    return this.lines.filter((l) => l.message === message && (where?.(l) ?? true));
  }

  /**
   * Resolves with the first line (from `options.after` on; by default lines
   * already received count too) that matches. Rejects after `timeoutMs`, or
   * when the replica exits without such a line, with the tail of its log.
   */
  waitForLog(predicate: LinePredicate, timeoutMs: number, options: WaitOptions = {}): Promise<LogLine> {
    const after = options.after;
    const from = after === undefined ? 0 : typeof after === 'number' ? after + 1 : after.index + 1;
    const seen = this.lines.slice(from).find(predicate);
    if (seen) return Promise.resolve(seen);
    const what = options.description ?? 'a matching line';
    if (this.exit) {
      return Promise.reject(new Error(`replica ${this.name} has exited (${describeExit(this.exit)}) without ${what}\n${this.tail()}`));
    }
    return new Promise<LogLine>((resolvePromise, rejectPromise) => {
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        rejectPromise(new Error(`replica ${this.name}: no ${what} within ${timeoutMs} ms\n${this.tail()}`));
      }, timeoutMs);
      const waiter: Waiter = {
        from,
        predicate,
        resolve: (line) => {
          clearTimeout(timer);
          resolvePromise(line);
        },
        reject: (error) => {
          clearTimeout(timer);
          rejectPromise(error);
        },
      };
      this.waiters.add(waiter);
    });
  }

  /** `waitForLog` for a JSON line with this message (and `where`, if given). */
  waitForMessage(message: string, timeoutMs: number, options: WaitOptions & { where?: LinePredicate } = {}): Promise<LogLine> {
    const { where, ...rest } = options;
    return this.waitForLog((l) => l.message === message && (where?.(l) ?? true), timeoutMs, {
      description: `'${message}' line`,
      ...rest,
    });
  }

  /** Waits for the 'running' line and returns the HTTP port it reports. */
  async running(timeoutMs: number): Promise<number> {
    const line = await this.waitForMessage('running', timeoutMs);
    const port = line.json?.httpPort;
    if (typeof port !== 'number') throw new Error(`replica ${this.name}: 'running' line without httpPort: ${line.text}`);
    return port;
  }

  sigterm(): void {
    this.signal('SIGTERM');
  }

  sigkill(): void {
    this.signal('SIGKILL');
  }

  /** SIGTERM, then SIGKILL if it is still running after `graceMs`; resolves when it has exited. */
  async stop(graceMs = 10_000): Promise<ReplicaExit> {
    if (this.isRunning) {
      this.sigterm();
      const timer = setTimeout(() => this.sigkill(), graceMs);
      try {
        return await this.exited;
      } finally {
        clearTimeout(timer);
      }
    }
    return this.exited;
  }

  /** The last `count` lines, as text, for failure messages. */
  tail(count = 30): string {
    const lines = this.lines.slice(-count).map((l) => `  [${this.name}${l.stream === 'stderr' ? ' stderr' : ''}] ${l.text}`);
    return `--- last ${lines.length} lines of replica ${this.name} ---\n${lines.join('\n')}`;
  }

  private signal(signal: NodeJS.Signals): void {
    if (!this.isRunning) return;
    this.signalsSentAtMs[signal] = performance.now();
    this.child.kill(signal);
  }

  private receive(stream: 'stdout' | 'stderr', text: string): void {
    const receivedAtMs = performance.now();
    const json = parseObject(text);
    const timestamp = typeof json?.timestamp === 'string' ? Date.parse(json.timestamp) : Number.NaN;
    const line: LogLine = {
      replica: this.name,
      index: this.lines.length,
      stream,
      text,
      json,
      message: typeof json?.message === 'string' ? json.message : undefined,
      level: typeof json?.level === 'string' ? json.level : undefined,
      loggedAt: Number.isNaN(timestamp) ? undefined : timestamp,
      receivedAtMs,
      receivedAt: Date.now(),
    };
    this.lines.push(line);
    this.onLine?.(line);
    for (const waiter of this.waiters) {
      if (line.index >= waiter.from && waiter.predicate(line)) {
        this.waiters.delete(waiter);
        waiter.resolve(line);
      }
    }
  }
}

function parseObject(text: string): Record<string, unknown> | undefined {
  if (!text.startsWith('{')) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function describeExit(exit: ReplicaExit): string {
  return exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`;
}

// An interrupted run (Ctrl-C, a crashed test runner) must not leave replicas behind.
process.once('exit', () => {
  for (const replica of live) replica.sigkill();
});
