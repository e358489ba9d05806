/**
 * A real Prometheus as a child process, scraping operator replicas on
 * loopback: for the integration test that evaluates the dashboard and the
 * alert rules against live data, and for hack/grafana/snapshot.ts.
 *
 *   const prom = await Prometheus.start({
 *     targets: [{ address: `127.0.0.1:${port}`, labels: { pod: 'op-a', namespace } }],
 *   });
 *   await prom.scrapedAfter(Date.now() / 1000, 10_000);   // every target scraped since now
 *   const r = await prom.queryRange('sum(up)', { start, end, step: 1 });
 *   await prom.stop();
 *
 * Each start gets its own temporary directory (config + TSDB) and a port the
 * kernel picks (--web.listen-address=127.0.0.1:0; the "Listening on" log line
 * says which); start() resolves on "Server is ready to receive web requests.".
 * The first scrapes follow a few seconds later (target discovery hands the
 * scrape manager its targets at most every 5 s): await them with waitFor().
 * The job name defaults to the one the alert rules select
 * (job="ha-operator-metrics"), and every target carries its own labels, so a
 * `pod` and a `namespace` label make the dashboard's selectors match as they
 * would under Prometheus Operator. The binary is PROMETHEUS, else `prometheus`
 * on PATH (Debian package "prometheus", which `make test` installs).
 *
 * Every Prometheus still running when this process exits is killed (SIGKILL)
 * and its directory removed, so an interrupted run leaves nothing behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/** The job label Prometheus Operator gives the operator's targets; the alert rules select it. */
export const DEFAULT_JOB = 'ha-operator-metrics';

export interface ScrapeTarget {
  /** host:port of a /metrics endpoint. */
  address: string;
  /** Target labels (for example pod and namespace), attached to every series scraped from it. */
  labels?: Record<string, string>;
}

export interface PrometheusOptions {
  targets: ScrapeTarget[];
  /** Default DEFAULT_JOB. */
  jobName?: string;
  /** Scrape (and rule evaluation) interval in seconds; default 1. The scrape timeout equals it. */
  scrapeIntervalSeconds?: number;
  /** Rule files for Prometheus to load and evaluate (absolute paths). */
  ruleFiles?: string[];
  /** Parent of the temporary directory; default the OS temp dir. */
  parentDir?: string;
  /** Wait at most this long for "Server is ready to receive web requests."; default 30 s. */
  readyTimeoutMs?: number;
}

export type Labels = Record<string, string>;
/** [unix seconds, value as Prometheus writes it ("1", "NaN", "+Inf")]. */
export type SamplePair = [number, string];

export interface VectorSample {
  metric: Labels;
  value: SamplePair;
}

export interface MatrixSeries {
  metric: Labels;
  values: SamplePair[];
}

export type QueryData =
  | { resultType: 'vector'; result: VectorSample[] }
  | { resultType: 'matrix'; result: MatrixSeries[] }
  | { resultType: 'scalar'; result: SamplePair }
  | { resultType: 'string'; result: SamplePair };

/** A response of the HTTP API: https://prometheus.io/docs/prometheus/latest/querying/api/ */
export type ApiResponse<T> =
  | { status: 'success'; data: T; warnings?: string[] }
  | { status: 'error'; errorType: string; error: string; warnings?: string[] };

export interface RangeOptions {
  /** Unix seconds. */
  start: number;
  /** Unix seconds. */
  end: number;
  /** Seconds between points. */
  step: number;
}

export interface RuleHealth {
  name: string;
  type: 'alerting' | 'recording';
  query: string;
  health: string;
  lastError?: string;
  state?: string;
}

const live = new Set<Prometheus>();

