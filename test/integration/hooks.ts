import { ControlPlane } from '../../hack/controlplane/plane.ts';
import { setCluster, takeCluster } from './support/cluster.ts';

/**
 * One real control plane for the whole integration run, started before the
 * first test and stopped after the last. A cold machine builds the binaries
 * here first, hence the long timeout.
 */
export const mochaHooks = {
  async beforeAll(this: Mocha.Context): Promise<void> {
    this.timeout(30 * 60_000);
    // The audit log is the witness of the failover tests (test/integration/support/audit.ts).
    setCluster(await ControlPlane.start({ controllerManager: true, audit: true }));
  },
  async afterAll(this: Mocha.Context): Promise<void> {
    this.timeout(60_000);
    await takeCluster()?.stop();
  },
};
