/**
 * The operator's Prometheus metrics: the only module that imports prom-client.
 *
 * Names, labels, help and buckets follow controller-runtime
 * (pkg/internal/controller/metrics, pkg/metrics/workqueue.go) and client-go's
 * component-base (rest_client_*, leader_election_master_status), so existing
 * dashboards and alerts work unchanged. prom-client writes bucket bounds in
 * JavaScript notation (le="0.000009999999999999999" where Go writes
 * le="9.999999999999999e-06"); Prometheus parses both to the same float.
 * Recent controller-runtime adds priority="" to workqueue_depth; an empty
 * label is no label to Prometheus, so it is left out here.
 *
 * Series of our own, for the high-availability behaviour those libraries do not measure:
 *   leader_election_transitions_total{name}    counter   times this process took the Lease over
 *   leader_election_handover_gap_seconds{name} histogram from when this process saw the Lease free (released
 *                                                        or expired) until it acquired it: a window in which
 *                                                        no replica reconciled
 *   operator_shutdown_drain_seconds            histogram from the stop signal until in-flight reconciles
 *                                                        finished or the drain timed out
 *   operator_shutdown_keys_left_queued         gauge     keys still queued when the drain ended, left to the
 *                                                        successor's initial list
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, exponentialBuckets } from 'prom-client';

import type { QueueMetrics } from './workqueue.ts';

export type ReconcileResult = 'success' | 'error' | 'requeue' | 'requeue_after';
const RECONCILE_RESULTS: readonly ReconcileResult[] = ['success', 'error', 'requeue', 'requeue_after'];

// controller-runtime's ReconcileTime buckets.
const RECONCILE_TIME_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 1.75,
  2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
];
// prometheus.ExponentialBuckets(10e-9, 10, 12): multiplied step by step as Go does, so the floats match.
const WORKQUEUE_DURATION_BUCKETS = exponentialBuckets(10e-9, 10, 12);
// client-go's rest_client_request_duration_seconds buckets.
const REST_CLIENT_DURATION_BUCKETS = [0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0];
// Handovers and drains take from about a millisecond (a released lease seen by a watching standby)
// to about a lease duration or the drain timeout (a crashed leader, a poll-only standby).
const SUB_MINUTE_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 20, 30, 45, 60];

export interface ControllerMetrics {
  reconciled(result: ReconcileResult): void;
  errored(): void;
  /** A terminal error (not retried); errored() counts it too, as in controller-runtime. */
  terminal(): void;
  panicked(): void;
  timedOut(): void;
  reconcileTime(seconds: number): void;
  /** +1 when a worker starts a reconcile, -1 when it ends. */
  activeWorkers(delta: number): void;
  maxConcurrentReconciles(n: number): void;
}

/** What a queue knows about work in progress, read at scrape time rather than pushed. */
export interface QueueReadings {
  unfinishedWorkSeconds(): number;
  longestRunningProcessorSeconds(): number;
}

export interface LeaderMetrics {
  /**
   * This replica campaigns for `lease`: its master_status (0) and transitions
   * (0) series exist from now on, so a standby shows on dashboards before it
   * ever leads and the first takeover is an increase() from 0, not a new series.
   */
  candidate(lease: string): void;
  leading(lease: string, isLeader: boolean): void;
  transitioned(lease: string): void;
  handoverGap(lease: string, seconds: number): void;
  drainDuration(seconds: number): void;
  keysLeftQueued(n: number): void;
}

export const EVENT_RESULTS = ['sent', 'duplicate', 'failed', 'dropped'] as const;
export type EventResult = (typeof EVENT_RESULTS)[number];

export interface EventMetrics {
  /** sent; duplicate: the server had it (409); failed: refused or no answer; dropped: sink full, not leader, or shutdown. */
  event(result: EventResult): void;
}

export interface InformerMetrics {
  relisted(from: 'watch cache' | 'etcd'): void;
}

export interface RestClientMetrics {
  /** `code` is the HTTP status, or "<error>" when no response arrived. */
  observe(method: string, host: string, code: string, seconds: number): void;
}

export interface RenderedMetrics {
  contentType: string;
  body: string;
}

const QUEUE_LABELS: ('name' | 'controller')[] = ['name', 'controller'];
type QueueLabels = Record<(typeof QUEUE_LABELS)[number], string>;

export class OperatorMetrics {
  private readonly registry = new Registry();
  private readonly queueReadings = new Map<string, { labels: QueueLabels; readings: QueueReadings }>();

