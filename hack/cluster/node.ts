import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { issueClient, issueServing } from '../controlplane/certs.ts';
import type { ControlPlane } from '../controlplane/plane.ts';
import { ManagedProcess } from '../controlplane/process.ts';
import { CgroupTree } from './cgroups.ts';
import { createMountNamespace, removeNamespace } from './namespaces.ts';

const run = promisify(execFile);

/**
 * Paths the kubelet, containerd and the CNI plugins use whatever they are
 * told; each node gets its own tmpfs over them in its mount namespace.
 */
export const NODE_PRIVATE_DIRS = ['/run/containerd', '/var/lib/cni', '/var/lib/kubelet', '/var/log/containers'];

export interface NodeSettings {
  /** 1, 2, …: the node's IP is 10.250.0.<index>, its pod subnet 10.244.<index>.0/24. */
  index: number;
  /** Short and unique per cluster: it names the node's cgroups. */
  clusterId: string;
  clusterDir: string;
  binDir: string;
  plane: ControlPlane;
  netnsPath: string;
  /** OCI archives to import before the kubelet starts (the pause image among them). */
  imageArchives: string[];
  sandboxImage: string;
  /** The daemons outlive this process (`make cluster-up`). */
  detached: boolean;
}

export class ClusterNodeError extends Error {
  override name = 'ClusterNodeError';
}

/**
 * One real node: containerd and a kubelet of its own, in the cluster's
 * network namespace and a mount namespace of the node's, every process of it
 * (the two daemons, the shims, the containers) under one cgroup path, so that
 * "the node is lost" and "the node is torn down" are one freeze-and-kill.
 */
export class ClusterNode {
  readonly name: string;
  readonly ip: string;
  readonly podSubnet: string;
  readonly dir: string;
  readonly cgroups: CgroupTree;
  private readonly settings: NodeSettings;
  readonly mountNsPath: string;
  private readonly containerdSocket: string;
  private containerd: ManagedProcess | undefined;
  private kubelet: ManagedProcess | undefined;
  /** Between lose() and restore(). */
  private lost = false;

  constructor(settings: NodeSettings) {
    this.settings = settings;
    this.name = `node-${settings.index}`;
    this.ip = `10.250.0.${settings.index}`;
    this.podSubnet = `10.244.${settings.index}.0/24`;
    this.dir = join(settings.clusterDir, this.name);
    this.cgroups = new CgroupTree(`/${settings.clusterId}-n${settings.index}`);
    this.mountNsPath = join(this.dir, 'mnt.ns');
    this.containerdSocket = join(this.dir, 'containerd', 'containerd.sock');
  }

  /**
   * containerd up with the images imported, then the kubelet; the caller has
   * created the NODE_PRIVATE_DIRS mountpoints and waits for the Node to be Ready.
   */
  async start(): Promise<void> {
    for (const sub of ['containerd', 'cni/net.d', 'kubelet/pki', 'pod-logs', 'volume-plugins']) mkdirSync(join(this.dir, sub), { recursive: true });
    this.cgroups.create();
    for (const child of ['system', 'shims']) new CgroupTree(`${this.cgroups.path}/${child}`).create();
    createMountNamespace(this.mountNsPath, NODE_PRIVATE_DIRS);
    await Promise.all([this.writeContainerdConfig(), this.writeCniConfig(), this.writeKubeletConfig()]);

    await this.startContainerd();
    await this.importImages();
    this.startKubelet();
  }

  /**
   * Brings a lost node back, as a machine that is powered on again: once
   * every process of it has gone, containerd starts on the node's state (its
   * images are on the node's disk, imported again only if they are missing),
   * then the kubelet, which finds its pods' containers dead and starts them
   * again in place. The caller waits for what it needs (its pods Ready, say).
   */
  async restore(): Promise<void> {
    if (!this.lost) throw new ClusterNodeError(`${this.name} is not lost: restore() follows lose()`);
    await Promise.all([this.kubelet?.whenExited(), this.containerd?.whenExited()]);
    await this.cgroupsEmpty();
    this.lost = false;
    await this.startContainerd();
    const present = (await this.ctr(['-n', 'k8s.io', 'images', 'ls', '-q'])).split('\n');
    if (!present.includes(this.settings.sandboxImage)) await this.importImages();
    this.startKubelet();
  }

