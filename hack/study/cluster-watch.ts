/**
 * What the study's scenarios on real nodes (hack/study/nodes.ts) watch: the
 * cluster's pods and nodes and the operator's Leases, through the project's
 * Informer, with one way to wait — `until` tests its condition at every
 * event of any of them (and at once), never by polling; and the log of every
 * operator container that runs, followed with `kubectl logs -f`, one per
 * container instance (a restart in place is a new instance, with a holder
 * identity of its own), as the demo follows them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { KubeConfig } from '@kubernetes/client-node';
import type { CachedObject, Informer } from '../../src/runtime/informer.ts';
import type { Lease } from '../../src/runtime/leases.ts';
import { InformerSet } from '../lib/informer-set.ts';
import { replicaName } from './cluster-figures.ts';

interface ContainerState {
  running?: { startedAt?: string };
  terminated?: { exitCode?: number; reason?: string; containerID?: string };
}

export interface ContainerStatus {
  name: string;
  ready?: boolean;
  containerID?: string;
  restartCount?: number;
  state?: ContainerState;
  lastState?: ContainerState;
}

export interface PodView extends CachedObject {
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    resourceVersion?: string;
    deletionTimestamp?: string;
    labels?: Record<string, string>;
    ownerReferences?: { kind: string; name: string; controller?: boolean }[];
  };
  spec?: { nodeName?: string; tolerations?: { key?: string; effect?: string; tolerationSeconds?: number }[] };
  status?: { conditions?: { type: string; status: string }[]; containerStatuses?: ContainerStatus[] };
}

export interface NodeView extends CachedObject {
  metadata: { name: string; resourceVersion?: string };
  spec?: { taints?: { key: string; effect: string }[] };
  status?: { conditions?: { type: string; status: string }[] };
}

export const isPodReady = (pod: PodView): boolean => pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;

export const isNodeReady = (node: NodeView): boolean => node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true
  && !(node.spec?.taints ?? []).some((t) => t.key.startsWith('node.kubernetes.io/'));

export class ClusterWatch extends InformerSet {
  readonly pods = this.watch<PodView>({ apiVersion: 'v1', kind: 'Pod', plural: 'pods' });
  readonly nodes = this.watch<NodeView>({ apiVersion: 'v1', kind: 'Node', plural: 'nodes' });
  readonly leases: Informer<Lease & CachedObject>;
  private readonly operatorNamespace: string;

  constructor(kubeConfig: KubeConfig, operatorNamespace: string) {
    super(kubeConfig, 'ha-operator-study');
    this.operatorNamespace = operatorNamespace;
    this.leases = this.watch<Lease & CachedObject>({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', plural: 'leases', namespace: operatorNamespace });
  }

  lease(name: string): Lease | undefined {
    return this.leases.get(`${this.operatorNamespace}/${name}`);
  }

  holder(name: string): string {
    return this.lease(name)?.spec?.holderIdentity ?? '';
  }

  /** The operator's pods that are not being deleted, by name. */
  operatorPods(selector: (pod: PodView) => boolean): PodView[] {
    return this.pods.list().filter((p) => p.metadata.namespace === this.operatorNamespace && !p.metadata.deletionTimestamp && selector(p))
      .sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1));
  }
}

/** One line of an operator container's log. */
export interface PodLogLine {
  text: string;
  json: Record<string, unknown> | undefined;
  message: string | undefined;
  /** Its `timestamp` (the operator's clock: this host's), ms since the epoch. */
  loggedAt: number | undefined;
  /** Date.now() when the line arrived here. */
  receivedAt: number;
}

/** One run of the operator's container: a pod's container between a start and its end. */
export interface ContainerInstance {
  containerId: string;
  pod: string;
  podUid: string;
  node: string;
  restartCount: number;
  /** Its name in the scenario (replicaName). */
  replica: string;
  lines: PodLogLine[];
  /** Date.now() when the watch first showed it running. */
  seenRunningAt: number;
  /** Date.now() when the watch first showed it ready. */
  readyAt: number | null;
  /** When it ended: when the watch showed it terminated, replaced or its pod gone, or when the harness ended it (a kill, a lost node). */
  endedAt: number | null;
  exit: string | null;
}

/**
 * Follows the log of every instance of `container` in the operator's pods
 * from the moment the watch shows it running (`kubectl logs -f` prints the
 * log from its start, so nothing is missed), and keeps what the watch shows
 * of its life: ready, terminated, its pod deleted.
 */
export class OperatorLogs {
  private readonly watch: ClusterWatch;
  private readonly kubectl: { binary: string; kubeconfig: string };
  private readonly namespace: string;
  private readonly container: string;
  private readonly byContainer = new Map<string, ContainerInstance>();
  private readonly followers = new Set<ChildProcess>();
  private unsubscribe: (() => void) | undefined;

