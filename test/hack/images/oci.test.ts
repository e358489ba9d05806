import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { directory, file, layerTar, symlink } from '../../../hack/images/layer.ts';
import { tagOf, writeImageArchive, type Image } from '../../../hack/images/oci.ts';
import { expectConsistentLayout, readImageArchive } from './archive.ts';

const image: Image = {
  name: 'ha-operator.local/sample:0.1',
  config: { Entrypoint: ['/bin/sample'], User: '65532:65532', Env: ['PATH=/bin'] },
  files: [
    file('/bin/sample', '#!/bin/sample\n', 0o755),
    symlink('/usr/bin/sample', '/bin/sample'),
    directory('/tmp', 0o1777),
    file('/etc/deep/down/config', 'x'),
  ],
};

describe('hack/images/oci.ts: an image as an OCI archive', () => {
  let dir: string;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'oci-test-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('writes a layout whose blobs, sizes, diff_ids and annotations agree', async () => {
    const written = await writeImageArchive(image, join(dir, 'sample.tar'));
    expect(written).to.include({ name: image.name, archivePath: join(dir, 'sample.tar') });
    const read = await readImageArchive(written.archivePath);
    expectConsistentLayout(read, image.name);
    expect(read.index.manifests[0]!.digest).to.equal(written.manifestDigest);
    expect(read.imageConfig.config).to.deep.equal(image.config);
  });

  it('writes the same bytes for the same image', async () => {
    const [a, b] = [join(dir, 'a.tar'), join(dir, 'b.tar')];
    await writeImageArchive(image, a);
    await writeImageArchive(structuredClone({ ...image, files: [...image.files].reverse() }), b);
    expect(readFileSync(a).equals(readFileSync(b))).to.be.true;
  });

  it('keeps modes and link targets, and adds the missing parent directories', async () => {
    const { layer } = await readImageArchive((await writeImageArchive(image, join(dir, 'modes.tar'))).archivePath);
    expect([...layer.keys()]).to.deep.equal(['/bin', '/bin/sample', '/etc', '/etc/deep', '/etc/deep/down', '/etc/deep/down/config', '/tmp', '/usr', '/usr/bin', '/usr/bin/sample']);
    expect(layer.get('/bin/sample')!.header.mode).to.equal(0o755);
    expect(layer.get('/tmp')!.header.mode).to.equal(0o1777);
    expect(layer.get('/etc/deep')!.header.mode).to.equal(0o755);
    expect(layer.get('/usr/bin/sample')!.header).to.include({ type: 'symlink', linkname: '/bin/sample' });
    expect(layer.get('/etc/deep/down/config')!.content.toString()).to.equal('x');
  });

  it('refuses a path given twice, a relative path, and a file where a directory must be', async () => {
    await expectRejection(layerTar([file('/a', 'x'), file('/a', 'y')]), '"/a" is given twice');
    await expectRejection(layerTar([file('etc/passwd', 'x')]), '"etc/passwd" is not an absolute path');
    await expectRejection(layerTar([file('/a', 'x'), file('/a/b', 'y')]), '"/a" is a file, but "/a/b" needs it to be a directory');
  });

  it('refuses an image name without a tag, or tagged latest (the kubelet would always pull it)', () => {
    expect(tagOf('ha-operator.local/pause:1')).to.equal('1');
    expect(() => tagOf('localhost:5000/pause')).to.throw('needs a tag other than latest');
    expect(() => tagOf('ha-operator.local/pause:latest')).to.throw('needs a tag other than latest');
  });
});

async function expectRejection(promise: Promise<unknown>, message: string): Promise<void> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error).to.be.instanceOf(Error);
  expect((error as Error).message).to.include(message);
}
