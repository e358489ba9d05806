import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { request, type RequestOptions } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { writeCertificates, type PlaneCertificates, type ServingNames } from './certs.ts';
import { ManagedProcess, killAllSync } from './process.ts';
import { reachableInside } from '../cluster/namespaces.ts';
import { runBuildScript } from '../lib/build-script.ts';

const run = promisify(execFile);
const repoRoot = resolve(import.meta.dirname, '..', '..');

export interface ControlPlaneOptions {
  /** Also run kube-controller-manager (garbage collector, namespace, deployment, replicaset controllers). */
  controllerManager?: boolean;
  /** Where kube-apiserver, kube-controller-manager, kubectl and etcd are; default: build or reuse the cached ones. */
  binDir?: string;
  /** How long to wait for /readyz before giving up. */
  readyTimeoutMs?: number;
  /** Parent of the plane's temporary directory. */
  parentDir?: string;
  /** Leave the processes running after this process exits (for `make cluster-up`). */
  detached?: boolean;
  /**
   * Turn on kube-apiserver's audit log (auditLogPath): every committed
   * create/update/patch/delete outside the kube-* namespaces at level
   * RequestResponse. The failover tests, the study and the chaos run judge
   * safety from it (hack/lib/audit.ts).
   */
  audit?: boolean;
  /** More kube-apiserver flags (a feature gate turned off, say). */
  apiServerArgs?: string[];
  /**
   * Run every component inside this network namespace, configured for real
   * nodes and pods (hack/cluster/): ServiceAccount admission and the Node
   * authorizer on, every default controller, a scheduler, the `kubernetes`
   * Service pointing at `advertiseAddress`. The host reaches the apiserver
   * through a unix-socket bridge, so nothing listens on the host's network.
   * Needs root (nsenter).
   */
  podNetwork?: PodNetwork;
}

export interface PodNetwork {
  /** The pinned network namespace file (`unshare --net=FILE`). */
  netnsPath: string;
  /** Node 1's IP, which the `kubernetes` Service's endpoint names. */
  advertiseAddress: string;
  /** The Service IP range; its first address is the `kubernetes` Service's. */
  serviceCidr: string;
  /** The pod IP range, which the controller-manager and kube-proxy are told. */
  podCidr: string;
  /** kube-scheduler is built with the node binaries (hack/build-nodes.sh). */
  schedulerBinary: string;
}

/** Fixed ports inside a pod network's namespace: nothing else listens there. */
const podNetworkPorts: Ports = { apiServer: 6443, etcdClient: 2379, etcdPeer: 2380 };

/**
 * Mutating requests with their request and response bodies (the response's
 * resourceVersion orders the commits on each object); reads and the system
 * namespaces not at all. Only ResponseComplete events: one per request.
 */
const AUDIT_POLICY = {
  apiVersion: 'audit.k8s.io/v1',
  kind: 'Policy',
  omitStages: ['RequestReceived'],
  rules: [
    { level: 'None', namespaces: ['kube-system', 'kube-public', 'kube-node-lease'] },
    { level: 'None', verbs: ['get', 'list', 'watch'] },
    { level: 'RequestResponse', verbs: ['create', 'update', 'patch', 'delete', 'deletecollection'] },
    { level: 'None' },
  ],
};

/** The controllers that make ownerReference GC, namespace deletion and Deployment rollouts real. */
const controllers = [
  'garbage-collector-controller',
  'namespace-controller',
  'deployment-controller',
  'replicaset-controller',
  'serviceaccount-token-controller',
];

export class ControlPlaneError extends Error {
  override name = 'ControlPlaneError';
}

/**
 * A real etcd + kube-apiserver (+ kube-controller-manager) on loopback, in the
 * style of controller-runtime's envtest: fresh PKI and free ports per start,
 * so two planes can run side by side.
 */
export class ControlPlane {
  readonly dir: string;
  readonly binDir: string;
  readonly kubeconfigPath: string;
  readonly server: string;
  readonly apiServerPort: number;
  readonly etcdUrl: string;
  /** Detached planes outlive this process (`make cluster-up`); the exit cleanup leaves them alone. */
  readonly detached: boolean;
  /** The audit log (JSON lines), when the plane was started with `audit`. */
  readonly auditLogPath: string | undefined;
  private readonly certs: PlaneCertificates;
  private readonly ports: Ports;
  private etcd: ManagedProcess | undefined;
  private apiServer: ManagedProcess | undefined;
  private controllerManager: ManagedProcess | undefined;
  private stopped = false;

