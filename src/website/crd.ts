import { WebsiteSchema } from './schema.ts';
import { WEBSITE_GROUP, WEBSITE_KIND, WEBSITE_PLURAL, WEBSITE_VERSION } from './types.ts';

/**
 * The Website's CustomResourceDefinition; hack/crds.ts writes it to
 * crds/websites.yaml (`make crds`), and a test keeps the two equal.
 */
export const WEBSITE_CRD = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: `${WEBSITE_PLURAL}.${WEBSITE_GROUP}` },
  spec: {
    group: WEBSITE_GROUP,
    scope: 'Namespaced',
    names: { kind: WEBSITE_KIND, listKind: `${WEBSITE_KIND}List`, plural: WEBSITE_PLURAL, singular: 'website', shortNames: ['web'], categories: ['ha-operator'] },
    versions: [{
      name: WEBSITE_VERSION,
      served: true,
      storage: true,
      subresources: { status: {} },
      additionalPrinterColumns: [
        { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
        { name: 'Replicas', type: 'integer', jsonPath: '.spec.replicas' },
        { name: 'URL', type: 'string', jsonPath: '.status.url' },
        { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
      ],
      schema: { openAPIV3Schema: WebsiteSchema },
    }],
  },
};
