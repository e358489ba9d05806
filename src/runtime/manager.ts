import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import { systemClock, type Clock, type Timer } from './clock.ts';
import { ABORT_GRACE_MS, shutdownBudgetMs, type Config } from './config.ts';
import { Controller, type Reconcile, type ShutdownReport } from './controller.ts';
import { Discovery } from './discovery.ts';
import { EventSink } from './events.ts';
import { LeaseElector, maxLoopTurnMs, type LeaseTiming } from './elector.ts';
import { LeaseGate, OpenGate, type WriteGate } from './gate.ts';
import { startHttpServer, type HealthResult, type RunningHttpServer } from './http.ts';
import { Informer, type CachedObject, type ResourceRef } from './informer.ts';
import { holderAnnotations, holderOf, processEnded, processIdentity, type HolderProcess, type PodStatusView } from './holder.ts';
import { KubeClient, isStatus, objectPath } from './kube.ts';
import { LeaseClient, type Lease } from './leases.ts';
import { LEASE_ROLE_LABEL, Membership, fairShare, shardLeaseLabels, schemeLeaseNames, type ShardScheme } from './membership.ts';
import type { Logger } from './logging.ts';
import type { OperatorMetrics } from './metrics.ts';
import { defaultControllerRateLimiter } from './ratelimiter.ts';
import { FencedWriter, InFlightRequests, type WriterContext } from './writer.ts';

export interface ManagerOptions {
  config: Config;
  kubeConfig: KubeConfig;
  logger: Logger;
  metrics: OperatorMetrics;
  /** The field manager of every server-side apply. */
  fieldManager: string;
  /** The User-Agent of every request: "<name>/<version> (<pod>)". */
  userAgent: string;
  clock?: Clock;
}

/** How far past its longest normal turn an election loop may be before /healthz reports it stuck. */
export const LIVENESS_MARGIN_MS = 5_000;

/**
 * /healthz: fails when an election loop (a leader's or a standby's) has not
 * finished a turn for longer than its longest normal turn plus a margin — a
 * campaign or renewal that is stuck, not merely failing (which the loop
 * survives), and which only a restart mends.
 */
export function electionLiveness(electors: readonly Pick<LeaseElector, 'name' | 'sinceLastTurnMs'>[], timing: LeaseTiming): HealthResult {
  const limitMs = maxLoopTurnMs(timing) + LIVENESS_MARGIN_MS;
  for (const elector of electors) {
    const silentMs = elector.sinceLastTurnMs();
    if (silentMs > limitMs) {
      return { ok: false, reason: `the election loop of lease ${elector.name} has not finished a turn for ${Math.round(silentMs)} ms (limit ${Math.round(limitMs)} ms)` };
    }
  }
  return { ok: true };
}

/**
 * Owns the shared pieces of one operator process — informers, the
 * controllers, the lease electors and their write gate, the HTTP server — and
 * runs the shutdown sequence. Informers run on every replica (hot standby);
 * the controllers' workers run everywhere too, but the gate lets a key's work
 * start only on the replica that leads the key's shard.
 */
export class Manager {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: OperatorMetrics;
  readonly clock: Clock;
  readonly gate: WriteGate;
  /** Where reconciles record Kubernetes events: sent in the background, fenced like every write. */
  readonly events: EventSink;
  /** This process's holder identity on the Leases: POD_NAME plus a suffix new for every process (holder.ts). */
  readonly identity: string;
  private readonly holder: HolderProcess;
  private readonly client: KubeClient;
  private readonly writers: WriterContext;
  private readonly requests = new InFlightRequests();
  private readonly informers: Informer<CachedObject>[] = [];
  private readonly electors: LeaseElector[] = [];
  private membership: Membership | undefined;
  private rebalanceTimer: Timer | undefined;
  /** Each controller with the cache of its primary kind, whose keys are queued when a shard is won. */
  private readonly controllers: { controller: Controller; primary: Informer<KubernetesObject> }[] = [];
  private started = false;
  private http: RunningHttpServer | undefined;
  private shuttingDown = false;
  /** Set when leadership is lost and the configuration says to exit. */
  private fatal: ((reason: string) => void) | undefined;

