import { expect } from 'chai';
import { EVIDENCE_MARGIN_MS, holderAnnotations, holderOf, processEnded, processIdentity, type HolderProcess, type PodStatusView } from '../../src/runtime/holder.ts';
import type { Lease } from '../../src/runtime/leases.ts';

const STARTED = Date.parse('2026-12-01T10:00:00.400Z');
const holder: HolderProcess = {
  identity: 'op-abc-12345678',
  pod: { namespace: 'ha-operator', name: 'op-abc', uid: 'uid-1', container: 'operator' },
  startedAtMs: STARTED,
};

function leaseHeldBy(identity: string, annotations: Record<string, string>): Lease {
  return { metadata: { name: 'l', namespace: 'ha-operator', annotations }, spec: { holderIdentity: identity } };
}

function pod(states: { state?: object; lastState?: object }, uid = 'uid-1', name = 'operator'): PodStatusView {
  return { metadata: { uid }, status: { containerStatuses: [{ name, ...states }] } };
}

const at = (offsetMs: number): string => new Date(STARTED + offsetMs).toISOString();

describe('runtime/holder: which process holds a Lease, and whether the API server shows it ended', () => {
  it('gives every process an identity of its own that still names the pod', () => {
    const a = processIdentity('op-abc');
    expect(a).to.match(/^op-abc-[0-9a-f]{8}$/);
    expect(processIdentity('op-abc')).to.not.equal(a);
  });

  it('reads back the holder it annotated', () => {
    expect(holderOf(leaseHeldBy(holder.identity, holderAnnotations(holder)))).to.deep.equal(holder);
  });

  it('ignores annotations written under another holder identity (a writer that does not annotate took over)', () => {
    expect(holderOf(leaseHeldBy('someone-else', holderAnnotations(holder)))).to.equal(undefined);
    expect(holderOf(leaseHeldBy('', holderAnnotations(holder)))).to.equal(undefined);
  });

  it('knows no pod for a process that runs outside one', () => {
    const outside = { identity: 'laptop-1', startedAtMs: STARTED };
    expect(holderOf(leaseHeldBy('laptop-1', holderAnnotations(outside)))).to.deep.equal(outside);
    expect(processEnded(outside, pod({ state: { terminated: { finishedAt: at(60_000) } } }))).to.equal(undefined);
  });

  it('takes a later instance of the container, running, as evidence (a restart in place)', () => {
    expect(processEnded(holder, pod({ state: { running: { startedAt: at(EVIDENCE_MARGIN_MS + 1000) } }, lastState: { terminated: { finishedAt: at(EVIDENCE_MARGIN_MS + 500), exitCode: 137, reason: 'Error' } } })))
      .to.match(/terminated at .*\(Error, exit code 137\)/);
    expect(processEnded(holder, pod({ state: { running: { startedAt: at(EVIDENCE_MARGIN_MS + 1000) } } }))).to.match(/was restarted at/);
  });

  it('takes the termination of an instance that outlived the process\'s start as evidence (OOM kill, crash, waiting to restart)', () => {
    expect(processEnded(holder, pod({ state: { terminated: { finishedAt: at(30_000), reason: 'OOMKilled', exitCode: 137 } } }))).to.match(/OOMKilled/);
    expect(processEnded(holder, pod({ state: {}, lastState: { terminated: { finishedAt: at(30_000), reason: 'Error', exitCode: 1 } } }))).to.match(/exit code 1/);
  });

  it('never takes the holder\'s own instance, or an earlier one, for a later one', () => {
    // The kubelet truncates to seconds and records the start a moment either side of the process's own.
    expect(processEnded(holder, pod({ state: { running: { startedAt: at(-400) } } }))).to.equal(undefined);
    expect(processEnded(holder, pod({ state: { running: { startedAt: at(600) } } }))).to.equal(undefined);
    expect(processEnded(holder, pod({ state: { running: { startedAt: at(-400) } }, lastState: { terminated: { finishedAt: at(-2000) } } }))).to.equal(undefined);
    // While an instance that may be the holder's runs, an earlier one's termination counts for nothing,
    // even one that a backward step of the node's clock makes look later than the holder's start.
    expect(processEnded(holder, pod({ state: { running: { startedAt: at(-400) } }, lastState: { terminated: { finishedAt: at(10_000) } } }))).to.equal(undefined);
    // Within the margin: not proof, so the lease must expire.
    expect(processEnded(holder, pod({ state: { terminated: { finishedAt: at(EVIDENCE_MARGIN_MS) } } }))).to.equal(undefined);
  });

  it('finds no evidence in a pod that is gone, another pod of the same name, or another container', () => {
    const restarted = { state: { running: { startedAt: at(60_000) } } };
    expect(processEnded(holder, undefined)).to.equal(undefined);
    expect(processEnded(holder, pod(restarted, 'uid-2'))).to.equal(undefined);
    expect(processEnded(holder, pod(restarted, 'uid-1', 'sidecar'))).to.equal(undefined);
    expect(processEnded(holder, { metadata: { uid: 'uid-1' } })).to.equal(undefined);
  });
});