  private async startContainerd(): Promise<void> {
    this.containerd = this.spawn('containerd', [`--config=${join(this.dir, 'containerd.toml')}`]);
    await this.waitFor(this.containerd, 'containerd to answer', () => this.ctr(['version']).then(() => true, () => false));
  }

  private async importImages(): Promise<void> {
    // One archive per call: ctr imports only the first of several.
    for (const archive of this.settings.imageArchives) await this.ctr(['-n', 'k8s.io', 'images', 'import', archive]);
  }

  /** Starts the kubelet (again, after stopKubelet: it finds its pods' containers and carries on). */
  startKubelet(): void {
    this.kubelet = this.spawn('kubelet', [
      `--config=${join(this.dir, 'kubelet.yaml')}`,
      `--kubeconfig=${join(this.dir, 'kubelet.kubeconfig')}`,
      `--root-dir=${join(this.dir, 'kubelet')}`,
      // Not derived from --root-dir: without it both nodes would share /var/lib/kubelet/pki.
      `--cert-dir=${join(this.dir, 'kubelet', 'pki')}`,
      `--hostname-override=${this.name}`,
      `--node-ip=${this.ip}`,
      '--v=1',
    ]);
  }

  /**
   * Kills the kubelet alone: the containers run on, and nobody reports on
   * them — a node whose agent is gone while its workloads are not.
   */
  async stopKubelet(): Promise<void> {
    this.kubelet?.killNow();
    await this.kubelet?.whenExited();
  }

  /** The daemons' process ids (the shims and containers are found by cgroup). */
  pids(): number[] {
    return [this.containerd, this.kubelet].filter((p) => p?.running).map((p) => p!.pid).filter((pid): pid is number => pid !== undefined);
  }

  get kubeletRunning(): boolean {
    return this.kubelet?.running ?? false;
  }

  kubeletLogTail(lines = 30): string {
    return this.kubelet?.logTail(lines) ?? '(not started)';
  }

  /**
   * The node is lost: the kubelet, containerd, the shims and every container
   * are killed at once, as when a machine loses power. Its Node object stays
   * until the node controller marks it unreachable.
   */
  lose(): void {
    this.lost = true;
    this.cgroups.killAll();
  }

  /** Kills everything of the node and removes its cgroups and mount namespace; the directory goes with the cluster's. */
  async stop(): Promise<void> {
    this.cgroups.killAll();
    await Promise.all([this.kubelet?.whenExited(), this.containerd?.whenExited()]);
    await this.cgroupsEmpty();
    removeNamespace(this.mountNsPath);
    this.cgroups.remove();
  }

