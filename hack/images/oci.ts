/**
 * Writes an image as an OCI image layout in one tar file, the archive that
 * `ctr -n k8s.io images import` loads: oci-layout, index.json and the blobs
 * (one layer, the config, the manifest) under blobs/sha256/ by their digests.
 * The index names the image twice: io.containerd.image.name (name:tag) is the
 * name ctr imports it under; org.opencontainers.image.ref.name (the tag) is
 * the OCI layout's own, what other tools read.
 * Nothing in it carries a time, so the same image gives the same digests.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { pack } from 'tar-stream';
import { layerTar, type LayerEntry } from './layer.ts';

export const MEDIA_TYPES = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar',
} as const;

export const IMAGE_NAME_ANNOTATION = 'io.containerd.image.name';
export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';

/** The nodes are amd64 Linux, like this machine. */
export const PLATFORM = { architecture: 'amd64', os: 'linux' } as const;

/** The `config` object of an OCI image config: what the runtime starts, as whom, where. */
export interface ContainerConfig {
  Entrypoint: string[];
  Cmd?: string[];
  User: string;
  Env: string[];
  WorkingDir?: string;
  ExposedPorts?: Record<string, Record<string, never>>;
}

export interface Image {
  /** The full reference, registry/repository:tag; a tag other than latest, so IfNotPresent never pulls. */
  name: string;
  config: ContainerConfig;
  files: LayerEntry[];
}

export interface ImageArchive {
  name: string;
  archivePath: string;
  /** The manifest's digest: what containerd lists for the imported name. */
  manifestDigest: string;
}

interface Blob {
  digest: string;
  content: Buffer;
}

/** Writes `image` to archivePath (through a .partial file, so a cut-off build never looks finished). */
export async function writeImageArchive(image: Image, archivePath: string): Promise<ImageArchive> {
  const tag = tagOf(image.name);
  const layer = blob(await layerTar(image.files));
  const config = blob(json({
    ...PLATFORM,
    config: image.config,
    rootfs: { type: 'layers', diff_ids: [layer.digest] },
  }));
  const manifest = blob(json({
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.manifest,
    config: descriptor(MEDIA_TYPES.config, config),
    layers: [descriptor(MEDIA_TYPES.layer, layer)],
  }));
  const index = json({
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.index,
    manifests: [{
      ...descriptor(MEDIA_TYPES.manifest, manifest),
      platform: PLATFORM,
      annotations: { [IMAGE_NAME_ANNOTATION]: image.name, [REF_NAME_ANNOTATION]: tag },
    }],
  });

  const archive = pack();
  const header = { uid: 0, gid: 0, mtime: new Date(0) };
  archive.entry({ ...header, name: 'oci-layout', mode: 0o644 }, json({ imageLayoutVersion: '1.0.0' }));
  archive.entry({ ...header, name: 'index.json', mode: 0o644 }, index);
  archive.entry({ ...header, name: 'blobs/', type: 'directory', mode: 0o755 });
  archive.entry({ ...header, name: 'blobs/sha256/', type: 'directory', mode: 0o755 });
  for (const { digest, content } of [layer, config, manifest].sort((a, b) => (a.digest < b.digest ? -1 : 1))) {
    archive.entry({ ...header, name: `blobs/sha256/${digest.slice('sha256:'.length)}`, mode: 0o644 }, content);
  }
  archive.finalize();
  const partial = `${archivePath}.partial`;
  try {
    await pipeline(archive, createWriteStream(partial));
    await rename(partial, archivePath);
  } catch (error) {
    await rm(partial, { force: true });
    throw new Error(`writeImageArchive(${image.name}): writing ${archivePath} failed: ${(error as Error).message}`, { cause: error });
  }
  return { name: image.name, archivePath, manifestDigest: manifest.digest };
}

/** The tag of a reference (`ha-operator.local/pause:1` → `1`); a reference without one is refused. */
export function tagOf(name: string): string {
  const tag = /:([\w][\w.-]{0,127})$/.exec(name)?.[1];
  if (tag === undefined || tag === 'latest') {
    throw new Error(`image name "${name}" needs a tag other than latest (with latest, the kubelet's default pull policy is Always)`);
  }
  return tag;
}

function blob(content: Buffer): Blob {
  return { digest: `sha256:${createHash('sha256').update(content).digest('hex')}`, content };
}

function descriptor(mediaType: string, { digest, content }: Blob) {
  return { mediaType, digest, size: content.length };
}

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}
