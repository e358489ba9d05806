/**
 * What the harness, the study, the benchmarks and the demo know of a kind
 * the operator serves: one profile per kind, beside its code
 * (src/<kind>/profile.ts; test/integration/support/widget/profile.ts for the
 * runtime tests' Widget). They create, change and watch its objects through
 * the profile and never name the kind themselves; hack/kinds.ts lists the
 * operator's kinds.
 */
import type { KubeConfig, KubernetesObject, V1CustomResourceDefinition, V1ObjectMeta } from '@kubernetes/client-node';
import { Informer } from '../../src/runtime/informer.ts';
import { collectionPath, KubeClient, MediaType, objectPath } from '../../src/runtime/kube.ts';
import { createLogger } from '../../src/runtime/logging.ts';

/** Where the kind's objects are served. */
export interface KindResource {
  group: string;
  version: string;
  /** `<group>/<version>`. */
  apiVersion: string;
  kind: string;
  /** The URL name, e.g. "widgets". */
  plural: string;
}

/** An object of the kind as the API server returns it: the server has set name, namespace and generation. */
export interface StoredObject extends KubernetesObject {
  metadata: V1ObjectMeta & { name: string; namespace: string; generation: number };
}

/** A CustomResourceDefinition as an object literal declares it (its schema may carry TypeBox's symbols: they do not serialize). */
export interface CrdBody {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
}

export interface KindProfile<T extends StoredObject = StoredObject> {
  /** Its CustomResourceDefinition; hack/crds.ts writes the shipped kinds' to crds/<plural>.yaml. */
  readonly crd: CrdBody;
  readonly resource: KindResource;
  /**
   * A new object at its first version: small, and needing nothing the local
   * control plane lacks (it runs no scheduler and no kubelet, so no pods).
   */
  sample(namespace: string, name: string): KubernetesObject;
  /** The merge patch that gives `name`'s spec its `version`-th content (2, 3, …): a change the operator must carry into what it manages. */
  change(name: string, version: number): object;
  /** The metadata.generation its status says the operator has acted on; undefined before the first status. */
  observedGeneration(object: T): number | undefined;
  /** Its status reports its current generation, with whatever else the kind's status holds once it has been acted on. */
  converged(object: T): boolean;
  /**
   * Which of `objects` (read from the API server) have children that do not
   * hold what their spec asks for, each in words: whether a change that
   * reached the status also landed.
   */
  childrenBehind(kubeConfig: KubeConfig, namespace: string, objects: readonly T[]): Promise<string[]>;
  /**
   * The merge patch that makes an object of samples/ run its pods from
   * `webImage` (hack/images/web.ts): on the local cluster's nodes no image
   * can be pulled. Absent for a kind whose objects run no pods.
   */
  onLocalNodes?(webImage: string): object;
  /**
   * What `sample`, `change` and `converged` amount to, in words, for reports:
   * `sample` reads after "a new <kind> with", `change` after "the others".
   */
  readonly described: { sample: string; change: string; converged: string };
}

const CRD_API_VERSION = 'apiextensions.k8s.io/v1';
const CRD_PLURAL = 'customresourcedefinitions';

/**
 * Applies `crd` (server-side apply, force) and resolves once the API server
 * reports it Established, seen through a watch.
 */
export async function installCrd(kubeConfig: KubeConfig, crd: CrdBody, timeoutMs = 60_000): Promise<void> {
  const client = new KubeClient(kubeConfig, { userAgent: 'ha-operator-harness' });
  const name = crd.metadata.name;
  const crds = new Informer<V1CustomResourceDefinition>({
    client,
    resource: { apiVersion: CRD_API_VERSION, kind: 'CustomResourceDefinition', plural: CRD_PLURAL },
    logger: createLogger({ level: 'error', format: 'json' }),
  });
  const established = (): boolean =>
    crds.get(name)?.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ?? false;
  const done = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`CustomResourceDefinition ${name} was not Established within ${timeoutMs} ms`));
    }, timeoutMs);
    const unsubscribe = crds.subscribe(() => {
      if (!established()) return;
      clearTimeout(timer);
      unsubscribe();
      resolve();
    });
  });
  crds.start();
  try {
    await client.request({
      method: 'PATCH',
      path: objectPath(CRD_API_VERSION, CRD_PLURAL, undefined, name),
      query: { fieldManager: 'ha-operator-harness', force: true },
      body: crd,
      contentType: MediaType.apply,
      what: `apply CustomResourceDefinition ${name}`,
    });
    await done;
  } finally {
    await crds.stop();
  }
}

/**
 * The objects of a collection by name, as JSON (the form the operator's
 * caches compare with what it applies), each with the apiVersion and kind a
 * list leaves out of its items.
 */
export async function listByName(kubeConfig: KubeConfig, resource: { apiVersion: string; kind: string; plural: string }, namespace: string): Promise<Map<string, KubernetesObject>> {
  const { apiVersion, kind, plural } = resource;
  const { items } = await new KubeClient(kubeConfig, { userAgent: 'ha-operator-harness' }).request<{ items: KubernetesObject[] }>({
    method: 'GET', path: collectionPath(apiVersion, plural, namespace), what: `list ${plural} in ${namespace}`,
  });
  return new Map(items.map((item) => [item.metadata?.name ?? '', { ...item, apiVersion, kind }]));
}
