/**
 * Status conditions with metav1.Condition's semantics, for any kind's status:
 * lastTransitionTime moves only when a condition's status changes, each one
 * records the generation it was computed for, and messages stay within the
 * length the API allows.
 */

export type ConditionStatus = 'True' | 'False' | 'Unknown';

/**
 * metav1.Condition as it travels in JSON: custom resources come back as plain
 * objects, so lastTransitionTime is an RFC 3339 string, not a Date.
 */
export interface Condition<Type extends string = string> {
  type: Type;
  status: ConditionStatus;
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

/** What a reconcile concluded about one condition; the rest is bookkeeping. */
export type ConditionState<Type extends string = string> = Pick<Condition<Type>, 'type' | 'status' | 'reason' | 'message'>;

/**
 * metav1.Condition's maxLength for message (a CRD copies it into its schema); a
 * longer one — an API error can be — would get the whole status write rejected.
 */
export const MAX_CONDITION_MESSAGE_LENGTH = 32768;

/**
 * The conditions for `states`, in their order: each keeps the previous
 * lastTransitionTime while its status is unchanged and takes `now` when it
 * changes (or is new), so a converged object gets the same conditions on
 * every pass and its status write can be skipped.
 */
export function nextConditions<Type extends string>(
  previous: readonly Condition<Type>[] | undefined,
  states: readonly ConditionState<Type>[],
  generation: number | undefined,
  now: Date,
): Condition<Type>[] {
  return states.map(({ type, status, reason, message }) => {
    const before = previous?.find((condition) => condition.type === type);
    return {
      type,
      status,
      reason,
      message: message.slice(0, MAX_CONDITION_MESSAGE_LENGTH),
      lastTransitionTime: before?.status === status ? before.lastTransitionTime : metav1Time(now),
      ...(generation === undefined ? {} : { observedGeneration: generation }),
    };
  });
}

/** Whether two lists of conditions say the same: in any order, transition times compared as instants. */
export function conditionsEqual(a: readonly Condition[] | undefined, b: readonly Condition[] | undefined): boolean {
  return canonical(a) === canonical(b);
}

/** metav1.Time's wire form: RFC 3339 in UTC, whole seconds, as Go controllers write it. */
export function metav1Time(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function canonical(conditions: readonly Condition[] | undefined): string {
  const sorted = [...(conditions ?? [])].sort((x, y) => (x.type < y.type ? -1 : x.type > y.type ? 1 : 0));
  return JSON.stringify(sorted.map((c) => [c.type, c.status, c.reason, c.message, Date.parse(c.lastTransitionTime), c.observedGeneration]));
}
