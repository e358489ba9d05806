/**
 * The chaos run (`make chaos`): three operator replicas, unsharded and then
 * sharded, under a steady load of creates and spec changes, through random
 * disruptions — SIGTERM, SIGKILL, one replica's traffic held then delivered,
 * delayed, or cut, and API server restarts. Each replica reaches the API
 * server through a fault proxy of its own. At the end:
 *
 * - the API server's audit log (hack/lib/audit.ts): no write of an earlier
 *   term committed after a later term's on any object;
 * - every change the load made was observed: each object's status reports
 *   its latest generation, and its children hold what its spec asks for
 *   (the kind's profile checks them);
 * - every object converged.
 *
 *   node hack/chaos.ts [--disruptions N] [--modes unsharded,sharded] [--seed S] [--out FILE]
 *
 * Prints a Markdown summary (and writes the JSON to --out); exits 1 when a
 * check failed, 2 on bad arguments. `make test` runs a short version
 * (test/integration/chaos.test.ts).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { ControlPlane } from './controlplane/plane.ts';
import { checkAudit, summarize, type AuditReport } from './lib/audit.ts';
import { ConvergenceWatch } from './lib/convergence-watch.ts';
import { installCrd, type StoredObject } from './lib/kind-profile.ts';
import { Replica } from './lib/replica.ts';
import { TcpProxy, writeProxiedKubeconfig } from './lib/tcp-proxy.ts';
import { LoadGenerator } from './study/load.ts';
import { Informer } from '../src/runtime/informer.ts';
import { KubeClient } from '../src/runtime/kube.ts';
import type { Lease } from '../src/runtime/leases.ts';
import { createLogger } from '../src/runtime/logging.ts';
import { schemeLeaseNames } from '../src/runtime/membership.ts';
import { SAMPLE_KIND } from './kinds.ts';
import { podOfIdentity } from '../src/runtime/holder.ts';

export const DISRUPTIONS = ['sigterm', 'sigkill', 'hold', 'delay', 'cut', 'apiserver'] as const;
export type Disruption = (typeof DISRUPTIONS)[number];

export interface ChaosOptions {
  plane: ControlPlane;
  mode: 'unsharded' | 'sharded';
  disruptions: number;
  seed: number;
  /** Disrupt in this order instead of at random (the kinds repeat if there are more disruptions). */
  sequence?: readonly Disruption[];
  /** Called with a line of progress. */
  log?: (line: string) => void;
}

export interface DisruptionRecord {
  kind: Disruption;
  replica: string | undefined;
  detail: string;
  /** From the end of the disruption until every lease was held by a healthy replica again. */
  recoveryMs: number | undefined;
}

export interface ChaosResult {
  mode: string;
  seed: number;
  disruptions: DisruptionRecord[];
  changes: number;
  /** Changes whose generation never showed in the object's status, or whose spec its children do not hold. */
  lost: string[];
  notConverged: string[];
  loadFailures: number;
  audit: AuditReport;
  durationMs: number;
  /** Empty when every check passed. */
  failures: string[];
}

const LEASE = 'ha-operator';
const REPLICAS = 3;
const LEASE_MS = 3_000;
const START_MS = 30_000;
const RECOVERY_TIMEOUT_MS = 60_000;
const quiet = createLogger({ level: 'error', format: 'json' });

/** A small deterministic generator (mulberry32), so that a seed replays the same disruptions. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Slot {
  base: string;
  generation: number;
  proxy: TcpProxy;
  kubeconfig: string;
  replica: Replica;
  /** False while its traffic is disrupted. */
  healthy: boolean;
}

