import type { V1ObjectMeta } from '@kubernetes/client-node';
import type { Static } from 'typebox';
import type { Condition } from '../runtime/conditions.ts';
import type { CONDITION_TYPES, DEFAULTED_SPEC_FIELDS, SERVICE_TYPES, WebsiteSpecSchema, WebsiteStatusSchema } from './schema.ts';

// The custom resource's types, from its schema (schema.ts), from which crds/websites.yaml is
// generated too; docs/WEBSITE.md is its reference.

export const WEBSITE_GROUP = 'ha-operator.example.com';
export const WEBSITE_VERSION = 'v1alpha1';
export const WEBSITE_API_VERSION = `${WEBSITE_GROUP}/${WEBSITE_VERSION}` as const;
export const WEBSITE_KIND = 'Website';
export const WEBSITE_PLURAL = 'websites';

export type ServiceType = (typeof SERVICE_TYPES)[number];

/** The spec as written: every field but nodePort has a default and may be left out. */
export type WebsiteSpecInput = Static<typeof WebsiteSpecSchema>;

/** The spec as the API server returns it: it applies defaults on every read, so those are never absent. */
export type WebsiteSpec = WebsiteSpecInput & Required<Pick<WebsiteSpecInput, (typeof DEFAULTED_SPEC_FIELDS)[number]>>;

export type ConditionType = (typeof CONDITION_TYPES)[number];

export type WebsiteCondition = Condition<ConditionType>;

export type WebsiteStatus = Static<typeof WebsiteStatusSchema>;

/** A Website as stored: the server has set name, namespace, uid and generation. */
export interface Website {
  apiVersion: typeof WEBSITE_API_VERSION;
  kind: typeof WEBSITE_KIND;
  metadata: V1ObjectMeta & { name: string; namespace: string; uid: string; generation: number };
  spec: WebsiteSpec;
  status?: WebsiteStatus;
}
