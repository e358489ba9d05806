/**
 * Reads an image archive back the way containerd's importer does (tar →
 * index.json → manifest → config and layer), and checks that its pieces agree:
 * shared by the tests of every image. The three real archives are built once
 * per test run (the operator's bundle alone takes seconds) into a temporary
 * directory that is removed when the run ends.
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { extract, type Header } from 'tar-stream';
import { buildImages, type ImageArchive } from '../../../hack/images/build.ts';
import { IMAGE_NAME_ANNOTATION, MEDIA_TYPES, PLATFORM, REF_NAME_ANNOTATION, type ContainerConfig } from '../../../hack/images/oci.ts';

export interface TarEntry {
  header: Header;
  content: Buffer;
}

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: unknown;
  annotations?: Record<string, string>;
}

export interface ReadImage {
  /** The archive's own entries, by tar name. */
  entries: Map<string, TarEntry>;
  index: { schemaVersion: number; mediaType: string; manifests: Descriptor[] };
  manifest: { schemaVersion: number; mediaType: string; config: Descriptor; layers: Descriptor[] };
  imageConfig: { architecture: string; os: string; config: ContainerConfig; rootfs: { type: string; diff_ids: string[] } };
  /** The layer's entries by absolute path, without a trailing '/'. */
  layer: Map<string, TarEntry>;
  /** The layer's tar names in the order they stand in it. */
  layerOrder: string[];
}

let built: Promise<ImageArchive[]> | undefined;

/** The archives of hack/images/build.ts, built once per run. */
export function builtImages(): Promise<ImageArchive[]> {
  if (built === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'ha-operator-images-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    built = buildImages(dir);
  }
  return built;
}

/** One of them, read. */
export async function builtImage(name: string): Promise<ReadImage> {
  const archive = (await builtImages()).find((image) => image.name === name);
  if (archive === undefined) throw new Error(`buildImages() built no image named ${name}`);
  return readImageArchive(archive.archivePath);
}

export async function readImageArchive(path: string): Promise<ReadImage> {
  const entries = await readTar(await readFile(path));
  const index = parse(entries, 'index.json') as ReadImage['index'];
  const manifest = parse(entries, blobName(index.manifests[0]!.digest)) as ReadImage['manifest'];
  const imageConfig = parse(entries, blobName(manifest.config.digest)) as ReadImage['imageConfig'];
  const layerTar = await readTar(entry(entries, blobName(manifest.layers[0]!.digest)).content);
  const layer = new Map([...layerTar].map(([name, value]) => [`/${name.replace(/\/$/, '')}`, value]));
  return { entries, index, manifest, imageConfig, layer, layerOrder: [...layerTar.keys()] };
}

/** The checks every archive must pass for containerd to import it as `name`, and to import the same bytes each time. */
export function expectConsistentLayout(image: ReadImage, name: string): void {
  const { entries, index, manifest, imageConfig } = image;
  expect(JSON.parse(entry(entries, 'oci-layout').content.toString())).to.deep.equal({ imageLayoutVersion: '1.0.0' });

  for (const [tarName, { content }] of entries) {
    if (!tarName.startsWith('blobs/sha256/') || tarName.endsWith('/')) continue;
    expect(`sha256:${sha256(content)}`, `${tarName} is named after its sha256`).to.equal(`sha256:${tarName.slice('blobs/sha256/'.length)}`);
  }

  expect(index.schemaVersion).to.equal(2);
  expect(index.mediaType).to.equal(MEDIA_TYPES.index);
  expect(index.manifests).to.have.length(1);
  const manifestDescriptor = index.manifests[0]!;
  expect(manifestDescriptor.mediaType).to.equal(MEDIA_TYPES.manifest);
  expect(manifestDescriptor.platform).to.deep.equal(PLATFORM);
  expect(manifestDescriptor.annotations).to.deep.equal({ [IMAGE_NAME_ANNOTATION]: name, [REF_NAME_ANNOTATION]: name.slice(name.lastIndexOf(':') + 1) });

  expect(manifest.schemaVersion).to.equal(2);
  expect(manifest.mediaType).to.equal(MEDIA_TYPES.manifest);
  expect(manifest.config.mediaType).to.equal(MEDIA_TYPES.config);
  expect(manifest.layers.map((layer) => layer.mediaType)).to.deep.equal([MEDIA_TYPES.layer]);
  const referenced = [manifestDescriptor, manifest.config, manifest.layers[0]!];
  for (const { digest, size } of referenced) expect(entry(entries, blobName(digest)).content.length, `size of ${digest}`).to.equal(size);
  const blobs = [...entries.keys()].filter((tarName) => tarName.startsWith('blobs/sha256/') && !tarName.endsWith('/'));
  expect(blobs.sort(), 'no blob that nothing references').to.deep.equal(referenced.map(({ digest }) => blobName(digest)).sort());

  expect(imageConfig.architecture).to.equal(PLATFORM.architecture);
  expect(imageConfig.os).to.equal(PLATFORM.os);
  // The layer is not compressed, so its diff_id is its digest.
  expect(imageConfig.rootfs).to.deep.equal({ type: 'layers', diff_ids: [manifest.layers[0]!.digest] });

  expectReproducibleLayer(image);
}

function expectReproducibleLayer({ layer, layerOrder }: ReadImage): void {
  expect(layerOrder, 'entries in path order').to.deep.equal([...layerOrder].sort());
  for (const [path, { header }] of layer) {
    expect({ path, uid: header.uid, gid: header.gid, mtime: header.mtime.getTime() }).to.deep.equal({ path, uid: 0, gid: 0, mtime: 0 });
    const parent = path.slice(0, path.lastIndexOf('/'));
    if (parent !== '') expect(layer.get(parent)?.header.type, `the parent of ${path}`).to.equal('directory');
  }
}

export function sha256(content: Buffer): string {
  return createHash('sha256').update(content).digest('hex');
}

function blobName(digest: string): string {
  return `blobs/sha256/${digest.slice('sha256:'.length)}`;
}

function entry(entries: Map<string, TarEntry>, name: string): TarEntry {
  const found = entries.get(name);
  if (found === undefined) throw new Error(`the archive has no ${name}`);
  return found;
}

function parse(entries: Map<string, TarEntry>, name: string): unknown {
  return JSON.parse(entry(entries, name).content.toString());
}

async function readTar(tar: Buffer): Promise<Map<string, TarEntry>> {
  const reader = extract();
  const entries = new Map<string, TarEntry>();
  const read = (async () => {
    for await (const source of reader) {
      const chunks: Buffer[] = [];
      for await (const chunk of source) chunks.push(chunk as Buffer);
      entries.set(source.header.name, { header: source.header, content: Buffer.concat(chunks) });
    }
  })();
  reader.end(tar);
  await read;
  return entries;
}
