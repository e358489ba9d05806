import { expect } from 'chai';
import { hostname } from 'node:os';

import { type Config, ConfigError, loadConfig, shutdownBudgetMs } from '../../src/runtime/config.ts';

const outsideCluster = (): undefined => undefined;

function load(env: Record<string, string>, readInClusterNamespace: () => string | undefined = outsideCluster): Config {
  return loadConfig(env, readInClusterNamespace);
}

/** The ConfigError's problem lines for `env`; fails the test when loading succeeds. */
function problems(env: Record<string, string>): readonly string[] {
  try {
    load(env);
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  expect.fail(`expected ${JSON.stringify(env)} to be rejected`);
}

describe('loadConfig', () => {
  it('applies every default', () => {
    const { podName, ...rest } = load({});
    expect(rest).to.deep.equal({
      logLevel: 'info',
      logFormat: 'json',
      httpPort: 8080,
      httpHost: '0.0.0.0',
      watchNamespace: '',
      maxConcurrentReconciles: 2,
      reconcileTimeoutMs: 60_000,
      resyncPeriodMs: 0,
      streamingList: true,
      backoffBaseMs: 5,
      backoffMaxMs: 1_000_000,
      queueQps: 10,
      queueBurst: 100,
      leaderElection: true,
      leaseName: 'ha-operator',
      leaseNamespace: 'default',
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      leaseWatch: true,
      releaseOnCancel: true,
      onLeadershipLost: 'standby',
      shards: 1,
      drainTimeoutMs: 20_000,
      terminationGracePeriodMs: undefined,
      pod: undefined,
      failoverOnPodStatus: true,
    } satisfies Omit<Config, 'podName'>);
    expect(podName).to.match(new RegExp(`^${hostname().replace(/[.]/g, '\\.')}-[0-9a-f]{6}$`));
  });

  it('gives each process its own default identity', () => {
    expect(load({}).podName).to.not.equal(load({}).podName);
  });

  it('reads every variable', () => {
    const config = load({
      LOG_LEVEL: 'debug',
      LOG_FORMAT: 'text',
      HTTP_PORT: '9090',
      HTTP_HOST: '127.0.0.1',
      WATCH_NAMESPACE: 'team-a',
      MAX_CONCURRENT_RECONCILES: '256',
      RECONCILE_TIMEOUT_SECONDS: '0.5',
      RESYNC_PERIOD_SECONDS: '300',
      STREAMING_LIST: 'false',
      BACKOFF_BASE_MS: '10',
      BACKOFF_MAX_SECONDS: '30',
      QUEUE_QPS: '2.5',
      QUEUE_BURST: '5',
      LEADER_ELECTION: 'false',
      LEASE_NAME: 'websites.example.com',
      LEASE_NAMESPACE: 'ops',
      POD_NAME: 'ha-operator-7d9f-abcde',
      LEASE_DURATION_SECONDS: '4',
      RENEW_DEADLINE_SECONDS: '3',
      RETRY_PERIOD_SECONDS: '0.5',
      LEASE_WATCH: 'false',
      RELEASE_ON_CANCEL: 'false',
      ON_LEADERSHIP_LOST: 'exit',
      SHARDS: '64',
      DRAIN_TIMEOUT_SECONDS: '1.25',
      TERMINATION_GRACE_PERIOD_SECONDS: '10',
      POD_NAMESPACE: 'ops-pods',
      POD_UID: '0b7c6f5e-1111-4222-8333-944455556666',
      CONTAINER_NAME: 'manager',
      FAILOVER_ON_POD_STATUS: 'false',
    });
    expect(config).to.deep.equal({
      logLevel: 'debug',
      logFormat: 'text',
      httpPort: 9090,
      httpHost: '127.0.0.1',
      watchNamespace: 'team-a',
      maxConcurrentReconciles: 256,
      reconcileTimeoutMs: 500,
      resyncPeriodMs: 300_000,
      streamingList: false,
      backoffBaseMs: 10,
      backoffMaxMs: 30_000,
      queueQps: 2.5,
      queueBurst: 5,
      leaderElection: false,
      leaseName: 'websites.example.com',
      leaseNamespace: 'ops',
      podName: 'ha-operator-7d9f-abcde',
      leaseDurationMs: 4_000,
      renewDeadlineMs: 3_000,
      retryPeriodMs: 500,
      leaseWatch: false,
      releaseOnCancel: false,
      onLeadershipLost: 'exit',
      shards: 64,
      drainTimeoutMs: 1_250,
      terminationGracePeriodMs: 10_000,
      pod: { namespace: 'ops-pods', uid: '0b7c6f5e-1111-4222-8333-944455556666', container: 'manager' },
      failoverOnPodStatus: false,
    } satisfies Config);
  });

  it('knows its pod from POD_UID and POD_NAMESPACE, with the container named "operator" unless told', () => {
    expect(load({ POD_UID: 'u-1', POD_NAMESPACE: 'ha-operator' }).pod).to.deep.equal({ namespace: 'ha-operator', uid: 'u-1', container: 'operator' });
    expect(load({ POD_NAMESPACE: 'ha-operator' }).pod).to.equal(undefined);
    expect(problems({ POD_UID: 'u-1' })).to.deep.equal(['POD_UID is set but POD_NAMESPACE is not: set both from the downward API (metadata.uid, metadata.namespace)']);
  });

  describe('shutdown budget', () => {
    it('is the drain, the grace for aborted reconciles, leaving the group (retryPeriod), the release (renewDeadline) and a margin', () => {
      expect(shutdownBudgetMs(load({}))).to.equal(20_000 + 1_000 + 2_000 + 10_000 + 2_000);
      expect(shutdownBudgetMs(load({ LEADER_ELECTION: 'false' }))).to.equal(20_000 + 1_000 + 2_000);
    });

    it('must fit in TERMINATION_GRACE_PERIOD_SECONDS, which the defaults do at 35 s and not at the pod default of 30 s', () => {
      expect(load({ TERMINATION_GRACE_PERIOD_SECONDS: '35' }).terminationGracePeriodMs).to.equal(35_000);
      expect(problems({ TERMINATION_GRACE_PERIOD_SECONDS: '30' })).to.deep.equal([
        'TERMINATION_GRACE_PERIOD_SECONDS=30: the shutdown may take 35 s (DRAIN_TIMEOUT_SECONDS=20 + 1 s for aborted reconciles + '
          + 'RETRY_PERIOD_SECONDS=2 to leave the group + RENEW_DEADLINE_SECONDS=10 to release the leases + 2 s), so the kubelet would kill the process before it released its leases: '
          + 'raise the grace period or lower DRAIN_TIMEOUT_SECONDS',
      ]);
      expect(load({ TERMINATION_GRACE_PERIOD_SECONDS: '30', DRAIN_TIMEOUT_SECONDS: '15' }).terminationGracePeriodMs).to.equal(30_000);
      expect(problems({ TERMINATION_GRACE_PERIOD_SECONDS: '34' })).to.have.length(1);
    });
  });

  describe('lease namespace', () => {
    const inCluster = (): string => 'from-file';

    it('prefers LEASE_NAMESPACE', () => {
      expect(load({ LEASE_NAMESPACE: 'a', POD_NAMESPACE: 'b' }, inCluster).leaseNamespace).to.equal('a');
    });

    it('falls back to POD_NAMESPACE', () => {
      expect(load({ POD_NAMESPACE: 'b' }, inCluster).leaseNamespace).to.equal('b');
    });

    it('falls back to the in-cluster namespace file', () => {
      expect(load({}, inCluster).leaseNamespace).to.equal('from-file');
    });

    it('falls back to "default" outside a cluster', () => {
      expect(load({}).leaseNamespace).to.equal('default');
    });

    it('does not read the file when a variable names the namespace', () => {
      const unreadable = (): never => {
        throw new Error('must not be read');
      };
      expect(load({ POD_NAMESPACE: 'b' }, unreadable).leaseNamespace).to.equal('b');
    });

    it('reports a namespace file that cannot be read', () => {
      const unreadable = (): never => {
        throw new Error('EACCES: permission denied');
      };
      expect(() => load({}, unreadable)).to.throw(ConfigError, /serviceaccount\/namespace failed: EACCES/);
    });

    it('rejects an invalid POD_NAMESPACE', () => {
      expect(problems({ POD_NAMESPACE: 'Ops' })).to.deep.equal([
        'POD_NAMESPACE="Ops": must be a DNS-1123 label (at most 63 lowercase letters, digits and "-", starting and ending alphanumeric)',
      ]);
    });
  });

  describe('rejects', () => {
    const cases: [name: string, value: string, message: RegExp][] = [
      ['LOG_LEVEL', 'verbose', /^LOG_LEVEL="verbose": must be one of error, warn, info, debug$/],
      ['LOG_LEVEL', 'INFO', /must be one of error, warn, info, debug/],
      ['LOG_FORMAT', 'yaml', /^LOG_FORMAT="yaml": must be one of json, text$/],
      ['HTTP_PORT', '65536', /^HTTP_PORT="65536": must be a whole number from 0 to 65535$/],
      ['HTTP_PORT', '1e3', /^HTTP_PORT="1e3": must be a whole number/],
      ['HTTP_PORT', '', /^HTTP_PORT="": must be a whole number/],
      ['HTTP_PORT', ' 5', /^HTTP_PORT=" 5": must be a whole number/],
      ['HTTP_PORT', '5s', /^HTTP_PORT="5s": must be a whole number/],
      ['HTTP_PORT', '80.0', /must be a whole number/],
      ['HTTP_PORT', '-1', /must be a whole number/],
      ['HTTP_PORT', '0x50', /must be a whole number/],
      ['HTTP_HOST', '', /^HTTP_HOST="": must be a non-empty value without whitespace$/],
      ['WATCH_NAMESPACE', 'Team_A', /^WATCH_NAMESPACE="Team_A": must be empty \(all namespaces\) or a DNS-1123 label/],
      ['WATCH_NAMESPACE', 'a'.repeat(64), /must be empty \(all namespaces\) or a DNS-1123 label/],
      ['MAX_CONCURRENT_RECONCILES', '0', /^MAX_CONCURRENT_RECONCILES="0": must be a whole number from 1 to 256$/],
      ['MAX_CONCURRENT_RECONCILES', '257', /from 1 to 256/],
      ['RECONCILE_TIMEOUT_SECONDS', '0', /^RECONCILE_TIMEOUT_SECONDS="0": must be a number of seconds greater than 0 to 86400, at most 3 decimals$/],
      ['RECONCILE_TIMEOUT_SECONDS', '60s', /must be a number of seconds greater than 0/],
      ['RECONCILE_TIMEOUT_SECONDS', '0.0001', /at most 3 decimals/],
      ['RECONCILE_TIMEOUT_SECONDS', 'Infinity', /must be a number of seconds/],
      ['RESYNC_PERIOD_SECONDS', '-1', /^RESYNC_PERIOD_SECONDS="-1": must be a number of seconds from 0 to 604800, at most 3 decimals$/],
      ['RESYNC_PERIOD_SECONDS', '1e3', /must be a number of seconds from 0/],
      // Beyond a Node timer's 24.8 days: refused with the bound, not left to fire after 1 ms.
      ['RESYNC_PERIOD_SECONDS', '2592000', /^RESYNC_PERIOD_SECONDS="2592000": must be a number of seconds from 0 to 604800/],
      ['RECONCILE_TIMEOUT_SECONDS', '86401', /greater than 0 to 86400/],
      ['BACKOFF_MAX_SECONDS', '2592000', /greater than 0 to 86400/],
      ['DRAIN_TIMEOUT_SECONDS', '3601', /greater than 0 to 3600/],
      ['BACKOFF_BASE_MS', '0', /^BACKOFF_BASE_MS="0": must be a whole number, at least 1$/],
      ['BACKOFF_BASE_MS', '2.5', /must be a whole number, at least 1/],
      ['BACKOFF_MAX_SECONDS', '0', /^BACKOFF_MAX_SECONDS="0": must be a number of seconds greater than 0/],
      ['QUEUE_QPS', '0', /^QUEUE_QPS="0": must be a number greater than 0/],
      ['QUEUE_QPS', 'NaN', /must be a number greater than 0/],
      ['QUEUE_QPS', '.5', /must be a number greater than 0/],
      ['QUEUE_BURST', '0', /^QUEUE_BURST="0": must be a whole number, at least 1$/],
      ['LEADER_ELECTION', 'yes', /^LEADER_ELECTION="yes": must be true or false$/],
      ['LEADER_ELECTION', 'True', /must be true or false/],
      ['LEASE_NAME', 'HA_operator', /^LEASE_NAME="HA_operator": must be a DNS-1123 subdomain/],
      ['LEASE_NAME', '-ha', /must be a DNS-1123 subdomain/],
      ['LEASE_NAME', 'ha..operator', /must be a DNS-1123 subdomain/],
      ['LEASE_NAME', 'a'.repeat(254), /must be a DNS-1123 subdomain/],
      ['LEASE_NAMESPACE', 'kube.system', /^LEASE_NAMESPACE="kube.system": must be a DNS-1123 label/],
      ['POD_NAME', '', /^POD_NAME="": must be a non-empty value without whitespace$/],
      ['POD_NAME', 'pod a', /must be a non-empty value without whitespace/],
      ['LEASE_DURATION_SECONDS', '15.5', /^LEASE_DURATION_SECONDS="15.5": must be a whole number of seconds greater than 0 to 3600$/],
      ['LEASE_DURATION_SECONDS', '0', /must be a whole number of seconds greater than 0/],
      ['RENEW_DEADLINE_SECONDS', '0', /^RENEW_DEADLINE_SECONDS="0": must be a number of seconds greater than 0/],
      ['RETRY_PERIOD_SECONDS', '-2', /^RETRY_PERIOD_SECONDS="-2": must be a number of seconds greater than 0/],
      ['LEASE_WATCH', '1', /^LEASE_WATCH="1": must be true or false$/],
      ['RELEASE_ON_CANCEL', 'no', /^RELEASE_ON_CANCEL="no": must be true or false$/],
      ['ON_LEADERSHIP_LOST', 'restart', /^ON_LEADERSHIP_LOST="restart": must be one of standby, exit$/],
      ['SHARDS', '0', /^SHARDS="0": must be a whole number from 1 to 64$/],
      ['SHARDS', '65', /from 1 to 64/],
      ['DRAIN_TIMEOUT_SECONDS', '0', /^DRAIN_TIMEOUT_SECONDS="0": must be a number of seconds greater than 0/],
    ];
    for (const [name, value, message] of cases) {
      it(`${name}=${JSON.stringify(value.length > 20 ? `${value.slice(0, 8)}…` : value)}`, () => {
        const found = problems({ [name]: value });
        expect(found).to.have.length(1);
        expect(found[0]).to.match(message);
      });
    }
  });

  describe('leader election timing', () => {
    const rule = 'rule, as in client-go: LEASE_DURATION_SECONDS > RENEW_DEADLINE_SECONDS > 1.2 × RETRY_PERIOD_SECONDS';

    it('requires the lease duration to exceed the renew deadline', () => {
      expect(problems({ LEASE_DURATION_SECONDS: '10' })).to.deep.equal([
        `LEASE_DURATION_SECONDS=10, RENEW_DEADLINE_SECONDS=10: the lease duration must be greater than the renew deadline (${rule})`,
      ]);
    });

    it('requires the renew deadline to exceed 1.2 × the retry period', () => {
      expect(problems({ RENEW_DEADLINE_SECONDS: '2.4' })).to.deep.equal([
        `RENEW_DEADLINE_SECONDS=2.4, RETRY_PERIOD_SECONDS=2: the renew deadline must be greater than 1.2 × the retry period (${rule})`,
      ]);
    });

    it('accepts values just inside the rule', () => {
      const config = load({ LEASE_DURATION_SECONDS: '3', RENEW_DEADLINE_SECONDS: '2.401', RETRY_PERIOD_SECONDS: '2' });
      expect(config.renewDeadlineMs).to.equal(2_401);
    });

    it('reports both halves of the rule at once', () => {
      expect(problems({ LEASE_DURATION_SECONDS: '2', RENEW_DEADLINE_SECONDS: '3', RETRY_PERIOD_SECONDS: '3' })).to.have.length(2);
    });

    it('skips the rule when one of its variables is itself invalid', () => {
      expect(problems({ LEASE_DURATION_SECONDS: 'x', RENEW_DEADLINE_SECONDS: '20' })).to.deep.equal([
        'LEASE_DURATION_SECONDS="x": must be a whole number of seconds greater than 0 to 3600',
      ]);
    });
  });

  it('requires the maximum backoff to exceed the base', () => {
    expect(problems({ BACKOFF_BASE_MS: '2000', BACKOFF_MAX_SECONDS: '2' })).to.deep.equal([
      'BACKOFF_BASE_MS=2000, BACKOFF_MAX_SECONDS=2: the maximum backoff must be greater than the base backoff',
    ]);
  });

  it('reports several bad values together, one line each', () => {
    let error: unknown;
    try {
      load({ HTTP_PORT: 'eighty', LOG_LEVEL: 'loud', SHARDS: '100', LEASE_DURATION_SECONDS: '5' });
    } catch (err) {
      error = err;
    }
    expect(error).to.be.instanceOf(ConfigError);
    const lines = (error as ConfigError).message.split('\n');
    expect(lines[0]).to.equal('invalid configuration:');
    expect(lines.slice(1)).to.have.length(4);
    expect(lines[1]).to.match(/^ {2}LOG_LEVEL="loud": /);
    expect(lines[2]).to.match(/^ {2}HTTP_PORT="eighty": /);
    expect(lines[3]).to.match(/^ {2}SHARDS="100": /);
    expect(lines[4]).to.match(/^ {2}LEASE_DURATION_SECONDS=5, RENEW_DEADLINE_SECONDS=10: /);
  });
});
