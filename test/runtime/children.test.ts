import type { KubernetesObject } from '@kubernetes/client-node';
import { expect } from 'chai';
import { childEvent, ensureChild, NameTakenError, type ChildPass } from '../../src/runtime/children.ts';

// The decisions ensureChild takes from the cache alone, before any request.
// What the server answers (409 AlreadyExists, a stale resourceVersion, 422)
// is tested against the real API server in test/integration/website/ and the
// scaffolded kind's integration test.

const owner = { kind: 'Backup', metadata: { name: 'nightly', namespace: 'team', uid: 'uid-1' } };
const controlledBy = (uid: string, kind = 'Backup', name = 'nightly') => [{ apiVersion: 'example.com/v1', kind, name, uid, controller: true }];

function recordingPass(): { pass: ChildPass; writes: string[] } {
  const writes: string[] = [];
  const record = <T extends KubernetesObject>(verb: string, object: T): Promise<T> => {
    writes.push(`${verb} ${object.kind} ${object.metadata?.name}`);
    return Promise.resolve({ ...object, metadata: { ...object.metadata, resourceVersion: '2', uid: 'child-uid' } });
  };
  return {
    writes,
    pass: {
      writer: { apply: (d) => record('apply', d), create: (d) => record('create', d), replaceLists: (d) => record('replaceLists', d) },
      read: () => Promise.resolve(undefined),
      signal: new AbortController().signal,
    },
  };
}

const desired = {
  apiVersion: 'v1', kind: 'ConfigMap',
  metadata: { name: 'nightly', namespace: 'team', ownerReferences: controlledBy('uid-1') },
  data: { schedule: '0 3 * * *' },
};

describe('ensureChild: an owned child written only when it must be, never someone else\'s', () => {
  it('writes nothing when the cached copy holds every field of the desired body', async () => {
    const { pass, writes } = recordingPass();
    const cached = { ...desired, metadata: { ...desired.metadata, resourceVersion: '1', uid: 'child-uid' }, data: { schedule: '0 3 * * *', extra: 'x' } };
    const outcome = await ensureChild(pass, owner, desired, { get: () => cached });
    expect(writes).to.deep.equal([]);
    expect(outcome).to.deep.equal({ object: cached });
  });

  it('creates a child the cache lacks, and says so in a Created event', async () => {
    const { pass, writes } = recordingPass();
    const outcome = await ensureChild(pass, owner, desired, { get: () => undefined });
    expect(writes).to.deep.equal(['create ConfigMap nightly']);
    expect(outcome.difference).to.equal('absent');
    expect(outcome.event?.reason).to.equal('Created');
  });

  it('applies a cached child that differs, naming the field', async () => {
    const { pass, writes } = recordingPass();
    const cached = { ...desired, metadata: { ...desired.metadata, resourceVersion: '1' }, data: { schedule: '0 4 * * *' } };
    const outcome = await ensureChild(pass, owner, desired, { get: () => cached });
    expect(writes).to.deep.equal(['apply ConfigMap nightly']);
    expect(outcome.difference).to.equal('data.schedule');
    expect(outcome.event?.note).to.equal('updated ConfigMap nightly: data.schedule differed from the Backup\'s spec');
  });

  for (const [what, ownerReferences, says] of [
    ['has no controller', undefined, 'it has no controller'],
    ['is controlled by another kind', controlledBy('uid-9', 'Job', 'other'), 'it is controlled by Job other'],
    ['is controlled by an earlier owner of the same name', controlledBy('uid-0'), 'it is controlled by an earlier Backup of the same name'],
  ] as const) {
    it(`writes nothing to a cached child that ${what}: NameTaken, naming its controller`, async () => {
      const { pass, writes } = recordingPass();
      const cached = { ...desired, metadata: { name: 'nightly', namespace: 'team', ...(ownerReferences ? { ownerReferences } : {}) }, data: {} };
      const failure = await ensureChild(pass, owner, desired, { get: () => cached }).then(() => undefined, (error: unknown) => error);
      expect(failure).to.be.instanceOf(NameTakenError);
      expect((failure as NameTakenError).reason).to.equal('NameTaken');
      expect((failure as Error).message).to.equal(`ConfigMap team/nightly already exists and this Backup does not control it (${says}); the operator leaves it alone: rename or remove it, or give the Backup another name`);
      expect(writes).to.deep.equal([]);
    });
  }

  it('records no event for an apply the server answered with the version the cache held (nothing changed)', () => {
    const cached = { ...desired, metadata: { ...desired.metadata, resourceVersion: '7' } };
    expect(childEvent(owner, cached, cached, 'data.schedule', 'digest')).to.equal(undefined);
  });
});
