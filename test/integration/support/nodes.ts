import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
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

/**
 * The host pid of the operator's process in `pod` (found by the pod's UID in
 * its cgroup path and the bundle in its command line), or undefined.
 */
export function operatorProcess(cluster: LocalCluster, pod: { metadata?: { uid?: string }; spec?: { nodeName?: string } }): number | undefined {
  const node = cluster.nodes.find((n) => n.name === pod.spec?.nodeName);
  const uid = pod.metadata?.uid;
  if (!node || !uid) return undefined;
  const found = node.cgroups.pids().filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes(uid) && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('dist/main.mjs');
    } catch {
      return false;
    }
  });
  return found.length === 1 ? found[0] : undefined;
}
