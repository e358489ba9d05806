import { expect } from 'chai';
import { covers, unionOf } from '../../src/runtime/writer.ts';

describe('writer: managedFields field sets', () => {
  const apply = { 'f:data': { '.': {}, 'f:a': {} }, 'f:metadata': { 'f:labels': { 'f:app': {} } } };
  const update = { 'f:data': { '.': {}, 'f:b': {} }, 'f:spec': { 'f:ports': { 'k:{"port":80}': { '.': {} } } } };

  it('unites two sets field by field, at every depth', () => {
    expect(unionOf(apply, update)).to.deep.equal({
      'f:data': { '.': {}, 'f:a': {}, 'f:b': {} },
      'f:metadata': { 'f:labels': { 'f:app': {} } },
      'f:spec': { 'f:ports': { 'k:{"port":80}': { '.': {} } } },
    });
  });

  it('says whether one set holds every field of another', () => {
    expect(covers(unionOf(apply, update), update)).to.equal(true);
    expect(covers(apply, { 'f:data': { 'f:a': {} } })).to.equal(true);
    expect(covers(apply, update)).to.equal(false);
    expect(covers(apply, {})).to.equal(true);
  });
});
