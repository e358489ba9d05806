/**
 * Operator CPU per converged object (of the sample kind, hack/kinds.ts), this
 * code against an older commit's, in the same run (issue 17). Each round runs
 * both bundles, in alternating order, each on a fresh plane: N objects exist,
 * ONE replica (LEADER_ELECTION=false) starts and converges them from cold,
 * and the round prints:
 * - operator CPU seconds (utime + stime from /proc/<pid>/stat at the moment
 *   the last object converged), per converged object and per reconcile;
 * - objects/s from spawn to the last object converged;
 * - kube-apiserver and etcd CPU seconds over the same span;
 * - spawn → `running` and spawn → first `reconciled`.
 * Each bundle runs as its image ran it: the older one with its own build
 * script and no node flags, this one with OPERATOR_NODE_FLAGS, and this one
 * again without them (what the flags cost in CPU and save in memory). Last, one more
 * run of each under `--cpu-prof` (not counted in the table: profiling costs
 * CPU) prints where its busy time went, per package (hack/lib/cpu-profile.ts).
 *
 *   node hack/bench/cpu.ts [baseline=ffe2868] [N=1000] [rounds=3]
 *
 * The older bundle is built once per commit under .tmp/baseline/<commit>
 * (git archive, npm ci, its own hack/build.ts). ffe2868 is the code issue 17
 * measured: the last commit before the raw-JSON request layer.
 * Goal: CPU per converged object at most half of the baseline's; spawn →
 * first reconcile at most 60 % of it. Compare the ratios, not the absolute
 * figures: the machine is shared.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { buildOperator, OPERATOR_NODE_FLAGS } from '../build.ts';
import { formatSummary, summarizeProfile } from '../lib/cpu-profile.ts';
import { Replica, REPO_ROOT } from '../lib/replica.ts';
import { SAMPLE_KIND } from '../kinds.ts';
import { cpuSeconds, loadAverage, onFreshPlane, percentile, rssMiB, threadCpuSeconds, watchedObjects } from './support.ts';

const baselineRev = process.argv[2] ?? 'ffe2868';
const count = Number(process.argv[3] ?? 1000);
const rounds = Number(process.argv[4] ?? 3);

interface Variant {
  name: string;
  entry: string;
  nodeArgs: string[];
}

interface Run {
  variant: string;
  round: number;
  operatorCpuS: number;
  /** Of operatorCpuS, Node's main thread (JavaScript, I/O, TLS); the rest is mostly V8's GC and compiler threads. */
  mainThreadCpuS: number;
  reconciles: number;
  /** VmRSS when the last object converged. */
  rssMiB: number;
  convergedS: number;
  apiServerCpuS: number;
  etcdCpuS: number;
  runningMs: number;
  firstReconcileMs: number;
  load: string;
}

const bundle = await buildOperator();
const variants: Variant[] = [
  { name: `baseline ${baselineRev}`, entry: baselineBundle(baselineRev), nodeArgs: [] },
  { name: 'this code', entry: bundle, nodeArgs: [...OPERATOR_NODE_FLAGS] },
  // What the node flags cost and save, in the same run.
  { name: 'this code without its node flags', entry: bundle, nodeArgs: [] },
];

const runs: Run[] = [];
for (let round = 1; round <= rounds; round++) {
  const order = round % 2 === 1 ? variants : [...variants].reverse();
  for (const variant of order) {
    const run = await converge(variant, round);
    runs.push(run);
    console.log(JSON.stringify(run));
  }
}