  private readonly reconcileTotal = this.counter(
    'controller_runtime_reconcile_total',
    'Total number of reconciliations per controller',
    ['controller', 'result'],
  );
  private readonly reconcileErrors = this.counter(
    'controller_runtime_reconcile_errors_total',
    'Total number of reconciliation errors per controller',
    ['controller'],
  );
  private readonly reconcileTerminal = this.counter(
    'controller_runtime_terminal_reconcile_errors_total',
    'Total number of terminal reconciliation errors per controller',
    ['controller'],
  );
  private readonly reconcilePanics = this.counter(
    'controller_runtime_reconcile_panics_total',
    'Total number of reconciliation panics per controller',
    ['controller'],
  );
  private readonly reconcileTimeouts = this.counter(
    'controller_runtime_reconcile_timeouts_total',
    'Total number of reconciliation timeouts per controller',
    ['controller'],
  );
  private readonly reconcileTime = this.histogram(
    'controller_runtime_reconcile_time_seconds',
    'Length of time per reconciliation per controller',
    ['controller'],
    RECONCILE_TIME_BUCKETS,
  );
  private readonly workerCount = this.gauge(
    'controller_runtime_max_concurrent_reconciles',
    'Maximum number of concurrent reconciles per controller',
    ['controller'],
  );
  private readonly activeWorkers = this.gauge(
    'controller_runtime_active_workers',
    'Number of currently used workers per controller',
    ['controller'],
  );

  private readonly queueDepth = this.gauge('workqueue_depth', 'Current depth of workqueue', QUEUE_LABELS);
  private readonly queueAdds = this.counter(
    'workqueue_adds_total',
    'Total number of adds handled by workqueue',
    QUEUE_LABELS,
  );
  private readonly queueLatency = this.histogram(
    'workqueue_queue_duration_seconds',
    'How long in seconds an item stays in workqueue before being requested',
    QUEUE_LABELS,
    WORKQUEUE_DURATION_BUCKETS,
  );
  private readonly workDuration = this.histogram(
    'workqueue_work_duration_seconds',
    'How long in seconds processing an item from workqueue takes.',
    QUEUE_LABELS,
    WORKQUEUE_DURATION_BUCKETS,
  );
  private readonly queueRetries = this.counter(
    'workqueue_retries_total',
    'Total number of retries handled by workqueue',
    QUEUE_LABELS,
  );

  private readonly leaderStatus = this.gauge(
    'leader_election_master_status',
    'Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master. ' +
      "'name' is the string used to identify the lease. Please make sure to group by name.",
    ['name'],
  );
  private readonly leaderTransitions = this.counter(
    'leader_election_transitions_total',
    'Number of times this process took the lease over',
    ['name'],
  );
  private readonly handoverGap = this.histogram(
    'leader_election_handover_gap_seconds',
    'Time from this process seeing the lease free (released or expired) until it acquired it',
    ['name'],
    SUB_MINUTE_BUCKETS,
  );
  private readonly drainDuration = this.histogram(
    'operator_shutdown_drain_seconds',
    'Time from the stop signal until in-flight reconciles finished or the drain timed out',
    [],
    SUB_MINUTE_BUCKETS,
  );
  private readonly keysLeftQueued = this.gauge(
    'operator_shutdown_keys_left_queued',
    'Keys still queued when the shutdown drain ended',
    [],
  );

  private readonly events = this.counter(
    'operator_events_total',
    'Kubernetes events the reconciles recorded, by what became of them: sent, duplicate (the server had it), failed, dropped',
    ['result'],
  );
  private readonly informerRelists = this.counter(
    'operator_informer_relists_total',
    'Lists of an informer after its first one (its watch could not resume), by where the API server answered from',
    ['informer', 'from'],
  );

  private readonly restRequests = this.counter(
    'rest_client_requests_total',
    'Number of HTTP requests, partitioned by status code, method, and host.',
    ['code', 'method', 'host'],
  );
  private readonly restLatency = this.histogram(
    'rest_client_request_duration_seconds',
    'Request latency in seconds. Broken down by verb, and host.',
    ['verb', 'host'],
    REST_CLIENT_DURATION_BUCKETS,
  );

  constructor() {
    this.queueGauge(
      'workqueue_unfinished_work_seconds',
      "How many seconds of work has been done that is in progress and hasn't been observed by work_duration. " +
        'Large values indicate stuck threads. One can deduce the number of stuck threads by observing the rate ' +
        'at which this increases.',
      (r) => r.unfinishedWorkSeconds(),
    );
    this.queueGauge(
      'workqueue_longest_running_processor_seconds',
      'How many seconds has the longest running processor for workqueue been running.',
      (r) => r.longestRunningProcessorSeconds(),
    );
    collectDefaultMetrics({ register: this.registry });
  }

