import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CRD_FILES, crdYaml } from '../../hack/crds.ts';

const repoRoot = join(import.meta.dirname, '..', '..');

describe('hack/crds.ts: crds/ is generated from the schemas in TypeScript', () => {
  for (const [file, crd] of Object.entries(CRD_FILES)) {
    it(`${file} is what hack/crds.ts generates (run make crds after changing the schema)`, () => {
      expect(readFileSync(join(repoRoot, file), 'utf8')).to.equal(crdYaml(crd));
    });
  }
});
