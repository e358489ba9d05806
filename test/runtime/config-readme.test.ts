import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { expect } from 'chai';
import { loadConfig } from '../../src/runtime/config.ts';

describe('the README configuration table', () => {
  it('documents exactly the variables the operator reads', () => {
    const read = new Set<string>();
    const recordingEnv = new Proxy<Record<string, string | undefined>>({}, {
      get(_target, name) {
        if (typeof name === 'string') read.add(name);
        return undefined;
      },
    });
    loadConfig(recordingEnv, () => undefined);

    const readme = readFileSync(resolve(import.meta.dirname, '..', '..', 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('\n## ', readme.indexOf('## Configuration') + 1));
    const documented = [...section.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]);

    expect(documented.sort()).to.deep.equal([...read].sort());
  });
});
