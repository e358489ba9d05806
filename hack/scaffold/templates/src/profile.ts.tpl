/**
 * The __Kind__ as the harness, the study, the benchmarks and the demo know it
 * (hack/lib/kind-profile.ts says what a profile is). Not part of the operator:
 * src/main.ts does not import it, so nothing of it is bundled.
 */
import { listByName, type KindProfile } from '../../hack/lib/kind-profile.ts';
import { firstDifference } from '../runtime/compare.ts';
import { __KIND___CRD } from './crd.ts';
import { CHILD, desiredChild } from './desired.ts';
import { __KIND___API_VERSION, __KIND___GROUP, __KIND___KIND, __KIND___PLURAL, __KIND___VERSION, type __Kind__ } from './types.ts';

/** A __ChildKind__ body the API server accepts: the sample's spec.template. */
const SAMPLE_TEMPLATE: Record<string, unknown> = __sampleTemplate__;

export const __KIND___PROFILE: KindProfile<__Kind__> = {
  crd: __KIND___CRD,
  resource: { group: __KIND___GROUP, version: __KIND___VERSION, apiVersion: __KIND___API_VERSION, kind: __KIND___KIND, plural: __KIND___PLURAL },
  sample: (namespace, name) => ({ apiVersion: __KIND___API_VERSION, kind: __KIND___KIND, metadata: { name, namespace }, spec: { template: SAMPLE_TEMPLATE } }),
  change: (_name, version) => ({ spec: { annotations: { [`${__KIND___GROUP}/change`]: String(version) } } }),
  observedGeneration: (object) => object.status?.observedGeneration,
  converged: (object) => object.status?.observedGeneration === object.metadata.generation
    && (object.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
  async childrenBehind(kubeConfig, namespace, objects) {
    const actual = await listByName(kubeConfig, CHILD, namespace);
    return objects.flatMap((object) => {
      const found = actual.get(object.metadata.name);
      const difference = found === undefined ? 'absent' : firstDifference(found, desiredChild(object));
      return difference === undefined ? [] : [`${object.metadata.name}: its ${CHILD.kind} (${difference})`];
    });
  },
  described: {
    sample: 'a __ChildKind__ template',
    change: 'an annotation of its __ChildKind__ changed (merge patch)',
    converged: 'status.observedGeneration = metadata.generation and Ready True',
  },
};
