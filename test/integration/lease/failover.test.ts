import { expect } from 'chai';
import { join } from 'node:path';
import { CustomObjectsApi, Watch, type V1Lease, type V1LeaseSpec } from '@kubernetes/client-node';

import { DEFAULT_REPLICA_ENV, Replica, type LogLine } from '../../../hack/lib/replica.ts';
import { readAuditLog } from '../../../hack/lib/audit.ts';
import { TcpProxy, writeProxiedKubeconfig } from '../../../hack/lib/tcp-proxy.ts';
import { expectNoOutOfTermWrites } from '../support/audit.ts';
import { podOfIdentity } from '../../../src/runtime/holder.ts';
import { adminKubeConfig, cluster, freshNamespace } from '../support/cluster.ts';
import { installKind } from '../support/operator.ts';
import { WIDGET_OPERATOR, WIDGET_PROFILE } from '../support/widget/profile.ts';

/**
 * Operator replicas as separate OS processes (the Widget operator,
 * support/widget/main.ts: the runtime with one small controller) against the
 * real API server. Safety is judged from the API server's audit log: no write
 * of an earlier term commits after a later term's on any object. Times
 * across processes are compared by the replicas' own log timestamps (one
 * wall clock: same machine); waits are for log lines and watch events, never
 * fixed sleeps.
 */

const LEASE = 'ha-operator';
const LEASE_MS = Number(DEFAULT_REPLICA_ENV.LEASE_DURATION_SECONDS) * 1000;
const RENEW_DEADLINE_MS = Number(DEFAULT_REPLICA_ENV.RENEW_DEADLINE_SECONDS) * 1000;
const RETRY_MS = Number(DEFAULT_REPLICA_ENV.RETRY_PERIOD_SECONDS) * 1000;
/** One jittered poll of a standby. */
const MAX_POLL_MS = RETRY_MS * 1.2;
/** Scheduling, the acquisition's GET and PUT, two processes and a test runner on a loaded machine. */
const MARGIN_MS = 500;
/** Start-up of a replica: a Node process, its caches synced. */
const START_MS = 30_000;
const INITIAL_WIDGETS = ['alpha', 'beta', 'gamma'];

interface LeaseEvent {
  type: string;
  spec: V1LeaseSpec;
  /** Date.now() when this test saw the event. */
  receivedAt: number;
}

/** Every change of the lease, as this test's own watch sees it, with awaitable predicates. */
class LeaseWatch {
  readonly events: LeaseEvent[] = [];
  private controller: AbortController | undefined;
  private ended: string | undefined;
  private readonly waiters = new Set<{ predicate: (e: LeaseEvent) => boolean; resolve: (e: LeaseEvent) => void; reject: (e: Error) => void }>();

  /** Resolves once the watch is established (the response has started). */
  async start(namespace: string): Promise<void> {
    this.controller = await new Watch(adminKubeConfig()).watch(
      `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`,
      { fieldSelector: `metadata.name=${LEASE}` },
      (type: string, lease: V1Lease) => {
        const event = { type, spec: lease.spec ?? {}, receivedAt: Date.now() };
        this.events.push(event);
        for (const waiter of this.waiters) {
          if (waiter.predicate(event)) {
            this.waiters.delete(waiter);
            waiter.resolve(event);
          }
        }
      },
      (error: unknown) => {
        this.ended = error instanceof Error ? error.message : 'closed by the server';
        for (const waiter of this.waiters) waiter.reject(new Error(`the test's lease watch ended: ${this.ended}`));
        this.waiters.clear();
      },
    );
  }

