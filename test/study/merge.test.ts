import { expect } from 'chai';
import { mergeResults } from '../../hack/study/merge.ts';
import type { ClusterEnvironment, ScenarioResult, StudyResults } from '../../hack/study/types.ts';

const scenario = (number: number, from: string): ScenarioResult => ({ number, id: `s${number}`, title: from } as ScenarioResult);

function results(startedAt: string, numbers: number[], cluster?: string): StudyResults {
  return {
    schemaVersion: 2, startedAt, finishedAt: startedAt, durationMs: 1,
    environment: { timingPreset: startedAt, ...(cluster ? { cluster: { commit: cluster } as ClusterEnvironment } : {}) } as StudyResults['environment'],
    scenarios: numbers.map((n) => scenario(n, startedAt)),
  };
}

describe('study: a run put into an existing report (--into)', () => {
  it('replaces the scenarios the run ran, keeps the others in order, and the report\'s own figures when the run used no control plane', () => {
    const merged = mergeResults(results('old', [1, 2, 7, 8], 'old-cluster'), results('new', [8, 9], 'new-cluster'), false);
    expect(merged.scenarios.map((s) => `${s.number} ${s.title}`)).to.deep.equal(['1 old', '2 old', '7 old', '8 new', '9 new']);
    expect([merged.schemaVersion, merged.startedAt, merged.environment.timingPreset, merged.environment.cluster?.commit]).to.deep.equal([3, 'old', 'old', 'new-cluster']);
  });

  it('takes the run\'s figures when it ran on the control plane, and keeps the report\'s real nodes when it ran none', () => {
    const merged = mergeResults(results('old', [1, 7], 'old-cluster'), results('new', [1]), true);
    expect(merged.scenarios.map((s) => `${s.number} ${s.title}`)).to.deep.equal(['1 new', '7 old']);
    expect([merged.startedAt, merged.environment.timingPreset, merged.environment.cluster?.commit]).to.deep.equal(['new', 'new', 'old-cluster']);
    expect(mergeResults(results('old', [1]), results('new', [2]), true).environment).to.not.have.property('cluster');
  });
});
