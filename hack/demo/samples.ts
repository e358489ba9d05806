import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubernetesObjectApi, PatchStrategy, loadAllYaml, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { REPO_ROOT } from '../lib/replica.ts';

/** Where the demo puts samples/ (and, with processes, the replicas' Lease). */
export const DEMO_NAMESPACE = 'ha-operator-demo';

/**
 * Server-side apply of every object in samples/*.yaml into DEMO_NAMESPACE
 * (the demo's `kubectl apply -n`); then, when given, the merge patch
 * `localPatch` on each (the API server merges it).
 */
export async function applySamples(config: KubeConfig, localPatch?: object): Promise<string[]> {
  const client = KubernetesObjectApi.makeApiClient(config);
  const dir = join(REPO_ROOT, 'samples');
  const names: string[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort()) {
    for (const object of loadAllYaml(readFileSync(join(dir, file), 'utf8')) as KubernetesObject[]) {
      object.metadata = { ...object.metadata, namespace: DEMO_NAMESPACE };
      await client.patch(object, undefined, undefined, 'ha-operator-demo', true, PatchStrategy.ServerSideApply);
      if (localPatch) {
        const { apiVersion, kind, metadata } = object;
        await client.patch({ apiVersion, kind, metadata: { name: metadata.name!, namespace: DEMO_NAMESPACE }, ...localPatch }, undefined, undefined, 'ha-operator-demo', undefined, PatchStrategy.MergePatch);
      }
      names.push(object.metadata.name!);
    }
  }
  return names;
}