console.log(`\n${count} ${SAMPLE_KIND.resource.kind} objects from cold, one replica (LEADER_ELECTION=false), ${rounds} rounds, medians:`);
console.log('| bundle | operator CPU | of which the main thread | CPU per converged object | CPU per reconcile | objects/s | kube-apiserver CPU | etcd CPU | spawn → running | spawn → first reconcile | VmRSS converged |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
const medians = variants.map((variant) => {
  const mine = runs.filter((r) => r.variant === variant.name);
  const median = (f: (r: Run) => number): number => percentile(mine.map(f), 0.5);
  const m = {
    cpu: median((r) => r.operatorCpuS),
    main: median((r) => r.mainThreadCpuS),
    perSite: median((r) => (r.operatorCpuS / count) * 1000),
    perReconcile: median((r) => (r.operatorCpuS / r.reconciles) * 1000),
    rate: median((r) => count / r.convergedS),
    apiServer: median((r) => r.apiServerCpuS),
    etcd: median((r) => r.etcdCpuS),
    running: median((r) => r.runningMs),
    first: median((r) => r.firstReconcileMs),
    rss: median((r) => r.rssMiB),
  };
  console.log(`| ${variant.name} | ${m.cpu.toFixed(2)} s | ${m.main.toFixed(2)} s | ${m.perSite.toFixed(2)} ms | ${m.perReconcile.toFixed(2)} ms | ${m.rate.toFixed(1)} | `
    + `${m.apiServer.toFixed(1)} s | ${m.etcd.toFixed(1)} s | ${m.running.toFixed(0)} ms | ${m.first.toFixed(0)} ms | ${m.rss.toFixed(0)} MiB |`);
  return m;
});
const [before, after, unflagged] = medians as [typeof medians[0], typeof medians[0], typeof medians[0]];
console.log(`\nthis code / baseline: CPU per converged object ${(after.perSite / before.perSite).toFixed(2)}, objects/s ${(after.rate / before.rate).toFixed(2)}, `
  + `kube-apiserver CPU ${(after.apiServer / before.apiServer).toFixed(2)}, spawn → first reconcile ${(after.first / before.first).toFixed(2)}`);
console.log(`with / without ${OPERATOR_NODE_FLAGS.join(' ')}: operator CPU ${(after.cpu / unflagged.cpu).toFixed(2)}, VmRSS ${(after.rss / unflagged.rss).toFixed(2)}`);

for (const variant of variants.slice(0, 2)) {
  const profileDir = mkdtempSync(join(REPO_ROOT, '.tmp', 'cpu-profile-'));
  await converge({ ...variant, nodeArgs: [...variant.nodeArgs, '--cpu-prof', `--cpu-prof-dir=${profileDir}`] }, rounds + 1);
  const [file] = readdirSync(profileDir).filter((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error(`${variant.name} wrote no CPU profile in ${profileDir}`);
  console.log(`\nwhere the CPU went, ${variant.name} (one run under --cpu-prof, ${join(profileDir, file)}):`);
  console.log(formatSummary(summarizeProfile(readFileSync(join(profileDir, file), 'utf8'), variant.entry)));
}

async function converge(variant: Variant, round: number): Promise<Run> {
  return onFreshPlane(async (plane, kubeConfig) => {
    const namespace = `cpu-${round}`;
    const { watch } = await watchedObjects(plane, kubeConfig, namespace, count);
    const { apiServer, etcd } = plane.componentPids();
    const serverBefore = { apiServer: cpuSeconds(apiServer!), etcd: cpuSeconds(etcd!) };
    const spawnAt = performance.now();
    const replica = await Replica.start({
      entry: variant.entry,
      nodeArgs: variant.nodeArgs,
      name: `cpu-${round}`,
      kubeconfig: plane.kubeconfigPath,
      leaseNamespace: namespace,
      watchNamespace: namespace,
      env: { LEADER_ELECTION: 'false', LOG_LEVEL: 'info', MAX_CONCURRENT_RECONCILES: '2' },
    });
    try {
      const done = watch.untilConverged(30 * 60_000, { count });
      await replica.running(120_000);
      const running = replica.messages('running')[0]!;
      const first = await replica.waitForMessage('reconciled', 120_000);
      const convergedAt = await done;
      const operatorCpuS = cpuSeconds(replica.pid);
      const threads = threadCpuSeconds(replica.pid);
      return {
        variant: variant.name,
        round,
        operatorCpuS,
        mainThreadCpuS: threads.MainThread ?? Number.NaN,
        rssMiB: rssMiB(replica.pid),
        reconciles: replica.messages('reconciled').length,
        convergedS: (convergedAt - spawnAt) / 1000,
        apiServerCpuS: cpuSeconds(apiServer!) - serverBefore.apiServer,
        etcdCpuS: cpuSeconds(etcd!) - serverBefore.etcd,
        runningMs: running.receivedAtMs - spawnAt,
        firstReconcileMs: first.receivedAtMs - spawnAt,
        load: loadAverage(),
      };
    } finally {
      await replica.stop();
      await watch.stop();
    }
  });
}

/** dist/main.mjs of `rev`, built by that commit's own hack/build.ts from its own lockfile; cached per commit. */
function baselineBundle(rev: string): string {
  const commit = execFileSync('git', ['rev-parse', '--verify', `${rev}^{commit}`], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
  const dir = join(REPO_ROOT, '.tmp', 'baseline', commit);
  const bundle = join(dir, 'dist', 'main.mjs');
  if (existsSync(bundle)) return bundle;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  console.log(`building the bundle of ${rev} (${commit}) in ${dir}`);
  execFileSync('sh', ['-c', `git archive ${commit} | tar -x -C "${dir}"`], { cwd: REPO_ROOT, stdio: 'inherit' });
  execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--ignore-scripts'], { cwd: dir, stdio: 'inherit' });
  execFileSync(process.execPath, ['hack/build.ts'], { cwd: dir, stdio: 'inherit' });
  return bundle;
}