  constructor(options: ManagerOptions) {
    this.config = options.config;
    this.logger = options.logger;
    this.metrics = options.metrics;
    this.clock = options.clock ?? systemClock;
    this.client = new KubeClient(options.kubeConfig, { metrics: options.metrics.restClientMetrics(), userAgent: options.userAgent, clock: this.clock });
    this.gate = this.config.leaderElection
      ? new LeaseGate({ shards: this.config.shards, renewDeadlineMs: this.config.renewDeadlineMs, clock: this.clock })
      : new OpenGate();
    this.writers = {
      client: this.client,
      discovery: new Discovery(this.client),
      gate: this.gate,
      requests: this.requests,
      fieldManager: options.fieldManager,
      userAgent: options.userAgent,
      clock: this.clock,
    };
    this.events = new EventSink({ context: this.writers, logger: this.logger, metrics: options.metrics.eventMetrics() });
    this.identity = processIdentity(this.config.podName);
    const pod = this.config.pod;
    this.holder = {
      identity: this.identity,
      // performance's origin is the process start, on the wall clock the kubelet's times are read against.
      startedAtMs: Math.floor(performance.timeOrigin),
      ...(pod ? { pod: { namespace: pod.namespace, name: this.config.podName, uid: pod.uid, container: pod.container } } : {}),
    };
    if (this.config.leaderElection) {
      // A lease request that outlives the renew deadline is of no use to anyone.
      this.createElectors(new LeaseClient(this.client.with({ timeoutMs: this.config.renewDeadlineMs }), this.config.leaseNamespace));
    }
  }

  /**
   * A watch cache of `resource`, started with the manager: in the configured
   * namespace (WATCH_NAMESPACE), or of the whole cluster for a cluster-scoped
   * kind (`clusterScoped: true`). start() checks the declared scope against
   * the API server's discovery and fails with an error that says which.
   */
  informer<T extends KubernetesObject>(resource: Omit<ResourceRef, 'namespace'> & { clusterScoped?: boolean }): Informer<T> {
    const { clusterScoped = false, ...ref } = resource;
    return this.addInformer<T>({ ...ref, ...(clusterScoped ? {} : { namespace: this.config.watchNamespace }) }, this.config.resyncPeriodMs);
  }

