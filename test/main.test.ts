import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { join } from 'node:path';

const MAIN = join(import.meta.dirname, '..', 'src', 'main.ts');

/** Runs the program to its exit with `env` added; resolves with its exit code and output. */
function run(env: Record<string, string>): Promise<{ code: number | null; stderr: string; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN], { env: { PATH: process.env.PATH ?? '', POD_NAME: 'main-test', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr, stdout }));
  });
}

describe('main: start-up failures the user can act on', function () {
  this.timeout(30_000);

  it('a kubeconfig that cannot be read: exit 2 with one clear line naming it, no stack trace', async () => {
    const { code, stderr, stdout } = await run({ KUBECONFIG: '/nonexistent/kubeconfig' });
    expect(code).to.equal(2);
    expect(stdout).to.equal('');
    expect(stderr.trim().split('\n')).to.deep.equal([
      'ha-operator: cannot load the kubeconfig: ENOENT: no such file or directory, open \'/nonexistent/kubeconfig\'',
    ]);
  });

  it('invalid configuration: exit 2 with the problems, one per line', async () => {
    const { code, stderr } = await run({ HTTP_PORT: 'eighty' });
    expect(code).to.equal(2);
    expect(stderr).to.match(/^ha-operator: invalid configuration:\n {2}HTTP_PORT="eighty": /);
  });
});
