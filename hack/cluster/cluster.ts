import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmdirSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { issueClient } from '../controlplane/certs.ts';
import { ControlPlane, buildBinaries } from '../controlplane/plane.ts';
import { isAlive, ManagedProcess } from '../controlplane/process.ts';
import { CgroupTree } from './cgroups.ts';
import { createNetworkNamespace, processesWithin, removeNamespace, reachableInside } from './namespaces.ts';
import { ClusterNode, NODE_PRIVATE_DIRS } from './node.ts';
import { runBuildScript } from '../lib/build-script.ts';
import { readKubeletSysctls, restoreSysctls, type SysctlValues } from './sysctls.ts';

const repoRoot = resolve(import.meta.dirname, '..', '..');

const SERVICE_CIDR = '10.0.0.0/16';
const POD_CIDR = '10.244.0.0/16';

export interface LocalClusterOptions {
  /** How many nodes (default 2). */
  nodes?: number;
  /** The images every node imports before its kubelet starts; the sandbox (pause) image among them. */
  images: { archives: string[]; sandboxImage: string };
  /** kube-apiserver's audit log (ControlPlaneOptions.audit). */
  audit?: boolean;
  /** Parent of the cluster's temporary directory. */
  parentDir?: string;
  /** Leave everything running after this process exits (`make cluster-up NODES=…`). */
  detached?: boolean;
}

/**
 * Everything a cluster put on the host, as data: enough to take it all away
 * again from this process (stop), its exit handler, or another process
 * (`make cluster-down` reads it from the state file).
 */
export interface ClusterFootprint {
  dir: string;
  netnsPath: string;
  mountNsPaths: string[];
  cgroupPaths: string[];
  sysctls: SysctlValues;
  /** Mountpoints for the nodes' private tmpfs that did not exist before the cluster. */
  createdDirs: string[];
}

export class ClusterError extends Error {
  override name = 'ClusterError';
}

/**
 * A control plane and real nodes (containerd, kubelet, CNI bridge, one
 * kube-proxy), all in one network namespace the cluster creates, with no route
 * out: pods run, probes, rollouts and Services are real, and nothing reaches
 * the host's network. The host reaches the apiserver through the plane's
 * socket bridge. Needs root. ../shared/NODE.md has what each setting is for.
 */
export class LocalCluster {
  readonly plane: ControlPlane;
  readonly nodes: ClusterNode[];
  readonly footprint: ClusterFootprint;
  private kubeProxy: ManagedProcess | undefined;
  private stopped = false;

  private constructor(plane: ControlPlane, nodes: ClusterNode[], footprint: ClusterFootprint) {
    this.plane = plane;
    this.nodes = nodes;
    this.footprint = footprint;
  }

  get kubeconfigPath(): string {
    return this.plane.kubeconfigPath;
  }

  static async start(options: LocalClusterOptions): Promise<LocalCluster> {
    requireHost();
    const nodeCount = options.nodes ?? 2;
    const [planeBinDir, nodeBinDir] = await Promise.all([process.env.CONTROLPLANE_BIN_DIR ?? buildBinaries(), buildNodeBinaries()]);
    const parent = options.parentDir ?? tmpdir();
    mkdirSync(parent, { recursive: true });
    const dir = mkdtempSync(join(parent, 'ha-operator-cluster-'));
    const clusterId = `hao-${randomBytes(3).toString('hex')}`;
    const footprint: ClusterFootprint = {
      dir,
      netnsPath: join(dir, 'net.ns'),
      mountNsPaths: [],
      cgroupPaths: [],
      sysctls: readKubeletSysctls(),
      createdDirs: [],
    };
    if (!options.detached) live.add(footprint);
    const nodeIps = Array.from({ length: nodeCount }, (_, i) => `10.250.0.${i + 1}`);
    let plane: ControlPlane | undefined;
    const nodes: ClusterNode[] = [];
    try {
      // Namespace files can be pinned only where mounts do not propagate: make the directory a private mount of its own.
      execFileSync('mount', ['--bind', dir, dir]);
      execFileSync('mount', ['--make-private', dir]);
      for (const mountPoint of NODE_PRIVATE_DIRS) {
        if (existsSync(mountPoint)) continue;
        footprint.createdDirs.push(mountPoint);
        mkdirSync(mountPoint, { recursive: true });
      }
      createNetworkNamespace(footprint.netnsPath, nodeIps);
      plane = await ControlPlane.start({
        binDir: planeBinDir,
        parentDir: dir,
        audit: options.audit ?? false,
        detached: options.detached ?? false,
        podNetwork: {
          netnsPath: footprint.netnsPath,
          advertiseAddress: nodeIps[0]!,
          serviceCidr: SERVICE_CIDR,
          podCidr: POD_CIDR,
          schedulerBinary: join(nodeBinDir, 'kube-scheduler'),
        },
      });
      for (let index = 1; index <= nodeCount; index++) {
        const node = new ClusterNode({
          index, clusterId, clusterDir: dir, binDir: nodeBinDir, plane, netnsPath: footprint.netnsPath,
          imageArchives: options.images.archives, sandboxImage: options.images.sandboxImage, detached: options.detached ?? false,
        });
        nodes.push(node);
        footprint.cgroupPaths.push(node.cgroups.path);
        footprint.mountNsPaths.push(node.mountNsPath);
      }
      const cluster = new LocalCluster(plane, nodes, footprint);
      await cluster.bringUp(nodeBinDir, options.detached ?? false);
      return cluster;
    } catch (error) {
      await new LocalCluster(plane!, nodes, footprint).stop().catch(() => undefined);
      throw error;
    }
  }

