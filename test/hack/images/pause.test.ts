import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PAUSE_IMAGE } from '../../../hack/images/pause.ts';
import { sharedLibraries } from '../../../hack/images/shared-libraries.ts';
import { builtImage, expectConsistentLayout, type ReadImage } from './archive.ts';

describe('hack/images/pause.ts: the pod sandbox image', function () {
  this.timeout(60_000);
  let image: ReadImage;
  let dir: string;
  let pause: string;

  before(async () => {
    image = await builtImage(PAUSE_IMAGE);
    dir = mkdtempSync(join(tmpdir(), 'pause-test-'));
    pause = join(dir, 'pause');
    writeFileSync(pause, image.layer.get('/pause')!.content, { mode: 0o755 });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('is a consistent archive', () => expectConsistentLayout(image, PAUSE_IMAGE));

  it('runs /pause, alone in its layer, as 65535', () => {
    expect(image.imageConfig.config).to.deep.include({ Entrypoint: ['/pause'], User: '65535:65535' });
    expect([...image.layer.keys()]).to.deep.equal(['/pause']);
    expect(image.layer.get('/pause')!.header.mode).to.equal(0o755);
  });

  it('is a static binary (the image has no libraries)', async () => {
    expect(await sharedLibraries(pause)).to.deep.equal([]);
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`exits 0 on ${signal}`, async () => {
      const child = spawn(pause, { stdio: ['ignore', 'ignore', 'pipe'] });
      const exited = new Promise<[number | null, string | null]>((resolve) => child.once('exit', (code, sig) => resolve([code, sig])));
      // The line it writes once its handlers are in place.
      await new Promise((resolve) => child.stderr.once('data', resolve));
      child.kill(signal);
      expect(await exited).to.deep.equal([0, null]);
    });
  }
});
