import { expect } from 'chai';
import { firstDifference } from '../../src/runtime/compare.ts';

describe('firstDifference: does the cached object already hold what an apply would set?', () => {
  const cached = {
    metadata: { name: 'site', labels: { app: 'site', team: 'web' }, resourceVersion: '42' },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: 'site' } },
      ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 'http' }, { name: 'metrics', port: 9090, protocol: 'TCP' }],
      args: ['--a', '--b'],
    },
    status: { readyReplicas: 2 },
  };

  it('ignores what the desired object does not set: defaults, status, other managers\' fields', () => {
    expect(firstDifference(cached, { metadata: { name: 'site', labels: { app: 'site' } }, spec: { replicas: 2 } })).to.equal(undefined);
  });

  it('names the first field that differs, or is missing, by its path', () => {
    expect(firstDifference(cached, { spec: { replicas: 3 } })).to.equal('spec.replicas');
    expect(firstDifference(cached, { spec: { paused: true } })).to.equal('spec.paused');
    expect(firstDifference(cached, { metadata: { annotations: { a: 'b' } } })).to.equal('metadata.annotations');
  });

  it('matches items of lists of objects wherever they are, each by what it sets', () => {
    expect(firstDifference(cached, { spec: { ports: [{ name: 'metrics', port: 9090 }, { name: 'http', port: 80 }] } })).to.equal(undefined);
    // An item of the same name that differs is named down to its field.
    expect(firstDifference(cached, { spec: { ports: [{ name: 'http', port: 80, targetPort: 8080 }] } })).to.equal('spec.ports[0].targetPort');
    expect(firstDifference(cached, { spec: { ports: [{ name: 'grpc', port: 50051 }] } })).to.equal('spec.ports[0]');
  });

  it('compares lists of scalars whole: order and length matter', () => {
    expect(firstDifference(cached, { spec: { args: ['--a', '--b'] } })).to.equal(undefined);
    expect(firstDifference(cached, { spec: { args: ['--b', '--a'] } })).to.equal('spec.args');
    expect(firstDifference(cached, { spec: { args: ['--a'] } })).to.equal('spec.args');
  });

  it('sees a change of type, and skips fields the desired object leaves undefined', () => {
    expect(firstDifference(cached, { spec: { selector: 'app=site' } })).to.equal('spec.selector');
    expect(firstDifference(cached, { spec: { replicas: undefined } })).to.equal(undefined);
    expect(firstDifference({ data: null }, { data: { a: '1' } })).to.equal('data');
  });
});
