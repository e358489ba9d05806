import type { KubernetesObject } from '@kubernetes/client-node';
import { MANAGED_BY, MANAGED_BY_LABEL } from '../runtime/children.ts';
import { nextConditions, type ConditionState } from '../runtime/conditions.ts';
import { __KIND___API_VERSION, __KIND___KIND, type __Kind__, type __Kind__ConditionType, type __Kind__Status } from './types.ts';

/** The kind a __Kind__ owns. */
export const CHILD = { apiVersion: '__childApiVersion__', kind: '__ChildKind__', plural: '__childPlural__' } as const;

/**
 * Pure: the __ChildKind__ a __Kind__ owns, as server-side apply should make it —
 * only the fields the operator owns. Named after the __Kind__, in its
 * namespace, labelled so the operator's cache selects it, controlled by it
 * (the garbage collector removes it with its __Kind__). An apiVersion, kind
 * or metadata in the template is replaced by these.
 */
export function desiredChild(object: __Kind__): KubernetesObject {
  const { name, namespace, uid } = object.metadata;
  return {
    ...object.spec.template,
    apiVersion: CHILD.apiVersion,
    kind: CHILD.kind,
    metadata: {
      name,
      namespace,
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY, 'app.kubernetes.io/instance': name },
      ...(object.spec.annotations ? { annotations: object.spec.annotations } : {}),
      ownerReferences: [{ apiVersion: __KIND___API_VERSION, kind: __KIND___KIND, name, uid, controller: true, blockOwnerDeletion: true }],
    },
  };
}

/** What the reconcile did with the __Kind__'s spec. */
export type Outcome = { reason: 'Applied' } | { reason: 'ApplyFailed' | 'NameTaken'; message: string };

/**
 * Pure: the status after a reconcile. `now` is written only into conditions
 * whose status changes, so a converged __Kind__ gets the same status on every
 * pass and its write is skipped.
 */
export function desiredStatus(object: __Kind__, outcome: Outcome, now: Date): __Kind__Status {
  const states: ConditionState<__Kind__ConditionType>[] = outcome.reason === 'Applied'
    ? [
      { type: 'Ready', status: 'True', reason: 'Applied', message: `${CHILD.kind} ${object.metadata.name} holds the spec` },
      { type: 'Degraded', status: 'False', reason: 'AsExpected', message: 'nothing is wrong' },
    ]
    : [
      { type: 'Ready', status: 'False', reason: outcome.reason, message: outcome.message },
      { type: 'Degraded', status: 'True', reason: outcome.reason, message: outcome.message },
    ];
  const generation = object.metadata.generation;
  return { observedGeneration: generation, conditions: nextConditions(object.status?.conditions, states, generation, now) };
}
