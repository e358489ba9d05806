import { expect } from 'chai';
import { ReconcileError, describeError } from '../../src/runtime/errors.ts';
import { KubeApiError } from '../../src/runtime/kube.ts';

describe('describeError', () => {
  it('is the message, then each cause it does not already contain, on one line', () => {
    const server = new KubeApiError('apply Deployment web/hello', 409, 'Conflict', 'the object has been modified');
    const wrapped = new ReconcileError('Conflict', `apply of Deployment web/hello: the cache was behind the server (${server.summary}); retrying`, { cause: server });
    expect(describeError(wrapped)).to.equal('apply of Deployment web/hello: the cache was behind the server (409 Conflict: the object has been modified); retrying; '
      + 'caused by: apply Deployment web/hello: 409 Conflict: the object has been modified');
    const repeated = new ReconcileError('ApplyFailed', `Website web/hello: ${server.message}`, { cause: server });
    expect(describeError(repeated)).to.equal(`Website web/hello: ${server.message}`);
  });

  it('keeps the stack of a programming error, which is what it takes to fix one', () => {
    const bug = new TypeError("Cannot read properties of undefined (reading 'spec')");
    expect(describeError(bug)).to.equal(bug.stack);
    expect(describeError('a string')).to.equal('a string');
  });
});
