import type { V1ObjectMeta } from '@kubernetes/client-node';
import type { Condition } from '../runtime/conditions.ts';

// The custom resource as crds/websites.yaml declares it; docs/WEBSITE.md is its reference.

export const WEBSITE_GROUP = 'ha-operator.example.com';
export const WEBSITE_VERSION = 'v1alpha1';
export const WEBSITE_API_VERSION = `${WEBSITE_GROUP}/${WEBSITE_VERSION}` as const;
export const WEBSITE_KIND = 'Website';
export const WEBSITE_PLURAL = 'websites';

export type ServiceType = 'ClusterIP' | 'NodePort';

/**
 * The spec as the API server returns it. Every field but nodePort has a schema
 * default, and the server applies defaults on every read, so they are never absent.
 */
export interface WebsiteSpec {
  replicas: number;
  image: string;
  html: string;
  serviceType: ServiceType;
  nodePort?: number;
}

export type ConditionType = 'Ready' | 'Progressing' | 'Degraded';

export type WebsiteCondition = Condition<ConditionType>;

export interface WebsiteStatus {
  observedGeneration?: number;
  readyReplicas?: number;
  url?: string;
  conditions?: WebsiteCondition[];
}

/** A Website as stored: the server has set name, namespace, uid and generation. */
export interface Website {
  apiVersion: typeof WEBSITE_API_VERSION;
  kind: typeof WEBSITE_KIND;
  metadata: V1ObjectMeta & { name: string; namespace: string; uid: string; generation: number };
  spec: WebsiteSpec;
  status?: WebsiteStatus;
}
