import { expect } from 'chai';

import { OperatorMetrics, type QueueReadings } from '../../src/runtime/metrics.ts';

/** Every line of a scrape. */
async function lines(metrics: OperatorMetrics): Promise<string[]> {
  return (await metrics.render()).body.split('\n');
}

/** The sample lines of one metric family (`name`, `name{…}`), without HELP/TYPE. */
async function samples(metrics: OperatorMetrics, name: string): Promise<string[]> {
  return (await lines(metrics)).filter((line) => line.startsWith(`${name} `) || line.startsWith(`${name}{`));
}

/** The upper bounds of the buckets of a histogram's first series, as numbers (+Inf excluded). */
async function bucketBounds(metrics: OperatorMetrics, name: string): Promise<number[]> {
  const lines = await samples(metrics, `${name}_bucket`);
  const bounds = lines.map((line) => /le="([^"]+)"/.exec(line)?.[1]);
  const inf = bounds.indexOf('+Inf');
  expect(inf).to.be.greaterThan(0);
  return bounds.slice(0, inf).map(Number);
}

const idleQueue: QueueReadings = { unfinishedWorkSeconds: () => 0, longestRunningProcessorSeconds: () => 0 };

// As controller-runtime declares them (pkg/internal/controller/metrics/metrics.go).
const CONTROLLER_RUNTIME_RECONCILE_TIME_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 1.75,
  2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
];
// prometheus.ExponentialBuckets(10e-9, 10, 12) as Go computes it (pkg/metrics/workqueue.go).
const CONTROLLER_RUNTIME_WORKQUEUE_BUCKETS = [
  1e-8, 1e-7, 1e-6, 9.999999999999999e-6, 9.999999999999999e-5, 0.001, 0.01, 0.1, 1, 10, 100, 1000,
];
// client-go (component-base/metrics/prometheus/restclient).
const CLIENT_GO_REQUEST_DURATION_BUCKETS = [0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0];