  private readonly extraApiServerArgs: string[];
  readonly podNetwork: PodNetwork | undefined;
  /** unix socket → apiserver inside the namespace, host loopback port → socket. */
  private bridge: { inside: ManagedProcess; host: ManagedProcess } | undefined;
  private scheduler: ManagedProcess | undefined;

  private constructor(dir: string, binDir: string, certs: PlaneCertificates, ports: Ports, hostPort: number, detached: boolean, audit: boolean, extraApiServerArgs: string[], podNetwork: PodNetwork | undefined) {
    this.dir = dir;
    this.binDir = binDir;
    this.certs = certs;
    this.apiServerPort = ports.apiServer;
    this.server = `https://127.0.0.1:${hostPort}`;
    this.etcdUrl = `http://127.0.0.1:${ports.etcdClient}`;
    this.podNetwork = podNetwork;
    this.kubeconfigPath = join(dir, 'admin.kubeconfig');
    this.detached = detached;
    this.ports = ports;
    this.auditLogPath = audit ? join(dir, 'audit.log') : undefined;
    this.extraApiServerArgs = extraApiServerArgs;
  }

  static async start(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
    const binDir = options.binDir ?? process.env.CONTROLPLANE_BIN_DIR ?? (await buildBinaries());
    const parent = options.parentDir ?? tmpdir();
    await mkdir(parent, { recursive: true });
    const dir = mkdtempSync(join(parent, 'ha-operator-plane-'));
    const pods = options.podNetwork;
    const certs = await writeCertificates(dir, pods ? podServingNames(pods) : undefined);
    const ports = pods ? podNetworkPorts : await freePorts();
    const hostPort = pods ? await freePort() : ports.apiServer;
    const plane = new ControlPlane(dir, binDir, certs, ports, hostPort, options.detached ?? false, options.audit ?? false, options.apiServerArgs ?? [], pods);
    planes.add(plane);
    try {
      await plane.writeKubeconfig(plane.kubeconfigPath, { clientCert: plane.certs.adminCert, clientKey: plane.certs.adminKey });
      if (pods) plane.startBridge(hostPort);
      await plane.startEtcd();
      await plane.startApiServer(options.readyTimeoutMs);
      if (options.controllerManager || pods) await plane.startControllerManager();
      if (pods) await plane.startScheduler();
    } catch (error) {
      await plane.stop();
      throw error;
    }
    return plane;
  }

  /** Process ids of the components that are running now. */
  pids(): number[] {
    return [this.bridge?.inside, this.bridge?.host, this.etcd, this.apiServer, this.controllerManager, this.scheduler]
      .filter((p): p is ManagedProcess => p?.running === true)
      .map((p) => p.pid)
      .filter((pid): pid is number => pid !== undefined);
  }

  /** The process ids of etcd and kube-apiserver now (for the benchmarks' CPU readings). */
  componentPids(): { etcd: number | undefined; apiServer: number | undefined } {
    return { etcd: this.etcd?.running ? this.etcd.pid : undefined, apiServer: this.apiServer?.running ? this.apiServer.pid : undefined };
  }

  /** Kills kube-apiserver (SIGKILL: an outage, not a shutdown); etcd keeps the data. */
  async killApiServer(): Promise<void> {
    const proc = this.apiServer;
    if (!proc) return;
    proc.killNow();
    await proc.whenExited();
    this.apiServer = undefined;
  }

  /** Starts kube-apiserver again on the same port and waits until it is ready. */
  async startApiServer(readyTimeoutMs = 60_000): Promise<void> {
    const args = [
      `--etcd-servers=${this.etcdUrl}`,
      `--cert-dir=${join(this.dir, 'apiserver-certs')}`,
      `--tls-cert-file=${this.certs.servingCert}`,
      `--tls-private-key-file=${this.certs.servingKey}`,
      `--client-ca-file=${this.certs.caCert}`,
      `--secure-port=${this.apiServerPort}`,
      '--allow-privileged=true',
      `--service-account-key-file=${this.certs.serviceAccountPublicKey}`,
      `--service-account-signing-key-file=${this.certs.serviceAccountPrivateKey}`,
      ...(this.podNetwork ? this.podApiServerArgs(this.podNetwork) : [
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        '--authorization-mode=RBAC',
        // Room for thousands of Services: every Website has one (the benchmarks create 1,000+).
        '--service-cluster-ip-range=10.0.0.0/16',
        '--disable-admission-plugins=ServiceAccount',
        '--endpoint-reconciler-type=none',
        `--service-account-issuer=https://127.0.0.1:${this.apiServerPort}/`,
      ]),
    ];
    if (this.auditLogPath) {
      const policy = join(this.dir, 'audit-policy.json');
      await writeFile(policy, JSON.stringify(AUDIT_POLICY));
      // The log backend is blocking by default: an event is written before its response is sent.
      args.push(`--audit-policy-file=${policy}`, `--audit-log-path=${this.auditLogPath}`, '--audit-log-format=json', '--audit-log-maxsize=0');
    }
    args.push(...this.extraApiServerArgs);
    this.apiServer = this.spawn('kube-apiserver', args);
    await this.waitReady(this.apiServer, readyTimeoutMs);
  }

