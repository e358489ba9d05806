import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { expect } from 'chai';
import { loadYaml, type V1CustomResourceDefinition, type V1JSONSchemaProps } from '@kubernetes/client-node';
import { CONTENT_HASH_ANNOTATION, desiredChildren, websiteUrl, type DesiredChildren } from '../../src/website/desired.ts';
import {
  WEBSITE_GROUP,
  WEBSITE_KIND,
  WEBSITE_PLURAL,
  WEBSITE_VERSION,
  type Website,
  type WebsiteSpec,
} from '../../src/website/types.ts';

const repoRoot = new URL('../../', import.meta.url);

function website(spec: Partial<WebsiteSpec> = {}, name = 'hello'): Website {
  return {
    apiVersion: 'ha-operator.example.com/v1alpha1',
    kind: 'Website',
    metadata: { name, namespace: 'web', uid: '6f1c1e8e-2c1a-4c55-9d4e-0b7d5a0e9c11', generation: 1 },
    spec: { replicas: 2, image: 'nginxinc/nginx-unprivileged:1.27-alpine', html: '<h1>hi</h1>', serviceType: 'ClusterIP', ...spec },
  };
}

function children(site: Website): DesiredChildren {
  const result = desiredChildren(site);
  if ('reason' in result) throw new Error(`unexpected InvalidSpec: ${result.message}`);
  return result;
}

function invalidMessage(site: Website): string {
  const result = desiredChildren(site);
  if (!('reason' in result)) throw new Error('expected InvalidSpec');
  expect(result.reason).to.equal('InvalidSpec');
  return result.message;
}

function contentHash(site: Website): string | undefined {
  return children(site).deployment.spec?.template.metadata?.annotations?.[CONTENT_HASH_ANNOTATION];
}

function loadCrd(): V1CustomResourceDefinition {
  return loadYaml<V1CustomResourceDefinition>(readFileSync(new URL('crds/websites.yaml', repoRoot), 'utf8'));
}

function specSchema(): V1JSONSchemaProps {
  const spec = loadCrd().spec.versions[0]?.schema?.openAPIV3Schema?.properties?.['spec'];
  if (spec?.properties === undefined) throw new Error('crds/websites.yaml has no spec schema');
  return spec;
}

/** The spec as the API server would store it: the CRD's defaults under what the manifest sets. */
function defaulted(spec: Partial<WebsiteSpec>): WebsiteSpec {
  // client-node's model spells the schema's `default` as `_default`.
  const defaults = Object.fromEntries(
    Object.entries(specSchema().properties ?? {}).flatMap(([field, schema]) =>
      schema._default === undefined ? [] : [[field, schema._default]],
    ),
  ) as unknown as WebsiteSpec;
  return { ...defaults, ...spec };
}

