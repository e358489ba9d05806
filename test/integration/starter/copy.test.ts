import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { expect } from 'chai';
import { KINDS, SAMPLE_KIND } from '../../../hack/kinds.ts';
import { REPO_ROOT } from '../../../hack/lib/replica.ts';
import { kindNames } from '../../../hack/scaffold/names.ts';
import { nameForms } from '../../../hack/scaffold/rename.ts';
import { projectFiles } from '../../../hack/scaffold/tree.ts';

/**
 * The project copied as a starter, the way README's "Copying it as a
 * starter" says: a fresh copy of the checkout, `make new-kind` for a Backup
 * that owns a CronJob, `make remove-kind` for the sample kind (the Website),
 * `make rename`, then the copy's own typecheck, lint and unit tests, and its
 * new kind's integration test and the bundled operator running as the
 * ServiceAccount, against a real control plane the copy starts itself.
 *
 * Nothing here assumes the template as shipped: in a project made from it
 * (where a Backup may exist and the Website is gone) the test adds another
 * kind and removes that project's sample kind, so the copy can be copied again.
 */

const run = promisify(execFile);
const PROJECT = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { name: string }).name;
const PROJECT_NAMES = nameForms(PROJECT);
const NEW = kindNames(KINDS.some((k) => k.resource.kind === 'Backup') ? 'Snapshot' : 'Backup');
const REMOVED = kindNames(SAMPLE_KIND.resource.kind);
const NEW_NAME = `${NEW.singular}-operator` === PROJECT ? `${NEW.singular}-copy-operator` : `${NEW.singular}-operator`;
const NEW_NAMES = nameForms(NEW_NAME);
/** What hack/lib/go-build.sh caches the Go builds under: the renamed copy is pointed at it, so nothing is built again. */
const GO_CACHE = process.env[`${PROJECT_NAMES.constant}_CACHE`] ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), PROJECT);
/** The files a clone has: git's tracked and new files not ignored, or, outside a git checkout, every file of the project. */
function cloneFiles(): string[] {
  if (!existsSync(join(REPO_ROOT, '.git'))) return projectFiles(REPO_ROOT);
  return execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], { cwd: REPO_ROOT, encoding: 'utf8' })
    .split('\0').filter((file) => file !== '' && existsSync(join(REPO_ROOT, file)));
}

/** Runs `command` in the copy; resolves with its output, or fails with it. */
async function inCopy(copy: string, command: string, args: string[], timeoutMs = 300_000): Promise<string> {
  try {
    const env = { ...process.env, [`${NEW_NAMES.constant}_CACHE`]: GO_CACHE };
    const { stdout, stderr } = await run(command, args, { cwd: copy, env, timeout: timeoutMs, maxBuffer: 64 * 2 ** 20 });
    return stdout + stderr;
  } catch (error) {
    const failed = error as Error & { stdout?: string; stderr?: string };
    throw new Error(`${command} ${args.join(' ')} failed in the copy: ${failed.message}\n${failed.stdout ?? ''}\n${failed.stderr ?? ''}`.slice(-20_000), { cause: error });
  }
}

