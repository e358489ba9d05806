import { expect } from 'chai';
import type { KubernetesObject } from '@kubernetes/client-node';
import { buildEvent, eventName, type RecordedEvent } from '../../src/runtime/event-builder.ts';

describe('event-builder: events.k8s.io/v1 Events named after their occurrence', () => {
  const regarding: KubernetesObject = {
    apiVersion: 'example.com/v1', kind: 'Backup', metadata: { name: 'nightly', namespace: 'team-a', uid: 'uid-1', resourceVersion: '7' },
  };
  const event: RecordedEvent = { type: 'Warning', reason: 'ApplyFailed', action: 'Apply', note: 'refused', occurrence: ['Degraded', 'absent'] };
  const source = { reportingController: 'example.com/backup', reportingInstance: 'pod-a' };
  const now = new Date('2026-01-01T10:00:00.123Z');

  it('names the same occurrence the same way, and any other occurrence or object otherwise', () => {
    const name = eventName(regarding, event.occurrence);
    expect(name).to.match(/^nightly\.[0-9a-f]{16}$/);
    expect(eventName(regarding, [...event.occurrence])).to.equal(name);
    expect(eventName(regarding, ['Degraded', 'other'])).to.not.equal(name);
    // The same name after the object was deleted and created again is another object.
    expect(eventName({ ...regarding, metadata: { ...regarding.metadata, uid: 'uid-2' } }, event.occurrence)).to.not.equal(name);
  });

  it('shortens a long name to fit 253 characters, without a trailing dash or dot', () => {
    const long = { ...regarding, metadata: { ...regarding.metadata, name: `${'a'.repeat(235)}-b` } };
    const name = eventName(long, event.occurrence);
    expect(name.length).to.be.at.most(253);
    expect(name).to.match(/^a+\.[0-9a-f]{16}$/);
  });

  it('builds the Event the API server accepts: regarding, source, MicroTime, the note cut to 1024 bytes on a character boundary', () => {
    const built = buildEvent(regarding, { ...event, note: 'é'.repeat(600) }, now, { ...source, reportingInstance: 'p'.repeat(200) });
    expect(built).to.deep.include({ apiVersion: 'events.k8s.io/v1', kind: 'Event', reason: 'ApplyFailed', action: 'Apply', type: 'Warning', reportingController: 'example.com/backup' });
    expect(built.metadata).to.deep.equal({ name: eventName(regarding, event.occurrence), namespace: 'team-a' });
    expect(built.regarding).to.deep.equal({ apiVersion: 'example.com/v1', kind: 'Backup', name: 'nightly', namespace: 'team-a', uid: 'uid-1', resourceVersion: '7' });
    expect(Buffer.byteLength(built.note!)).to.be.at.most(1024);
    expect(built.note!.endsWith('é…')).to.equal(true);
    expect(built.reportingInstance).to.have.length(128);
    expect(JSON.parse(JSON.stringify(built.eventTime))).to.equal('2026-01-01T10:00:00.123000Z');
  });
});
