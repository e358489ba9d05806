import { expect } from 'chai';
import { DISRUPTIONS, runChaos, summaryTable } from '../../hack/chaos.ts';
import { cluster } from './support/cluster.ts';

/**
 * The short version of `make chaos`: each kind of disruption once, unsharded
 * and sharded, on the test plane (whose API server it restarts). The long
 * run (docs/BENCHMARKS.md, "Chaos") takes the same code through 100 and more.
 */
describe('chaos: every kind of disruption under load, judged by the audit log', function () {
  this.timeout(300_000);

  for (const mode of ['unsharded', 'sharded'] as const) {
    it(`${mode}: no write out of term, no change lost, every object converged`, async () => {
      const result = await runChaos({ plane: cluster(), mode, disruptions: DISRUPTIONS.length, seed: 7, sequence: DISRUPTIONS });
      console.log(summaryTable([result]).split('\n').map((l) => `      ${l}`).join('\n'));
      expect(result.failures).to.deep.equal([]);
      expect(result.audit.violations).to.deep.equal([]);
      expect(result.lost).to.deep.equal([]);
      expect(result.changes).to.be.greaterThan(0);
      expect(result.disruptions.map((d) => d.kind)).to.deep.equal([...DISRUPTIONS]);
    });
  }
});