  /**
   * What a plane that pods use needs beyond the loopback plane: ServiceAccount
   * admission (tokens projected into pods), the Node authorizer and
   * NodeRestriction for kubelets, the `kubernetes` Service's endpoint kept by
   * the lease reconciler at node 1's IP, and kubelets dialled by InternalIP —
   * by hostname the apiserver would ask the host's resolver, which the
   * namespace cannot reach.
   */
  private podApiServerArgs(pods: PodNetwork): string[] {
    return [
      '--bind-address=0.0.0.0',
      `--advertise-address=${pods.advertiseAddress}`,
      '--authorization-mode=Node,RBAC',
      '--enable-admission-plugins=NodeRestriction',
      `--service-cluster-ip-range=${pods.serviceCidr}`,
      '--service-account-issuer=https://kubernetes.default.svc',
      `--kubelet-client-certificate=${this.certs.kubeletClientCert}`,
      `--kubelet-client-key=${this.certs.kubeletClientKey}`,
      `--kubelet-certificate-authority=${this.certs.caCert}`,
      '--kubelet-preferred-address-types=InternalIP',
    ];
  }

  /** The address components inside the pod network's namespace reach the apiserver at. */
  get internalServer(): string {
    return `https://127.0.0.1:${this.apiServerPort}`;
  }

