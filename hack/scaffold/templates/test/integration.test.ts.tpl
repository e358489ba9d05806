import { expect } from 'chai';
import { CustomObjectsApi, KubernetesObjectApi, PatchStrategy, setHeaderOptions, type KubernetesObject } from '@kubernetes/client-node';
import { CHILD } from '../../../src/__dir__/desired.ts';
import { register__Kind__Controller } from '../../../src/__dir__/controller.ts';
import { __KIND___PROFILE } from '../../../src/__dir__/profile.ts';
import { __KIND___GROUP, __KIND___PLURAL, __KIND___VERSION, type __Kind__ } from '../../../src/__dir__/types.ts';
import { adminKubeConfig, freshNamespace } from '../support/cluster.ts';
import { installKind, startOperator, type TestOperator } from '../support/operator.ts';
import { waitForObject } from '../support/wait.ts';

/**
 * The __Kind__ controller against the real API server: the operator runs in
 * this process (test/integration/support/operator.ts), the objects are
 * created and changed as a user would.
 */

const path = (namespace: string): string => `/apis/${__KIND___GROUP}/${__KIND___VERSION}/namespaces/${namespace}/${__KIND___PLURAL}`;
const childPath = (namespace: string): string => `/${CHILD.apiVersion.includes('/') ? 'apis' : 'api'}/${CHILD.apiVersion}/namespaces/${namespace}/${CHILD.plural}`;

describe('__Kind__ controller', () => {
  let namespace: string;
  let operator: TestOperator;

  before(async () => {
    await installKind(__KIND___PROFILE);
    namespace = await freshNamespace('__dir__');
    operator = await startOperator(namespace, (manager) => register__Kind__Controller(manager));
  });
  after(async () => {
    await operator?.stop();
  });

  it('creates its __ChildKind__, owned by it, and reports Ready at its generation', async () => {
    const created = (await KubernetesObjectApi.makeApiClient(adminKubeConfig()).create(__KIND___PROFILE.sample(namespace, 'first'))) as __Kind__;
    const ready = await waitForObject<__Kind__>(adminKubeConfig(), path(namespace), 'first', (o) => o !== undefined && __KIND___PROFILE.converged(o));
    expect(ready!.metadata.uid).to.equal(created.metadata.uid);
    expect(await __KIND___PROFILE.childrenBehind(adminKubeConfig(), namespace, [ready!])).to.deep.equal([]);
  });

  it('carries a change of its spec into its __ChildKind__', async () => {
    const changed = (await adminKubeConfig().makeApiClient(CustomObjectsApi).patchNamespacedCustomObject({
      group: __KIND___GROUP, version: __KIND___VERSION, plural: __KIND___PLURAL, namespace, name: 'first', body: __KIND___PROFILE.change('first', 2),
    }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch))) as __Kind__;
    const converged = await waitForObject<__Kind__>(adminKubeConfig(), path(namespace), 'first',
      (o) => o !== undefined && o.metadata.generation === changed.metadata.generation && __KIND___PROFILE.converged(o));
    expect(await __KIND___PROFILE.childrenBehind(adminKubeConfig(), namespace, [converged!])).to.deep.equal([]);
  });

  it('leaves alone a __ChildKind__ of that name that it does not control: Degraded NameTaken, nothing written to it', async () => {
    const objects = KubernetesObjectApi.makeApiClient(adminKubeConfig());
    const sample = __KIND___PROFILE.sample(namespace, 'taken') as __Kind__;
    const foreign = (await objects.create({ ...sample.spec.template, apiVersion: CHILD.apiVersion, kind: CHILD.kind, metadata: { name: 'taken', namespace } })) as KubernetesObject;
    await objects.create(sample);
    const degraded = await waitForObject<__Kind__>(adminKubeConfig(), path(namespace), 'taken',
      (o) => o?.status?.conditions?.some((c) => c.type === 'Degraded' && c.status === 'True') ?? false);
    expect(degraded!.status!.conditions!.find((c) => c.type === 'Degraded')!.reason).to.equal('NameTaken');
    const untouched = await waitForObject<KubernetesObject>(adminKubeConfig(), childPath(namespace), 'taken', (o) => o !== undefined);
    expect(untouched!.metadata?.resourceVersion).to.equal(foreign.metadata?.resourceVersion);
  });
});
