import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import type { LocalCluster } from '../../../hack/cluster/cluster.ts';
import { topLevelCgroups } from '../../../hack/cluster/cgroups.ts';
import { namespaceLink, processesWithin } from '../../../hack/cluster/namespaces.ts';
import { NODE_PRIVATE_DIRS } from '../../../hack/cluster/node.ts';
import { readKubeletSysctls } from '../../../hack/cluster/sysctls.ts';
import { isAlive } from '../../../hack/controlplane/process.ts';
import { WEB_IMAGE } from '../../../hack/images/build.ts';
import { startLocalCluster } from '../support/nodes.ts';

/** What a cluster could leave on the host: read before it starts and after it stops. */
interface HostState {
  mountPoints: string[];
  cgroups: string[];
  sysctls: Record<string, string>;
  iptables: string;
  networkNamespaces: string[];
  privateDirs: boolean[];
}

function hostState(): HostState {
  const networkNamespaces = new Set<string>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      networkNamespaces.add(readlinkSync(`/proc/${entry}/ns/net`));
    } catch {
      // Exited while we looked.
    }
  }
  return {
    mountPoints: readFileSync('/proc/self/mountinfo', 'utf8').trim().split('\n').map((line) => line.split(' ')[4]!).sort(),
    cgroups: topLevelCgroups(),
    sysctls: readKubeletSysctls(),
    // Without the "# Generated/Completed … on <date>" lines.
    iptables: execFileSync('iptables-save', { encoding: 'utf8' }).split('\n').filter((l) => !l.startsWith('#')).join('\n'),
    networkNamespaces: [...networkNamespaces].sort(),
    privateDirs: NODE_PRIVATE_DIRS.map((dir) => existsSync(dir)),
  };
}

/** A Deployment of the local web image, hardened as the operator's own pods are, and its Service. */
function webApp(replicas: number): string {
  const deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', namespace: 'default' },
    spec: {
      replicas,
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: {
          securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } },
          // One per node, so that the Service is reached across nodes.
          topologySpreadConstraints: [{ topologyKey: 'kubernetes.io/hostname', maxSkew: 1, whenUnsatisfiable: 'DoNotSchedule', labelSelector: { matchLabels: { app: 'web' } } }],
          containers: [{
            name: 'web',
            image: WEB_IMAGE,
            imagePullPolicy: 'Never',
            ports: [{ containerPort: 8080 }],
            readinessProbe: { httpGet: { path: '/', port: 8080 }, periodSeconds: 1 },
            securityContext: { readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
          }],
        },
      },
    },
  };
  const service = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default' }, spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] } };
  return JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [deployment, service] });
}

describe('a local cluster with real nodes', function () {
  this.timeout(180_000);
  let initial: HostState;
  let cluster: LocalCluster;
  let netnsLink: string;

  before(async function () {
    initial = hostState();
    cluster = await startLocalCluster({ nodes: 2 });
    netnsLink = namespaceLink('net', cluster.footprint.netnsPath);
  });
  after(async () => {
    await cluster?.stop();
  });

  it('registers its nodes Ready, each with its own IP and containerd', async () => {
    const nodes = JSON.parse(await cluster.kubectl(['get', 'nodes', '-o', 'json'])) as {
      items: { metadata: { name: string }; status: { addresses: { type: string; address: string }[]; nodeInfo: { containerRuntimeVersion: string }; conditions: { type: string; status: string }[] } }[];
    };
    expect(nodes.items.map((n) => n.metadata.name).sort()).to.deep.equal(['node-1', 'node-2']);
    for (const node of nodes.items) {
      expect(node.status.conditions.find((c) => c.type === 'Ready')?.status, node.metadata.name).to.equal('True');
      expect(node.status.nodeInfo.containerRuntimeVersion).to.match(/^containerd:\/\/2\./);
    }
    expect(nodes.items.map((n) => n.status.addresses.find((a) => a.type === 'InternalIP')?.address).sort()).to.deep.equal(['10.250.0.1', '10.250.0.2']);
  });

  it('runs hardened pods on both nodes and routes a Service across them', async () => {
    const manifest = join(cluster.footprint.dir, 'web.json');
    writeFileSync(manifest, webApp(2));
    await cluster.kubectl(['apply', '-f', manifest]);
    await cluster.kubectl(['rollout', 'status', 'deployment/web', '--timeout=90s']);
    const pods = JSON.parse(await cluster.kubectl(['get', 'pods', '-l', 'app=web', '-o', 'json'])) as { items: { metadata: { name: string }; spec: { nodeName: string } }[] };
    expect(pods.items.map((p) => p.spec.nodeName).sort()).to.deep.equal(['node-1', 'node-2']);

    const [first] = pods.items;
    // Through the Service's ClusterIP (kube-proxy's rules), from the pod on one node to either pod.
    const page = await cluster.kubectl(['exec', first!.metadata.name, '--', 'sh', '-c', 'timeout 5 wget -qO- "http://$WEB_SERVICE_HOST:$WEB_SERVICE_PORT/"']);
    expect(page).to.contain('busybox httpd');
    // The hardened securityContext is in effect: not root, the root filesystem read-only.
    expect(await cluster.kubectl(['exec', first!.metadata.name, '--', 'id', '-u'])).to.equal('65532\n');
    const write = await cluster.kubectl(['exec', first!.metadata.name, '--', 'sh', '-c', 'touch /probe 2>&1 || true']);
    expect(write).to.match(/Read-only file system/);
  });

  it('keeps every packet inside its network namespace: no route out, no interface but loopback and its bridges', () => {
    const inside = (args: string[]): string => execFileSync('nsenter', [`--net=${cluster.footprint.netnsPath}`, '--', 'ip', ...args], { encoding: 'utf8' });
    expect(inside(['route', 'show', 'default'])).to.equal('');
    expect(inside(['-6', 'route', 'show', 'default'])).to.equal('');
    const links = inside(['-o', 'link', 'show']).trim().split('\n').map((line) => line.split(': ')[1]!.split('@')[0]!);
    expect(links.filter((name) => name !== 'lo' && !/^cni-n\d$/.test(name) && !name.startsWith('veth'))).to.deep.equal([]);
    expect(netnsLink).to.not.equal(readlinkSync('/proc/self/ns/net'));
  });

  it('leaves no process, mount, cgroup, network namespace, iptables rule or changed sysctl behind', async function () {
    const pids = cluster.pids();
    const namespaces = [{ type: 'net' as const, path: cluster.footprint.netnsPath }, ...cluster.footprint.mountNsPaths.map((path) => ({ type: 'mnt' as const, path }))];
    expect(processesWithin(namespaces, cluster.footprint.dir).length, 'processes inside while running').to.be.greaterThan(pids.length);
    await cluster.stop();

    for (const pid of pids) expect(isAlive(pid), `pid ${pid} still running`).to.equal(false);
    expect(existsSync(cluster.footprint.dir)).to.equal(false);
    const after = hostState();
    expect(after.networkNamespaces).to.not.include(netnsLink);
    // Other tests' processes come and go; what matters is that none of ours remains.
    expect({ ...after, networkNamespaces: [] }).to.deep.equal({ ...initial, networkNamespaces: [] });
  });
});
