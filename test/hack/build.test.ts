import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildOperator, OPERATOR_NODE_FLAGS } from '../../hack/build.ts';

const repoRoot = join(import.meta.dirname, '..', '..');

describe('hack/build.ts: the bundle the image runs', function () {
  this.timeout(60_000);
  let bundle: Buffer;

  before(async () => {
    bundle = readFileSync(await buildOperator());
  });

  it('is ASCII only, so V8 holds its source as one byte per character, not two', () => {
    const firstNonAscii = bundle.findIndex((byte) => byte > 0x7f);
    expect(firstNonAscii, `a non-ASCII byte at ${firstNonAscii}: ${bundle.subarray(Math.max(0, firstNonAscii - 40), firstNonAscii + 10).toString()}`).to.equal(-1);
  });

  it('leaves out what the operator never calls of client-node: its model serializer and the models', () => {
    const text = bundle.toString();
    for (const name of ['_ObjectSerializer', 'V1PodSpec', 'V1JSONSchemaProps']) expect(text, name).to.not.include(name);
    expect(text, 'KubeConfig is kept').to.include('loadFromDefault');
  });

  it('keeps the licences of what it bundles in a file beside it', () => {
    const legal = readFileSync(join(repoRoot, 'dist', 'main.mjs.LEGAL.txt'), 'utf8');
    expect(legal).to.match(/Bundled license information/);
  });

  it('is started by the image with the node flags the benchmarks use', () => {
    const cmd = /^CMD (\[.*\])$/m.exec(readFileSync(join(repoRoot, 'Dockerfile'), 'utf8'))?.[1];
    expect(JSON.parse(cmd ?? 'null')).to.deep.equal([...OPERATOR_NODE_FLAGS, 'dist/main.mjs']);
  });
});
