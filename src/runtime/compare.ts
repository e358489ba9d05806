/**
 * The comparison behind "a converged object costs no write": whether the
 * cached copy of an object already holds everything a server-side apply of
 * the desired one would set.
 */

/**
 * Where `actual` fails to hold `desired`, as a path ("spec.replicas",
 * "spec.ports[0]"), or undefined when it holds all of it. Deep inclusion:
 * fields the body does not set (server defaults, a Service's cluster IP,
 * status, other managers' fields) are ignored. Lists of objects — the
 * associative lists of the API, keyed by name, port or uid — must contain an
 * item holding each desired item; lists of scalars are atomic and compared
 * whole. That is what server-side apply would change, so an apply is sent
 * exactly when it would do something.
 */
export function firstDifference(actual: unknown, desired: unknown, path = ''): string | undefined {
  if (Array.isArray(desired)) {
    if (!Array.isArray(actual)) return path || '.';
    const wanted = desired as unknown[];
    const have = actual as unknown[];
    if (wanted.every((item) => item === null || typeof item !== 'object')) {
      return have.length === wanted.length && wanted.every((item, i) => item === have[i]) ? undefined : path || '.';
    }
    for (const [index, item] of wanted.entries()) {
      if (have.some((candidate) => firstDifference(candidate, item) === undefined)) continue;
      // Name the field inside the item when an item of the same name exists, for a clearer event.
      const name = (item as { name?: unknown }).name;
      const namesake = name === undefined ? undefined : have.find((candidate) => (candidate as { name?: unknown } | null)?.name === name);
      return namesake === undefined ? `${path}[${index}]` : firstDifference(namesake, item, `${path}[${index}]`);
    }
    return undefined;
  }
  if (desired !== null && typeof desired === 'object') {
    if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) return path || '.';
    for (const [field, value] of Object.entries(desired)) {
      if (value === undefined) continue;
      const difference = firstDifference((actual as Record<string, unknown>)[field], value, path ? `${path}.${field}` : field);
      if (difference !== undefined) return difference;
    }
    return undefined;
  }
  return actual === desired ? undefined : path || '.';
}
