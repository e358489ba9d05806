/**
 * The parts of a custom resource's schema every kind writes the same way,
 * in TypeBox (a TypeBox schema is the JSON Schema object, keyword for
 * keyword, so what the CRD says is what is written here): metav1.Condition
 * as controller-gen writes it, and the object around a spec and a status.
 */
import Type, { type TSchema } from 'typebox';

/** A string with one of `values`, typed as their union (JSON Schema `enum`, as CRDs write it). */
export function stringEnum<const T extends readonly string[]>(values: T, options: Record<string, unknown> = {}) {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });
}

/** metav1.Condition, as controller-gen writes it, its `type` typed as one of `types`. */
export function conditionSchema<const T extends readonly string[]>(_types: T) {
  return Type.Object({
    type: Type.Unsafe<T[number]>({
      type: 'string', maxLength: 316,
      pattern: '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$',
    }),
    status: stringEnum(['True', 'False', 'Unknown'] as const),
    observedGeneration: Type.Optional(Type.Integer({ format: 'int64', minimum: 0 })),
    lastTransitionTime: Type.String({ format: 'date-time' }),
    reason: Type.String({ minLength: 1, maxLength: 1024, pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$' }),
    message: Type.String({ maxLength: 32768 }),
  });
}

/** The CRD's openAPIV3Schema: apiVersion, kind and metadata as every object has them, the kind's spec and status. */
export function customResourceSchema<Spec extends TSchema, Status extends TSchema>(spec: Spec, status: Status, options: Record<string, unknown>) {
  return Type.Object({
    apiVersion: Type.Optional(Type.String()),
    kind: Type.Optional(Type.String()),
    metadata: Type.Optional(Type.Unsafe<Record<string, unknown>>({ type: 'object' })),
    spec,
    status: Type.Optional(status),
  }, options);
}