  /** A kubeconfig for another identity (for example a ServiceAccount token). */
  async writeKubeconfig(path: string, user: { token: string } | { clientCert: string; clientKey: string }, server = this.server): Promise<string> {
    const userEntry = 'token' in user
      ? { token: user.token }
      : { 'client-certificate': user.clientCert, 'client-key': user.clientKey };
    const config = {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'local', cluster: { server, 'certificate-authority': this.certs.caCert } }],
      users: [{ name: 'user', user: userEntry }],
      contexts: [{ name: 'local', context: { cluster: 'local', user: 'user' } }],
      'current-context': 'local',
    };
    await writeFile(path, JSON.stringify(config, null, 2), { mode: 0o600 });
    return path;
  }

  /** Runs the plane's own kubectl against it and returns stdout. */
  async kubectl(args: string[], kubeconfig = this.kubeconfigPath): Promise<string> {
    try {
      const { stdout } = await run(join(this.binDir, 'kubectl'), [`--kubeconfig=${kubeconfig}`, ...args], { maxBuffer: 64 << 20 });
      return stdout;
    } catch (error) {
      const err = error as Error & { stderr?: string };
      throw new Error(`kubectl ${args.join(' ')} failed: ${err.stderr?.trim() || err.message}`, { cause: error });
    }
  }

  /** Stops every component (scheduler, controller-manager, apiserver, then etcd) and removes the directory. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const proc of [this.scheduler, this.controllerManager, this.apiServer, this.etcd, this.bridge?.host, this.bridge?.inside]) await proc?.stop();
    rmSync(this.dir, { recursive: true, force: true });
    planes.delete(this);
  }

  private async startEtcd(): Promise<void> {
    this.etcd = this.spawn('etcd', [
      `--data-dir=${join(this.dir, 'etcd')}`,
      `--listen-client-urls=${this.etcdUrl}`,
      `--advertise-client-urls=${this.etcdUrl}`,
      `--listen-peer-urls=http://127.0.0.1:${this.ports.etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${this.ports.etcdPeer}`,
      `--initial-cluster=default=http://127.0.0.1:${this.ports.etcdPeer}`,
      '--unsafe-no-fsync=true',
      '--log-level=warn',
    ]);
    const deadline = Date.now() + 30_000;
    while (!(await this.reachable(`${this.etcdUrl}/health`))) {
      this.assertRunning(this.etcd);
      if (Date.now() > deadline) throw this.failure(this.etcd, 'etcd did not become healthy within 30 s');
      await delay(50);
    }
  }

  private async startControllerManager(readyTimeoutMs = 60_000): Promise<void> {
    const port = this.podNetwork ? 10257 : await freePort();
    const kubeconfig = await this.componentKubeconfig('kube-controller-manager');
    this.controllerManager = this.spawn('kube-controller-manager', [
      `--kubeconfig=${kubeconfig}`,
      `--authentication-kubeconfig=${kubeconfig}`,
      `--authorization-kubeconfig=${kubeconfig}`,
      '--leader-elect=false',
      `--service-account-private-key-file=${this.certs.serviceAccountPrivateKey}`,
      `--root-ca-file=${this.certs.caCert}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${port}`,
      `--cert-dir=${join(this.dir, 'kcm-certs')}`,
      // Pods need them all: service accounts, endpoint slices, node lifecycle, the root CA ConfigMap…
      ...(this.podNetwork ? [
        '--controllers=*',
        `--cluster-cidr=${this.podNetwork.podCidr}`,
        `--service-cluster-ip-range=${this.podNetwork.serviceCidr}`,
        `--cluster-signing-cert-file=${this.certs.caCert}`,
        `--cluster-signing-key-file=${join(this.dir, 'ca.key')}`,
        // Its default is under /usr/libexec, outside the cluster's directory.
        `--flex-volume-plugin-dir=${join(this.dir, 'flexvolume')}`,
      ] : [`--controllers=${controllers.join(',')}`]),
    ]);
    await this.waitHealthy(this.controllerManager, `https://127.0.0.1:${port}/healthz`, readyTimeoutMs);
  }

  private async startScheduler(readyTimeoutMs = 60_000): Promise<void> {
    const kubeconfig = await this.componentKubeconfig('kube-scheduler');
    this.scheduler = this.spawn('kube-scheduler', [
      `--kubeconfig=${kubeconfig}`,
      `--authentication-kubeconfig=${kubeconfig}`,
      `--authorization-kubeconfig=${kubeconfig}`,
      '--leader-elect=false',
      '--bind-address=127.0.0.1',
      '--secure-port=10259',
      `--cert-dir=${join(this.dir, 'scheduler-certs')}`,
    ], this.podNetwork!.schedulerBinary);
    await this.waitHealthy(this.scheduler, 'https://127.0.0.1:10259/healthz', readyTimeoutMs);
  }

  /** The admin kubeconfig, at the address a component inside the namespace reaches. */
  private async componentKubeconfig(name: string): Promise<string> {
    if (!this.podNetwork) return this.kubeconfigPath;
    return this.writeKubeconfig(join(this.dir, `${name}.kubeconfig`), { clientCert: this.certs.adminCert, clientKey: this.certs.adminKey }, this.internalServer);
  }

  /** /healthz is served to anyone (always-allow path) over the component's self-signed certificate. */
  private async waitHealthy(proc: ManagedProcess, url: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await this.reachable(url))) {
      this.assertRunning(proc);
      if (Date.now() > deadline) throw this.failure(proc, `${proc.name} was not healthy within ${timeoutMs / 1000} s`);
      await delay(100);
    }
  }

  /**
   * Whether a GET of a component's health URL answers 200, asked from where the
   * component runs: on loopback from here, inside the pod network's namespace
   * (reachableInside).
   */
  private async reachable(url: string): Promise<boolean> {
    if (!this.podNetwork) return url.startsWith('https:') ? this.get(url, { rejectUnauthorized: false }) : httpOk(url);
    return reachableInside(this.podNetwork.netnsPath, url);
  }

  /**
   * The host's way in: socat inside the namespace accepts on a unix socket in
   * the plane's directory and connects to the apiserver; socat on the host
   * accepts on a loopback port and connects to the socket. No route between
   * the two networks, so nothing in the namespace can reach the host's.
   */
  private startBridge(hostPort: number): void {
    const socket = join(this.dir, 'apiserver.sock');
    this.bridge = {
      inside: this.spawn('socat', [`UNIX-LISTEN:${socket},fork,mode=600`, `TCP:127.0.0.1:${this.apiServerPort}`], '/usr/bin/socat'),
      host: new ManagedProcess('socat-host', '/usr/bin/socat', [`TCP-LISTEN:${hostPort},bind=127.0.0.1,fork,reuseaddr`, `UNIX-CONNECT:${socket}`], join(this.dir, 'socat-host.log'), this.detached),
    };
  }

  private spawn(name: string, args: string[], binary = join(this.binDir, name)): ManagedProcess {
    const log = join(this.dir, `${name}.log`);
    if (!this.podNetwork) return new ManagedProcess(name, binary, args, log, this.detached);
    // nsenter execs the component: the pid is the component's.
    return new ManagedProcess(name, 'nsenter', [`--net=${this.podNetwork.netnsPath}`, '--', binary, ...args], log, this.detached);
  }

  private async waitReady(proc: ManagedProcess, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      this.assertRunning(proc);
      if (await this.readyz()) return;
      if (Date.now() > deadline) throw this.failure(proc, `kube-apiserver was not ready within ${timeoutMs / 1000} s`);
      await delay(100);
    }
  }

  private assertRunning(proc: ManagedProcess): void {
    if (proc.spawnError) {
      throw new ControlPlaneError(`cannot start ${proc.name} from ${this.binDir}: ${proc.spawnError.message}. Run 'make controlplane' to build it.`);
    }
    if (!proc.running) throw this.failure(proc, `${proc.name} exited during start-up`);
  }

  private failure(proc: ManagedProcess, what: string): ControlPlaneError {
    const hint = /address already in use/.test(proc.logTail(50))
      ? 'A port it was given is busy (another process took it after it was chosen): start again.'
      : `Its log is ${proc.logPath}.`;
    return new ControlPlaneError(`${what}. ${hint}\n--- last lines of ${proc.name}'s log ---\n${proc.logTail()}`);
  }

  private async readyz(): Promise<boolean> {
    const [ca, cert, key] = await Promise.all([this.certs.caCert, this.certs.adminCert, this.certs.adminKey].map((f) => readFile(f)));
    return this.get(`${this.server}/readyz`, { ca, cert, key });
  }

  /** Whether a GET answers 200 within 2 s. */
  private get(url: string, tls: RequestOptions): Promise<boolean> {
    return new Promise((resolvePromise) => {
      const req = request(url, { ...tls, timeout: 2000 }, (res) => {
        res.resume();
        resolvePromise(res.statusCode === 200);
      });
      req.on('error', () => resolvePromise(false));
      req.on('timeout', () => req.destroy());
      req.end();
    });
  }
}

