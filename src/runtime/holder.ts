/**
 * Who holds a Lease, precisely enough for a standby to tell from the API
 * server that the holding process has ended — so that it need not wait out
 * the lease when the kubelet has already reported the crash.
 *
 * The identity (holderIdentity) is new for every process: `<POD_NAME>-<8 hex
 * digits>`, so a container restarted in place never inherits its
 * predecessor's term without a write of its own. Every write of a holder puts
 * the annotations below on the Lease, naming its pod (namespace, name, UID),
 * its container and the wall-clock time its process started. A standby reads
 * that pod's status (its own namespace only) and takes the process as ended
 * only on the kubelet's word that a later instance of the container started,
 * or that an instance still running after the process started has
 * terminated. A pod that is gone or cannot be read is never evidence
 * (`kubectl delete --force` removes the object while the process may run on):
 * the ordinary expiry path applies.
 */
import { randomBytes } from 'node:crypto';
import type { Lease } from './leases.ts';

const PREFIX = 'ha-operator.example.com/holder-';
export const HOLDER_ANNOTATIONS = {
  identity: `${PREFIX}identity`,
  pod: `${PREFIX}pod`,
  podUid: `${PREFIX}pod-uid`,
  container: `${PREFIX}container`,
  startedAt: `${PREFIX}started-at`,
} as const;

/**
 * The kubelet's times are whole seconds (truncated), and a container's start
 * is recorded a few milliseconds either side of its process's own start: a
 * time must be later than the process's start by more than this to prove a
 * later instance. A process that lives less than this is judged by expiry.
 */
export const EVIDENCE_MARGIN_MS = 2000;

/** The process behind a holder identity, as its annotations on the Lease name it. */
export interface HolderProcess {
  identity: string;
  /** Absent when the process does not run in a pod (POD_UID unset): no evidence is ever found for it. */
  pod?: { namespace: string; name: string; uid: string; container: string };
  /** Wall-clock start of the process, ms since the epoch. */
  startedAtMs: number;
}

/** A holder identity unique to this process: the pod's name, then random hex digits. */
export function processIdentity(podName: string, suffix = randomBytes(4).toString('hex')): string {
  return `${podName}-${suffix}`;
}

/** The annotations every write of `holder` puts on a Lease. */
export function holderAnnotations(holder: HolderProcess): Record<string, string> {
  return {
    [HOLDER_ANNOTATIONS.identity]: holder.identity,
    [HOLDER_ANNOTATIONS.startedAt]: new Date(holder.startedAtMs).toISOString(),
    ...(holder.pod ? {
      [HOLDER_ANNOTATIONS.pod]: `${holder.pod.namespace}/${holder.pod.name}`,
      [HOLDER_ANNOTATIONS.podUid]: holder.pod.uid,
      [HOLDER_ANNOTATIONS.container]: holder.pod.container,
    } : {}),
  };
}

/**
 * The process holding `lease`, from its annotations — only if they were
 * written with the current holderIdentity (a writer that does not annotate,
 * an older version say, leaves another holder's behind).
 */
export function holderOf(lease: Lease): HolderProcess | undefined {
  const identity = lease.spec?.holderIdentity ?? '';
  const a = lease.metadata.annotations ?? {};
  if (identity === '' || a[HOLDER_ANNOTATIONS.identity] !== identity) return undefined;
  const startedAtMs = Date.parse(a[HOLDER_ANNOTATIONS.startedAt] ?? '');
  if (!Number.isFinite(startedAtMs)) return undefined;
  const [namespace, name, ...rest] = (a[HOLDER_ANNOTATIONS.pod] ?? '').split('/');
  const uid = a[HOLDER_ANNOTATIONS.podUid];
  const container = a[HOLDER_ANNOTATIONS.container];
  const pod = namespace && name && rest.length === 0 && uid && container ? { namespace, name, uid, container } : undefined;
  return { identity, startedAtMs, ...(pod ? { pod } : {}) };
}

/** The part of a Pod the evidence is read from (core/v1 field names). */
export interface PodStatusView {
  metadata?: { uid?: string };
  status?: { containerStatuses?: ContainerStatusView[] };
}

interface ContainerStatusView {
  name: string;
  state?: ContainerStateView;
  lastState?: ContainerStateView;
}

interface ContainerStateView {
  running?: { startedAt?: Date | string };
  terminated?: { finishedAt?: Date | string; reason?: string; exitCode?: number };
}

/**
 * Why the API server shows `holder`'s process as ended, or undefined when it
 * does not (no pod, another pod of that name, no status for the container,
 * nothing later than the process's start). `pod` is the holder's pod as read
 * now, or undefined when it does not exist.
 */
export function processEnded(holder: HolderProcess, pod: PodStatusView | undefined): string | undefined {
  if (!holder.pod || !pod || pod.metadata?.uid !== holder.pod.uid) return undefined;
  const status = pod.status?.containerStatuses?.find((c) => c.name === holder.pod!.container);
  if (!status) return undefined;
  const after = (time: Date | string | undefined): boolean => time !== undefined && new Date(time).getTime() > holder.startedAtMs + EVIDENCE_MARGIN_MS;
  const started = new Date(holder.startedAtMs).toISOString();
  const running = status.state?.running;
  // The instance running now may be the holder's own: then nothing else in the status counts (an
  // earlier instance's termination, recorded before a backward step of the node's clock, could
  // otherwise look later than the holder's start).
  if (running && !after(running.startedAt)) return undefined;
  for (const state of [status.state, status.lastState]) {
    const terminated = state?.terminated;
    if (terminated && after(terminated.finishedAt)) {
      return `container ${holder.pod.container} of pod ${holder.pod.name} terminated at ${toIso(terminated.finishedAt)} (${terminated.reason ?? 'no reason'}, exit code ${terminated.exitCode ?? '?'}); the holder's process started at ${started}`;
    }
  }
  if (running) {
    return `container ${holder.pod.container} of pod ${holder.pod.name} was restarted at ${toIso(running.startedAt)}, after the holder's process started at ${started}`;
  }
  return undefined;
}

function toIso(time: Date | string | undefined): string {
  return time === undefined ? '?' : new Date(time).toISOString();
}

/** The pod name in a holder identity made by processIdentity (an identity made otherwise is returned whole). */
export function podOfIdentity(identity: string): string {
  return identity.replace(/-[0-9a-f]{8}$/, '');
}
