import { __Kind__Schema } from './schema.ts';
import { __KIND___GROUP, __KIND___KIND, __KIND___PLURAL, __KIND___VERSION } from './types.ts';

/**
 * The __Kind__'s CustomResourceDefinition; hack/crds.ts writes it to
 * crds/__plural__.yaml (`make crds`), and a test keeps the two equal.
 */
export const __KIND___CRD = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: `${__KIND___PLURAL}.${__KIND___GROUP}` },
  spec: {
    group: __KIND___GROUP,
    scope: 'Namespaced',
    names: { kind: __KIND___KIND, listKind: `${__KIND___KIND}List`, plural: __KIND___PLURAL, singular: '__kind__' },
    versions: [{
      name: __KIND___VERSION,
      served: true,
      storage: true,
      subresources: { status: {} },
      additionalPrinterColumns: [
        { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
        { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
      ],
      schema: { openAPIV3Schema: __Kind__Schema },
    }],
  },
};
