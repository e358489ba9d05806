import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { REPO_ROOT } from '../../../hack/lib/replica.ts';

/**
 * The project copied as a starter, the way README's "Copying it as a
 * starter" says: a fresh copy of the checkout, `make new-kind` for a Backup
 * that owns a CronJob, `make remove-kind` for the Website, `make rename`,
 * then the copy's own typecheck, lint and unit tests, and its new kind's
 * integration test and the bundled operator running as the ServiceAccount,
 * against a real control plane the copy starts itself.
 */

const run = promisify(execFile);
const NEW_NAME = 'backup-operator';
/** What hack/lib/go-build.sh caches the Go builds under: the renamed copy is pointed at it (BACKUP_OPERATOR_CACHE), so nothing is built again. */
const GO_CACHE = process.env.HA_OPERATOR_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'ha-operator');

/** Runs `command` in the copy; resolves with its output, or fails with it. */
async function inCopy(copy: string, command: string, args: string[], timeoutMs = 300_000): Promise<string> {
  try {
    const env = { ...process.env, BACKUP_OPERATOR_CACHE: GO_CACHE };
    const { stdout, stderr } = await run(command, args, { cwd: copy, env, timeout: timeoutMs, maxBuffer: 64 * 2 ** 20 });
    return stdout + stderr;
  } catch (error) {
    const failed = error as Error & { stdout?: string; stderr?: string };
    throw new Error(`${command} ${args.join(' ')} failed in the copy: ${failed.message}\n${failed.stdout ?? ''}\n${failed.stderr ?? ''}`.slice(-20_000), { cause: error });
  }
}

describe('the project copied as a starter: a new kind in, the Website out', function () {
  this.timeout(600_000);
  let copy: string;
  // node_modules is the checkout's own (a symlink), so nothing is installed: make's
  // NODE_DEPS prerequisite is emptied rather than letting npm ci write through the link.
  const make = (...targets: string[]): Promise<string> => inCopy(copy, 'make', ['--no-print-directory', 'NODE_DEPS=', ...targets]);

  before(() => {
    copy = mkdtempSync(join(tmpdir(), 'ha-operator-copy-'));
    // The files a clone has (tracked, and new ones not ignored): no build output, no caches.
    const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], { cwd: REPO_ROOT, encoding: 'utf8' })
      .split('\0').filter((file) => file !== '' && existsSync(join(REPO_ROOT, file)));
    for (const file of files) {
      mkdirSync(dirname(join(copy, file)), { recursive: true });
      cpSync(join(REPO_ROOT, file), join(copy, file), { preserveTimestamps: true });
    }
    symlinkSync(join(REPO_ROOT, 'node_modules'), join(copy, 'node_modules'));
  });
  after(() => {
    if (copy) rmSync(copy, { recursive: true, force: true });
  });

  it('make new-kind KIND=Backup OWNS=batch/v1/CronJob writes eleven files and registers the kind in four', async () => {
    const output = await make('new-kind', 'KIND=Backup', 'OWNS=batch/v1/CronJob');
    const written = [...output.matchAll(/^ {2}wrote (\S+)$/gm)].map((m) => m[1]);
    const changed = [...output.matchAll(/^ {2}changed (\S+)$/gm)].map((m) => m[1]);
    expect(written).to.deep.equal([
      'src/backup/schema.ts', 'src/backup/types.ts', 'src/backup/crd.ts', 'src/backup/desired.ts', 'src/backup/reconcile.ts',
      'src/backup/controller.ts', 'src/backup/profile.ts', 'test/backup/backup.test.ts', 'test/integration/backup/backup.test.ts',
      'samples/backup.yaml', 'crds/backups.yaml',
    ]);
    expect(changed).to.deep.equal(['src/main.ts', 'hack/kinds.ts', 'crds/kustomization.yaml', 'manifests/base/rbac.yaml']);
    expect(readFileSync(join(copy, 'crds/backups.yaml'), 'utf8')).to.include('name: backups.ha-operator.example.com');
    // A second run refuses to overwrite anything.
    const again = await make('new-kind', 'KIND=Backup', 'OWNS=batch/v1/CronJob').then(() => 'succeeded', (error: Error) => error.message);
    expect(again).to.include('not overwriting what exists: src/backup/schema.ts');
  });

  it('make remove-kind KIND=Website takes the Website out, and the Backup becomes the sample kind', async () => {
    await make('remove-kind', 'KIND=Website');
    for (const gone of ['src/website', 'test/website', 'test/integration/website', 'crds/websites.yaml', 'samples/hello.yaml']) {
      expect(existsSync(join(copy, gone)), gone).to.equal(false);
    }
    expect(readFileSync(join(copy, 'hack/kinds.ts'), 'utf8')).to.include('SAMPLE_KIND: KindProfile = BACKUP_PROFILE;');
    const rbac = readFileSync(join(copy, 'manifests/base/rbac.yaml'), 'utf8');
    expect(rbac).to.not.include('websites');
    expect(rbac).to.include('resources: [backups/status]');
  });

  it(`make rename NAME=${NEW_NAME} renames the project: package, namespace, field manager, API group, alerts`, async () => {
    const output = await make('rename', `NAME=${NEW_NAME}`);
    expect(output).to.include('moved alerts/ha-operator.rules.yaml → alerts/backup-operator.rules.yaml');
    expect((JSON.parse(readFileSync(join(copy, 'package.json'), 'utf8')) as { name: string }).name).to.equal(NEW_NAME);
    expect(readFileSync(join(copy, 'manifests/base/namespace.yaml'), 'utf8')).to.include(`name: ${NEW_NAME}`);
    expect(readFileSync(join(copy, 'src/runtime/run.ts'), 'utf8')).to.include(`const FIELD_MANAGER = '${NEW_NAME}';`);
    expect(readFileSync(join(copy, 'crds/backups.yaml'), 'utf8')).to.include(`name: backups.${NEW_NAME}.example.com`);
    expect(readFileSync(join(copy, 'alerts/backup-operator.rules.yaml'), 'utf8')).to.include('alert: BackupOperatorNoLeader');
    // grep -r does not follow the node_modules link; it exits 1 when it finds nothing.
    const left = spawnSync('grep', ['-rlI', '-e', 'ha-operator', '-e', 'HA_OPERATOR', '-e', 'HaOperator', '.'], { cwd: copy, encoding: 'utf8' });
    expect([left.status, left.stdout], 'files still naming ha-operator').to.deep.equal([1, '']);
  });

  it('typechecks, lints and passes its unit tests: make typecheck lint test-unit', async () => {
    const output = await make('typecheck', 'lint', 'test-unit');
    expect(output).to.match(/^ {2}Backup: its CronJob and its status$/m);
    expect(output).to.match(/^ {2}\d+ passing/m);
  });

  it('passes the Backup\'s integration test and runs as the ServiceAccount with no 403, against a control plane of its own', async () => {
    const output = await inCopy(copy, join(REPO_ROOT, 'node_modules/.bin/mocha'), [
      '--require', 'test/integration/hooks.ts', '--extension', 'ts', '--timeout', '60000', '--forbid-only', '--forbid-pending',
      'test/integration/backup/backup.test.ts', 'test/integration/manifests/operator.test.ts', 'test/integration/manifests/rbac.test.ts',
    ]);
    expect(output).to.include('leaves alone a CronJob of that name that it does not control');
    expect(output).to.include('reconciles a Backup, its children and its status');
    expect(output).to.match(/^ {2}\d+ passing/m);
    expect(output).to.not.match(/^ {2}\d+ failing/m);
  });
});
