import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { OPERATOR_IMAGE, PAUSE_IMAGE, WEB_IMAGE } from '../../../hack/images/build.ts';
import { builtImages, readImageArchive } from './archive.ts';

const run = promisify(execFile);
const script = join(import.meta.dirname, '..', '..', '..', 'hack', 'images', 'build.ts');

describe('hack/images/build.ts: the images, built here', function () {
  this.timeout(120_000);
  let dir: string;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'images-cli-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('builds the pause, web and operator images', async () => {
    expect((await builtImages()).map(({ name }) => name)).to.deep.equal([PAUSE_IMAGE, WEB_IMAGE, OPERATOR_IMAGE]);
  });

  it('builds them again, byte for byte, from the command line, which prints each name and archive', async () => {
    const { stdout } = await run(process.execPath, [script, dir]);
    const printed = stdout.trim().split('\n').map((line) => line.split(' '));
    const first = await builtImages();
    expect(printed.map(([name]) => name)).to.deep.equal(first.map(({ name }) => name));
    for (const [[name, archivePath = ''], { manifestDigest }] of printed.map((line, i) => [line, first[i]!] as const)) {
      expect(dirname(archivePath), name).to.equal(dir);
      expect(basename(archivePath), name).to.equal(basename(first.find((image) => image.name === name)!.archivePath));
      expect((await readImageArchive(archivePath)).index.manifests[0]!.digest, name).to.equal(manifestDigest);
    }
  });
});