  /** The first event from now on that matches. */
  next(predicate: (e: LeaseEvent) => boolean, timeoutMs: number, what: string): Promise<LeaseEvent> {
    if (this.ended !== undefined) return Promise.reject(new Error(`the test's lease watch ended: ${this.ended}`));
    return new Promise((resolvePromise, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`no lease event with ${what} within ${timeoutMs} ms; last: ${JSON.stringify(this.events.at(-1) ?? null)}`));
      }, timeoutMs);
      const waiter = {
        predicate,
        resolve: (e: LeaseEvent) => {
          clearTimeout(timer);
          resolvePromise(e);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.waiters.add(waiter);
    });
  }

  /** Resolves once `holder` renewed at a wall time later than `afterMs` from now: it kept renewing meanwhile. */
  renewedFor(holder: string, afterMs: number): Promise<LeaseEvent> {
    const threshold = Date.now() + afterMs;
    return this.next((e) => podOfIdentity(e.spec.holderIdentity ?? '') === holder && Date.parse(String(e.spec.renewTime)) > threshold, afterMs + 10_000,
      `a renewal by ${holder} after ${new Date(threshold).toISOString()}`);
  }

  /** The last renewal by `holder` this watch saw. */
  lastRenewalBy(holder: string): LeaseEvent | undefined {
    return this.events.filter((e) => podOfIdentity(e.spec.holderIdentity ?? '') === holder).at(-1);
  }

  stop(): void {
    this.controller?.abort();
  }
}

/** A leadership term of one replica by its own log: from 'started leading' to 'stopped leading' or its exit. */
interface Term {
  replica: string;
  start: number;
  end: number;
  writes: LogLine[];
}

/**
 * The terms of every replica from its log, checking that each 'write' line
 * lies inside a term of the replica that wrote it.
 */
function termsOf(replica: Replica, exitedAt: number | undefined): Term[] {
  const terms: Term[] = [];
  let open: Term | undefined;
  for (const line of replica.lines) {
    if (line.message === 'started leading') {
      expect(open, `${replica.name} started leading twice without stopping:\n${replica.tail()}`).to.equal(undefined);
      open = { replica: replica.name, start: line.loggedAt!, end: Number.POSITIVE_INFINITY, writes: [] };
    } else if (line.message === 'stopped leading') {
      expect(open, `${replica.name} stopped leading without leading:\n${replica.tail()}`).to.not.equal(undefined);
      open!.end = line.loggedAt!;
      terms.push(open!);
      open = undefined;
    } else if (line.message === 'write') {
      expect(open, `${replica.name} wrote outside a leadership term: ${line.text}`).to.not.equal(undefined);
      open!.writes.push(line);
    }
  }
  if (open) {
    open.end = exitedAt ?? Number.POSITIVE_INFINITY;
    terms.push(open);
  }
  return terms;
}

/** No two replicas wrote in leadership terms that overlap in time. */
function assertNoOverlappingTerms(replicas: Replica[], exits: Map<Replica, number>): void {
  const terms = replicas.flatMap((r) => termsOf(r, exits.get(r))).filter((t) => t.writes.length > 0);
  for (const a of terms) {
    for (const b of terms) {
      if (a.replica >= b.replica) continue;
      const overlap = a.start < b.end && b.start < a.end;
      expect(overlap, `terms overlap: ${a.replica} [${iso(a.start)} – ${iso(a.end)}] (${a.writes.length} writes, last ${iso(a.writes.at(-1)!.loggedAt!)}) `
        + `and ${b.replica} [${iso(b.start)} – ${iso(b.end)}] (${b.writes.length} writes, first ${iso(b.writes[0]!.loggedAt!)})`).to.be.false;
    }
  }
}

function iso(ms: number): string {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : String(ms);
}

function isMessage(message: string, key?: string): (l: LogLine) => boolean {
  return (l) => l.message === message && (key === undefined || l.json?.key === key);
}