  /** The processes of a killed cgroup leave it asynchronously (a zombie until its parent reaps it). */
  private async cgroupsEmpty(): Promise<void> {
    for (let waitedMs = 0; this.cgroups.pids().length > 0; waitedMs += 20) {
      if (waitedMs > 10_000) throw new ClusterNodeError(`${this.name}: processes ${this.cgroups.pids().join(', ')} outlived SIGKILL for 10 s`);
      if (waitedMs % 1000 === 0) this.cgroups.killAll();
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Runs a daemon in the node's namespaces and system cgroup (joined before exec, so that its children are inside too). */
  private spawn(name: string, args: string[]): ManagedProcess {
    const system = new CgroupTree(`${this.cgroups.path}/system`);
    const command = [join(this.settings.binDir, name), ...args].map((a) => `'${a}'`).join(' ');
    const script = `${system.joinCommand()} && exec nsenter --net='${this.settings.netnsPath}' --mount='${this.mountNsPath}' -- ${command}`;
    return new ManagedProcess(`${this.name} ${name}`, 'sh', ['-c', script], join(this.dir, `${name}.log`), this.settings.detached);
  }

  private async ctr(args: string[]): Promise<string> {
    const { stdout } = await run(join(this.settings.binDir, 'ctr'), [`--address=${this.containerdSocket}`, ...args]);
    return stdout;
  }

  private async waitFor(proc: ManagedProcess, what: string, ready: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await ready())) {
      if (!proc.running) throw new ClusterNodeError(`${proc.name} exited while waiting for ${what}; its log is ${proc.logPath}:\n${proc.logTail()}`);
      if (Date.now() > deadline) throw new ClusterNodeError(`timed out waiting for ${what}; its log is ${proc.logPath}:\n${proc.logTail()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * containerd 2.x, config version 3 (verified here; `containerd config
   * default` prints version 4, which moves a few tables). Every path of its
   * own is under the node's directory; the shims go to a cgroup of the node's
   * because containerd 2 writes no shim.pid and a shim outlives containerd.
   */
  private async writeContainerdConfig(): Promise<void> {
    const own = (p: string): string => join(this.dir, 'containerd', p);
    const toml = `version = 3
root = '${own('root')}'
state = '${own('state')}'
imports = []

[grpc]
  address = '${this.containerdSocket}'

[ttrpc]
  address = '${this.containerdSocket}.ttrpc'

[metrics]
  address = ''

[plugins.'io.containerd.nri.v1.nri']
  disable = true

[plugins.'io.containerd.internal.v1.opt']
  path = '${own('opt')}'

[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = '${this.settings.sandboxImage}'

[plugins.'io.containerd.cri.v1.runtime']
  # Without CAP_SYS_RESOURCE runc cannot lower a container's oom_score_adj: every sandbox would fail.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = 'runc'
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = 'io.containerd.runc.v2'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = '/usr/sbin/runc'
        Root = '${own('runc')}'
        ShimCgroup = '${this.cgroups.path}/shims'
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ['/usr/lib/cni']
    conf_dir = '${join(this.dir, 'cni', 'net.d')}'
    max_conf_num = 1

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = '127.0.0.1'
  stream_server_port = '0'
`;
    await writeFile(join(this.dir, 'containerd.toml'), toml);
  }

  /**
   * A bridge per node, the gateway of its pod subnet; the bridges share the
   * cluster's namespace, so pods reach each other across nodes by its
   * connected routes. No masquerading: there is nowhere outside to go.
   */
  private async writeCniConfig(): Promise<void> {
    const conflist = {
      cniVersion: '1.0.0',
      name: `pods-n${this.settings.index}`,
      plugins: [
        {
          type: 'bridge',
          bridge: `cni-n${this.settings.index}`,
          isGateway: true,
          ipMasq: false,
          hairpinMode: true,
          ipam: { type: 'host-local', ranges: [[{ subnet: this.podSubnet }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: join(this.dir, 'cni', 'ipam') },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    };
    await writeFile(join(this.dir, 'cni', 'net.d', '10-pods.conflist'), JSON.stringify(conflist, null, 2));
  }

  private async writeKubeletConfig(): Promise<void> {
    const { plane } = this.settings;
    const pki = plane.dir;
    await issueClient(pki, `kubelet-${this.name}`, `system:node:${this.name}`, 'system:nodes');
    await issueServing(pki, `kubelet-serving-${this.name}`, this.name, [this.ip]);
    await plane.writeKubeconfig(join(this.dir, 'kubelet.kubeconfig'), {
      clientCert: join(pki, `kubelet-${this.name}.crt`),
      clientKey: join(pki, `kubelet-${this.name}.key`),
    }, plane.internalServer);
    const config = {
      apiVersion: 'kubelet.config.k8s.io/v1beta1',
      kind: 'KubeletConfiguration',
      // These hosts run cgroup v1 without systemd as PID 1.
      failCgroupV1: false,
      cgroupDriver: 'cgroupfs',
      cgroupRoot: this.cgroups.path,
      containerRuntimeEndpoint: `unix://${this.containerdSocket}`,
      // The nodes share one network namespace: each serves on its own IP, with its own healthz port.
      address: this.ip,
      port: 10250,
      readOnlyPort: 0,
      healthzBindAddress: '127.0.0.1',
      healthzPort: 10148 + 100 * this.settings.index,
      tlsCertFile: join(pki, `kubelet-serving-${this.name}.crt`),
      tlsPrivateKeyFile: join(pki, `kubelet-serving-${this.name}.key`),
      authentication: { anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: join(pki, 'ca.crt') } },
      authorization: { mode: 'Webhook' },
      clusterDomain: 'cluster.local',
      // No DNS in the cluster and none of the host's in pods.
      resolvConf: '',
      podLogsDir: join(this.dir, 'pod-logs'),
      volumePluginDir: join(this.dir, 'volume-plugins'),
      failSwapOn: false,
      serializeImagePulls: false,
      // The images were imported, not pulled: collected, they could not come back.
      imageGCHighThresholdPercent: 100,
      imageGCLowThresholdPercent: 99,
      evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '1%', 'nodefs.inodesFree': '1%', 'imagefs.available': '1%' },
    };
    await writeFile(join(this.dir, 'kubelet.yaml'), JSON.stringify(config, null, 2));
  }
}