describe(`the project copied as a starter: ${NEW.kind} in, ${REMOVED.kind} out, renamed ${NEW_NAME}`, function () {
  this.timeout(600_000);
  let copy: string;
  // node_modules is the checkout's own (a symlink), so nothing is installed: make's
  // NODE_DEPS prerequisite is emptied rather than letting npm ci write through the link.
  const make = (...targets: string[]): Promise<string> => inCopy(copy, 'make', ['--no-print-directory', 'NODE_DEPS=', ...targets]);

  before(() => {
    copy = mkdtempSync(join(tmpdir(), `${PROJECT}-copy-`));
    for (const file of cloneFiles()) {
      mkdirSync(dirname(join(copy, file)), { recursive: true });
      cpSync(join(REPO_ROOT, file), join(copy, file), { preserveTimestamps: true });
    }
    symlinkSync(join(REPO_ROOT, 'node_modules'), join(copy, 'node_modules'));
  });
  after(() => {
    if (copy) rmSync(copy, { recursive: true, force: true });
  });

  it(`make new-kind KIND=${NEW.kind} OWNS=batch/v1/CronJob writes eleven files and registers the kind in four`, async () => {
    const output = await make('new-kind', `KIND=${NEW.kind}`, 'OWNS=batch/v1/CronJob');
    const written = [...output.matchAll(/^ {2}wrote (\S+)$/gm)].map((m) => m[1]);
    const changed = [...output.matchAll(/^ {2}changed (\S+)$/gm)].map((m) => m[1]);
    const { dir, plural } = NEW;
    expect(written).to.deep.equal([
      ...['schema', 'types', 'crd', 'desired', 'reconcile', 'controller', 'profile'].map((file) => `src/${dir}/${file}.ts`),
      `test/${dir}/${dir}.test.ts`, `test/integration/${dir}/${dir}.test.ts`, `samples/${dir}.yaml`, `crds/${plural}.yaml`,
    ]);
    expect(changed).to.deep.equal(['src/main.ts', 'hack/kinds.ts', 'crds/kustomization.yaml', 'manifests/base/rbac.yaml']);
    expect(readFileSync(join(copy, `crds/${plural}.yaml`), 'utf8')).to.include(`name: ${plural}.${PROJECT}.example.com`);
    // A second run refuses to overwrite anything.
    const again = await make('new-kind', `KIND=${NEW.kind}`, 'OWNS=batch/v1/CronJob').then(() => 'succeeded', (error: Error) => error.message);
    expect(again).to.include(`not overwriting what exists: src/${dir}/schema.ts`);
  });

  it(`make remove-kind KIND=${REMOVED.kind} takes it out, and the ${NEW.kind} becomes the sample kind`, async () => {
    await make('remove-kind', `KIND=${REMOVED.kind}`);
    for (const gone of [`src/${REMOVED.dir}`, `test/${REMOVED.dir}`, `test/integration/${REMOVED.dir}`, `crds/${REMOVED.plural}.yaml`]) {
      expect(existsSync(join(copy, gone)), gone).to.equal(false);
    }
    const samples = readdirSync(join(copy, 'samples')).flatMap((file) => parseAllDocuments(readFileSync(join(copy, 'samples', file), 'utf8')).map((d) => (d.toJS() as { kind: string }).kind));
    expect(samples).to.include(NEW.kind).and.not.include(REMOVED.kind);
    expect(readFileSync(join(copy, 'hack/kinds.ts'), 'utf8')).to.include(`SAMPLE_KIND: KindProfile = ${NEW.constant}_PROFILE;`);
    const rbac = readFileSync(join(copy, 'manifests/base/rbac.yaml'), 'utf8');
    expect(rbac).to.not.include(`# kind ${REMOVED.kind}: begin`);
    expect(rbac).to.include(`resources: [${NEW.plural}/status]`);
  });

  it(`make rename NAME=${NEW_NAME} renames the project: package, namespace, field manager, API group, alerts`, async () => {
    const output = await make('rename', `NAME=${NEW_NAME}`);
    expect(output).to.include(`moved alerts/${PROJECT}.rules.yaml → alerts/${NEW_NAME}.rules.yaml`);
    expect((JSON.parse(readFileSync(join(copy, 'package.json'), 'utf8')) as { name: string }).name).to.equal(NEW_NAME);
    expect(readFileSync(join(copy, 'manifests/base/namespace.yaml'), 'utf8')).to.include(`name: ${NEW_NAME}`);
    expect(readFileSync(join(copy, 'src/runtime/run.ts'), 'utf8')).to.include(`const FIELD_MANAGER = '${NEW_NAME}';`);
    expect(readFileSync(join(copy, `crds/${NEW.plural}.yaml`), 'utf8')).to.include(`name: ${NEW.plural}.${NEW_NAME}.example.com`);
    expect(readFileSync(join(copy, `alerts/${NEW_NAME}.rules.yaml`), 'utf8')).to.include(`alert: ${NEW_NAMES.pascal}NoLeader`);
    // grep -r does not follow the node_modules link; it exits 1 when it finds nothing.
    const left = spawnSync('grep', ['-rlI', '-e', PROJECT_NAMES.kebab, '-e', PROJECT_NAMES.constant, '-e', PROJECT_NAMES.pascal, '.'], { cwd: copy, encoding: 'utf8' });
    expect([left.status, left.stdout], `files still naming ${PROJECT}`).to.deep.equal([1, '']);
  });

  it('typechecks, lints and passes its unit tests: make typecheck lint test-unit', async () => {
    const output = await make('typecheck', 'lint', 'test-unit');
    expect(output).to.include(`  ${NEW.kind}: its CronJob and its status\n`);
    expect(output).to.match(/^ {2}\d+ passing/m);
  });

  it(`passes the ${NEW.kind}'s integration test and runs as the ServiceAccount with no 403, against a control plane of its own`, async () => {
    const output = await inCopy(copy, join(REPO_ROOT, 'node_modules/.bin/mocha'), [
      '--require', 'test/integration/hooks.ts', '--extension', 'ts', '--timeout', '60000', '--forbid-only', '--forbid-pending',
      `test/integration/${NEW.dir}/${NEW.dir}.test.ts`, 'test/integration/manifests/operator.test.ts', 'test/integration/manifests/rbac.test.ts',
    ]);
    expect(output).to.include('leaves alone a CronJob of that name that it does not control');
    expect(output).to.include(`reconciles a ${NEW.kind}, its children and its status`);
    expect(output).to.match(/^ {2}\d+ passing/m);
    expect(output).to.not.match(/^ {2}\d+ failing/m);
  });
});
