import { expect } from 'chai';
import { CHILD, desiredChild, desiredStatus } from '../../src/__dir__/desired.ts';
import type { __Kind__ } from '../../src/__dir__/types.ts';

// Pure functions, no server: what the __Kind__ asks for, and the status it gets.

const object: __Kind__ = {
  apiVersion: '__group__/__version__',
  kind: '__Kind__',
  metadata: { name: 'example', namespace: 'team', uid: 'uid-1', generation: 3 },
  spec: { template: { apiVersion: 'not/ours', metadata: { name: 'other' }, marker: 'kept' }, annotations: { note: 'hello' } },
};

describe('__Kind__: its __ChildKind__ and its status', () => {
  it('names the __ChildKind__ after the __Kind__, in its namespace, labelled as the operator\'s and controlled by it', () => {
    const child = desiredChild(object);
    expect([child.apiVersion, child.kind]).to.deep.equal([CHILD.apiVersion, CHILD.kind]);
    expect(child.metadata).to.deep.include({ name: 'example', namespace: 'team', annotations: { note: 'hello' } });
    expect(child.metadata?.labels).to.include({ 'app.kubernetes.io/managed-by': 'ha-operator' });
    expect(child.metadata?.ownerReferences).to.deep.equal([{ apiVersion: '__group__/__version__', kind: '__Kind__', name: 'example', uid: 'uid-1', controller: true, blockOwnerDeletion: true }]);
  });

  it('carries the template, but not its own apiVersion, kind or metadata', () => {
    expect(desiredChild(object)).to.include({ marker: 'kept', apiVersion: CHILD.apiVersion });
    expect(desiredChild(object).metadata?.name).to.equal('example');
  });

  it('is Ready once applied, Degraded with the message when not; a transition time moves only with its status', () => {
    const t1 = new Date('2026-01-01T00:00:00Z');
    const t2 = new Date('2026-01-01T00:01:00Z');
    const applied = desiredStatus(object, { reason: 'Applied' }, t1);
    expect(applied.observedGeneration).to.equal(3);
    expect(applied.conditions?.map((c) => [c.type, c.status, c.reason])).to.deep.equal([['Ready', 'True', 'Applied'], ['Degraded', 'False', 'AsExpected']]);
    const again = desiredStatus({ ...object, status: applied }, { reason: 'Applied' }, t2);
    expect(again).to.deep.equal(applied);
    const failed = desiredStatus({ ...object, status: applied }, { reason: 'NameTaken', message: 'taken' }, t2);
    expect(failed.conditions?.map((c) => [c.type, c.status, c.reason, c.message, c.lastTransitionTime])).to.deep.equal([
      ['Ready', 'False', 'NameTaken', 'taken', '2026-01-01T00:01:00Z'], ['Degraded', 'True', 'NameTaken', 'taken', '2026-01-01T00:01:00Z']]);
  });
});
