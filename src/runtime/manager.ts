import {
  CoordinationV1Api,
  CustomObjectsApi,
  EventsV1Api,
  KubernetesObjectApi,
  type KubeConfig,
  type KubernetesObject,
  type V1Lease,
} from '@kubernetes/client-node';
import { systemClock, type Clock, type Timer } from './clock.ts';
import type { Config } from './config.ts';
import { Controller, type Reconcile, type ShutdownReport } from './controller.ts';
import { LeaseElector } from './elector.ts';
import { LeaseGate, OpenGate, type WriteGate } from './gate.ts';
import { startHttpServer, type HealthResult, type RunningHttpServer } from './http.ts';
import { Informer, type ResourceRef } from './informer.ts';
import { CollectionReader, makeInstrumentedClient } from './kube.ts';
import { MEMBER_GROUP_LABEL, Membership, fairShare } from './membership.ts';
import type { Logger } from './logging.ts';
import type { OperatorMetrics } from './metrics.ts';
import { defaultControllerRateLimiter } from './ratelimiter.ts';
import { FencedWriter, type WriteClients } from './writer.ts';

export interface ManagerOptions {
  config: Config;
  kubeConfig: KubeConfig;
  logger: Logger;
  metrics: OperatorMetrics;
  /** The field manager of every server-side apply. */
  fieldManager: string;
  clock?: Clock;
}

/** How a stuck leader is told apart from a slow one: this long past leaseDuration without a renewal. */
const LIVENESS_MARGIN_MS = 5_000;

/**
 * Owns the shared pieces of one operator process — informers, the
 * controller, the lease electors and their write gate, the HTTP server — and
 * runs the shutdown sequence. Informers run on every replica (hot standby);
 * the controller's workers run everywhere too, but the gate lets a key's work
 * start only on the replica that leads the key's shard.
 */
export class Manager {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: OperatorMetrics;
  readonly clock: Clock;
  readonly gate: WriteGate;
  private readonly kubeConfig: KubeConfig;
  private readonly fieldManager: string;
  private readonly clients: WriteClients;
  private readonly objects: KubernetesObjectApi;
  private readonly reader: CollectionReader;
  private readonly informers: Informer<KubernetesObject>[] = [];
  private readonly electors: LeaseElector[] = [];
  private membership: Membership | undefined;
  private rebalanceTimer: Timer | undefined;
  private controller: Controller | undefined;
  private primary: Informer<KubernetesObject> | undefined;
  private http: RunningHttpServer | undefined;
  private shuttingDown = false;
  /** Set when leadership is lost and the configuration says to exit. */
  private fatal: ((reason: string) => void) | undefined;

  constructor(options: ManagerOptions) {
    this.config = options.config;
    this.kubeConfig = options.kubeConfig;
    this.logger = options.logger;
    this.metrics = options.metrics;
    this.fieldManager = options.fieldManager;
    this.clock = options.clock ?? systemClock;
    const rest = options.metrics.restClientMetrics();
    this.objects = makeInstrumentedClient(options.kubeConfig, KubernetesObjectApi, rest, this.clock);
    this.reader = makeInstrumentedClient(options.kubeConfig, CollectionReader, rest, this.clock);
    this.clients = {
      objects: this.objects,
      customObjects: makeInstrumentedClient(options.kubeConfig, CustomObjectsApi, rest, this.clock),
      events: makeInstrumentedClient(options.kubeConfig, EventsV1Api, rest, this.clock),
    };
    this.gate = this.config.leaderElection
      ? new LeaseGate({ shards: this.config.shards, renewDeadlineMs: this.config.renewDeadlineMs, clock: this.clock })
      : new OpenGate();
    if (this.config.leaderElection) {
      // A lease request that outlives the renew deadline is of no use to anyone.
      this.createElectors(makeInstrumentedClient(options.kubeConfig, CoordinationV1Api, rest, this.clock, this.config.renewDeadlineMs));
    }
  }

  /** A watch cache of `resource` in the configured namespace, started with the manager. */
  informer<T extends KubernetesObject>(resource: Omit<ResourceRef, 'namespace'>): Informer<T> {
    const informer = new Informer<T>({
      kubeConfig: this.kubeConfig,
      reader: this.reader,
      resource: { ...resource, namespace: this.config.watchNamespace },
      logger: this.logger,
      clock: this.clock,
      resyncPeriodMs: this.config.resyncPeriodMs,
    });
    this.informers.push(informer as unknown as Informer<KubernetesObject>);
    return informer;
  }