export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const { plane, mode } = options;
  const log = options.log ?? (() => undefined);
  const rand = random(options.seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;
  const between = (lowMs: number, highMs: number): number => Math.round(lowMs + rand() * (highMs - lowMs));
  const started = performance.now();
  const shards = mode === 'sharded' ? 6 : 1;
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(plane.kubeconfigPath);
  await installCrd(kubeConfig, SAMPLE_KIND.crd);
  const namespace = `chaos-${mode}-${options.seed}-${Date.now().toString(36)}`;
  await kubeConfig.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: namespace } } });

  const leases = new Informer<Lease>({
    client: new KubeClient(kubeConfig),
    resource: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', plural: 'leases', namespace },
    logger: quiet,
    backoff: { initialMs: 100, maxMs: 500 },
  });
  leases.start();
  await leases.whenSynced();

  const slots: Slot[] = [];
  const launch = async (slot: Omit<Slot, 'replica'>): Promise<Slot> => {
    const replica = await Replica.start({
      name: `${slot.base}-${slot.generation}`, kubeconfig: slot.kubeconfig, leaseNamespace: namespace, watchNamespace: namespace,
      env: { SHARDS: String(shards), LOG_LEVEL: 'info' },
    });
    await replica.running(START_MS);
    return { ...slot, replica };
  };
  for (let i = 0; i < REPLICAS; i++) {
    const proxy = await TcpProxy.start({ port: plane.apiServerPort });
    const kubeconfig = await writeProxiedKubeconfig(plane.kubeconfigPath, join(plane.dir, `${namespace}-r${i}.kubeconfig`), proxy.port);
    slots.push(await launch({ base: `r${i}`, generation: 1, proxy, kubeconfig, healthy: true }));
  }

  const leaseNames = schemeLeaseNames({ leaseName: LEASE, shards });
  /** Every lease held by a healthy running replica whose renewal was seen after `sinceMs`. */
  const recovered = (sinceMs: number): Promise<number | undefined> => new Promise((resolvePromise) => {
    const renewedAt = new Map<string, number>();
    const check = (): void => {
      const healthy = new Set(slots.filter((s) => s.healthy && s.replica.isRunning).map((s) => s.replica.name));
      const ok = leaseNames.every((name) => {
        const holder = podOfIdentity(leases.get(`${namespace}/${name}`)?.spec?.holderIdentity ?? '');
        return healthy.has(holder) && (renewedAt.get(name) ?? 0) > sinceMs;
      });
      if (!ok) return;
      finish(performance.now() - sinceMs);
    };
    const unsubscribe = leases.subscribe((event) => {
      if (event.type !== 'deleted') renewedAt.set(event.object.metadata.name, performance.now());
      check();
    });
    const timer = setTimeout(() => finish(undefined), RECOVERY_TIMEOUT_MS);
    const finish = (value: number | undefined): void => {
      unsubscribe();
      clearTimeout(timer);
      resolvePromise(value);
    };
  });

  const failures: string[] = [];
  const load = new LoadGenerator({ kubeConfig, namespace, profile: SAMPLE_KIND, now: () => Date.now(), settings: { initialObjects: 12, opsPerSecond: 8, createEvery: 5 } });
  await load.createInitial();
  if ((await recovered(-1)) === undefined) failures.push('the replicas never held every lease at the start');
  load.start();

  const records: DisruptionRecord[] = [];
  for (let n = 0; n < options.disruptions; n++) {
    const kind = options.sequence ? options.sequence[n % options.sequence.length]! : pick(DISRUPTIONS);
    // Half the time a leader: disrupting a standby tests less.
    const leaders = slots.filter((s) => leaseNames.some((name) => podOfIdentity(leases.get(`${namespace}/${name}`)?.spec?.holderIdentity ?? '') === s.replica.name));
    const slot = rand() < 0.5 && leaders.length > 0 ? pick(leaders) : pick(slots);
    let detail = '';
    switch (kind) {
      case 'sigterm':
      case 'sigkill': {
        const { replica } = slot;
        if (kind === 'sigterm') replica.sigterm();
        else replica.sigkill();
        const exit = await replica.exited;
        detail = `exit ${exit.signal ?? exit.code}`;
        if (kind === 'sigterm' && exit.code !== 0) failures.push(`${replica.name} exited with ${exit.signal ?? exit.code} on SIGTERM`);
        Object.assign(slot, await launch({ ...slot, generation: slot.generation + 1 }));
        break;
      }
      case 'hold':
      case 'delay':
      case 'cut': {
        const forMs = between(LEASE_MS / 2, LEASE_MS * 2);
        slot.healthy = false;
        if (kind === 'hold') {
          const direction = pick(['up', 'down', 'both'] as const);
          slot.proxy.hold(direction);
          await sleep(forMs);
          slot.proxy.deliver(direction);
          detail = `${direction} for ${forMs} ms`;
        } else if (kind === 'delay') {
          const delayMs = between(200, LEASE_MS);
          slot.proxy.delay('both', delayMs);
          await sleep(forMs);
          slot.proxy.delay('both', 0);
          detail = `${delayMs} ms each way for ${forMs} ms`;
        } else {
          const cutMode = pick(['blackhole', 'reset'] as const);
          slot.proxy.cut(cutMode);
          await sleep(forMs);
          slot.proxy.restore();
          detail = `${cutMode} for ${forMs} ms`;
        }
        slot.healthy = true;
        break;
      }
      case 'apiserver': {
        const downMs = between(200, LEASE_MS);
        await plane.killApiServer();
        await sleep(downMs);
        await plane.startApiServer();
        detail = `down ${downMs} ms`;
        break;
      }
    }
    const recoveryMs = await recovered(performance.now());
    const record = { kind, replica: kind === 'apiserver' ? undefined : slot.replica.name, detail, recoveryMs };
    records.push(record);
    log(`${n + 1}/${options.disruptions} ${kind} ${record.replica ?? ''} ${detail}: ${recoveryMs === undefined ? 'NOT recovered' : `recovered in ${Math.round(recoveryMs)} ms`}`);
    if (recoveryMs === undefined) failures.push(`no healthy replica held every lease within ${RECOVERY_TIMEOUT_MS} ms after disruption ${n + 1} (${kind} ${detail})`);
  }

  await load.stop();
  const latest = new Map<string, number>();
  for (const change of load.changes) latest.set(change.name, Math.max(latest.get(change.name) ?? 0, change.generation));
  const watch = new ConvergenceWatch({ kubeConfig, namespace, profile: SAMPLE_KIND });
  await watch.start();
  const notConverged: string[] = [];
  try {
    await watch.untilConverged(120_000, { atLeast: latest });
  } catch (error) {
    notConverged.push(...watch.pending());
    failures.push((error as Error).message);
  } finally {
    await watch.stop();
  }
  const lost = await lostChanges(kubeConfig, namespace, latest);
  if (lost.length > 0) failures.push(`${lost.length} changes lost: ${lost.slice(0, 10).join(', ')}`);

  await Promise.all(slots.map((s) => s.replica.stop(10_000)));
  await Promise.all(slots.map((s) => s.proxy.close()));
  await leases.stop();
  const audit = await checkAudit(plane.auditLogPath!, { namespaces: [namespace], leaseNamespace: namespace });
  log(summarize(audit));
  if (audit.violations.length > 0) failures.push(`${audit.violations.length} writes out of term: ${audit.violations.slice(0, 3).join('; ')}`);
  if (audit.unattributed.length > 0) failures.push(`${audit.unattributed.length} writes whose term the audit log does not show`);
  if (load.failures.length > 0) log(`${load.failures.length} load requests failed (an API server restart refuses them; they are not changes)`);
  return {
    mode, seed: options.seed, disruptions: records, changes: load.changes.length, lost, notConverged, loadFailures: load.failures.length,
    audit, durationMs: performance.now() - started, failures,
  };
}