  /**
   * A controller of `primary`, with its own queue, workers, metrics label
   * (`name`) and drain; leadership, shards and the write gate are shared. The
   * manager queues its keys when a shard is won. Register every controller
   * before start().
   */
  createController<T extends KubernetesObject>(name: string, primary: Informer<T>, reconcile: Reconcile): Controller {
    if (this.started) throw new Error(`controller ${name}: controllers are registered before the manager starts`);
    if (this.controllers.some((c) => c.controller.name === name)) {
      throw new Error(`a controller named ${name} is already registered: each needs a name of its own (it labels the controller's metrics and logs)`);
    }
    const controller = new Controller({
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
    controller.watchPrimary(primary);
    this.controllers.push({ controller, primary: primary as unknown as Informer<KubernetesObject> });
    return controller;
  }

  /** The fenced writer for one reconcile of `key`: the only way reconcile code writes. */
  writerFor(key: string, signal: AbortSignal, logger: Logger = this.logger): FencedWriter {
    return new FencedWriter({ context: this.writers, key, signal, logger });
  }

  /**
   * Reads one object from the API server, not a cache: for the rare question
   * a cache cannot answer (who owns an object the create found in the way,
   * which a label-filtered cache does not hold). Undefined when it does not exist.
   */
  async read<T extends KubernetesObject>(ref: { apiVersion: string; kind: string; namespace?: string; name: string }, signal?: AbortSignal): Promise<T | undefined> {
    const { plural, namespaced } = await this.writers.discovery.resourceFor(ref.apiVersion, ref.kind);
    const where = namespaced ? ref.namespace : undefined;
    try {
      return await this.client.request<T>({
        method: 'GET',
        path: objectPath(ref.apiVersion, plural, where, ref.name),
        ...(signal ? { signal } : {}),
        what: `read ${ref.kind} ${where ? `${where}/` : ''}${ref.name}`,
      });
    } catch (error) {
      if (isStatus(error, 404)) return undefined;
      throw error;
    }
  }

  /**
   * Starts the HTTP server and the caches, then — once the caches are warm —
   * the controller and the campaign for the leases. Resolves when all runs;
   * `onFatal` is called if leadership is lost and ON_LEADERSHIP_LOST=exit.
   */
  async start(onFatal: (reason: string) => void): Promise<void> {
    this.started = true;
    this.fatal = onFatal;
    this.http = await startHttpServer({
      host: this.config.httpHost,
      port: this.config.httpPort,
      metrics: this.metrics,
      health: { live: () => this.liveness(), ready: () => this.readiness() },
      logger: this.logger,
    });
    const listingFromMs = this.clock.monotonicMs();
    // Beside the lists: the first reconcile then writes without a discovery round trip per group version.
    this.writers.discovery.prefetch(this.informers.map((i) => i.resource.apiVersion));
    for (const informer of this.informers) informer.start();
    await Promise.all([...this.informers.map((i) => i.whenSynced()), this.checkScopes()]);
    this.logger.info('caches synced', {
      informers: this.informers.map((i) => i.resource.plural),
      durationMs: Math.round(this.clock.monotonicMs() - listingFromMs),
    });
    for (const { controller } of this.controllers) controller.start();
    if (this.gate instanceof OpenGate) this.queueShard(undefined);
    this.membership?.start();
    for (const elector of this.electors) elector.start();
    if (this.config.leaderElection) this.scheduleRebalance();
  }

  get httpPort(): number | undefined {
    return this.http?.port;
  }

  /**
   * The SIGTERM sequence: stop campaigning and taking work; drain (reconciles
   * in flight finish within drainTimeout, queued keys stay for the
   * successor) until their requests have ended too; close the write gate;
   * leave the shard group and release the leases; stop the caches and the
   * HTTP server. Each step is logged with its duration. The whole takes at
   * most shutdownBudgetMs(config).
   */
  async shutdown(reason: string): Promise<ShutdownReport[] | undefined> {
    if (this.shuttingDown) return undefined;
    this.shuttingDown = true;
    const step = async <T>(name: string, run: () => T | Promise<T>): Promise<T> => {
      const started = this.clock.monotonicMs();
      const result = await run();
      this.logger.info(`shutdown: ${name}`, { durationMs: Math.round(this.clock.monotonicMs() - started) });
      return result;
    };
    this.logger.info('shutting down', { reason, drainTimeoutMs: this.config.drainTimeoutMs, budgetMs: shutdownBudgetMs(this.config) });
    for (const elector of this.electors) elector.stopCampaigning();
    this.rebalanceTimer?.cancel();
    const drainStartedMs = this.clock.monotonicMs();
    // Every controller drains at once, within the same drain timeout.
    const reports = await step('drained work in flight', async () => {
      const drained = await Promise.all(this.controllers.map(({ controller }) => controller.shutdown(this.config.drainTimeoutMs)));
      // Requests end with their reconcile's signal; this only waits for the promises to settle.
      await this.within(ABORT_GRACE_MS, this.requests.whenNone());
      return drained;
    });
    // The events the drained reconciles recorded go out while the gate is still open, within what is left of the drain.
    const droppedEvents = await step('sent the events recorded', () =>
      this.events.flush(drainStartedMs + this.config.drainTimeoutMs - this.clock.monotonicMs()));
    if (reports.length > 0) {
      this.metrics.leaderMetrics().drainDuration(Math.max(...reports.map((r) => r.durationMs)) / 1000);
      this.metrics.leaderMetrics().keysLeftQueued(reports.reduce((n, r) => n + r.leftQueued.length, 0));
    }
    for (const [i, report] of reports.entries()) {
      this.logger.info('drain report', {
        controller: this.controllers[i]!.controller.name,
        drained: report.drained, leftQueued: report.leftQueued.length, aborted: report.aborted, abandoned: report.abandoned,
        requestsInFlight: this.requests.count(), eventsDropped: droppedEvents,
      });
    }
    await step('closed the write gate', () => this.gate.close(reason));
    // Leaving the group before the leases are free lets the others count one replica fewer by the
    // time they can take them. Best effort, bounded by a retry period: the others see it expire anyway.
    if (this.membership) await step('left the group', () => this.membership?.stop(this.config.retryPeriodMs));
    await step(this.config.releaseOnCancel ? 'released the leases' : 'stopped renewing the leases',
      () => Promise.all(this.electors.map((e) => e.stop(this.config.releaseOnCancel))));
    await step('stopped the caches', () => Promise.all(this.informers.map((i) => i.stop())));
    await step('stopped the HTTP server', () => this.http?.close());
    return reports;
  }

  /**
   * With WATCH_NAMESPACE set, an informer of a cluster-scoped kind declared
   * namespaced would list a path the server does not serve (404 forever), and
   * one of a namespaced kind declared cluster-scoped would watch every
   * namespace. Discovery tells; a kind it cannot tell about yet (its CRD not
   * installed) is left to the informer, which retries until it appears.
   */
  private async checkScopes(): Promise<void> {
    if (!this.config.watchNamespace) return;
    await Promise.all(this.informers.map(async ({ resource: { apiVersion, kind, namespace } }) => {
      // Declared cluster-scoped: no namespace in its path.
      const clusterScoped = namespace === undefined;
      const served = await this.writers.discovery.resourceFor(apiVersion, kind).catch(() => undefined);
      if (served === undefined || served.namespaced !== clusterScoped) return;
      throw new Error(served.namespaced
        ? `${kind} (${apiVersion}) is namespaced: register its informer without clusterScoped, so that WATCH_NAMESPACE applies to it`
        : `${kind} (${apiVersion}) is cluster-scoped: register its informer with clusterScoped: true (WATCH_NAMESPACE applies to namespaced kinds only)`);
    }));
  }

  private addInformer<T extends CachedObject>(resource: ResourceRef, resyncPeriodMs = 0): Informer<T> {
    const group = resource.apiVersion.includes('/') ? `.${resource.apiVersion.split('/')[0]}` : '';
    const metrics = this.metrics.informerMetrics(`${resource.plural}${group}`);
    const informer = new Informer<T>({
      client: this.client, resource, logger: this.logger, clock: this.clock, resyncPeriodMs, metrics, streamingList: this.config.streamingList,
    });
    this.informers.push(informer as unknown as Informer<CachedObject>);
    return informer;
  }

  private createElectors(leases: LeaseClient): void {
    const { config } = this;
    const gate = this.gate as LeaseGate;
    const scheme: ShardScheme = { leaseName: config.leaseName, shards: config.shards };
    const holderEnded = this.podStatusEvidence();
    const annotations = holderAnnotations(this.holder);
    const membership = this.createMembership(leases, scheme, annotations, holderEnded);
    this.membership = membership;
    for (const [shard, name] of schemeLeaseNames(scheme).entries()) {
      const elector: LeaseElector = new LeaseElector({
        leases,
        name,
        identity: this.identity,
        labels: shardLeaseLabels(scheme),
        annotations,
        ...(holderEnded ? { holderEnded } : {}),
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
        shouldCampaign: () => membership.campaignBlocker() === undefined && (config.shards === 1 || this.heldOrAcquiring() < this.share()),
        beforeRelease: () => this.drainShard(shard),
      });
      this.electors.push(elector);
    }
  }

  /**
   * With FAILOVER_ON_POD_STATUS and a pod to look from: a cache of the pods in
   * this replica's own namespace (the only ones its RBAC may read), and the
   * judgement of holder.ts on the pod a Lease's holder names — which the
   * electors and the membership consult, and which every change of a pod
   * puts to them again at once.
   */
  private podStatusEvidence(): ((lease: Lease) => string | undefined) | undefined {
    const own = this.config.pod;
    if (!this.config.failoverOnPodStatus || !own) return undefined;
    const pods = this.addInformer<PodStatusView & CachedObject>({ apiVersion: 'v1', kind: 'Pod', plural: 'pods', namespace: own.namespace });
    pods.subscribe(() => this.rebalance());
    return (lease) => {
      const holder = holderOf(lease);
      if (!holder?.pod || holder.pod.namespace !== own.namespace) return undefined;
      return processEnded(holder, pods.get(`${holder.pod.namespace}/${holder.pod.name}`));
    };
  }

  private createMembership(leases: LeaseClient, scheme: ShardScheme, annotations: Record<string, string>, holderEnded: ((lease: Lease) => string | undefined) | undefined): Membership {
    const { config } = this;
    const operatorLeases = this.addInformer<Lease>({
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      plural: 'leases',
      namespace: config.leaseNamespace,
      labelSelector: LEASE_ROLE_LABEL,
    });
    return new Membership({
      leases,
      operatorLeases,
      scheme,
      identity: this.identity,
      annotations,
      ...(holderEnded ? { memberEnded: holderEnded } : {}),
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
   * Hand over the shards held beyond the fair share (highest index first, so
   * replicas converge on the same picture), and wake the standby electors
   * when they may campaign (the share grew: a replica left or died; another
   * shard scheme no longer holds them back). Runs on every change of the
   * operator's leases and every retryPeriod, since a dead replica shows only
   * as the absence of changes.
   */
  private rebalance(): void {
    if (this.shuttingDown) return;
    const share = this.config.shards === 1 ? 1 : this.share();
    const held = this.electors.filter((e) => e.isLeader());
    for (const elector of held.slice(share)) {
      elector.handOver(`this replica holds ${held.length} shards, fair share is ${share}`);
    }
    if (held.length < share && this.membership?.campaignBlocker() === undefined) for (const elector of this.electors) elector.nudge();
  }

  private scheduleRebalance(): void {
    this.rebalanceTimer = this.clock.setTimer(() => {
      this.rebalance();
      if (!this.shuttingDown) this.scheduleRebalance();
    }, this.config.retryPeriodMs);
  }

  /**
   * Waits (at most renewDeadline) for the aborted reconciles of a shard being
   * handed over to return and for their requests to end.
   */
  private async drainShard(shard: number): Promise<void> {
    const gate = this.gate as LeaseGate;
    const ofShard = (key: string): boolean => gate.shardOf(key) === shard;
    const idle = Promise.all([...this.controllers.map(({ controller }) => controller.whenIdle(ofShard)), this.requests.whenNone(ofShard)]);
    await this.within(this.config.renewDeadlineMs, idle);
  }

  /** Resolves when `promise` does or after `ms`, whichever is first. */
  private async within(ms: number, promise: Promise<unknown>): Promise<void> {
    let timer: Timer | undefined;
    await Promise.race([promise, new Promise<void>((resolve) => (timer = this.clock.setTimer(resolve, ms)))]);
    timer?.cancel();
  }

  /** Queues every cached primary key of `shard` (all keys without leader election), in every controller. */
  private queueShard(shard: number | undefined): void {
    for (const { controller, primary } of this.controllers) {
      for (const key of primary.keys()) {
        if (shard === undefined || (this.gate as LeaseGate).shardOf(key) === shard) controller.enqueue(key, 'elected');
      }
    }
  }

  private liveness(): HealthResult {
    return electionLiveness(this.electors, this.config);
  }

  /** Ready once the caches are warm; deliberately independent of leadership, or rollouts would stall. */
  private readiness(): HealthResult {
    const pending = this.informers.filter((i) => !i.hasSynced()).map((i) => i.resource.plural);
    return pending.length === 0 ? { ok: true } : { ok: false, reason: `caches not synced: ${pending.join(', ')}` };
  }
}