  /** The controller of the primary resource; the manager queues its keys when a shard is won. */
  createController<T extends KubernetesObject>(name: string, primary: Informer<T>, reconcile: Reconcile): Controller {
    this.controller = new Controller({
      name,
      reconcile,
      logger: this.logger,
      metrics: this.metrics,
      concurrency: this.config.maxConcurrentReconciles,
      reconcileTimeoutMs: this.config.reconcileTimeoutMs,
      rateLimiter: defaultControllerRateLimiter({
        baseDelayMs: this.config.backoffBaseMs,
        maxDelayMs: this.config.backoffMaxMs,
        qps: this.config.queueQps,
        burst: this.config.queueBurst,
        clock: this.clock,
      }),
      permit: this.gate,
      clock: this.clock,
    });
    this.controller.watchPrimary(primary);
    this.primary = primary as unknown as Informer<KubernetesObject>;
    return this.controller;
  }

  /** The fenced writer for one reconcile of `key`: the only way reconcile code writes. */
  writerFor(key: string, signal: AbortSignal, logger: Logger = this.logger): FencedWriter {
    return new FencedWriter({ clients: this.clients, gate: this.gate, key, signal, fieldManager: this.fieldManager, logger });
  }

  /**
   * Starts the HTTP server and the caches, then — once the caches are warm —
   * the controller and the campaign for the leases. Resolves when all runs;
   * `onFatal` is called if leadership is lost and ON_LEADERSHIP_LOST=exit.
   */
  async start(onFatal: (reason: string) => void): Promise<void> {
    this.fatal = onFatal;
    this.http = await startHttpServer({
      host: this.config.httpHost,
      port: this.config.httpPort,
      metrics: this.metrics,
      health: { live: () => this.liveness(), ready: () => this.readiness() },
      logger: this.logger,
    });
    for (const informer of this.informers) informer.start();
    await Promise.all(this.informers.map((i) => i.whenSynced()));
    this.logger.info('caches synced', { informers: this.informers.map((i) => i.resource.plural) });
    this.controller?.start();
    if (this.gate instanceof OpenGate) this.queueShard(undefined);
    this.membership?.start();
    for (const elector of this.electors) elector.start();
    if (this.membership) this.scheduleRebalance();
  }

  get httpPort(): number | undefined {
    return this.http?.port;
  }

  /**
   * The SIGTERM sequence: stop intake and drain (reconciles in flight finish
   * within drainTimeout; queued keys stay for the successor), close the write
   * gate, release the leases, stop the HTTP server. Each step is logged with
   * its duration.
   */
  async shutdown(reason: string): Promise<ShutdownReport | undefined> {
    if (this.shuttingDown) return undefined;
    this.shuttingDown = true;
    const step = async <T>(name: string, run: () => T | Promise<T>): Promise<T> => {
      const started = this.clock.monotonicMs();
      const result = await run();
      this.logger.info(`shutdown: ${name}`, { durationMs: Math.round(this.clock.monotonicMs() - started) });
      return result;
    };
    this.logger.info('shutting down', { reason, drainTimeoutMs: this.config.drainTimeoutMs });
    const report = await step('drained work in flight', () => this.controller?.shutdown(this.config.drainTimeoutMs));
    if (report) {
      this.metrics.leaderMetrics().drainDuration(report.durationMs / 1000);
      this.metrics.leaderMetrics().keysLeftQueued(report.leftQueued.length);
      this.logger.info('drain report', { drained: report.drained, leftQueued: report.leftQueued.length, aborted: report.aborted });
    }
    await step('closed the write gate', () => this.gate.close(reason));
    this.rebalanceTimer?.cancel();
    await step(this.config.releaseOnCancel ? 'released the leases' : 'stopped renewing the leases',
      () => Promise.all(this.electors.map((e) => e.stop(this.config.releaseOnCancel))));
    if (this.membership) await step('left the shard group', () => this.membership?.stop());
    await step('stopped the caches', () => Promise.all(this.informers.map((i) => i.stop())));
    await step('stopped the HTTP server', () => this.http?.close());
    return report;
  }

