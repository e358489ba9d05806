/**
 * The kinds this operator serves, by their profiles (hack/lib/kind-profile.ts):
 * `make crds` writes each one's CRD, and the harness, the study, the
 * benchmarks and the demo exercise SAMPLE_KIND. `make new-kind` adds a kind
 * above each scaffold marker and `make remove-kind` takes one out; nothing
 * else in hack/ names a kind.
 */
import type { KindProfile } from './lib/kind-profile.ts';
import { WEBSITE_PROFILE } from '../src/website/profile.ts';
// +scaffold:imports

export const KINDS: readonly KindProfile[] = [
  WEBSITE_PROFILE,
  // +scaffold:kinds
];

/** The kind whose objects the study, the benchmarks, the demo and the operator's end-to-end tests create. */
export const SAMPLE_KIND: KindProfile = WEBSITE_PROFILE;