/** Changes whose latest generation is not in the status, or whose object's children do not hold its spec. */
async function lostChanges(kubeConfig: KubeConfig, namespace: string, latest: Map<string, number>): Promise<string[]> {
  const { group, version, plural } = SAMPLE_KIND.resource;
  const list = (await kubeConfig.makeApiClient(CustomObjectsApi).listNamespacedCustomObject({ group, version, namespace, plural })) as { items: StoredObject[] };
  const objects = new Map(list.items.map((o) => [o.metadata.name, o]));
  const lost: string[] = [];
  const observed: StoredObject[] = [];
  for (const [name, generation] of latest) {
    const object = objects.get(name);
    const observedGeneration = object === undefined ? undefined : SAMPLE_KIND.observedGeneration(object);
    if (object === undefined || (observedGeneration ?? 0) < generation) lost.push(`${name}@${generation} (status ${observedGeneration ?? 'absent'})`);
    else observed.push(object);
  }
  return [...lost, ...await SAMPLE_KIND.childrenBehind(kubeConfig, namespace, observed)];
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function percentile(values: number[], p: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** The Markdown the docs record. */
export function summaryTable(results: ChaosResult[]): string {
  const rows = results.map((r) => {
    const recoveries = r.disruptions.map((d) => d.recoveryMs).filter((v): v is number => v !== undefined);
    const byKind = DISRUPTIONS.map((k) => `${k} ${r.disruptions.filter((d) => d.kind === k).length}`).join(', ');
    const fmt = (v: number | undefined): string => (v === undefined ? '–' : `${Math.round(v)}`);
    return `| ${r.mode} | ${r.disruptions.length} (${byKind}) | ${r.changes} | ${r.lost.length} | ${r.notConverged.length} | ${r.audit.terms.length} | ${r.audit.writes.length} `
      + `| **${r.audit.violations.length}** | ${r.audit.lateCommits.length} | ${r.audit.overlaps.length} | ${r.audit.conflicts} | ${fmt(percentile(recoveries, 50))} / ${fmt(percentile(recoveries, 95))} / ${fmt(Math.max(...recoveries))} | ${(r.durationMs / 60_000).toFixed(1)} min |`;
  });
  return [
    '| mode | disruptions | changes | lost | not converged | terms | writes in term | out-of-term writes | committed after term ended | objects written by overlapping terms | 409s | recovery p50 / p95 / max (ms) | time |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
  ].join('\n');
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      disruptions: { type: 'string', default: '100' },
      modes: { type: 'string', default: 'unsharded,sharded' },
      seed: { type: 'string', default: String(Date.now() % 100_000) },
      out: { type: 'string' },
    },
  });
  const disruptions = Number(values.disruptions);
  const seed = Number(values.seed);
  const modes = values.modes.split(',');
  if (!(Number.isInteger(disruptions) && disruptions > 0) || !Number.isInteger(seed) || !modes.every((m) => m === 'unsharded' || m === 'sharded')) {
    process.stderr.write('usage: node hack/chaos.ts [--disruptions N] [--modes unsharded,sharded] [--seed S] [--out FILE]\n');
    process.exit(2);
  }
  const plane = await ControlPlane.start({ audit: true });
  const results: ChaosResult[] = [];
  try {
    for (const mode of modes) {
      console.log(`chaos: ${mode}, ${disruptions} disruptions, seed ${seed}`);
      results.push(await runChaos({ plane, mode, disruptions, seed, log: (line) => console.log(`  ${line}`) }));
    }
  } finally {
    await plane.stop();
  }
  console.log(`\n${summaryTable(results)}`);
  if (values.out) await writeFile(values.out, JSON.stringify(results.map((r) => ({ ...r, audit: { ...r.audit, writes: r.audit.writes.length } })), (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v), 1));
  const failed = results.flatMap((r) => r.failures.map((f) => `${r.mode}: ${f}`));
  for (const failure of failed) console.log(`FAILED ${failure}`);
  process.exit(failed.length === 0 ? 0 : 1);
}