export class Prometheus {
  /** http://127.0.0.1:<port> */
  readonly url: string;
  readonly port: number;
  /** The temporary directory: prometheus.yml and data/. Removed by stop(). */
  readonly dir: string;
  readonly jobName: string;
  readonly scrapeIntervalSeconds: number;
  /** Every log line so far (logfmt, from stderr). */
  readonly lines: string[];
  /** Resolves once the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;
  private running = true;

  private constructor(init: { url: string; port: number; dir: string; jobName: string; interval: number; lines: string[]; child: ChildProcess; exited: Prometheus['exited'] }) {
    this.url = init.url;
    this.port = init.port;
    this.dir = init.dir;
    this.jobName = init.jobName;
    this.scrapeIntervalSeconds = init.interval;
    this.lines = init.lines;
    this.child = init.child;
    this.exited = init.exited.then((exit) => {
      this.running = false;
      live.delete(this);
      return exit;
    });
  }

  static async start(options: PrometheusOptions): Promise<Prometheus> {
    const jobName = options.jobName ?? DEFAULT_JOB;
    const interval = options.scrapeIntervalSeconds ?? 1;
    const dir = mkdtempSync(join(options.parentDir ?? tmpdir(), 'ha-operator-prometheus-'));
    const configFile = join(dir, 'prometheus.yml');
    writeFileSync(configFile, renderConfig(jobName, interval, options.targets, options.ruleFiles ?? []));
    const bin = process.env.PROMETHEUS ?? 'prometheus';
    const child = spawn(bin, [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      '--storage.tsdb.retention.time=1d',
      '--web.listen-address=127.0.0.1:0',
      '--log.level=info',
    ], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });

    const lines: string[] = [];
    let port: number | undefined;
    let onReady: (() => void) | undefined;
    const reader = createInterface({ input: child.stderr, crlfDelay: Infinity });
    reader.on('line', (line) => {
      lines.push(line);
      const listening = /msg="Listening on" address=127\.0\.0\.1:(\d+)/.exec(line);
      if (listening) port = Number(listening[1]);
      if (line.includes('msg="Server is ready to receive web requests."')) onReady?.();
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit) => {
      child.once('exit', (code, signal) => resolveExit({ code, signal }));
      child.once('error', () => {
        if (child.pid === undefined) resolveExit({ code: null, signal: null });
      });
    });
    const tail = (): string => `--- last lines of prometheus (${dir}) ---\n${lines.slice(-20).join('\n')}`;
    const timeoutMs = options.readyTimeoutMs ?? 30_000;

    const ready = new Promise<void>((resolveReady, reject) => {
      const timer = setTimeout(() => reject(new Error(`prometheus was not ready within ${timeoutMs} ms\n${tail()}`)), timeoutMs);
      onReady = () => {
        clearTimeout(timer);
        resolveReady();
      };
      child.once('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(error.code === 'ENOENT'
          ? new Error(`prometheus not found (${bin}): \`make test\` installs it (Debian package "prometheus"); or set PROMETHEUS to its path`)
          : new Error(`could not start prometheus (${bin}): ${error.message}`, { cause: error }));
      });
      void exited.then((exit) => {
        clearTimeout(timer);
        reject(new Error(`prometheus exited during start-up (${exit.signal ?? `code ${exit.code}`})\n${tail()}`));
      });
    });
    const cleanup = (): void => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    };
    starting.add(cleanup);
    try {
      await ready;
    } catch (error) {
      cleanup();
      await exited;
      throw error;
    } finally {
      starting.delete(cleanup);
    }
    if (port === undefined) {
      cleanup();
      await exited;
      throw new Error(`prometheus is ready but logged no "Listening on" address\n${tail()}`);
    }
    const prometheus = new Prometheus({ url: `http://127.0.0.1:${port}`, port, dir, jobName, interval, lines, child, exited });
    live.add(prometheus);
    return prometheus;
  }

  get pid(): number {
    return this.child.pid!;
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** GET /api/v1/<path>. A Prometheus error (bad_data, execution, timeout) is returned, not thrown; a transport error throws. */
  async api<T>(path: string, params: Record<string, string | string[]> = {}): Promise<ApiResponse<T>> {
    const search = new URLSearchParams();
    for (const [name, value] of Object.entries(params)) {
      for (const v of Array.isArray(value) ? value : [value]) search.append(name, v);
    }
    const url = `${this.url}/api/v1/${path}?${search.toString()}`;
    const res = await fetch(url, { signal: AbortSignal.timeout(30_000) });
    const text = await res.text();
    try {
      return JSON.parse(text) as ApiResponse<T>;
    } catch {
      throw new Error(`GET ${url}: HTTP ${res.status}, not a JSON API response: ${text.slice(0, 300)}`);
    }
  }

  /** An instant query (/api/v1/query) at `time` (unix seconds; default now). */
  query(expr: string, time?: number): Promise<ApiResponse<QueryData>> {
    return this.api<QueryData>('query', { query: expr, ...(time === undefined ? {} : { time: String(time) }) });
  }

  /** A range query (/api/v1/query_range). */
  queryRange(expr: string, range: RangeOptions): Promise<ApiResponse<QueryData>> {
    return this.api<QueryData>('query_range', {
      query: expr,
      start: String(range.start),
      end: String(range.end),
      step: String(range.step),
    });
  }

