/**
 * The __Kind__'s schema, written once in TypeBox: types.ts takes its types from
 * it (`Static`) and hack/crds.ts writes crds/__plural__.yaml from it (make crds;
 * a test fails while the two differ).
 *
 * Written by make new-kind: spec.template is the __ChildKind__'s body, applied as
 * it is. Replace it with the fields your __Kind__ really has, and desired.ts with
 * what they mean.
 */
import Type from 'typebox';
import { conditionSchema, customResourceSchema } from '../runtime/schema.ts';

export const CONDITION_TYPES = ['Ready', 'Degraded'] as const;

export const __Kind__SpecSchema = Type.Object({
  template: Type.Unsafe<Record<string, unknown>>({
    type: 'object',
    description: 'The __ChildKind__\'s body besides apiVersion, kind and metadata (which the operator sets): applied as it is.',
    'x-kubernetes-preserve-unknown-fields': true,
  }),
  annotations: Type.Optional(Type.Unsafe<Record<string, string>>({
    type: 'object',
    description: 'Annotations the __ChildKind__ carries.',
    additionalProperties: { type: 'string' },
  })),
}, { description: 'The __ChildKind__ this __Kind__ owns.' });

export const __Kind__StatusSchema = Type.Object({
  observedGeneration: Type.Optional(Type.Integer({ description: 'The metadata.generation this status describes.', format: 'int64', minimum: 0 })),
  conditions: Type.Optional(Type.Array(conditionSchema(CONDITION_TYPES), {
    description: 'Ready and Degraded.',
    'x-kubernetes-list-type': 'map',
    'x-kubernetes-list-map-keys': ['type'],
  })),
}, { description: 'Written by the operator.' });

/** The CRD's openAPIV3Schema: the __Kind__ as the API server validates it. */
export const __Kind__Schema = customResourceSchema(__Kind__SpecSchema, __Kind__StatusSchema, {
  description: 'A __ChildKind__ kept as its spec says.',
});
