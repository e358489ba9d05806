import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { expect } from 'chai';
import { isAlive } from '../../../hack/controlplane/process.ts';
import { REPO_ROOT } from '../../../hack/lib/replica.ts';
import { cluster } from '../support/cluster.ts';

/** A command of the README run as a process, its output collected line by line. */
function start(args: string[], env: NodeJS.ProcessEnv): { lines: string[]; waitFor(pattern: RegExp, timeoutMs: number): Promise<string>; exited: Promise<number | null>; signal(s: NodeJS.Signals): void } {
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => {
      lines.push(line);
      for (const waiter of waiters.filter((w) => w.pattern.test(line))) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    });
  }
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    lines,
    exited,
    signal: (s) => child.kill(s),
    waitFor(pattern, timeoutMs) {
      const seen = lines.find((l) => pattern.test(l));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms:\n${lines.slice(-30).join('\n')}`)), timeoutMs);
        waiters.push({ pattern, resolve: (line) => { clearTimeout(timer); resolve(line); } });
        void exited.then(() => reject(new Error(`exited before a line matching ${pattern}:\n${lines.slice(-30).join('\n')}`)));
      });
    },
  };
}

describe('the README commands', function () {
  this.timeout(180_000);

  it('`make run` (hack/demo.ts) as root: a local cluster of real nodes, the manifests applied, one leader, every sample Ready; Ctrl-C tears it all down', async function () {
    this.timeout(300_000);
    const env: NodeJS.ProcessEnv = { ...process.env, CONTROLPLANE_BIN_DIR: cluster().binDir };
    delete env.KUBECONFIG;
    const demo = start(['hack/demo.ts'], env);
    try {
      const kubeconfig = (await demo.waitFor(/export KUBECONFIG=/, 180_000)).split('=')[1]!;
      await demo.waitFor(/deployment\.apps\/ha-operator created/, 60_000);
      // A line of the operator's own log, labelled with its pod, from the pod that won the Lease.
      await demo.waitFor(/^\S*\[[0-9a-z]+-[0-9a-z]+\]\S* \S+ INFO {2}started leading/, 120_000);
      await demo.waitFor(/samples\/\*\.yaml applied/, 60_000);
      await demo.waitFor(/every sample is Ready/, 180_000);
      await demo.waitFor(/Ctrl-C stops everything/, 60_000);
      const table = demo.lines.join('\n');
      expect(table).to.match(/leader \(Lease ha-operator\/ha-operator\): ha-operator-\S+-[0-9a-f]{8}/);

      demo.signal('SIGINT');
      const code = await demo.exited;
      const tail = demo.lines.slice(-10).join('\n');
      expect(code, tail).to.equal(0);
      expect(tail).to.include('local cluster stopped');
      // The cluster's directory (plane, nodes, namespaces) went with it.
      expect(existsSync(dirname(dirname(kubeconfig)))).to.equal(false);
    } finally {
      demo.signal('SIGINT');
      await Promise.race([demo.exited, new Promise((r) => setTimeout(r, 60_000))]);
      demo.signal('SIGKILL');
    }
  });

  it('`make run ARGS=--processes`: local plane, two labelled replicas that elect one leader, the samples reconciled; Ctrl-C tears it all down', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, CONTROLPLANE_BIN_DIR: cluster().binDir };
    delete env.KUBECONFIG;
    const demo = start(['hack/demo.ts', '--processes'], env);
    try {
      const kubeconfig = (await demo.waitFor(/export KUBECONFIG=/, 120_000)).split('=')[1]!;
      await demo.waitFor(/samples\/\*\.yaml applied/, 60_000);
      await demo.waitFor(/\[replica-[ab]\].*started leading/, 60_000);
      // Whichever sample comes first: the test does not depend on what samples/ holds.
      await demo.waitFor(/\[replica-[ab]\].*reconciled.*ha-operator-demo\//, 60_000);
      // Both replicas up (labelled lines from each), exactly one of them leading.
      await Promise.all(['replica-a', 'replica-b'].map((name) => demo.waitFor(new RegExp(`\\[${name}\\].*INFO  running`), 60_000)));
      expect(demo.lines.filter((l) => /started leading/.test(l))).to.have.length(1);

      demo.signal('SIGINT');
      const code = await demo.exited;
      const tail = demo.lines.slice(-25).join('\n');
      expect(code, tail).to.equal(0);
      expect(/replicas exited: replica-a=0, replica-b=0/.test(tail), `both replicas exit 0:\n${tail}`).to.be.true;
      expect(tail).to.include('local control plane stopped');
      // The plane's directory (certificates, etcd data, logs) went with it.
      expect(existsSync(dirname(kubeconfig))).to.be.false;
    } finally {
      // A failed assertion must not leave the demo's plane behind: let the demo tear it down.
      demo.signal('SIGINT');
      await Promise.race([demo.exited, new Promise((r) => setTimeout(r, 60_000))]);
      demo.signal('SIGKILL');
    }
  });

  it('`make cluster-up` prints a KUBECONFIG that works, and `make cluster-down` stops every process', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'ha-operator-cluster-state-'));
    const env = { ...process.env, CONTROLPLANE_BIN_DIR: cluster().binDir, HA_OPERATOR_CLUSTER_DIR: stateDir };
    try {
      const up = start(['hack/controlplane/cli.ts', 'up'], env);
      expect(await up.exited).to.equal(0);
      const pids = /pids ([\d, ]+)\)/.exec(up.lines.join('\n'))![1]!.split(', ').map(Number);
      const kubeconfig = /export KUBECONFIG=(\S+)/.exec(up.lines.join('\n'))![1]!;
      expect(pids).to.have.length(3);
      expect(await cluster().kubectl(['get', 'namespace', 'kube-system', '-o', 'name'], kubeconfig)).to.include('namespace/kube-system');

      const down = start(['hack/controlplane/cli.ts', 'down'], env);
      expect(await down.exited).to.equal(0);
      for (const pid of pids) expect(isAlive(pid), `pid ${pid}`).to.be.false;
    } finally {
      // After a failure above, `down` still stops whatever `up` started.
      await start(['hack/controlplane/cli.ts', 'down'], env).exited;
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});