  /** Runs kubectl as the cluster's admin and returns stdout. */
  kubectl(args: string[], kubeconfig?: string): Promise<string> {
    return this.plane.kubectl(args, kubeconfig);
  }

  /** Process ids of everything started as a process of its own (node daemons, kube-proxy, the plane), in start order. */
  pids(): number[] {
    return [...this.plane.pids(), ...this.nodes.flatMap((n) => n.pids()), ...(this.kubeProxy?.pid ? [this.kubeProxy.pid] : [])];
  }

  /** Stops everything and takes away all the cluster put on the host. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.all(this.nodes.map((node) => node.stop()));
    await this.kubeProxy?.stop(2000);
    await this.plane?.stop();
    removeFootprint(this.footprint);
    live.delete(this.footprint);
  }

  private async bringUp(nodeBinDir: string, detached: boolean): Promise<void> {
    // The controllers pods need before any can run: the default ServiceAccount and the root CA ConfigMap.
    await Promise.all([
      this.kubectl(['wait', '--for=create', '-n', 'default', 'serviceaccount/default', '--timeout=60s']),
      this.kubectl(['wait', '--for=create', '-n', 'default', 'configmap/kube-root-ca.crt', '--timeout=60s']),
      ...this.nodes.map((node) => node.start()),
    ]);
    await this.waitNodesReady();
    await this.startKubeProxy(nodeBinDir, detached);
  }

  private async waitNodesReady(): Promise<void> {
    const nodes = this.nodes.map((n) => `node/${n.name}`);
    try {
      // A kubelet registers its Node a moment after it starts; `wait` on a missing object fails at once.
      // (One object per call: given several, --for=create fails on the first that is missing.)
      await Promise.all(nodes.map((node) => this.kubectl(['wait', '--for=create', node, '--timeout=60s'])));
      await this.kubectl(['wait', '--for=condition=Ready', ...nodes, '--timeout=60s']);
    } catch (error) {
      const logs = this.nodes.map((n) => `--- ${n.name}'s kubelet (${n.kubeletRunning ? 'running' : 'exited'}) ---\n${n.kubeletLogTail()}`).join('\n');
      throw new ClusterError(`the nodes did not become Ready: ${(error as Error).message}\n${logs}`, { cause: error });
    }
  }

  /**
   * One kube-proxy for the namespace (two would fight over the KUBE-* chains),
   * in iptables mode; the rules live in the namespace and go with it. No
   * conntrack sysctls (they are host-wide) and no localhost NodePorts
   * (route_localnet).
   */
  private async startKubeProxy(binDir: string, detached: boolean): Promise<void> {
    const dir = this.plane.dir;
    await issueClient(dir, 'kube-proxy', 'system:kube-proxy');
    const kubeconfig = await this.plane.writeKubeconfig(join(dir, 'kube-proxy.kubeconfig'),
      { clientCert: join(dir, 'kube-proxy.crt'), clientKey: join(dir, 'kube-proxy.key') }, this.plane.internalServer);
    const config = {
      apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
      kind: 'KubeProxyConfiguration',
      mode: 'iptables',
      clientConnection: { kubeconfig },
      hostnameOverride: this.nodes[0]!.name,
      clusterCIDR: POD_CIDR,
      healthzBindAddress: '127.0.0.1:10256',
      metricsBindAddress: '127.0.0.1:10249',
      nodePortAddresses: ['10.250.0.0/24'],
      conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
      iptables: { localhostNodePorts: false },
    };
    const configPath = join(dir, 'kube-proxy.yaml');
    await writeFile(configPath, JSON.stringify(config, null, 2));
    const proxy = new ManagedProcess('kube-proxy', 'nsenter', [`--net=${this.footprint.netnsPath}`, '--', join(binDir, 'kube-proxy'), `--config=${configPath}`],
      join(dir, 'kube-proxy.log'), detached);
    this.kubeProxy = proxy;
    const deadline = Date.now() + 30_000;
    while (!(await reachableInside(this.footprint.netnsPath, 'http://127.0.0.1:10256/healthz'))) {
      if (!proxy.running) throw new ClusterError(`kube-proxy exited during start-up; its log is ${proxy.logPath}:\n${proxy.logTail()}`);
      if (Date.now() > deadline) throw new ClusterError(`kube-proxy was not healthy within 30 s; its log is ${proxy.logPath}:\n${proxy.logTail()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/**
 * Takes away what a cluster put on the host, once its processes were asked
 * to stop: whatever is still inside its namespaces or names its directory is
 * killed; then the namespaces are unpinned (the kernel drops every mount,
 * overlay and iptables rule in them), the cgroups removed, the sysctls the
 * kubelets changed put back, the mountpoints it made removed, the directory
 * deleted.
 */
export function removeFootprint(footprint: ClusterFootprint): void {
  const namespaces = [{ type: 'net' as const, path: footprint.netnsPath }, ...footprint.mountNsPaths.map((path) => ({ type: 'mnt' as const, path }))];
  for (let waitedMs = 0; ; waitedMs += 50) {
    const left = [...processesWithin(namespaces, footprint.dir), ...footprint.cgroupPaths.flatMap((p) => new CgroupTree(p).pids())].filter(isAlive);
    if (left.length === 0) break;
    if (waitedMs > 10_000) throw new ClusterError(`processes ${left.join(', ')} of the cluster in ${footprint.dir} outlived SIGKILL for 10 s`);
    for (const path of footprint.cgroupPaths) new CgroupTree(path).killAll();
    for (const pid of left) signal(pid, 'SIGKILL');
    // Synchronous, so that the exit handler can use it too.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
  }
  for (const { path } of namespaces) removeNamespace(path);
  for (const path of footprint.cgroupPaths) new CgroupTree(path).remove();
  restoreSysctls(footprint.sysctls);
  for (const dir of [...footprint.createdDirs].reverse()) {
    try {
      rmdirSync(dir);
    } catch (error) {
      // Another cluster on this host made use of it meanwhile (or made it again): it is theirs now.
      if (!['ENOTEMPTY', 'EBUSY', 'ENOENT'].includes((error as NodeJS.ErrnoException).code ?? '')) throw error;
    }
  }
  try {
    execFileSync('umount', [footprint.dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch {
    // Not mounted: the start failed before the bind.
  }
  rmSync(footprint.dir, { recursive: true, force: true });
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Gone already.
  }
}

/** Real nodes need root (namespaces, mounts, cgroups) and the Debian packages `make nodes` installs. */
function requireHost(): void {
  if (process.getuid?.() !== 0) throw new ClusterError('real nodes need root: namespaces, mounts and cgroups (run as root, or use the API-only ControlPlane)');
  const missing = ['/usr/sbin/runc', '/usr/bin/socat', '/usr/lib/cni/bridge', '/usr/lib/cni/host-local', '/usr/lib/cni/portmap', '/usr/sbin/iptables', '/usr/bin/nsenter', '/usr/bin/unshare']
    .filter((path) => !existsSync(path));
  if (missing.length > 0) throw new ClusterError(`real nodes need ${missing.join(', ')}: run 'make nodes'`);
  if (!existsSync('/sys/fs/cgroup/freezer')) throw new ClusterError('real nodes here need cgroup v1 with the freezer hierarchy at /sys/fs/cgroup/freezer');
}

/** Builds kubelet, kube-proxy, kube-scheduler and containerd (or finds them in the cache) with hack/build-nodes.sh. */
export function buildNodeBinaries(): Promise<string> {
  return runBuildScript(join(repoRoot, 'hack', 'build-nodes.sh'), 'the node binaries');
}

const live = new Set<ClusterFootprint>();

/**
 * An interrupted run must not leave namespaces, mounts, cgroups or changed
 * sysctls behind. The plane's own exit handler (registered first) has killed
 * every attached process; this one takes away the rest, synchronously.
 */
process.once('exit', () => {
  for (const footprint of live) removeFootprint(footprint);
});