  constructor(options: { watch: ClusterWatch; kubectl: { binary: string; kubeconfig: string }; namespace: string; container: string }) {
    this.watch = options.watch;
    this.kubectl = options.kubectl;
    this.namespace = options.namespace;
    this.container = options.container;
  }

  start(): void {
    this.unsubscribe = this.watch.pods.subscribe((event) => {
      if (event.type === 'deleted') this.podGone(event.object);
      else this.seen(event.object);
    });
    for (const pod of this.watch.pods.list()) this.seen(pod);
  }

  /** Every instance seen, in the order they were first seen running. */
  instances(): ContainerInstance[] {
    return [...this.byContainer.values()].sort((a, b) => a.seenRunningAt - b.seenRunningAt || (a.replica < b.replica ? -1 : 1));
  }

  /** The instance that holds `identity` (its elector's lines name it), if any. */
  withIdentity(identity: string): ContainerInstance | undefined {
    return this.instances().find((i) => identityOf(i) === identity);
  }

  /** Records that the harness ended `instance` at `at` (the first end recorded stands). */
  ended(instance: ContainerInstance, at: number, exit: string): void {
    if (instance.endedAt !== null) return;
    instance.endedAt = at;
    instance.exit = exit;
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    const exits = [...this.followers].map((child) => new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    }));
    for (const child of this.followers) child.kill('SIGTERM');
    await Promise.all(exits);
  }

  private seen(pod: PodView): void {
    if (pod.metadata.namespace !== this.namespace) return;
    const status = pod.status?.containerStatuses?.find((c) => c.name === this.container);
    if (!status) return;
    const now = Date.now();
    for (const instance of this.byContainer.values()) {
      if (instance.podUid !== pod.metadata.uid || instance.endedAt !== null) continue;
      const terminated = [status.state?.terminated, status.lastState?.terminated].find((t) => t?.containerID === instance.containerId);
      if (terminated) this.ended(instance, now, `exit code ${terminated.exitCode ?? '?'}${terminated.reason ? ` (${terminated.reason})` : ''}`);
      else if (status.containerID !== instance.containerId) this.ended(instance, now, 'replaced');
    }
    const id = status.containerID;
    if (!id || !status.state?.running) return;
    let instance = this.byContainer.get(id);
    if (!instance) {
      const restartCount = status.restartCount ?? 0;
      instance = {
        containerId: id, pod: pod.metadata.name, podUid: pod.metadata.uid, node: pod.spec?.nodeName ?? '?', restartCount,
        replica: replicaName(pod.metadata.name, restartCount), lines: [], seenRunningAt: now, readyAt: null, endedAt: null, exit: null,
      };
      this.byContainer.set(id, instance);
      this.follow(instance);
    }
    if (status.ready === true && instance.readyAt === null) instance.readyAt = now;
  }

  private podGone(pod: PodView): void {
    for (const instance of this.byContainer.values()) {
      if (instance.podUid === pod.metadata.uid) this.ended(instance, Date.now(), 'pod deleted');
    }
  }

  /**
   * `kubectl logs -f` of the pod's container: the instance running now. (If
   * the container restarted in the moment between the watch's event and
   * kubectl's request, this would follow the next instance; the watch shows
   * that one too, and the lines would count twice. A restart takes seconds.)
   */
  private follow(instance: ContainerInstance): void {
    const child = spawn(this.kubectl.binary, [`--kubeconfig=${this.kubectl.kubeconfig}`, 'logs', '-f', '-n', this.namespace, instance.pod, '-c', this.container],
      { stdio: ['ignore', 'pipe', 'ignore'] });
    this.followers.add(child);
    child.once('exit', () => this.followers.delete(child));
    createInterface({ input: child.stdout }).on('line', (text) => instance.lines.push(parseLine(text)));
  }
}

/** The holderIdentity an instance's elector lines name (they carry `identity`). */
export function identityOf(instance: ContainerInstance): string | null {
  const line = instance.lines.find((l) => typeof l.json?.identity === 'string');
  return line ? (line.json!.identity as string) : null;
}

export function parseLine(text: string): PodLogLine {
  let json: Record<string, unknown> | undefined;
  if (text.startsWith('{')) {
    try {
      const value: unknown = JSON.parse(text);
      if (value !== null && typeof value === 'object' && !Array.isArray(value)) json = value as Record<string, unknown>;
    } catch {
      // Not JSON: kept as text.
    }
  }
  const timestamp = typeof json?.timestamp === 'string' ? Date.parse(json.timestamp) : Number.NaN;
  return {
    text,
    json,
    message: typeof json?.message === 'string' ? json.message : undefined,
    loggedAt: Number.isNaN(timestamp) ? undefined : timestamp,
    receivedAt: Date.now(),
  };
}