  /** Instruments for one controller; its counters start at 0 so rates and alerts see them from the start. */
  controllerMetrics(controller: string): ControllerMetrics {
    const labels = { controller };
    for (const result of RECONCILE_RESULTS) this.reconcileTotal.inc({ controller, result }, 0);
    this.reconcileErrors.inc(labels, 0);
    this.reconcileTerminal.inc(labels, 0);
    this.reconcilePanics.inc(labels, 0);
    this.reconcileTimeouts.inc(labels, 0);
    this.activeWorkers.set(labels, 0);
    // Present (all zero) from the start, so increase() also counts the reconciles before the first scrape.
    this.reconcileTime.zero(labels);
    return {
      reconciled: (result) => this.reconcileTotal.inc({ controller, result }),
      errored: () => this.reconcileErrors.inc(labels),
      terminal: () => this.reconcileTerminal.inc(labels),
      panicked: () => this.reconcilePanics.inc(labels),
      timedOut: () => this.reconcileTimeouts.inc(labels),
      reconcileTime: (seconds) => this.reconcileTime.observe(labels, seconds),
      activeWorkers: (delta) => this.activeWorkers.inc(labels, delta),
      maxConcurrentReconciles: (n) => this.workerCount.set(labels, n),
    };
  }

  /** Instruments for one work queue; `readings` is asked for the in-progress gauges at each scrape. */
  queueMetrics(name: string, controller: string, readings: QueueReadings): QueueMetrics {
    const labels: QueueLabels = { name, controller };
    this.queueReadings.set(JSON.stringify([name, controller]), { labels, readings });
    this.queueAdds.inc(labels, 0);
    this.queueRetries.inc(labels, 0);
    this.queueDepth.set(labels, 0);
    this.queueLatency.zero(labels);
    this.workDuration.zero(labels);
    return {
      added: () => this.queueAdds.inc(labels),
      depth: (n) => this.queueDepth.set(labels, n),
      queueLatency: (seconds) => this.queueLatency.observe(labels, seconds),
      workDuration: (seconds) => this.workDuration.observe(labels, seconds),
      retried: () => this.queueRetries.inc(labels),
    };
  }

  leaderMetrics(): LeaderMetrics {
    return {
      candidate: (lease) => {
        this.leaderStatus.set({ name: lease }, 0);
        this.leaderTransitions.inc({ name: lease }, 0);
        this.handoverGap.zero({ name: lease });
      },
      leading: (lease, isLeader) => this.leaderStatus.set({ name: lease }, isLeader ? 1 : 0),
      transitioned: (lease) => this.leaderTransitions.inc({ name: lease }),
      handoverGap: (lease, seconds) => this.handoverGap.observe({ name: lease }, seconds),
      drainDuration: (seconds) => this.drainDuration.observe(seconds),
      keysLeftQueued: (n) => this.keysLeftQueued.set(n),
    };
  }

  /** The event sink's counters, at 0 from the start. */
  eventMetrics(): EventMetrics {
    for (const result of EVENT_RESULTS) this.events.inc({ result }, 0);
    return { event: (result) => this.events.inc({ result }) };
  }

  /** Instruments for one informer, `informer` as resource.group (deployments.apps); its series start at 0. */
  informerMetrics(informer: string): InformerMetrics {
    for (const from of ['watch cache', 'etcd']) this.informerRelists.inc({ informer, from }, 0);
    return { relisted: (from) => this.informerRelists.inc({ informer, from }) };
  }

  restClientMetrics(): RestClientMetrics {
    return {
      observe: (method, host, code, seconds) => {
        this.restRequests.inc({ code, method, host });
        this.restLatency.observe({ verb: method, host }, seconds);
      },
    };
  }

  /** The exposition for a scrape of /metrics. */
  async render(): Promise<RenderedMetrics> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** A gauge per queue whose value is asked of the queue's readings at each scrape. */
  private queueGauge(name: string, help: string, read: (r: QueueReadings) => number): void {
    const queues = this.queueReadings;
    new Gauge({
      name,
      help,
      labelNames: QUEUE_LABELS,
      registers: [this.registry],
      collect() {
        for (const { labels, readings } of queues.values()) this.set(labels, read(readings));
      },
    });
  }

  private counter<L extends string>(name: string, help: string, labelNames: L[]): Counter<L> {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }

  private gauge<L extends string>(name: string, help: string, labelNames: L[]): Gauge<L> {
    return new Gauge({ name, help, labelNames, registers: [this.registry] });
  }

  private histogram<L extends string>(name: string, help: string, labelNames: L[], buckets: number[]): Histogram<L> {
    return new Histogram({ name, help, labelNames, buckets, registers: [this.registry] });
  }
}
