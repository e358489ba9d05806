import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import type { V1Container } from '@kubernetes/client-node';
import { NONROOT_UID } from '../../hack/images/base-files.ts';
import { BUSYBOX, WEB_IMAGE, WEB_PORT, WEB_ROOT } from '../../hack/images/web.ts';
import { desiredChildren } from '../../src/website/desired.ts';
import type { Website } from '../../src/website/types.ts';
import { builtImage, expectConsistentLayout, type ReadImage } from '../hack/images/archive.ts';

/** The container a Website with this image runs, as the operator asks for it. */
function websiteContainer(): V1Container {
  const website: Website = {
    apiVersion: 'ha-operator.example.com/v1alpha1',
    kind: 'Website',
    metadata: { name: 'hello', namespace: 'web', uid: '6f1c1e8e-2c1a-4c55-9d4e-0b7d5a0e9c11', generation: 1 },
    spec: { replicas: 1, image: WEB_IMAGE, html: '<h1>hi</h1>', serviceType: 'ClusterIP' },
  };
  const children = desiredChildren(website);
  if ('reason' in children) throw new Error(`the Website with ${WEB_IMAGE} is an InvalidSpec: ${children.message}`);
  return children.deployment.spec!.template.spec!.containers[0]!;
}

describe('hack/images/web.ts: the Websites\' web server image', function () {
  this.timeout(60_000);
  let image: ReadImage;

  before(async () => {
    image = await builtImage(WEB_IMAGE);
  });

  it('is a consistent archive', () => expectConsistentLayout(image, WEB_IMAGE));

  it('serves the web root on its port with busybox httpd in the foreground, under a shell that exits on SIGTERM', () => {
    const { Entrypoint, ExposedPorts } = image.imageConfig.config;
    expect(ExposedPorts).to.deep.equal({ [`${WEB_PORT}/tcp`]: {} });
    expect(Entrypoint.slice(0, 2)).to.deep.equal(['/bin/sh', '-c']);
    expect(Entrypoint[2]).to.include(`httpd -f -p ${WEB_PORT} -h ${WEB_ROOT}`).and.to.match(/^trap 'exit 0' TERM INT;/);
  });

  it('holds busybox-static with its applets linked, a default page, and /tmp', () => {
    const { layer } = image;
    expect(layer.get(BUSYBOX)!.header.mode).to.equal(0o755);
    expect(layer.get(BUSYBOX)!.content.equals(readFileSync(BUSYBOX))).to.be.true;
    for (const applet of ['/bin/sh', '/bin/cat', '/usr/bin/wget', '/usr/sbin/httpd']) {
      expect(layer.get(applet)?.header, applet).to.include({ type: 'symlink', linkname: BUSYBOX });
    }
    expect(layer.get(`${WEB_ROOT}/index.html`)!.content.toString()).to.include('<title>');
    expect(layer.get('/tmp')!.header).to.include({ type: 'directory', mode: 0o1777 });
  });

  it('runs as nonroot, a number the kubelet can check and a name the user database holds', () => {
    expect(image.imageConfig.config.User).to.equal(`${NONROOT_UID}:${NONROOT_UID}`);
    expect(image.layer.get('/etc/passwd')!.content.toString()).to.match(new RegExp(`^nonroot:x:${NONROOT_UID}:${NONROOT_UID}:`, 'm'));
    expect(image.layer.get('/etc/group')!.content.toString()).to.match(new RegExp(`^nonroot:x:${NONROOT_UID}:`, 'm'));
    expect(image.imageConfig.config.Env).to.include('PATH=/usr/sbin:/usr/bin:/sbin:/bin');
  });

  describe('works unchanged under the Website\'s Deployment', () => {
    const container = websiteContainer();

    it('which sets no command or args, so the image\'s entrypoint runs', () => {
      expect(container.command).to.equal(undefined);
      expect(container.args).to.equal(undefined);
    });

    it('which sends traffic and probes to the port the image listens on', () => {
      expect(container.ports).to.deep.equal([{ name: 'http', containerPort: WEB_PORT }]);
      expect(container.readinessProbe?.httpGet).to.deep.equal({ path: '/', port: 'http' });
      expect(container.livenessProbe?.httpGet).to.deep.equal({ path: '/', port: 'http' });
    });

    it('which mounts the page over the web root and gives /tmp the only writable place', () => {
      expect(container.volumeMounts?.map(({ mountPath }) => mountPath)).to.have.members([WEB_ROOT, '/tmp']);
      expect(container.securityContext?.readOnlyRootFilesystem).to.be.true;
    });
  });
});