describe('failover between operator replicas (OS processes)', function () {
  this.timeout(90_000);
  let namespace: string;
  let replicas: Replica[];
  let exits: Map<Replica, number>;
  let leaseWatch: LeaseWatch;
  let proxy: TcpProxy | undefined;
  beforeEach(async () => {
    await installKind(WIDGET_PROFILE);
    namespace = await freshNamespace('failover');
    replicas = [];
    exits = new Map();
    proxy = undefined;
    leaseWatch = new LeaseWatch();
    await leaseWatch.start(namespace);
    await createWidgets(INITIAL_WIDGETS);
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      for (const r of replicas) {
        const lifecycle = r.lines.filter((l) => l.message !== 'write' && (l.level === 'warn' || l.level === 'error' || /leading|lease|shut|running/.test(l.message ?? '')));
        console.log(`--- leadership and warnings of replica ${r.name} ---\n${lifecycle.map((l) => `  ${l.text.slice(0, 400)}`).join('\n')}\n${r.tail(40)}`);
      }
    }
    await stopAll();
    leaseWatch.stop();
    await proxy?.close();
  });

  async function createWidgets(names: string[]): Promise<void> {
    const api = adminKubeConfig().makeApiClient(CustomObjectsApi);
    const { group, version, plural } = WIDGET_PROFILE.resource;
    await Promise.all(names.map((name) => api.createNamespacedCustomObject({ group, version, namespace, plural, body: WIDGET_PROFILE.sample(namespace, name) })));
  }

  async function start(name: string, kubeconfig = cluster().kubeconfigPath): Promise<Replica> {
    const replica = await Replica.start({ entry: WIDGET_OPERATOR, name, kubeconfig, leaseNamespace: namespace, watchNamespace: namespace });
    replicas.push(replica);
    void replica.exited.then((exit) => exits.set(replica, exit.at));
    await replica.running(START_MS);
    return replica;
  }

  /** SIGTERM every replica still running, SIGKILL after 5 s; every one has exited afterwards. */
  async function stopAll(): Promise<void> {
    await Promise.all(replicas.map(async (r) => exits.set(r, (await r.stop(5_000)).at)));
  }

  /** Resolves once `replica` logged 'reconciled' for every one of `names` (from `after` on). */
  async function reconciledAll(replica: Replica, names: string[], after?: LogLine): Promise<void> {
    await Promise.all(names.map((name) =>
      replica.waitForLog(isMessage('reconciled', `${namespace}/${name}`), 30_000, { description: `'reconciled' of ${name}`, ...(after ? { after } : {}) })));
  }

  /** The first of `candidates` to log 'started leading', and the others. */
  async function firstLeader(candidates: Replica[]): Promise<{ leader: Replica; standby: Replica }> {
    const leader = await Promise.race(candidates.map(async (r) => {
      await r.waitForMessage('started leading', START_MS);
      return r;
    }));
    return { leader, standby: candidates.find((r) => r !== leader)! };
  }

  /**
   * Replica a, reaching the API server only through `proxy`, leads and has reconciled the
   * first Widgets; b, direct, is its watching standby. With a `batch` prefix, twelve more
   * Widgets are created and a is writing for them.
   */
  /**
   * a leads through a proxy, b is its standby; with a batch, a is writing it.
   * `holdingWrites`: the batch's first write is held in the proxy on return
   * (its bytes wait, with everything else a sends), so a reconcile is in flight
   * for certain whatever the machine's speed.
   */
  async function leaderBehindProxy(batchPrefix?: string, { holdingWrites = false } = {}): Promise<{ a: Replica; b: Replica; batch: string[]; fault: TcpProxy }> {
    const fault = await TcpProxy.start({ port: cluster().apiServerPort });
    proxy = fault;
    const proxied = await writeProxiedKubeconfig(cluster().kubeconfigPath, join(cluster().dir, `${namespace}-a.kubeconfig`), fault.port);
    const a = await start('a', proxied);
    await a.waitForMessage('started leading', START_MS);
    const b = await start('b');
    await reconciledAll(a, INITIAL_WIDGETS);
    await leaseWatch.renewedFor('a', MAX_POLL_MS);
    if (batchPrefix === undefined) return { a, b, batch: [], fault };
    const batch = Array.from({ length: 12 }, (_, i) => `${batchPrefix}-${i}`);
    if (holdingWrites) fault.hold('up');
    await createWidgets(batch);
    await a.waitForLog((l) => l.message === 'write' && String(l.json?.key).startsWith(`${namespace}/${batchPrefix}-`), 30_000, { description: 'a write for the batch' });
    return { a, b, batch, fault };
  }

  it('lets exactly one of two replicas lead, and only the leader writes', async () => {
    const [a, b] = await Promise.all([start('a'), start('b')]);
    const { leader, standby } = await firstLeader([a, b]);
    await reconciledAll(leader, INITIAL_WIDGETS);
    // The standby campaigns for longer than any expiry could take while the leader renews.
    await leaseWatch.renewedFor(leader.name, LEASE_MS + MAX_POLL_MS + MARGIN_MS);
    await createWidgets(['delta']);
    await reconciledAll(leader, ['delta']);

    expect(standby.messages('started leading'), 'the standby led too').to.be.empty;
    expect(leader.messages('started leading')).to.not.be.empty;
    expect(standby.messages('write'), 'the standby wrote').to.be.empty;
    expect(standby.messages('reconciled'), 'the standby reconciled').to.be.empty;
    const keys = new Set(leader.messages('write').map((l) => l.json?.key));
    for (const name of [...INITIAL_WIDGETS, 'delta']) expect(keys).to.include(`${namespace}/${name}`);
    expect(leaseWatch.events.filter((e) => e.spec.holderIdentity && podOfIdentity(e.spec.holderIdentity) !== leader.name)).to.be.empty;

    await stopAll();
    await expectNoOutOfTermWrites(namespace);
    // The replicas' own 'write' lines agree (a cross-check; the audit log is the witness).
    assertNoOverlappingTerms(replicas, exits);
  });

  it('on SIGTERM the leader drains, closes the gate, releases the lease and exits 0; the standby leads within 1 s', async () => {
    // A reconcile of the batch is in flight at the signal for certain: its write waits in the proxy until a is shutting down.
    const { a, b, batch, fault } = await leaderBehindProxy('batch', { holdingWrites: true });
    a.sigterm();
    await a.waitForMessage('shutting down', 5_000);
    fault.deliver('up');
    const exit = await a.exited;
    expect(exit.code, `a exited with ${exit.signal ?? exit.code}:\n${a.tail()}`).to.equal(0);

    const shuttingDown = a.lines.findIndex(isMessage('shutting down'));
    const step = (message: string): number => {
      const index = a.lines.findIndex((l, i) => i > shuttingDown && l.message === message);
      expect(index, `no '${message}' after 'shutting down':\n${a.tail(60)}`).to.be.greaterThan(shuttingDown);
      return index;
    };
    const drained = step('shutdown: drained work in flight');
    const gateClosed = step('shutdown: closed the write gate');
    const stoppedLeading = step('stopped leading');
    const releasedLease = step('released lease');
    const releasedLeases = step('shutdown: released the leases');
    expect([shuttingDown, drained, gateClosed, stoppedLeading, releasedLease, releasedLeases]).to.deep.equal(
      [shuttingDown, drained, gateClosed, stoppedLeading, releasedLease, releasedLeases].toSorted((x, y) => x - y));
    // Work was in flight at the signal, and it was finished rather than dropped.
    const finishedDuringDrain = a.lines.slice(shuttingDown, drained).filter((l) => l.message === 'reconciled' || l.message === 'reconcile failed');
    expect(finishedDuringDrain, 'no reconcile was in flight at SIGTERM').to.not.be.empty;
    expect(a.lines[drained]!.json?.durationMs).to.be.a('number');
    expect(a.lines.slice(gateClosed).filter(isMessage('write')), 'a wrote after closing its gate').to.be.empty;

    const led = await b.waitForMessage('started leading', 5_000);
    const handoverMs = led.loggedAt! - a.lines[releasedLease]!.loggedAt!;
    console.log(`      handover: standby led ${handoverMs} ms after the release (release took ${String(a.lines[releasedLease]!.json?.durationMs)} ms)`);
    expect(handoverMs).to.be.within(0, 1_000);
    const released = leaseWatch.events.find((e) => e.spec.holderIdentity === '');
    expect(released?.spec.leaseDurationSeconds).to.equal(1);

    // The successor finishes what was left.
    await reconciledAll(b, batch, led);
    await stopAll();
    await expectNoOutOfTermWrites(namespace);
    // The replicas' own 'write' lines agree (a cross-check; the audit log is the witness).
    assertNoOverlappingTerms(replicas, exits);
  });

  it('after SIGKILL of the leader, the standby leads once the lease expires, not before', async () => {
    const a = await start('a');
    await a.waitForMessage('started leading', START_MS);
    const b = await start('b');
    await reconciledAll(a, INITIAL_WIDGETS);
    // b has read the lease and watches it by the time a renewed once more after a poll period.
    await leaseWatch.renewedFor('a', MAX_POLL_MS);

    a.sigkill();
    const killedAt = Date.now();
    expect((await a.exited).signal).to.equal('SIGKILL');
    const led = await b.waitForMessage('started leading', LEASE_MS + 10_000);
    const last = leaseWatch.lastRenewalBy('a')!;
    // renewTime is a's wall clock when it sent its last renewal: b cannot have seen it earlier.
    const sinceRenewal = led.loggedAt! - Date.parse(String(last.spec.renewTime));
    const sinceSeen = led.loggedAt! - last.receivedAt;
    console.log(`      failover: standby led ${led.loggedAt! - killedAt} ms after SIGKILL, ${sinceRenewal} ms after the last renewal (lease ${LEASE_MS} ms)`);
    expect(sinceRenewal, 'the standby took a lease that had not expired').to.be.at.least(LEASE_MS);
    expect(sinceSeen).to.be.at.most(LEASE_MS + MAX_POLL_MS + MARGIN_MS);

    await createWidgets(['after-kill']);
    await b.waitForLog(isMessage('write', `${namespace}/after-kill`), 30_000, { description: 'a write for after-kill' });
    await stopAll();
    await expectNoOutOfTermWrites(namespace);
    // The replicas' own 'write' lines agree (a cross-check; the audit log is the witness).
    assertNoOverlappingTerms(replicas, exits);
  });

  // blackhole: requests hang (a partition); reset: requests fail at once, so the leader keeps retrying its writes.
  for (const mode of ['blackhole', 'reset'] as const) {
    it(`a leader cut off from the API server (${mode}) stops writing within renewDeadline and the other replica takes over`, async () => {
      const { a, b, batch, fault } = await leaderBehindProxy('cut', { holdingWrites: true });
      const cutAt = Date.now();
      fault.cut(mode);
      // The held bytes died with their connections; new ones meet the cut.
      fault.deliver('up');

      const stopped = await a.waitForMessage('stopped leading', RENEW_DEADLINE_MS + 10_000, { where: (l) => l.loggedAt! >= cutAt });
      const led = await b.waitForMessage('started leading', LEASE_MS + 10_000);
      const lastWrite = a.messages('write').at(-1)!;
      const writesAfterCut = a.messages('write', (l) => l.loggedAt! > cutAt).length;
      console.log(`      cut (${mode}): a wrote ${writesAfterCut} times after the cut, the last ${lastWrite.loggedAt! - cutAt} ms after it; `
        + `stopped leading after ${stopped.loggedAt! - cutAt} ms; b led after ${led.loggedAt! - cutAt} ms`);
      const late = a.messages('write', (l) => l.loggedAt! > cutAt + RENEW_DEADLINE_MS);
      expect(late.map((l) => l.text), 'writes later than the renew deadline after the cut').to.be.empty;
      if (mode === 'reset') {
        // Its failing reconciles kept retrying: the gate, not idleness, ended its writes.
        expect(a.messages('write', (l) => l.loggedAt! > cutAt), 'a tried no write after the cut').to.not.be.empty;
      }
      expect(stopped.loggedAt! - cutAt, 'a kept believing it leads').to.be.at.most(RENEW_DEADLINE_MS + MARGIN_MS);
      expect(led.loggedAt!).to.be.greaterThan(stopped.loggedAt!);

      // b does the work now, including what a could not finish.
      await createWidgets(['after-cut']);
      await b.waitForLog(isMessage('write', `${namespace}/after-cut`), 30_000, { description: 'a write for after-cut' });
      await reconciledAll(b, batch, led);

      // When the partition heals, a finds b renewing and stays a standby.
      fault.restore();
      await leaseWatch.renewedFor('b', LEASE_MS + MAX_POLL_MS + MARGIN_MS);
      expect(a.messages('started leading')).to.have.length(1);

      await stopAll();
      await expectNoOutOfTermWrites(namespace);
    // The replicas' own 'write' lines agree (a cross-check; the audit log is the witness).
    assertNoOverlappingTerms(replicas, exits);
    });
  }
  it('a leader whose requests are held longer than the lease duration and then delivered: its late writes land after no later term\'s', async () => {
    const { a, b, batch, fault } = await leaderBehindProxy('held');
    // A slow API server, or a partition that heals: a's bytes wait, then arrive all at once.
    const heldAt = Date.now();
    fault.hold('up');
    const stopped = await a.waitForMessage('stopped leading', RENEW_DEADLINE_MS + 10_000, { where: (l) => l.loggedAt! >= heldAt });
    const led = await b.waitForMessage('started leading', LEASE_MS + 10_000);
    await reconciledAll(b, batch, led);
    const heldBytes = fault.heldBytes().up;
    fault.deliver();
    console.log(`      held ${heldBytes} bytes of a's for ${Date.now() - heldAt} ms; a stopped leading after ${stopped.loggedAt! - heldAt} ms`);
    expect(heldBytes, 'nothing of a\'s was held').to.be.greaterThan(0);
    expect(stopped.loggedAt! - heldAt).to.be.at.most(RENEW_DEADLINE_MS + MARGIN_MS);
    // The late requests reach the server; b keeps its term through them.
    await leaseWatch.renewedFor('b', LEASE_MS + MAX_POLL_MS + MARGIN_MS);
    await createWidgets(['after-hold']);
    await b.waitForLog(isMessage('write', `${namespace}/after-hold`), 30_000, { description: 'a write for after-hold' });

    await stopAll();
    const report = await expectNoOutOfTermWrites(namespace);
    console.log(`      a's writes that committed after its term ended: ${report.lateCommits.filter((w) => w.replica === 'a').length}`);
  });

  it('a renewal that commits but whose answer is lost: the leader stops at its renew deadline, the standby waits out the committed renewal', async () => {
    const { a, b, fault } = await leaderBehindProxy();

    // Requests reach the server; their answers never come back.
    const heldAt = Date.now();
    fault.hold('down');
    const stopped = await a.waitForMessage('stopped leading', RENEW_DEADLINE_MS + 10_000, { where: (l) => l.loggedAt! >= heldAt });
    const led = await b.waitForMessage('started leading', LEASE_MS + 10_000);
    const lastByA = leaseWatch.lastRenewalBy('a')!;
    fault.cut();
    fault.restore();
    await stopAll();

    const renewals = (await readAuditLog(cluster().auditLogPath!)).filter((e) => e.objectRef?.resource === 'leases' && e.objectRef.namespace === namespace
      && e.objectRef.name === LEASE && e.verb === 'update' && e.responseStatus?.code === 200 && podOfIdentity(e.responseObject?.spec?.holderIdentity ?? '') === 'a');
    const lastCommit = Date.parse(renewals.at(-1)!.stageTimestamp!);
    console.log(`      a stopped leading ${stopped.loggedAt! - lastCommit} ms after its last renewal committed, ${stopped.loggedAt! - heldAt} ms after the hold; `
      + `b led ${led.loggedAt! - lastByA.receivedAt} ms after it saw a's last renewal`);
    expect(stopped.json?.reason).to.equal(`no renewal succeeded within renewDeadline (${RENEW_DEADLINE_MS} ms)`);
    // Had a heard that renewal succeed, it would have led until at least renewDeadline after sending it.
    expect(stopped.loggedAt! - lastCommit, 'a stopped leading as if it had heard its last renewal succeed').to.be.below(RENEW_DEADLINE_MS - 100);
    expect(stopped.loggedAt! - heldAt).to.be.at.most(RENEW_DEADLINE_MS + MARGIN_MS);
    // The committed renewal a never heard of still counts: b waited a lease duration from it.
    expect(led.loggedAt! - Date.parse(String(lastByA.spec.renewTime))).to.be.at.least(LEASE_MS);
    await expectNoOutOfTermWrites(namespace);
  });
});