function podServingNames(pods: PodNetwork): ServingNames {
  return {
    ips: [pods.advertiseAddress, firstAddress(pods.serviceCidr)],
    dnsNames: ['kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local'],
  };
}

/** 10.0.0.0/16 → 10.0.0.1: the address the apiserver gives the `kubernetes` Service. */
function firstAddress(cidr: string): string {
  const octets = cidr.split('/')[0]!.split('.').map(Number);
  octets[3]! += 1;
  return octets.join('.');
}

interface Ports {
  apiServer: number;
  etcdClient: number;
  etcdPeer: number;
}

async function freePorts(): Promise<Ports> {
  const [apiServer, etcdClient, etcdPeer] = await Promise.all([freePort(), freePort(), freePort()]);
  return { apiServer: apiServer, etcdClient: etcdClient, etcdPeer: etcdPeer };
}

/** A port the kernel just handed out on loopback; the child binds it a moment later. */
function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port'))));
    });
  });
}

async function httpOk(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    return res.ok;
  } catch {
    return false;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Builds the binaries (or finds them in the cache) with hack/build-controlplane.sh. */
export function buildBinaries(): Promise<string> {
  return runBuildScript(join(repoRoot, 'hack', 'build-controlplane.sh'), 'the control plane');
}

const planes = new Set<ControlPlane>();

/**
 * An interrupted run (Ctrl-C, a killed test runner, an uncaught error) must not
 * leave an apiserver and etcd behind: kill them and remove their directories
 * synchronously on the way out. Detached planes are meant to outlive us.
 */
function cleanUpOnExit(): void {
  killAllSync();
  for (const plane of planes) {
    if (!plane.detached) rmSync(plane.dir, { recursive: true, force: true });
  }
}
process.once('exit', cleanUpOnExit);
for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
  // Without a handler Node dies on these signals without emitting 'exit'.
  process.once(signal, () => process.exit(code));
}
