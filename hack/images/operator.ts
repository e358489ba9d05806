/**
 * The operator's image, made here the way the Dockerfile's runtime stage makes
 * it, from what the project has instead of a pulled base: the Node binary the
 * project installs (node_modules/node, at the path distroless keeps it), the
 * shared libraries and loader it links against from this machine, and dist/
 * as hack/build.ts bundles it — built afresh every time, so the image never
 * runs a stale bundle. The Dockerfile stays what users build with;
 * test/hack/images/operator.test.ts keeps the two equal.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { buildOperator, OPERATOR_BUNDLE, OPERATOR_NODE_FLAGS } from '../build.ts';
import packageJson from '../../package.json' with { type: 'json' };
import { nonrootBaseFiles, NONROOT_UID } from './base-files.ts';
import { file, type LayerEntry } from './layer.ts';
import type { Image } from './oci.ts';
import { sharedLibraryFiles } from './shared-libraries.ts';

const root = join(import.meta.dirname, '..', '..');

/**
 * What manifests/base names (`ha-operator`, tagged with the package version by
 * its kustomization), as containerd spells a short name: so `kubectl apply -k
 * manifests/` runs this image unchanged (test/integration/nodes/manifests.test.ts checks).
 */
export const OPERATOR_IMAGE = `docker.io/library/ha-operator:${packageJson.version}`;

/**
 * What the Dockerfile's runtime stage takes from its base image. distroless
 * also sets SSL_CERT_FILE to its CA bundle; this image has no bundle and
 * leaves the variable out: Node reads it only with --use-openssl-ca (it
 * trusts its own built-in roots otherwise), and the operator trusts only the
 * cluster's CA, from its ServiceAccount.
 */
export const DISTROLESS_BASE = {
  image: 'gcr.io/distroless/nodejs24-debian12:nonroot',
  entrypoint: ['/nodejs/bin/node'],
  env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
} as const;

/** Where the Dockerfile puts the bundle: WORKDIR /app, COPY ... ./dist. */
export const APP_DIR = '/app';
const NODE_BINARY = join(root, 'node_modules', 'node', 'bin', 'node');
const DIST = join(root, 'dist');

export async function operatorImage(): Promise<Image> {
  await buildOperator();
  const [node, libraries, dist] = await Promise.all([readNode(), sharedLibraryFiles(NODE_BINARY), distFiles()]);
  return {
    name: OPERATOR_IMAGE,
    config: {
      Entrypoint: [...DISTROLESS_BASE.entrypoint],
      Cmd: [...OPERATOR_NODE_FLAGS, relative(root, OPERATOR_BUNDLE)],
      User: `${NONROOT_UID}:${NONROOT_UID}`,
      Env: [...DISTROLESS_BASE.env, 'NODE_ENV=production'],
      WorkingDir: APP_DIR,
      ExposedPorts: { '8080/tcp': {} },
    },
    files: [
      file(DISTROLESS_BASE.entrypoint[0], node, 0o755),
      ...libraries,
      ...nonrootBaseFiles('/sbin/nologin'),
      ...dist,
    ],
  };
}

async function readNode(): Promise<Buffer> {
  return readFile(NODE_BINARY).catch((error: unknown) => {
    throw new Error(`reading ${NODE_BINARY} failed (npm ci installs it, the "node" dev dependency): ${(error as Error).message}`, { cause: error });
  });
}

/** Every file of dist/ at /app/dist/. */
async function distFiles(): Promise<LayerEntry[]> {
  const names = await readdir(DIST, { recursive: true });
  const files: LayerEntry[] = [];
  for (const name of names) {
    const path = join(DIST, name);
    if ((await stat(path)).isFile()) files.push(file(join(APP_DIR, 'dist', name), await readFile(path)));
  }
  return files;
}
