/**
 * The web server image for the sample Websites' pods on the local cluster,
 * which cannot pull nginxinc/nginx-unprivileged. It keeps the contract the
 * Website's Deployment assumes of that image (src/website/schema.ts, image;
 * src/website/desired.ts): it serves /usr/share/nginx/html on port 8080 as a
 * non-root user (65532), needs no command or args, and writes nothing (the
 * root filesystem is read-only; /tmp is there for anything that would).
 *
 * The server is Debian's busybox-static (`make nodes` installs it): busybox
 * httpd, with the applets linked so that tests can `kubectl exec` sh, wget,
 * cat in the pod. httpd installs no SIGTERM handler, and a PID 1 without one
 * ignores the signal, so the kubelet's stop would wait out the grace period
 * for SIGKILL: a shell that traps SIGTERM and SIGINT is PID 1 instead, and its
 * exit ends httpd with the rest of the PID namespace.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { nonrootBaseFiles, NONROOT_UID } from './base-files.ts';
import { file, symlink } from './layer.ts';
import type { Image } from './oci.ts';
import { sharedLibraries } from './shared-libraries.ts';

const run = promisify(execFile);

export const WEB_IMAGE = 'ha-operator.local/web:1';
export const WEB_PORT = 8080;
export const WEB_ROOT = '/usr/share/nginx/html';
/** Where busybox-static installs the binary, and where the image keeps it. */
export const BUSYBOX = '/bin/busybox';

const SERVE = `trap 'exit 0' TERM INT; httpd -f -p ${WEB_PORT} -h ${WEB_ROOT} & wait $!`;

/** The page served where no ConfigMap is mounted over the web root (the image run alone). */
const DEFAULT_PAGE = '<!doctype html>\n<title>ha-operator.local/web</title>\n<p>busybox httpd serves this page from /usr/share/nginx/html.</p>\n';

export async function webImage(): Promise<Image> {
  const [busybox, applets] = await Promise.all([readStaticBusybox(), appletPaths()]);
  return {
    name: WEB_IMAGE,
    config: {
      Entrypoint: ['/bin/sh', '-c', SERVE],
      User: `${NONROOT_UID}:${NONROOT_UID}`,
      Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'],
      WorkingDir: '/',
      ExposedPorts: { [`${WEB_PORT}/tcp`]: {} },
    },
    files: [
      file(BUSYBOX, busybox, 0o755),
      ...applets.filter((path) => path !== BUSYBOX).map((path) => symlink(path, BUSYBOX)),
      ...nonrootBaseFiles('/bin/sh'),
      file(`${WEB_ROOT}/index.html`, DEFAULT_PAGE),
    ],
  };
}

async function readStaticBusybox(): Promise<Buffer> {
  let libraries: string[];
  try {
    libraries = await sharedLibraries(BUSYBOX);
  } catch (error) {
    throw new Error(`${BUSYBOX} is missing or broken: install Debian's busybox-static (make nodes): ${(error as Error).message}`, { cause: error });
  }
  if (libraries.length > 0) {
    throw new Error(`${BUSYBOX} is dynamically linked (${libraries.join(', ')}): install Debian's busybox-static, not busybox`);
  }
  return readFile(BUSYBOX);
}

/** Every applet as an absolute path (/bin/sh, /usr/bin/wget, ...), as `busybox --list-full` places them. */
async function appletPaths(): Promise<string[]> {
  const { stdout } = await run(BUSYBOX, ['--list-full']).catch((error: unknown) => {
    throw new Error(`${BUSYBOX} --list-full failed: ${(error as Error).message}`, { cause: error });
  });
  return stdout.split('\n').filter((line) => line !== '').map((line) => `/${line}`);
}