describe('OperatorMetrics', () => {
  it('renders in the Prometheus text format with the process and Node.js default metrics', async () => {
    const { contentType, body } = await new OperatorMetrics().render();
    expect(contentType).to.equal('text/plain; version=0.0.4; charset=utf-8');
    expect(body).to.match(/^process_cpu_user_seconds_total \d/m);
    expect(body).to.match(/^nodejs_eventloop_lag_seconds \d/m);
  });

  describe('controllerMetrics', () => {
    it('starts every result and failure counter of the controller at 0', async () => {
      const metrics = new OperatorMetrics();
      metrics.controllerMetrics('website');
      expect(await samples(metrics, 'controller_runtime_reconcile_total')).to.deep.equal([
        'controller_runtime_reconcile_total{controller="website",result="success"} 0',
        'controller_runtime_reconcile_total{controller="website",result="error"} 0',
        'controller_runtime_reconcile_total{controller="website",result="requeue"} 0',
        'controller_runtime_reconcile_total{controller="website",result="requeue_after"} 0',
      ]);
      for (const name of [
        'controller_runtime_reconcile_errors_total',
        'controller_runtime_terminal_reconcile_errors_total',
        'controller_runtime_reconcile_panics_total',
        'controller_runtime_reconcile_timeouts_total',
        'controller_runtime_active_workers',
        'controller_runtime_reconcile_time_seconds_count',
      ]) {
        expect(await samples(metrics, name)).to.deep.equal([`${name}{controller="website"} 0`]);
      }
    });

    it('counts results, failures, workers and reconcile time per controller', async () => {
      const metrics = new OperatorMetrics();
      const website = metrics.controllerMetrics('website');
      metrics.controllerMetrics('other');
      website.reconciled('success');
      website.reconciled('requeue_after');
      website.reconciled('requeue_after');
      website.errored();
      website.terminal();
      website.panicked();
      website.timedOut();
      website.maxConcurrentReconciles(4);
      website.activeWorkers(+1);
      website.activeWorkers(+1);
      website.activeWorkers(-1);
      website.reconcileTime(0.2);

      expect(await lines(metrics)).to.include.members([
        'controller_runtime_reconcile_total{controller="website",result="success"} 1',
        'controller_runtime_reconcile_total{controller="website",result="requeue_after"} 2',
        'controller_runtime_reconcile_total{controller="other",result="success"} 0',
        'controller_runtime_reconcile_errors_total{controller="website"} 1',
        'controller_runtime_terminal_reconcile_errors_total{controller="website"} 1',
        'controller_runtime_reconcile_panics_total{controller="website"} 1',
        'controller_runtime_reconcile_timeouts_total{controller="website"} 1',
        'controller_runtime_max_concurrent_reconciles{controller="website"} 4',
        'controller_runtime_active_workers{controller="website"} 1',
        'controller_runtime_reconcile_time_seconds_count{controller="website"} 1',
        'controller_runtime_reconcile_time_seconds_bucket{le="0.15",controller="website"} 0',
        'controller_runtime_reconcile_time_seconds_bucket{le="0.2",controller="website"} 1',
      ]);
    });

    it("uses controller-runtime's reconcile time buckets", async () => {
      const metrics = new OperatorMetrics();
      metrics.controllerMetrics('website').reconcileTime(1);
      expect(await bucketBounds(metrics, 'controller_runtime_reconcile_time_seconds')).to.deep.equal(
        CONTROLLER_RUNTIME_RECONCILE_TIME_BUCKETS,
      );
    });
  });

  describe('queueMetrics', () => {
    it('starts every series of the queue at 0, labelled with name and controller', async () => {
      const metrics = new OperatorMetrics();
      metrics.queueMetrics('websites', 'website', idleQueue);
      const labels = '{name="websites",controller="website"}';
      for (const name of [
        'workqueue_adds_total',
        'workqueue_depth',
        'workqueue_retries_total',
        'workqueue_unfinished_work_seconds',
        'workqueue_longest_running_processor_seconds',
        'workqueue_queue_duration_seconds_count',
        'workqueue_work_duration_seconds_count',
      ]) {
        expect(await samples(metrics, name)).to.deep.equal([`${name}${labels} 0`]);
      }
    });

    it('counts adds and retries, sets depth and observes latencies', async () => {
      const metrics = new OperatorMetrics();
      const queue = metrics.queueMetrics('websites', 'website', idleQueue);
      queue.added();
      queue.added();
      queue.retried();
      queue.depth(7);
      queue.queueLatency(0.003);
      queue.workDuration(0.5);
      queue.workDuration(2);
      const labels = '{name="websites",controller="website"}';
      expect(await samples(metrics, 'workqueue_adds_total')).to.deep.equal([`workqueue_adds_total${labels} 2`]);
      expect(await samples(metrics, 'workqueue_retries_total')).to.deep.equal([`workqueue_retries_total${labels} 1`]);
      expect(await samples(metrics, 'workqueue_depth')).to.deep.equal([`workqueue_depth${labels} 7`]);
      expect(await samples(metrics, 'workqueue_queue_duration_seconds_sum')).to.deep.equal([
        `workqueue_queue_duration_seconds_sum${labels} 0.003`,
      ]);
      expect(await samples(metrics, 'workqueue_work_duration_seconds_count')).to.deep.equal([
        `workqueue_work_duration_seconds_count${labels} 2`,
      ]);
    });

    it("uses controller-runtime's workqueue duration buckets", async () => {
      const metrics = new OperatorMetrics();
      metrics.queueMetrics('websites', 'website', idleQueue);
      expect(await bucketBounds(metrics, 'workqueue_queue_duration_seconds')).to.deep.equal(
        CONTROLLER_RUNTIME_WORKQUEUE_BUCKETS,
      );
      expect(await bucketBounds(metrics, 'workqueue_work_duration_seconds')).to.deep.equal(
        CONTROLLER_RUNTIME_WORKQUEUE_BUCKETS,
      );
    });

    it('reads the in-progress gauges from each queue at scrape time', async () => {
      const metrics = new OperatorMetrics();
      let unfinished = 1.5;
      let longest = 0.25;
      metrics.queueMetrics('websites', 'website', {
        unfinishedWorkSeconds: () => unfinished,
        longestRunningProcessorSeconds: () => longest,
      });
      metrics.queueMetrics('shard-1', 'website', idleQueue);
      expect(await samples(metrics, 'workqueue_unfinished_work_seconds')).to.deep.equal([
        'workqueue_unfinished_work_seconds{name="websites",controller="website"} 1.5',
        'workqueue_unfinished_work_seconds{name="shard-1",controller="website"} 0',
      ]);
      unfinished = 4;
      longest = 3;
      expect(await samples(metrics, 'workqueue_unfinished_work_seconds')).to.include(
        'workqueue_unfinished_work_seconds{name="websites",controller="website"} 4',
      );
      expect(await samples(metrics, 'workqueue_longest_running_processor_seconds')).to.include(
        'workqueue_longest_running_processor_seconds{name="websites",controller="website"} 3',
      );
    });
  });

  describe('leaderMetrics', () => {
    it('reports leadership, transitions and handover gaps per lease', async () => {
      const metrics = new OperatorMetrics();
      const leader = metrics.leaderMetrics();
      leader.leading('ha-operator', false);
      expect(await samples(metrics, 'leader_election_master_status')).to.deep.equal([
        'leader_election_master_status{name="ha-operator"} 0',
      ]);
      leader.leading('ha-operator', true);
      leader.transitioned('ha-operator');
      leader.handoverGap('ha-operator', 0.004);
      expect(await lines(metrics)).to.include.members([
        'leader_election_master_status{name="ha-operator"} 1',
        'leader_election_transitions_total{name="ha-operator"} 1',
        'leader_election_handover_gap_seconds_bucket{le="0.0025",name="ha-operator"} 0',
        'leader_election_handover_gap_seconds_bucket{le="0.005",name="ha-operator"} 1',
      ]);
    });

    it('creates a candidate\'s status and transitions series at 0 before it ever leads', async () => {
      const metrics = new OperatorMetrics();
      metrics.leaderMetrics().candidate('ha-operator-3');
      expect(await lines(metrics)).to.include.members([
        'leader_election_master_status{name="ha-operator-3"} 0',
        'leader_election_transitions_total{name="ha-operator-3"} 0',
        'leader_election_handover_gap_seconds_count{name="ha-operator-3"} 0',
      ]);
    });

    it('spans 1 ms to 60 s with the handover and drain buckets', async () => {
      const metrics = new OperatorMetrics();
      metrics.leaderMetrics().handoverGap('ha-operator', 1);
      for (const name of ['leader_election_handover_gap_seconds', 'operator_shutdown_drain_seconds']) {
        const bounds = await bucketBounds(metrics, name);
        expect(bounds[0]).to.equal(0.001);
        expect(bounds.at(-1)).to.equal(60);
      }
    });

    it('reports the shutdown drain without labels, at 0 before any shutdown', async () => {
      const metrics = new OperatorMetrics();
      expect(await samples(metrics, 'operator_shutdown_keys_left_queued')).to.deep.equal([
        'operator_shutdown_keys_left_queued 0',
      ]);
      expect(await samples(metrics, 'operator_shutdown_drain_seconds_count')).to.deep.equal([
        'operator_shutdown_drain_seconds_count 0',
      ]);
      const leader = metrics.leaderMetrics();
      leader.drainDuration(1.5);
      leader.keysLeftQueued(3);
      expect(await samples(metrics, 'operator_shutdown_keys_left_queued')).to.deep.equal([
        'operator_shutdown_keys_left_queued 3',
      ]);
      expect(await samples(metrics, 'operator_shutdown_drain_seconds_sum')).to.deep.equal([
        'operator_shutdown_drain_seconds_sum 1.5',
      ]);
    });
  });

  describe('restClientMetrics', () => {
    it("counts requests by code, method and host and times them by verb and host, with client-go's buckets", async () => {
      const metrics = new OperatorMetrics();
      const rest = metrics.restClientMetrics();
      rest.observe('GET', '10.0.0.1:6443', '200', 0.02);
      rest.observe('GET', '10.0.0.1:6443', '200', 0.03);
      rest.observe('PUT', '10.0.0.1:6443', '<error>', 30);
      expect(await samples(metrics, 'rest_client_requests_total')).to.deep.equal([
        'rest_client_requests_total{code="200",method="GET",host="10.0.0.1:6443"} 2',
        'rest_client_requests_total{code="<error>",method="PUT",host="10.0.0.1:6443"} 1',
      ]);
      expect(await samples(metrics, 'rest_client_request_duration_seconds_count')).to.deep.equal([
        'rest_client_request_duration_seconds_count{verb="GET",host="10.0.0.1:6443"} 2',
        'rest_client_request_duration_seconds_count{verb="PUT",host="10.0.0.1:6443"} 1',
      ]);
      expect(await bucketBounds(metrics, 'rest_client_request_duration_seconds')).to.deep.equal(
        CLIENT_GO_REQUEST_DURATION_BUCKETS,
      );
    });
  });

  it('keeps the series of two instances apart', async () => {
    const first = new OperatorMetrics();
    const second = new OperatorMetrics();
    first.controllerMetrics('website').reconciled('success');
    second.controllerMetrics('website');
    first.leaderMetrics().leading('ha-operator', true);

    expect(await samples(first, 'controller_runtime_reconcile_total')).to.include(
      'controller_runtime_reconcile_total{controller="website",result="success"} 1',
    );
    expect(await samples(second, 'controller_runtime_reconcile_total')).to.include(
      'controller_runtime_reconcile_total{controller="website",result="success"} 0',
    );
    expect(await samples(second, 'leader_election_master_status')).to.deep.equal([]);
  });
});
