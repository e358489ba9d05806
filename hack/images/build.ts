/**
 * Builds the local cluster's images on this machine, with no registry and no
 * docker: each one an OCI archive for `ctr -n k8s.io images import` (one
 * archive per call: ctr imports only the first).
 *
 *   node hack/images/build.ts OUTDIR      prints "NAME ARCHIVE" a line
 *
 * or buildImages(outDir) from a test harness. The pods that run them need
 * imagePullPolicy IfNotPresent (the tags are not latest) or Never.
 */
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { writeImageArchive, type Image, type ImageArchive } from './oci.ts';
import { operatorImage } from './operator.ts';
import { pauseImage } from './pause.ts';
import { webImage } from './web.ts';

export { OPERATOR_IMAGE } from './operator.ts';
export { PAUSE_IMAGE } from './pause.ts';
export { WEB_IMAGE } from './web.ts';
export type { ImageArchive } from './oci.ts';

const IMAGES: Record<string, () => Promise<Image>> = { pause: pauseImage, web: webImage, operator: operatorImage };

/** Writes OUTDIR/pause.tar, web.tar and operator.tar (replacing them). */
export async function buildImages(outDir: string): Promise<ImageArchive[]> {
  await mkdir(outDir, { recursive: true });
  return Promise.all(Object.entries(IMAGES).map(async ([file, image]) => writeImageArchive(await image(), join(outDir, `${file}.tar`))));
}

async function main(outDir: string | undefined): Promise<void> {
  if (outDir === undefined) {
    console.error('usage: node hack/images/build.ts OUTDIR');
    process.exit(2);
  }
  for (const { name, archivePath } of await buildImages(resolve(outDir))) console.log(`${name} ${archivePath}`);
}

// Not a top-level await: test harnesses import this module, and mocha loads test files with require(), which refuses one.
if (import.meta.main) void main(process.argv[2]);
