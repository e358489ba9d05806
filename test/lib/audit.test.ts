import { expect } from 'chai';
import { analyzeAudit, type AuditEvent } from '../../hack/lib/audit.ts';

/** Synthetic audit events, shaped as kube-apiserver writes them. */
let id = 0;
function leaseWrite(name: string, holder: string, rv: number, labels: Record<string, string> = { 'ha-operator.example.com/lease-role': 'shard' }): AuditEvent {
  return {
    auditID: String(id++), stage: 'ResponseComplete', verb: 'update', userAgent: `ha-operator/0.1.0 (${holder || 'x'})`,
    objectRef: { resource: 'leases', namespace: 'ops', name, apiGroup: 'coordination.k8s.io' },
    responseStatus: { code: 200 },
    responseObject: { metadata: { name, resourceVersion: String(rv), labels }, spec: { holderIdentity: holder } },
    stageTimestamp: `2026-12-01T10:00:${String(rv).padStart(2, '0')}.000000Z`,
  };
}

function write(replica: string, term: string, name: string, rv: number, code = 200): AuditEvent {
  return {
    auditID: String(id++), stage: 'ResponseComplete', verb: 'patch', userAgent: `ha-operator/0.1.0 (${replica}) term/${term}`,
    objectRef: { resource: 'deployments', namespace: 'web', name, apiGroup: 'apps' },
    responseStatus: { code },
    ...(code === 200 ? { responseObject: { metadata: { name, resourceVersion: String(rv) } } } : {}),
    stageTimestamp: `2026-12-01T10:00:${String(rv).padStart(2, '0')}.000000Z`,
  };
}

const scope = { namespaces: ['web'], leaseNamespace: 'ops' };

describe('analyzeAudit', () => {
  it('derives terms from the lease writes that changed the holder, ending at a release or a takeover', () => {
    const report = analyzeAudit([
      leaseWrite('l', 'a', 10), leaseWrite('l', 'a', 12), leaseWrite('l', '', 14), leaseWrite('l', 'b', 15), leaseWrite('l', 'a', 20),
      leaseWrite('l-member-a', 'a', 11, { 'ha-operator.example.com/lease-role': 'member' }),
    ], scope);
    expect(report.terms.map((t) => [t.holder, t.startRv, t.endRv])).to.deep.equal([['a', 10n, 14n], ['b', 15n, 20n], ['a', 20n, undefined]]);
  });

  it('passes writes that commit in term order, and attributes each to its term', () => {
    const report = analyzeAudit([
      leaseWrite('l', 'a', 10), write('a', 'l@10', 'x', 11), leaseWrite('l', '', 12), leaseWrite('l', 'b', 13), write('b', 'l@13', 'x', 14),
    ], scope);
    expect(report.violations).to.deep.equal([]);
    expect(report.writes.map((w) => [w.replica, w.term?.startRv, w.rv])).to.deep.equal([['a', 10n, 11n], ['b', 13n, 14n]]);
    expect(report.lateCommits).to.deep.equal([]);
  });

  it('finds a write of an earlier term that committed after a later term\'s write on the same object', () => {
    const report = analyzeAudit([
      leaseWrite('l', 'a', 10), leaseWrite('l', 'b', 13), write('b', 'l@13', 'x', 14), write('a', 'l@10', 'x', 15), write('a', 'l@10', 'y', 16),
    ], scope);
    expect(report.violations).to.have.length(1);
    expect(report.violations[0]).to.match(/^deployments\/web\/x: patch by a in term ops\/l@10 \(a\) committed at 15 after a write by b in the later term ops\/l@13 \(b\)/);
    // y saw no later term's write: not a violation, but it did commit after its term ended.
    expect(report.lateCommits.map((w) => [w.object, w.rv])).to.deep.equal([['deployments/web/x', 15n], ['deployments/web/y', 16n]]);
  });

  it('orders terms across leases, so two shard schemes leading the same key at once are caught', () => {
    const report = analyzeAudit([
      leaseWrite('old', 'a', 10), leaseWrite('new-0', 'b', 12), write('b', 'new-0@12', 'x', 13), write('a', 'old@10', 'x', 14),
    ], scope);
    expect(report.violations).to.have.length(1);
    expect(report.overlaps).to.have.length(1);
  });

  it('reports objects written by overlapping terms even when their writes did not interleave', () => {
    const report = analyzeAudit([
      leaseWrite('old', 'a', 10), leaseWrite('new-0', 'b', 12), write('a', 'old@10', 'x', 13), write('b', 'new-0@12', 'x', 14),
    ], scope);
    expect(report.violations).to.deep.equal([]);
    expect(report.overlaps).to.deep.equal(['deployments/web/x: written in term ops/old@10 (a) at 13, after term ops/new-0@12 (b) had begun, which wrote it too']);
    // A handover in order is no overlap: the old term ended (released) before the new one began.
    const inOrder = analyzeAudit([
      leaseWrite('old', 'a', 10), write('a', 'old@10', 'x', 11), leaseWrite('old', '', 12), leaseWrite('new-0', 'b', 13), write('b', 'new-0@13', 'x', 14),
    ], scope);
    expect(inOrder.overlaps).to.deep.equal([]);
  });

  it('counts 409s and leaves out what is not a term write in scope; flags a claimed term the holder never began', () => {
    const report = analyzeAudit([
      leaseWrite('l', 'a', 10), write('a', 'l@10', 'x', 0, 409),
      { ...write('a', 'l@10', 'z', 11), objectRef: { resource: 'deployments', namespace: 'other', name: 'z' } },
      write('b', 'l@10', 'x', 12),
    ], scope);
    expect(report.conflicts).to.equal(1);
    expect(report.writes).to.deep.equal([]);
    expect(report.unattributed.map((w) => w.replica)).to.deep.equal(['b']);
  });
});
