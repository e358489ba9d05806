import { expect } from 'chai';
import { conditionsEqual, MAX_CONDITION_MESSAGE_LENGTH, metav1Time, nextConditions, type Condition } from '../../src/runtime/conditions.ts';

describe('conditions (metav1.Condition semantics)', () => {
  const earlier = new Date('2026-01-01T10:00:00.123Z');
  const now = new Date('2026-01-01T11:00:00.456Z');
  const previous: Condition[] = [
    { type: 'Ready', status: 'True', reason: 'Available', message: 'up', lastTransitionTime: metav1Time(earlier), observedGeneration: 1 },
    { type: 'Degraded', status: 'False', reason: 'AsExpected', message: 'fine', lastTransitionTime: metav1Time(earlier), observedGeneration: 1 },
  ];

  it('moves lastTransitionTime only for a condition whose status changed, or that is new', () => {
    const next = nextConditions(previous, [
      { type: 'Ready', status: 'True', reason: 'Available', message: 'up, 3 of 3' },
      { type: 'Degraded', status: 'True', reason: 'ApplyFailed', message: 'refused' },
      { type: 'Progressing', status: 'False', reason: 'RolloutComplete', message: 'done' },
    ], 2, now);
    expect(next.map((c) => [c.type, c.lastTransitionTime, c.observedGeneration])).to.deep.equal([
      ['Ready', '2026-01-01T10:00:00Z', 2],
      ['Degraded', '2026-01-01T11:00:00Z', 2],
      ['Progressing', '2026-01-01T11:00:00Z', 2],
    ]);
    expect(next[0]!.message).to.equal('up, 3 of 3');
  });

  it('cuts a message to the length the API allows', () => {
    const [condition] = nextConditions(undefined, [{ type: 'Ready', status: 'False', reason: 'X', message: 'x'.repeat(40_000) }], 1, now);
    expect(condition!.message).to.have.length(MAX_CONDITION_MESSAGE_LENGTH);
  });

  it('writes times as Go does: RFC 3339, UTC, whole seconds', () => {
    expect(metav1Time(now)).to.equal('2026-01-01T11:00:00Z');
  });

  it('compares lists in any order, times as instants, and sees any other change', () => {
    const same = [...previous].reverse().map((c) => ({ ...c, lastTransitionTime: c.lastTransitionTime.replace('Z', '+00:00') }));
    expect(conditionsEqual(previous, same)).to.equal(true);
    expect(conditionsEqual(undefined, [])).to.equal(true);
    expect(conditionsEqual(previous, [{ ...previous[0]!, message: 'other' }, previous[1]!])).to.equal(false);
    expect(conditionsEqual(previous, [{ ...previous[0]!, observedGeneration: 2 }, previous[1]!])).to.equal(false);
    expect(conditionsEqual(previous, previous.slice(1))).to.equal(false);
  });
});
