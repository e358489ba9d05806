import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalCluster, type LocalClusterOptions } from '../../../hack/cluster/cluster.ts';
import { buildImages, PAUSE_IMAGE, type ImageArchive } from '../../../hack/images/build.ts';

let images: Promise<ImageArchive[]> | undefined;

/** The project's images (pause, web, operator), built once per run into a directory removed at exit. */
export function testImages(): Promise<ImageArchive[]> {
  images ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ha-operator-images-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    return buildImages(dir);
  })();
  return images;
}

/** A cluster of real nodes with the project's images loaded; each suite starts its own and stops it in `after`. */
export async function startLocalCluster(options: Omit<LocalClusterOptions, 'images'> = {}): Promise<LocalCluster> {
  const archives = (await testImages()).map((image) => image.archivePath);
  return LocalCluster.start({ ...options, images: { archives, sandboxImage: PAUSE_IMAGE } });
}
