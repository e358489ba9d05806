import { createHash } from 'node:crypto';
import type { V1ConfigMap, V1Deployment, V1OwnerReference, V1Service } from '@kubernetes/client-node';
import { MANAGED_BY, MANAGED_BY_LABEL } from '../runtime/children.ts';
import { WEBSITE_API_VERSION, WEBSITE_KIND, type Website } from './types.ts';

/** Server-side-apply bodies for every child of a Website: only the fields the operator owns. */
export interface DesiredChildren {
  configMap: V1ConfigMap;
  deployment: V1Deployment;
  service: V1Service;
}

/** A spec that passed the CRD schema but cannot be turned into valid children. */
export interface InvalidSpec {
  reason: 'InvalidSpec';
  message: string;
}

export const CONTENT_HASH_ANNOTATION = 'ha-operator.example.com/content-sha256';

const SERVICE_PORT = 80;
// The unprivileged nginx image listens here because a non-root user cannot bind below 1024.
const CONTAINER_PORT = 8080;
const HTML_ROOT = '/usr/share/nginx/html';
const MAX_LABEL_LENGTH = 63;
// distribution/reference's limit on the repository name (registry and path, without tag or digest).
const MAX_IMAGE_NAME_LENGTH = 255;

// A Service name must be a DNS-1035 label, which is stricter than an object name
// (that may start with a digit or hold dots). The CRD rejects such names on create;
// checking here too covers Websites stored under a CRD without that rule.
const DNS_1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

// distribution/reference's grammar, less IPv6 registries. The CRD pattern only keeps
// out characters that can never appear, so that its error stays readable; this
// catches the rest (an uppercase path, an empty tag, a truncated digest, ...).
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = `${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*(?::[0-9]+)?`;
const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const TAG = '[\\w][\\w.-]{0,127}';
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';
const IMAGE_REFERENCE = new RegExp(
  `^(?<name>(?:${DOMAIN}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*)(?::${TAG})?(?:@${DIGEST})?$`,
);

export function desiredChildren(website: Website): DesiredChildren | InvalidSpec {
  const problems = [nameProblem(website.metadata.name), imageProblem(website.spec.image)].filter(
    (problem) => problem !== undefined,
  );
  if (problems.length > 0) return { reason: 'InvalidSpec', message: problems.join('; ') };
  return {
    configMap: desiredConfigMap(website),
    deployment: desiredDeployment(website),
    service: desiredService(website),
  };
}

/** Where the Website is served inside the cluster (assumes the default cluster domain). */
export function websiteUrl(website: Website): string {
  const { name, namespace } = website.metadata;
  return `http://${name}.${namespace}.svc.cluster.local:${SERVICE_PORT}`;
}

function nameProblem(name: string): string | undefined {
  if (name.length > MAX_LABEL_LENGTH) {
    return `metadata.name is ${name.length} characters long; at most ${MAX_LABEL_LENGTH} are allowed, because the name is the Service name and a label value`;
  }
  if (!DNS_1035_LABEL.test(name)) {
    return `metadata.name "${name}" is not a DNS-1035 label, which the Service name must be: lowercase letters, digits and '-', starting with a letter and ending with a letter or digit`;
  }
  return undefined;
}

function imageProblem(image: string): string | undefined {
  const name = IMAGE_REFERENCE.exec(image)?.groups?.['name'];
  if (name === undefined) {
    return `spec.image "${image}" is not an image reference of the form [registry[:port]/]repository[:tag][@algorithm:digest], with a lowercase repository path`;
  }
  if (name.length > MAX_IMAGE_NAME_LENGTH) {
    return `spec.image: the repository name is ${name.length} characters long; at most ${MAX_IMAGE_NAME_LENGTH} are allowed`;
  }
  return undefined;
}

function contentConfigMapName(website: Website): string {
  return `${website.metadata.name}-content`;
}

/** The labels a Deployment selects on; the selector is immutable, so these never change. */
function selectorLabels(website: Website): Record<string, string> {
  return {
    'app.kubernetes.io/name': 'website',
    'app.kubernetes.io/instance': website.metadata.name,
  };
}

function labels(website: Website): Record<string, string> {
  return { ...selectorLabels(website), [MANAGED_BY_LABEL]: MANAGED_BY };
}

function childMetadata(website: Website, name: string) {
  const owner: V1OwnerReference = {
    apiVersion: WEBSITE_API_VERSION,
    kind: WEBSITE_KIND,
    name: website.metadata.name,
    uid: website.metadata.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
  return {
    name,
    namespace: website.metadata.namespace,
    labels: labels(website),
    ownerReferences: [owner],
  };
}

function desiredConfigMap(website: Website): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: childMetadata(website, contentConfigMapName(website)),
    data: { 'index.html': website.spec.html },
  };
}

function desiredDeployment(website: Website): V1Deployment {
  // Kubelet would refresh the mounted file in place, eventually and unobserved;
  // a changed template annotation instead rolls the pods, behind readiness probes,
  // and the rollout shows in the Website's Progressing condition.
  const contentHash = createHash('sha256').update(website.spec.html).digest('hex');
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: childMetadata(website, website.metadata.name),
    spec: {
      replicas: website.spec.replicas,
      selector: { matchLabels: selectorLabels(website) },
      template: {
        metadata: { labels: labels(website), annotations: { [CONTENT_HASH_ANNOTATION]: contentHash } },
        spec: {
          // nginx never calls the Kubernetes API.
          automountServiceAccountToken: false,
          securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [
            {
              name: 'nginx',
              image: website.spec.image,
              ports: [{ name: 'http', containerPort: CONTAINER_PORT }],
              readinessProbe: { httpGet: { path: '/', port: 'http' } },
              livenessProbe: { httpGet: { path: '/', port: 'http' } },
              // No memory limit: nginx starts one worker per node CPU, so its
              // footprint depends on the node, not on the Website.
              resources: { requests: { cpu: '10m', memory: '32Mi' } },
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ['ALL'] },
              },
              volumeMounts: [
                { name: 'content', mountPath: HTML_ROOT, readOnly: true },
                // The unprivileged image keeps its pid file and temp paths in /tmp.
                { name: 'tmp', mountPath: '/tmp' },
              ],
            },
          ],
          volumes: [
            { name: 'content', configMap: { name: contentConfigMapName(website) } },
            { name: 'tmp', emptyDir: {} },
          ],
        },
      },
    },
  };
}

function desiredService(website: Website): V1Service {
  const { serviceType, nodePort } = website.spec;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: childMetadata(website, website.metadata.name),
    spec: {
      type: serviceType,
      selector: selectorLabels(website),
      ports: [
        {
          name: 'http',
          port: SERVICE_PORT,
          targetPort: 'http',
          ...(nodePort === undefined ? {} : { nodePort }),
        },
      ],
    },
  };
}
