/**
 * The Website's schema, written once: TypeBox builds it as JSON Schema, so
 * src/website/types.ts takes its types from it (`Static`) and hack/crds.ts
 * writes crds/websites.yaml from it (a test keeps the committed file equal to
 * what it generates). Kubernetes' own keywords (x-kubernetes-validations,
 * list types, int32/int64 formats, defaults) pass through as options.
 *
 * Why TypeBox rather than zod's JSON Schema output: a TypeBox schema *is* the
 * JSON Schema object, keyword for keyword, so what the CRD says is what is
 * written here; zod's output is a conversion with its own dialect
 * ($schema, additionalProperties: false, anyOf for enums) that a structural
 * schema would have to undo.
 */
import Type from 'typebox';
import { conditionSchema, customResourceSchema, stringEnum } from '../runtime/schema.ts';

export const SERVICE_TYPES = ['ClusterIP', 'NodePort'] as const;

/**
 * The spec fields with a default. They are optional to whoever writes a
 * Website (and to editors and linters that read the schema), and never absent
 * from what the API server returns: it applies defaults on every read.
 */
export const DEFAULTED_SPEC_FIELDS = ['replicas', 'image', 'html', 'serviceType'] as const;

export const WebsiteSpecSchema = Type.Object({
  replicas: Type.Optional(Type.Integer({
    description: 'How many nginx pods serve the page. 0 keeps the Website but serves nothing.',
    format: 'int32', minimum: 0, maximum: 10, default: 1,
  })),
  image: Type.Optional(Type.String({
    description: 'The container image. It must run as a non-root user, listen on 8080, serve /usr/share/nginx/html and write only to /tmp, as nginxinc/nginx-unprivileged does.',
    minLength: 1, maxLength: 512, pattern: '^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$', default: 'nginxinc/nginx-unprivileged:1.27-alpine',
  })),
  html: Type.Optional(Type.String({
    description: 'The page, served as index.html. At most 65536 characters.',
    maxLength: 65536,
    default: '<!doctype html>\n<html><head><meta charset="utf-8"><title>ha-operator</title></head>\n<body><h1>Hello from ha-operator</h1></body></html>\n',
  })),
  serviceType: Type.Optional(stringEnum(SERVICE_TYPES, {
    description: 'ClusterIP serves inside the cluster only; NodePort also on a port of every node.',
    default: 'ClusterIP',
  })),
  nodePort: Type.Optional(Type.Integer({
    description: 'The node port, for serviceType NodePort only; it must lie in the cluster\'s node port range (30000-32767 unless configured otherwise). Omitted, one is allocated.',
    format: 'int32', minimum: 1, maximum: 65535,
  })),
}, {
  description: 'What to serve and how many copies.',
  'x-kubernetes-validations': [{
    rule: '!has(self.nodePort) || self.serviceType == \'NodePort\'',
    message: 'nodePort may only be set when serviceType is NodePort',
    fieldPath: '.nodePort',
  }],
});

export const CONDITION_TYPES = ['Ready', 'Progressing', 'Degraded'] as const;

export const WebsiteStatusSchema = Type.Object({
  observedGeneration: Type.Optional(Type.Integer({ description: 'The metadata.generation this status describes.', format: 'int64', minimum: 0 })),
  readyReplicas: Type.Optional(Type.Integer({ description: 'Pods that pass their readiness probe.', format: 'int32', minimum: 0 })),
  url: Type.Optional(Type.String({ description: 'Where the page is served inside the cluster.' })),
  conditions: Type.Optional(Type.Array(conditionSchema(CONDITION_TYPES), {
    description: 'Ready, Progressing and Degraded.',
    'x-kubernetes-list-type': 'map',
    'x-kubernetes-list-map-keys': ['type'],
  })),
}, { description: 'Written by the operator.' });

/** The CRD's openAPIV3Schema: the Website as the API server validates it. */
export const WebsiteSchema = customResourceSchema(WebsiteSpecSchema, WebsiteStatusSchema, {
  description: 'A static web page served by nginx behind a Service.',
  'x-kubernetes-validations': [{
    // The name is also the Service's name, which must be a DNS-1035 label.
    rule: 'self.metadata.name.matches(\'^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$\')',
    message: 'metadata.name must be a DNS-1035 label (it names the Service): at most 63 lowercase letters, digits and \'-\', starting with a letter and ending with a letter or digit',
  }],
});