describe('desiredChildren', () => {
  it('names the children after the Website, in its namespace', () => {
    const { configMap, deployment, service } = children(website());
    expect(configMap.metadata).to.include({ name: 'hello-content', namespace: 'web' });
    expect(deployment.metadata).to.include({ name: 'hello', namespace: 'web' });
    expect(service.metadata).to.include({ name: 'hello', namespace: 'web' });
  });

  it('writes complete apply bodies with apiVersion and kind', () => {
    const { configMap, deployment, service } = children(website());
    expect([configMap, deployment, service].map((child) => [child.apiVersion, child.kind])).to.deep.equal([
      ['v1', 'ConfigMap'],
      ['apps/v1', 'Deployment'],
      ['v1', 'Service'],
    ]);
  });

  it('labels every child and its pods with the recommended labels', () => {
    const { configMap, deployment, service } = children(website());
    const labels = {
      'app.kubernetes.io/name': 'website',
      'app.kubernetes.io/instance': 'hello',
      'app.kubernetes.io/managed-by': 'ha-operator',
    };
    for (const child of [configMap, deployment, service]) expect(child.metadata?.labels).to.deep.equal(labels);
    expect(deployment.spec?.template.metadata?.labels).to.deep.equal(labels);
  });

  it('selects the pods by name and instance, in the Deployment and the Service alike', () => {
    const { deployment, service } = children(website());
    const selector = { 'app.kubernetes.io/name': 'website', 'app.kubernetes.io/instance': 'hello' };
    expect(deployment.spec?.selector.matchLabels).to.deep.equal(selector);
    expect(service.spec?.selector).to.deep.equal(selector);
  });

  it('makes the Website the controlling owner of every child', () => {
    const { configMap, deployment, service } = children(website());
    for (const child of [configMap, deployment, service]) {
      expect(child.metadata?.ownerReferences).to.deep.equal([
        {
          apiVersion: 'ha-operator.example.com/v1alpha1',
          kind: 'Website',
          name: 'hello',
          uid: '6f1c1e8e-2c1a-4c55-9d4e-0b7d5a0e9c11',
          controller: true,
          blockOwnerDeletion: true,
        },
      ]);
    }
  });

  it('puts the html in the ConfigMap and mounts it at nginx’s html root', () => {
    const { configMap, deployment } = children(website({ html: '<p>page</p>' }));
    expect(configMap.data).to.deep.equal({ 'index.html': '<p>page</p>' });
    const pod = deployment.spec?.template.spec;
    expect(pod?.volumes).to.deep.include({ name: 'content', configMap: { name: 'hello-content' } });
    expect(pod?.containers[0]?.volumeMounts).to.deep.include({
      name: 'content',
      mountPath: '/usr/share/nginx/html',
      readOnly: true,
    });
  });

  it('carries the sha256 of the html in a pod-template annotation', () => {
    const expected = createHash('sha256').update('<p>page</p>').digest('hex');
    expect(contentHash(website({ html: '<p>page</p>' }))).to.equal(expected);
  });

  it('changes the content hash when the html changes', () => {
    expect(contentHash(website({ html: '<p>one</p>' }))).not.to.equal(contentHash(website({ html: '<p>two</p>' })));
  });

  it('keeps the content hash when anything but the html changes', () => {
    const changed = website({ replicas: 5, image: 'nginxinc/nginx-unprivileged:1.28-alpine', serviceType: 'NodePort' });
    changed.metadata.generation = 7;
    expect(contentHash(changed)).to.equal(contentHash(website()));
  });

  it('runs the given image and replica count', () => {
    const { deployment } = children(website({ replicas: 4, image: 'registry.example.com/web/nginx:1.27' }));
    expect(deployment.spec?.replicas).to.equal(4);
    expect(deployment.spec?.template.spec?.containers[0]?.image).to.equal('registry.example.com/web/nginx:1.27');
  });

  it('runs nginx non-root on a read-only root filesystem with no capabilities', () => {
    const pod = children(website()).deployment.spec?.template.spec;
    expect(pod?.securityContext).to.deep.equal({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod?.automountServiceAccountToken).to.equal(false);
    const container = pod?.containers[0];
    expect(container?.securityContext).to.deep.equal({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(container?.volumeMounts).to.deep.include({ name: 'tmp', mountPath: '/tmp' });
    expect(pod?.volumes).to.deep.include({ name: 'tmp', emptyDir: {} });
  });

  it('serves on 8080 and probes readiness and liveness there', () => {
    const container = children(website()).deployment.spec?.template.spec?.containers[0];
    expect(container?.ports).to.deep.equal([{ name: 'http', containerPort: 8080 }]);
    expect(container?.readinessProbe?.httpGet).to.deep.equal({ path: '/', port: 'http' });
    expect(container?.livenessProbe?.httpGet).to.deep.equal({ path: '/', port: 'http' });
  });

  it('exposes port 80 on a ClusterIP Service without a node port', () => {
    const service = children(website()).service;
    expect(service.spec?.type).to.equal('ClusterIP');
    expect(service.spec?.ports).to.deep.equal([{ name: 'http', port: 80, targetPort: 'http' }]);
  });

  it('sets the node port on a NodePort Service', () => {
    const service = children(website({ serviceType: 'NodePort', nodePort: 30080 })).service;
    expect(service.spec?.type).to.equal('NodePort');
    expect(service.spec?.ports?.[0]).to.include({ port: 80, nodePort: 30080 });
  });

  it('leaves the node port to the API server when none is given', () => {
    const service = children(website({ serviceType: 'NodePort' })).service;
    expect(service.spec?.ports?.[0]).not.to.have.property('nodePort');
  });

  it('returns deep-equal children for the same Website, without changing it', () => {
    const site = website({ serviceType: 'NodePort', nodePort: 30080 });
    const before = structuredClone(site);
    expect(desiredChildren(site)).to.deep.equal(desiredChildren(structuredClone(site)));
    expect(site).to.deep.equal(before);
  });

  it('accepts the CRD’s defaults', () => {
    const spec = defaulted({});
    expect(spec).to.include({ replicas: 1, image: 'nginxinc/nginx-unprivileged:1.27-alpine', serviceType: 'ClusterIP' });
    expect(spec.html).to.match(/^<!doctype html>/);
    expect(children(website(spec)).configMap.data?.['index.html']).to.equal(spec.html);
  });

  it('accepts every sample', () => {
    const files = readdirSync(new URL('samples/', repoRoot)).filter((file) => file.endsWith('.yaml'));
    expect(files).to.have.length.within(3, 4);
    for (const file of files) {
      const sample = loadYaml<Website>(readFileSync(new URL(`samples/${file}`, repoRoot), 'utf8'));
      expect(desiredChildren(website(defaulted(sample.spec), sample.metadata.name)), file).not.to.have.property('reason');
    }
  });
});

describe('desiredChildren InvalidSpec', () => {
  it('rejects a name that starts with a digit', () => {
    expect(invalidMessage(website({}, '1st-site'))).to.match(/^metadata\.name "1st-site" is not a DNS-1035 label/);
  });

  it('rejects a name with a dot', () => {
    expect(invalidMessage(website({}, 'www.example'))).to.match(/^metadata\.name "www\.example" is not a DNS-1035 label/);
  });

  it('rejects a name longer than 63 characters', () => {
    expect(invalidMessage(website({}, 'a'.repeat(64)))).to.match(/^metadata\.name is 64 characters long; at most 63/);
  });

  it('accepts a name of exactly 63 characters', () => {
    expect(desiredChildren(website({}, 'a'.repeat(63)))).not.to.have.property('reason');
  });

  for (const image of [
    'Nginx:1.27',
    'nginx:',
    'nginx:1.27:alpine',
    'library//nginx',
    'nginx@sha256:abc123',
    '-nginx',
    'nginx:-tag',
  ]) {
    it(`rejects the malformed image ${image}`, () => {
      expect(invalidMessage(website({ image }))).to.equal(
        `spec.image "${image}" is not an image reference of the form [registry[:port]/]repository[:tag][@algorithm:digest], with a lowercase repository path`,
      );
    });
  }

  it('rejects a repository name longer than 255 characters', () => {
    const image = `registry.example.com/${'a'.repeat(240)}:1.0`;
    expect(invalidMessage(website({ image }))).to.equal(
      'spec.image: the repository name is 261 characters long; at most 255 are allowed',
    );
  });

  for (const image of [
    'nginx',
    'localhost:5000/web/nginx:1.27',
    'Registry.Example.com/team_a/nginx__x-y:v1.0_rc',
    `nginxinc/nginx-unprivileged:1.27-alpine@sha256:${'0a'.repeat(32)}`,
  ]) {
    it(`accepts the image ${image}`, () => {
      expect(desiredChildren(website({ image }))).not.to.have.property('reason');
    });
  }

  it('reports every problem at once', () => {
    const message = invalidMessage(website({ image: 'nginx:' }, '1st'));
    expect(message).to.match(/^metadata\.name "1st" .*; spec\.image "nginx:" /);
  });
});

describe('crds/websites.yaml', () => {
  it('declares the resource that types.ts names', () => {
    const { spec } = loadCrd();
    expect([spec.group, spec.names.kind, spec.names.plural, spec.versions.map((v) => v.name)]).to.deep.equal([
      WEBSITE_GROUP,
      WEBSITE_KIND,
      WEBSITE_PLURAL,
      [WEBSITE_VERSION],
    ]);
  });
});

describe('websiteUrl', () => {
  it('is the Service’s in-cluster address and port', () => {
    expect(websiteUrl(website())).to.equal('http://hello.web.svc.cluster.local:80');
  });
});
