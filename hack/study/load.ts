/**
 * The steady load of the study.
 *
 * LoadGenerator sends creates and spec updates of one kind's objects (its
 * profile's sample and change) at a fixed rate
 * (open loop: a slow or absent answer does not slow it down) and records the
 * generation each one got; hack/lib/convergence-watch.ts measures when the
 * operator's status caught up with it.
 */
import { CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import type { KindProfile, StoredObject } from '../lib/kind-profile.ts';
import type { LoadSettings } from './types.ts';

/** A change the API server accepted, before its convergence is known. */
export interface SentChange {
  name: string;
  op: 'create' | 'update';
  generation: number;
  sentAt: number;
  answeredAt: number;
}

/** More requests than this waiting for an answer (an API server that hangs) and ticks are skipped. */
const MAX_IN_FLIGHT = 20;

export class LoadGenerator {
  readonly changes: SentChange[] = [];
  readonly failures: { at: number; op: string; name: string; error: string }[] = [];
  skipped = 0;
  private readonly api: CustomObjectsApi;
  private readonly profile: KindProfile;
  private readonly namespace: string;
  private readonly settings: LoadSettings;
  private readonly now: () => number;
  /** Names of the objects that exist (created by us and acknowledged), to update in turn. */
  private readonly names: string[] = [];
  private readonly versions = new Map<string, number>();
  private readonly inFlight = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private tick = 0;
  private created = 0;

  constructor(options: { kubeConfig: KubeConfig; namespace: string; profile: KindProfile; settings: LoadSettings; now: () => number }) {
    this.api = options.kubeConfig.makeApiClient(CustomObjectsApi);
    this.profile = options.profile;
    this.namespace = options.namespace;
    this.settings = options.settings;
    this.now = options.now;
  }

  /** Creates the initial objects (not counted as changes: they exist before the replicas start). */
  async createInitial(): Promise<void> {
    const names = Array.from({ length: this.settings.initialObjects }, () => this.nextName());
    await Promise.all(names.map((name) => this.api.createNamespacedCustomObject({ ...this.collection(), body: this.sample(name) })));
    for (const name of names) {
      this.names.push(name);
      this.versions.set(name, 1);
    }
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.send(), 1000 / this.settings.opsPerSecond);
  }

  /** Stops sending and waits for the answers still outstanding. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await Promise.allSettled([...this.inFlight]);
  }

  private collection(): { group: string; version: string; namespace: string; plural: string } {
    const { group, version, plural } = this.profile.resource;
    return { group, version, namespace: this.namespace, plural };
  }

  /** The profile's sample, labelled as the study's. */
  private sample(name: string): object {
    const body = this.profile.sample(this.namespace, name);
    return { ...body, metadata: { ...body.metadata, labels: { ...body.metadata?.labels, 'app.kubernetes.io/part-of': 'ha-operator-study' } } };
  }

  private nextName(): string {
    return `object-${String(++this.created).padStart(4, '0')}`;
  }

  private send(): void {
    if (this.inFlight.size >= MAX_IN_FLIGHT) {
      this.skipped++;
      return;
    }
    const tick = this.tick++;
    const create = tick % this.settings.createEvery === 0 || this.names.length === 0;
    const promise = create ? this.create() : this.update(this.names[tick % this.names.length]!);
    this.inFlight.add(promise);
    void promise.finally(() => this.inFlight.delete(promise));
  }

  private async create(): Promise<void> {
    const name = this.nextName();
    const sentAt = this.now();
    try {
      const created = (await this.api.createNamespacedCustomObject({ ...this.collection(), body: this.sample(name) })) as StoredObject;
      this.record(name, 'create', created, sentAt);
      this.versions.set(name, 1);
      this.names.push(name);
    } catch (error) {
      this.failures.push({ at: sentAt, op: 'create', name, error: describe(error) });
    }
  }

  private async update(name: string): Promise<void> {
    const version = (this.versions.get(name) ?? 1) + 1;
    this.versions.set(name, version);
    const sentAt = this.now();
    try {
      const updated = (await this.api.patchNamespacedCustomObject(
        { ...this.collection(), name, body: this.profile.change(name, version) },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      )) as StoredObject;
      this.record(name, 'update', updated, sentAt);
    } catch (error) {
      this.failures.push({ at: sentAt, op: 'update', name, error: describe(error) });
    }
  }

  private record(name: string, op: 'create' | 'update', object: StoredObject, sentAt: number): void {
    this.changes.push({ name, op, generation: object.metadata.generation, sentAt, answeredAt: this.now() });
  }
}

export function describe(error: unknown): string {
  if (error && typeof error === 'object' && 'code' in error && 'body' in error) {
    const body = (error as { body: unknown }).body;
    return `HTTP ${String((error as { code: unknown }).code)}: ${typeof body === 'string' ? body.slice(0, 200) : JSON.stringify(body).slice(0, 200)}`;
  }
  return error instanceof Error ? error.message : String(error);
}
