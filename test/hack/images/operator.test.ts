import { expect } from 'chai';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';
import { DISTROLESS_BASE, OPERATOR_IMAGE } from '../../../hack/images/operator.ts';
import { sharedLibraries } from '../../../hack/images/shared-libraries.ts';
import { builtImage, expectConsistentLayout, type ReadImage } from './archive.ts';
import { dockerfileStages, envVariables, type Instruction, type Stage } from './dockerfile.ts';

const repoRoot = join(import.meta.dirname, '..', '..', '..');
const stages = dockerfileStages(readFileSync(join(repoRoot, 'Dockerfile'), 'utf8'));
const runtime = stages.at(-1)!;

function all(stage: Stage, keyword: string): Instruction[] {
  return stage.instructions.filter((instruction) => instruction.keyword === keyword);
}

/** The last one's value, as Docker takes it for WORKDIR, USER, CMD. */
function last(stage: Stage, keyword: string): string {
  const found = all(stage, keyword).at(-1);
  if (found === undefined) throw new Error(`the Dockerfile's stage FROM ${stage.base} has no ${keyword}`);
  return found.args;
}

/** Every file below a directory of the repository, by its path relative to that directory. */
function filesBelow(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((name) => statSync(join(dir, name)).isFile());
}

describe('hack/images/operator.ts: the operator image agrees with the Dockerfile\'s runtime stage', function () {
  this.timeout(120_000);
  let image: ReadImage;

  before(async () => {
    image = await builtImage(OPERATOR_IMAGE);
  });

  it('is a consistent archive', () => expectConsistentLayout(image, OPERATOR_IMAGE));

  it('stands in for the base the stage is built FROM (whose entrypoint it copies)', () => {
    expect(runtime.base).to.equal(DISTROLESS_BASE.image);
    expect(image.imageConfig.config.Entrypoint).to.deep.equal(DISTROLESS_BASE.entrypoint);
  });

  it('reproduces every instruction of the stage (one this test does not know fails it)', () => {
    expect(runtime.instructions.map(({ keyword }) => keyword)).to.satisfy(
      (keywords: string[]) => keywords.every((keyword) => ['WORKDIR', 'ENV', 'COPY', 'USER', 'EXPOSE', 'CMD'].includes(keyword)),
    );
  });

  it('has its WORKDIR, USER, CMD, EXPOSE and ENV (after the base\'s)', () => {
    const { config } = image.imageConfig;
    expect(config.WorkingDir).to.equal(last(runtime, 'WORKDIR'));
    expect(config.User).to.equal(last(runtime, 'USER'));
    expect(config.Cmd).to.deep.equal(JSON.parse(last(runtime, 'CMD')));
    const ports = all(runtime, 'EXPOSE').flatMap(({ args }) => args.split(/\s+/)).map((port) => (port.includes('/') ? port : `${port}/tcp`));
    expect(config.ExposedPorts).to.deep.equal(Object.fromEntries(ports.map((port) => [port, {}])));
    expect(config.Env).to.deep.equal([...DISTROLESS_BASE.env, ...all(runtime, 'ENV').flatMap(({ args }) => envVariables(args))]);
  });

  it('holds, under the WORKDIR, exactly the files the stage COPYs from the build stage, as hack/build.ts built them', () => {
    const workdir = last(runtime, 'WORKDIR');
    const expected = new Map<string, Buffer>();
    for (const { args } of all(runtime, 'COPY')) {
      const [, from, source, destination] = /^--from=(\S+)\s+(\S+)\s+(\S+)$/.exec(args) ?? [];
      const build = stages.find((stage) => stage.name === from);
      if (build === undefined || source === undefined || destination === undefined) {
        throw new Error(`COPY ${args}: this test reads only COPY --from=STAGE SOURCE DESTINATION of a stage in the Dockerfile`);
      }
      // The build stage lays the repository out under its WORKDIR and bundles there, as `node hack/build.ts` does here.
      const inRepo = join(repoRoot, posix.relative(last(build, 'WORKDIR'), source));
      for (const name of filesBelow(inRepo)) expected.set(posix.resolve(workdir, destination, name), readFileSync(join(inRepo, name)));
    }
    const underWorkdir = [...image.layer].filter(([path, { header }]) => path.startsWith(`${workdir}/`) && header.type === 'file');
    expect(underWorkdir.map(([path]) => path).sort()).to.deep.equal([...expected.keys()].sort());
    for (const [path, { content }] of underWorkdir) expect(content.equals(expected.get(path)!), `${path} is the built file`).to.be.true;
    expect([...expected.keys()]).to.include(posix.join(workdir, 'dist', 'main.mjs'));
  });

  it('runs the project\'s Node binary at the entrypoint, with its loader and libraries at the paths it asks for', async () => {
    const node = join(repoRoot, 'node_modules', 'node', 'bin', 'node');
    const entrypoint = image.layer.get(DISTROLESS_BASE.entrypoint[0])!;
    expect(entrypoint.header.mode).to.equal(0o755);
    expect(entrypoint.content.equals(readFileSync(node))).to.be.true;
    const libraries = await sharedLibraries(node);
    expect(libraries.some((path) => path.includes('/ld-linux')), 'the dynamic loader').to.be.true;
    for (const path of libraries) expect(image.layer.get(path)?.content.equals(readFileSync(path)), path).to.be.true;
  });

  it('gives the nonroot user a name and a /tmp, as distroless does', () => {
    expect(image.layer.get('/etc/passwd')!.content.toString()).to.match(/^nonroot:x:65532:65532:/m);
    expect(image.layer.get('/tmp')!.header).to.include({ type: 'directory', mode: 0o1777 });
  });
});
