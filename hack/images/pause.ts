/**
 * The pod sandbox image of the local cluster's nodes, which cannot pull
 * registry.k8s.io/pause: pause/main.go, built static by pause/build.sh (cached
 * under a hash of its source), alone in the layer, run as 65535 like the
 * upstream image.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runBuildScript } from '../lib/build-script.ts';
import { file } from './layer.ts';
import type { Image } from './oci.ts';

export const PAUSE_IMAGE = 'ha-operator.local/pause:1';
const BUILD_SCRIPT = join(import.meta.dirname, 'pause', 'build.sh');

export async function pauseImage(): Promise<Image> {
  return {
    name: PAUSE_IMAGE,
    config: { Entrypoint: ['/pause'], User: '65535:65535', Env: [] },
    files: [file('/pause', await readFile(join(await buildPause(), 'pause')), 0o755)],
  };
}

/** The directory that holds the binary. */
function buildPause(): Promise<string> {
  return runBuildScript(BUILD_SCRIPT, 'the pause program');
}
