import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';

/**
 * Namespaces pinned as files (a bind mount of /proc/<pid>/ns/<type>), so that
 * they outlive the process that made them and are entered by path with
 * `nsenter --net=FILE` — never `ip netns exec`, which remounts /sys and hides
 * the cgroup hierarchies from what it runs.
 */

/**
 * A new network namespace pinned at `path`: loopback up with 127.0.0.1 and the
 * node IPs on it (no dummy interfaces on these kernels), forwarding on for the
 * pod bridges, and no route anywhere else — every packet stays inside.
 */
export function createNetworkNamespace(path: string, nodeIps: string[]): void {
  writeFileSync(path, '');
  const setup = [
    'ip link set lo up',
    ...nodeIps.map((ip) => `ip addr add ${ip}/32 dev lo`),
    // Per namespace: the host's setting is not touched.
    'echo 1 > /proc/sys/net/ipv4/ip_forward',
  ].join(' && ');
  execFileSync('unshare', [`--net=${path}`, '--', 'sh', '-c', setup], { stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * A new mount namespace pinned at `path` with private propagation and a tmpfs
 * over each of `tmpfsDirs`: the kubelet and containerd hard-code paths there
 * (the device-plugin socket, /var/lib/kubelet/pki, /var/log/containers, the
 * CNI result cache, /run/containerd/s for shim sockets), and two nodes on one
 * host would share them. Only the empty mountpoint directories touch the host.
 */
export function createMountNamespace(path: string, tmpfsDirs: string[]): void {
  writeFileSync(path, '');
  const setup = tmpfsDirs.map((dir) => `mount -t tmpfs -o mode=0755 tmpfs '${dir}'`).join(' && ');
  execFileSync('unshare', [`--mount=${path}`, '--propagation', 'private', '--', 'sh', '-c', setup], { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Unpins a namespace; the kernel frees it (and every mount in it) once no process is inside. */
export function removeNamespace(path: string): void {
  try {
    execFileSync('umount', [path], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    // Not pinned (a start that failed early).
    if (!/not mounted|no mount point|not found/i.test(String((error as { stderr?: Buffer }).stderr))) throw error;
  }
  rmSync(path, { force: true });
}

/** The `net:[inode]` link that every process inside a pinned namespace has. */
export function namespaceLink(type: 'net' | 'mnt', path: string): string {
  return `${type}:[${statSync(path).ino}]`;
}

/** Processes inside a namespace (by its pinned file) or whose command line names `marker`. */
export function processesWithin(namespaces: { type: 'net' | 'mnt'; path: string }[], marker: string): number[] {
  const links = new Set(namespaces.flatMap(({ type, path }) => {
    try {
      return [namespaceLink(type, path)];
    } catch {
      return [];
    }
  }));
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      const inside = [`/proc/${pid}/ns/net`, `/proc/${pid}/ns/mnt`].some((link) => links.has(readlinkSync(link)));
      if (inside || readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker)) found.push(pid);
    } catch {
      // Exited while we looked.
    }
  }
  return found;
}

const run = promisify(execFile);

/**
 * Whether a GET of `url` answers 200 within a second, asked from inside the
 * network namespace by a one-line Node client started there (this process
 * cannot enter it). For health endpoints on self-signed certificates.
 */
export async function reachableInside(netnsPath: string, url: string): Promise<boolean> {
  const probe = `fetch(${JSON.stringify(url)}, { signal: AbortSignal.timeout(1000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))`;
  try {
    await run('nsenter', [`--net=${netnsPath}`, '--', process.execPath, '-e', probe], { env: { ...process.env, NODE_TLS_REJECT_UNAUTHORIZED: '0' } });
    return true;
  } catch {
    return false;
  }
}
