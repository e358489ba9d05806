import { expect } from 'chai';
import {
  NO_LEASE,
  attributeWrites,
  binWrites,
  changePhase,
  convergedAt,
  extractTerms,
  findOverlaps,
  handoverAfter,
  leaseName,
  percentile,
  reconcileByPhase,
  stats,
  type LogRecord,
} from '../../hack/study/analyze.ts';
import type { ReplicaTimeline, Term } from '../../hack/study/types.ts';

function replica(name: string, options: Partial<ReplicaTimeline> = {}): ReplicaTimeline {
  return { name, role: 'r', spawnedAt: 0, readyAt: 100, exitedAt: null, exit: null, leaderElection: true, ...options };
}

const lead = (r: string, at: number, lease = 'ha-operator'): LogRecord => ({ replica: r, at, message: 'started leading', lease });
const stop = (r: string, at: number, reason: string, lease = 'ha-operator'): LogRecord => ({ replica: r, at, message: 'stopped leading', lease, reason });
const write = (r: string, at: number, key: string, target = `apply ConfigMap ${key}`): LogRecord => ({ replica: r, at, message: 'write', key, write: target });
const single = (): string => 'ha-operator';

describe('study analysis', () => {
  it('takes the lease name without its namespace', () => {
    expect(leaseName('study-1/ha-operator-3')).to.equal('ha-operator-3');
    expect(leaseName('ha-operator')).to.equal('ha-operator');
    expect(leaseName(undefined)).to.equal('');
  });

  it('computes nearest-rank percentiles', () => {
    expect(percentile([1, 2, 3, 4], 0.5)).to.equal(2);
    expect(percentile([1, 2, 3, 4], 0.95)).to.equal(4);
    expect(stats([5, 1, 3])).to.deep.equal({ count: 3, p50: 3, p95: 5, max: 5 });
    expect(stats([])).to.deep.equal({ count: 0, p50: null, p95: null, max: null });
  });

  it('builds terms from started/stopped leading lines, closing open ones at exit or at the end', () => {
    const records = [lead('a', 1_000), stop('a', 5_000, 'stopped'), lead('a', 8_000), lead('b', 6_000)];
    const terms = extractTerms(records, [replica('a', { exitedAt: 9_000, exit: 'SIGKILL' }), replica('b')], 20_000);
    expect(terms.map((t) => [t.replica, t.start, t.end, t.endReason])).to.deep.equal([
      ['a', 1_000, 5_000, 'stopped'],
      ['b', 6_000, 20_000, 'end of scenario'],
      ['a', 8_000, 9_000, 'exited (SIGKILL)'],
    ]);
  });

  it('keeps a term per lease for sharded replicas', () => {
    const records = [lead('a', 1_000, 'ha-operator-0'), lead('a', 1_100, 'ha-operator-1'), stop('a', 3_000, 'handing over', 'ha-operator-1')];
    const terms = extractTerms(records, [replica('a')], 10_000);
    expect(terms.map((t) => [t.lease, t.start, t.end])).to.deep.equal([['ha-operator-0', 1_000, 10_000], ['ha-operator-1', 1_100, 3_000]]);
  });

  it('gives a replica without leader election one term from caches synced to its exit', () => {
    const records: LogRecord[] = [{ replica: 'a', at: 700, message: 'caches synced' }];
    const terms = extractTerms(records, [replica('a', { leaderElection: false, exitedAt: 4_000, exit: 'code 0' })], 10_000);
    expect(terms).to.deep.equal([{ replica: 'a', lease: NO_LEASE, start: 700, end: 4_000, endReason: 'exited (code 0)', writes: 0 }]);
  });

  it('counts writes into the term that covers them and returns the others', () => {
    const terms = extractTerms([lead('a', 1_000), stop('a', 5_000, 'x')], [replica('a')], 10_000);
    const { terms: counted, outside } = attributeWrites(terms, [write('a', 1_000, 'ns/x'), write('a', 5_000, 'ns/y'), write('a', 6_000, 'ns/z')], single);
    expect(counted[0]!.writes).to.equal(2);
    expect(outside.map((w) => w.key)).to.deep.equal(['ns/z']);
  });

  it('finds overlapping terms and the writes both replicas made to the same keys in them', () => {
    const terms: Term[] = [
      { replica: 'a', lease: NO_LEASE, start: 0, end: 6_000, endReason: 'x', writes: 0 },
      { replica: 'b', lease: NO_LEASE, start: 4_000, end: 10_000, endReason: 'x', writes: 0 },
    ];
    const writes = [
      write('a', 3_000, 'ns/x'), // before the overlap
      write('a', 4_500, 'ns/x'),
      write('b', 4_600, 'ns/x'),
      write('b', 4_700, 'ns/y'), // only b wrote y
      write('a', 5_900, 'ns/x', 'apply status of Website ns/x'),
      write('b', 8_000, 'ns/x'), // after a's term
    ];
    const overlaps = findOverlaps(terms, writes, () => NO_LEASE);
    expect(overlaps).to.deep.equal([{ lease: NO_LEASE, replicas: ['a', 'b'], start: 4_000, end: 6_000, keys: 1, writes: 3, sameTargetWithin1s: 2 }]);
  });

  it('finds no overlap between consecutive terms, nor between terms on different leases', () => {
    const records = [lead('a', 0), stop('a', 5_000, 'x'), lead('b', 5_000), lead('c', 0, 'other')];
    const terms = extractTerms(records, [replica('a'), replica('b'), replica('c')], 10_000);
    expect(findOverlaps(terms, [], single)).to.deep.equal([]);
  });

  it('describes a handover: who led, when they stopped, who led next and their first write', () => {
    const records = [lead('a', 0), stop('a', 12_000, 'no renewal'), lead('b', 16_000)];
    const terms = extractTerms(records, [replica('a'), replica('b')], 30_000);
    const writes = [write('b', 15_000, 'ns/x'), write('b', 16_200, 'ns/x')];
    expect(handoverAfter(terms, writes, single, { lease: 'ha-operator', cause: 'cut', causeAt: 10_000 })).to.deep.equal({
      lease: 'ha-operator', cause: 'cut', causeAt: 10_000, from: 'a', fromEndedAt: 12_000, to: 'b', leadAt: 16_000,
      firstWriteAt: 16_200, handoverMs: 6_000, leaderlessMs: 4_000,
    });
  });

  it('measures a handover from a later cause when asked (an API server back up)', () => {
    const records = [lead('a', 0), stop('a', 12_000, 'no renewal'), lead('a', 31_000)];
    const terms = extractTerms(records, [replica('a')], 40_000);
    const h = handoverAfter(terms, [], single, { lease: 'ha-operator', cause: 'API server ready', causeAt: 30_000, fromAt: 2_000 });
    expect([h.from, h.to, h.handoverMs, h.leaderlessMs]).to.deep.equal(['a', 'a', 1_000, 19_000]);
  });

  it('reports a handover that never happened', () => {
    const terms = extractTerms([lead('a', 0)], [replica('a', { exitedAt: 5_000, exit: 'SIGKILL' })], 10_000);
    const h = handoverAfter(terms, [], single, { lease: 'ha-operator', cause: 'kill', causeAt: 5_000 });
    expect([h.from, h.to, h.handoverMs, h.leaderlessMs]).to.deep.equal(['a', null, null, null]);
  });

  it('finds when a change converged, from the observations after it was sent', () => {
    const observations = [{ at: 100, observedGeneration: 3 }, { at: 900, observedGeneration: 4 }, { at: 1_500, observedGeneration: 6 }];
    expect(convergedAt({ generation: 4, sentAt: 500 }, observations)).to.equal(900);
    expect(convergedAt({ generation: 5, sentAt: 500 }, observations)).to.equal(1_500);
    expect(convergedAt({ generation: 7, sentAt: 500 }, observations)).to.equal(null);
  });

  it('puts a change in the event phase when it waited during the window', () => {
    const window = { start: 10_000, end: 20_000, label: 'w' };
    expect(changePhase(1_000, 2_000, window)).to.equal('steady');
    expect(changePhase(9_000, 11_000, window)).to.equal('event');
    expect(changePhase(9_000, null, window)).to.equal('event');
    expect(changePhase(15_000, 15_100, window)).to.equal('event');
    expect(changePhase(20_001, 20_100, window)).to.equal('after');
  });

  it('groups reconcile durations by the phase of their line', () => {
    const window = { start: 10, end: 20, label: 'w' };
    const records: LogRecord[] = [5, 15, 25, 26].map((at) => ({ replica: 'a', at, message: 'reconciled', durationMs: at }));
    const byPhase = reconcileByPhase(records, window);
    expect([byPhase.steady.count, byPhase.event.count, byPhase.after.count]).to.deep.equal([1, 1, 2]);
  });

  it('bins writes per replica', () => {
    const bins = binWrites([write('a', 0, 'k'), write('a', 999, 'k'), write('b', 1_000, 'k'), write('a', 5_000, 'k')], ['a', 'b'], 2_500, 1_000);
    expect(bins).to.deep.equal({ binMs: 1_000, byReplica: { a: [2, 0, 1], b: [0, 1, 0] } });
  });
});