  /** An instant query's vector; throws (with the expression) on an error or another result type. */
  async vector(expr: string, time?: number): Promise<VectorSample[]> {
    const data = ok(expr, await this.query(expr, time));
    if (data.resultType !== 'vector') throw new Error(`${expr}: a vector was expected, got a ${data.resultType}`);
    return data.result;
  }

  /** A range query's matrix; throws (with the expression) on an error. */
  async matrix(expr: string, range: RangeOptions): Promise<MatrixSeries[]> {
    const data = ok(expr, await this.queryRange(expr, range));
    if (data.resultType !== 'matrix') throw new Error(`${expr}: a matrix was expected, got a ${data.resultType}`);
    return data.result;
  }

  /** /api/v1/label/<label>/values, restricted to series matching `match` if given. */
  async labelValues(label: string, match?: string): Promise<ApiResponse<string[]>> {
    return this.api<string[]>(`label/${encodeURIComponent(label)}/values`, match === undefined ? {} : { 'match[]': match });
  }

  /** The loaded rules with their health and last evaluation error. */
  async rules(): Promise<RuleHealth[]> {
    const data = ok('/api/v1/rules', await this.api<{ groups: { rules: RuleHealth[] }[] }>('rules'));
    return data.groups.flatMap((g) => g.rules);
  }

  /**
   * Resolves with the vector of `expr` once `predicate` holds for it, polling
   * every 200 ms. Prometheus offers no event for "a scrape happened", so this is
   * a bounded wait: after `timeoutMs` it rejects, saying what was awaited and
   * what the query last returned.
   */
  async waitFor(expr: string, predicate: (result: VectorSample[]) => boolean, timeoutMs: number, description = expr): Promise<VectorSample[]> {
    const deadline = performance.now() + timeoutMs;
    let last: VectorSample[] | string;
    for (;;) {
      if (!this.running) throw new Error(`prometheus exited while waiting for ${description}\n${this.tail()}`);
      const response = await this.query(expr);
      if (response.status === 'success' && response.data.resultType === 'vector') {
        if (predicate(response.data.result)) return response.data.result;
        last = response.data.result;
      } else {
        last = JSON.stringify(response);
      }
      if (performance.now() > deadline) {
        throw new Error(`prometheus: no ${description} within ${timeoutMs} ms; \`${expr}\` last returned ${JSON.stringify(last)}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /**
   * Resolves once every target of the job (the ones down too) has been
   * scraped at or after `time` (unix seconds): what the targets exported at
   * that moment is in the TSDB. `up`'s timestamp is the scrape's start.
   */
  async scrapedAfter(time: number, timeoutMs: number, targets?: number): Promise<void> {
    const expr = `timestamp(up{job="${this.jobName}"})`;
    await this.waitFor(expr,
      (r) => r.length > 0 && (targets === undefined || r.length === targets) && r.every((s) => Number(s.value[1]) >= time),
      timeoutMs, `scrape of every target of ${this.jobName} after ${new Date(time * 1000).toISOString()}`);
  }

  /** SIGTERM (Prometheus flushes and exits), SIGKILL after `graceMs`; removes the directory. */
  async stop(graceMs = 10_000): Promise<void> {
    if (this.running) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
      try {
        await this.exited;
      } finally {
        clearTimeout(timer);
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** The last `count` log lines, for failure messages. */
  tail(count = 20): string {
    return `--- last ${Math.min(count, this.lines.length)} lines of prometheus (${this.url}) ---\n${this.lines.slice(-count).join('\n')}`;
  }

  /** SIGKILL and remove the directory, synchronously (for the exit handler). */
  killSync(): void {
    if (this.running) this.child.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The data of a successful response; throws with the expression and Prometheus' error otherwise. */
export function ok<T>(what: string, response: ApiResponse<T>): T {
  if (response.status !== 'success') throw new Error(`${what}: ${response.errorType}: ${response.error}`);
  return response.data;
}

/** The configuration file. JSON is YAML, so no YAML writer is needed. */
function renderConfig(jobName: string, interval: number, targets: ScrapeTarget[], ruleFiles: string[]): string {
  const config = {
    global: { scrape_interval: `${interval}s`, scrape_timeout: `${interval}s`, evaluation_interval: `${interval}s` },
    rule_files: ruleFiles,
    scrape_configs: [{
      job_name: jobName,
      metrics_path: '/metrics',
      static_configs: targets.map((t) => ({ targets: [t.address], labels: t.labels ?? {} })),
    }],
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}

/** Clean-ups of processes between spawn and ready (not yet in `live`). */
const starting = new Set<() => void>();

process.once('exit', () => {
  for (const cleanup of starting) cleanup();
  for (const prometheus of live) prometheus.killSync();
});
