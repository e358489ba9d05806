import type { V1ObjectMeta } from '@kubernetes/client-node';
import type { Static } from 'typebox';
import type { Condition } from '../runtime/conditions.ts';
import type { CONDITION_TYPES, __Kind__SpecSchema, __Kind__StatusSchema } from './schema.ts';

// The custom resource's types, from its schema (schema.ts), from which crds/__plural__.yaml is generated too.

export const __KIND___GROUP = '__group__';
export const __KIND___VERSION = '__version__';
export const __KIND___API_VERSION = `${__KIND___GROUP}/${__KIND___VERSION}` as const;
export const __KIND___KIND = '__Kind__';
export const __KIND___PLURAL = '__plural__';

export type __Kind__Spec = Static<typeof __Kind__SpecSchema>;

export type __Kind__ConditionType = (typeof CONDITION_TYPES)[number];

export type __Kind__Condition = Condition<__Kind__ConditionType>;

export type __Kind__Status = Static<typeof __Kind__StatusSchema>;

/** A __Kind__ as stored: the server has set name, namespace, uid and generation. */
export interface __Kind__ {
  apiVersion: typeof __KIND___API_VERSION;
  kind: typeof __KIND___KIND;
  metadata: V1ObjectMeta & { name: string; namespace: string; uid: string; generation: number };
  spec: __Kind__Spec;
  status?: __Kind__Status;
}