  private createElectors(leases: CoordinationV1Api): void {
    const { config } = this;
    const gate = this.gate as LeaseGate;
    if (config.shards > 1) this.membership = this.createMembership(leases);
    for (let shard = 0; shard < config.shards; shard++) {
      const name = config.shards === 1 ? config.leaseName : `${config.leaseName}-${shard}`;
      const elector: LeaseElector = new LeaseElector({
        leases,
        kubeConfig: this.kubeConfig,
        namespace: config.leaseNamespace,
        name,
        identity: config.podName,
        leaseDurationMs: config.leaseDurationMs,
        renewDeadlineMs: config.renewDeadlineMs,
        retryPeriodMs: config.retryPeriodMs,
        watch: config.leaseWatch,
        logger: this.logger,
        metrics: this.metrics.leaderMetrics(),
        clock: this.clock,
        onStartedLeading: () => {
          gate.started(shard, elector);
          this.queueShard(shard);
        },
        onStoppedLeading: (reason) => {
          gate.stopped(shard, reason);
          const handedOver = reason.startsWith('handing over');
          if (!this.shuttingDown && !handedOver && config.onLeadershipLost === 'exit') this.fatal?.(`lost lease ${name}: ${reason}`);
        },
        ...(this.membership ? {
          shouldCampaign: () => this.heldOrAcquiring() < this.share(),
          beforeRelease: () => this.drainShard(shard),
        } : {}),
      });
      this.electors.push(elector);
    }
  }

  private createMembership(leases: CoordinationV1Api): Membership {
    const { config } = this;
    const members = new Informer<V1Lease>({
      kubeConfig: this.kubeConfig,
      reader: this.reader,
      resource: {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        plural: 'leases',
        namespace: config.leaseNamespace,
        labelSelector: `${MEMBER_GROUP_LABEL}=${config.leaseName}`,
      },
      logger: this.logger,
      clock: this.clock,
    });
    this.informers.push(members);
    return new Membership({
      leases,
      members,
      namespace: config.leaseNamespace,
      group: config.leaseName,
      identity: config.podName,
      leaseDurationMs: config.leaseDurationMs,
      retryPeriodMs: config.retryPeriodMs,
      logger: this.logger,
      clock: this.clock,
      onChange: () => this.rebalance(),
    });
  }

  private share(): number {
    return fairShare(this.config.shards, this.membership?.liveCount() ?? 1);
  }

  private heldOrAcquiring(): number {
    return this.electors.filter((e) => e.isLeaderOrAcquiring()).length;
  }

  /**
   * Sharding: hand over the shards held beyond the fair share (highest index
   * first, so replicas converge on the same picture), and wake the standby
   * electors when the share grew (a replica left or died). Runs on every
   * membership change and every retryPeriod, since a dead replica shows only
   * as the absence of changes.
   */
  private rebalance(): void {
    if (this.shuttingDown) return;
    const share = this.share();
    const held = this.electors.filter((e) => e.isLeader());
    for (const elector of held.slice(share)) {
      elector.handOver(`this replica holds ${held.length} shards, fair share is ${share}`);
    }
    if (held.length < share) for (const elector of this.electors) elector.nudge();
  }

  private scheduleRebalance(): void {
    this.rebalanceTimer = this.clock.setTimer(() => {
      this.rebalance();
      if (!this.shuttingDown) this.scheduleRebalance();
    }, this.config.retryPeriodMs);
  }

  /** Waits (at most renewDeadline) for the aborted reconciles of a shard being handed over to stop. */
  private async drainShard(shard: number): Promise<void> {
    const gate = this.gate as LeaseGate;
    const idle = this.controller?.whenIdle((key) => gate.shardOf(key) === shard) ?? Promise.resolve();
    let timer: Timer | undefined;
    await Promise.race([idle, new Promise<void>((resolve) => (timer = this.clock.setTimer(resolve, this.config.renewDeadlineMs)))]);
    timer?.cancel();
  }

  /** Queues every cached primary key of `shard` (all keys without leader election). */
  private queueShard(shard: number | undefined): void {
    if (!this.primary || !this.controller) return;
    for (const key of this.primary.keys()) {
      if (shard === undefined || (this.gate as LeaseGate).shardOf(key) === shard) this.controller.enqueue(key, 'elected');
    }
  }

  private liveness(): HealthResult {
    const now = this.clock.monotonicMs();
    for (const elector of this.electors) {
      const silentMs = now - elector.lastRenewedAtMs();
      if (elector.isLeader() && silentMs > this.config.leaseDurationMs + LIVENESS_MARGIN_MS) {
        return { ok: false, reason: `leader of ${elector.name} has not renewed for ${Math.round(silentMs)} ms` };
      }
    }
    return { ok: true };
  }

  /** Ready once the caches are warm; deliberately independent of leadership, or rollouts would stall. */
  private readiness(): HealthResult {
    const pending = this.informers.filter((i) => !i.hasSynced()).map((i) => i.resource.plural);
    return pending.length === 0 ? { ok: true } : { ok: false, reason: `caches not synced: ${pending.join(', ')}` };
  }
}
