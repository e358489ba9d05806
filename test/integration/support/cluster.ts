import { randomBytes } from 'node:crypto';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import type { ControlPlane } from '../../../hack/controlplane/plane.ts';

let current: ControlPlane | undefined;

export function setCluster(plane: ControlPlane): void {
  current = plane;
}

export function takeCluster(): ControlPlane | undefined {
  const plane = current;
  current = undefined;
  return plane;
}

/** The control plane that the root hook started for this run. */
export function cluster(): ControlPlane {
  if (!current) throw new Error('no control plane: run integration tests with --config .mocharc.integration.json');
  return current;
}

/** A KubeConfig for the plane's admin user (group system:masters). */
export function adminKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(cluster().kubeconfigPath);
  return kc;
}

/** Creates a namespace with a unique name, so tests never see each other's objects. */
export async function freshNamespace(prefix: string): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  await adminKubeConfig().makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name } } });
  return name;
}
