/**
 * `--into DIR`: a run's results put into an existing report, as a pure
 * function (test/study/merge.test.ts). The run's scenarios replace those of
 * the same numbers and the others stay; the report's top-level figures (when,
 * on what, with which settings) are the run's when it ran scenarios on the
 * control plane, else the report's; the real nodes' environment is the run's
 * when it ran any there, else the report's.
 */
import { RESULTS_SCHEMA_VERSION, type StudyResults } from './types.ts';

export function mergeResults(into: StudyResults, run: StudyResults, ranOnPlane: boolean): StudyResults {
  const numbers = new Set(run.scenarios.map((s) => s.number));
  const scenarios = [...into.scenarios.filter((s) => !numbers.has(s.number)), ...run.scenarios].sort((a, b) => a.number - b.number);
  const base = ranOnPlane ? run : into;
  const cluster = run.environment.cluster ?? into.environment.cluster;
  const environment = { ...base.environment };
  delete environment.cluster;
  return { ...base, schemaVersion: RESULTS_SCHEMA_VERSION, environment: { ...environment, ...(cluster ? { cluster } : {}) }, scenarios };
}
