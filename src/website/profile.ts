/**
 * The Website as the harness, the study, the benchmarks and the demo know it
 * (hack/lib/kind-profile.ts says what a profile is). Not part of the operator:
 * src/main.ts does not import it, so nothing of it is bundled.
 */
import { listByName, type KindProfile } from '../../hack/lib/kind-profile.ts';
import { firstDifference } from '../runtime/compare.ts';
import { WEBSITE_CRD } from './crd.ts';
import { desiredChildren } from './desired.ts';
import { WEBSITE_API_VERSION, WEBSITE_GROUP, WEBSITE_KIND, WEBSITE_PLURAL, WEBSITE_VERSION, type Website } from './types.ts';

function page(name: string, version: number): string {
  return `<!doctype html><title>${name}</title><p>${name}, version ${version}</p>`;
}

export const WEBSITE_PROFILE: KindProfile<Website> = {
  crd: WEBSITE_CRD,
  resource: { group: WEBSITE_GROUP, version: WEBSITE_VERSION, apiVersion: WEBSITE_API_VERSION, kind: WEBSITE_KIND, plural: WEBSITE_PLURAL },
  // No pods: Ready then comes from the Deployment alone.
  sample: (namespace, name) => ({ apiVersion: WEBSITE_API_VERSION, kind: WEBSITE_KIND, metadata: { name, namespace }, spec: { replicas: 0, html: page(name, 1) } }),
  change: (name, version) => ({ spec: { html: page(name, version) } }),
  // The default image, nginxinc/nginx-unprivileged, cannot be pulled on the local nodes; the local web image keeps its contract.
  onLocalNodes: (webImage) => ({ spec: { image: webImage } }),
  observedGeneration: (website) => website.status?.observedGeneration,
  converged: (website) => website.status?.observedGeneration === website.metadata.generation
    && (website.status.conditions ?? []).some((c) => c.type === 'Ready'),
  async childrenBehind(kubeConfig, namespace, websites) {
    const [configMap, deployment, service] = await Promise.all([
      listByName(kubeConfig, { apiVersion: 'v1', kind: 'ConfigMap', plural: 'configmaps' }, namespace),
      listByName(kubeConfig, { apiVersion: 'apps/v1', kind: 'Deployment', plural: 'deployments' }, namespace),
      listByName(kubeConfig, { apiVersion: 'v1', kind: 'Service', plural: 'services' }, namespace),
    ]);
    const actual = { configMap, deployment, service };
    const behind: string[] = [];
    for (const website of websites) {
      const children = desiredChildren(website);
      if ('reason' in children) {
        behind.push(`${website.metadata.name}: ${children.message}`);
        continue;
      }
      for (const role of ['configMap', 'deployment', 'service'] as const) {
        const desired = children[role];
        const found = actual[role].get(desired.metadata?.name ?? '');
        const difference = found === undefined ? 'absent' : firstDifference(found, desired);
        if (difference !== undefined) behind.push(`${website.metadata.name}: its ${desired.kind} ${desired.metadata?.name ?? ''} (${difference})`);
      }
    }
    return behind;
  },
  described: {
    sample: 'spec.replicas 0 (the plane has no kubelet) and a one-line spec.html',
    change: 'a spec.html update (merge patch)',
    converged: 'status.observedGeneration = metadata.generation and a Ready condition',
  },
};
