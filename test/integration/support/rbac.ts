import { execFile } from 'node:child_process';
import { Writable } from 'node:stream';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { CoreV1Api, KubeConfig, type V1CustomResourceDefinition } from '@kubernetes/client-node';
import { createLogger } from '../../../src/runtime/logging.ts';
import { apiError } from './api.ts';
import { adminKubeConfig, cluster } from './cluster.ts';
import { waitForObject } from './wait.ts';

/**
 * What the RBAC tests share: manifests/ applied for real, tokens of a
 * ServiceAccount (TokenRequest API), and the authorizer's answers —
 * a 403 naming the account, `kubectl auth can-i`.
 */

const run = promisify(execFile);
export const OPERATOR_NAMESPACE = 'ha-operator';
export const SERVICE_ACCOUNT = 'ha-operator';
export const USERNAME = `system:serviceaccount:${OPERATOR_NAMESPACE}:${SERVICE_ACCOUNT}`;
export const FIELD_MANAGER = 'ha-operator';

/** `kubectl apply -k manifests/`, then waits until `crdName` is Established. */
export async function applyManifests(crdName: string): Promise<void> {
  await cluster().kubectl(['apply', '-k', join(import.meta.dirname, '..', '..', '..', 'manifests')]);
  await waitForObject<V1CustomResourceDefinition>(adminKubeConfig(), '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crdName,
    (c) => c?.status?.conditions?.some((cond) => cond.type === 'Established' && cond.status === 'True') ?? false);
}

/** The call must be refused by the authorizer (403), not for any other reason. */
export async function expectForbidden(call: Promise<unknown>, what: string): Promise<void> {
  const error = await apiError(call);
  expect(error.code, `${what}: ${typeof error.body === 'string' ? error.body : JSON.stringify(error.body)}`).to.equal(403);
  expect(String(error.body), what).to.include(USERNAME);
}

/** A kubeconfig file and KubeConfig that authenticate with a fresh token of `serviceAccount`. */
export async function serviceAccountConfig(namespace: string, serviceAccount: string): Promise<{ path: string; kc: KubeConfig }> {
  const { status } = await adminKubeConfig().makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
    namespace,
    name: serviceAccount,
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  const path = await cluster().writeKubeconfig(join(cluster().dir, `${namespace}-${serviceAccount}.kubeconfig`), { token: status!.token! });
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return { path, kc };
}

/** `kubectl auth can-i VERB RESOURCE ... --as=<the operator>`: 'yes' or 'no' (kubectl exits 1 for no). */
export async function canI(args: string[]): Promise<string> {
  try {
    const { stdout } = await run(join(cluster().binDir, 'kubectl'), [
      `--kubeconfig=${cluster().kubeconfigPath}`, 'auth', 'can-i', ...args, `--as=${USERNAME}`,
    ]);
    return stdout.trim();
  } catch (error) {
    const err = error as Error & { stdout?: string; code?: number };
    if (err.code === 1 && err.stdout?.trim() === 'no') return 'no';
    throw error;
  }
}

/** Each `[args, answer]` asked of `kubectl auth can-i` as the operator: the answers must be as listed. */
export async function expectCanI(expected: [string[], string][]): Promise<void> {
  const answers = await Promise.all(expected.map(async ([args]) => [args.join(' '), await canI(args)]));
  expect(answers).to.deep.equal(expected.map(([args, answer]) => [args.join(' '), answer]));
}

export function silentLogger() {
  return createLogger({ level: 'error', format: 'json', stream: new Writable({ write: (_c, _e, done) => done() }) });
}
