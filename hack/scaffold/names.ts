/**
 * The names a kind goes by, derived once from its Kind (`Backup`), so that
 * make new-kind and make remove-kind agree on every file and identifier.
 */

/** What the scaffold names after a kind. */
export interface KindNames {
  /** `BackupPolicy` */
  kind: string;
  /** `backuppolicy`: the CRD's singular name. */
  singular: string;
  /** `backuppolicies`: the URL name. */
  plural: string;
  /** `backup-policy`: the folders src/<dir>/, test/<dir>/, test/integration/<dir>/. */
  dir: string;
  /** `BACKUP_POLICY`: the prefix of its constants. */
  constant: string;
}

/** An owned kind, from `OWNS=group/version/Kind` (`batch/v1/CronJob`) or `version/Kind` for the core group (`v1/ConfigMap`). */
export interface OwnedKind {
  group: string;
  apiVersion: string;
  kind: string;
  plural: string;
}

const KIND_PATTERN = /^[A-Z][A-Za-z0-9]{0,62}$/;

/** English plural of a lowercase noun, as Kubernetes' own kinds are named (policy → policies, ingress → ingresses). */
export function pluralOf(singular: string): string {
  if (/[^aeiou]y$/.test(singular)) return `${singular.slice(0, -1)}ies`;
  if (/(s|x|z|ch|sh)$/.test(singular)) return `${singular}es`;
  return `${singular}s`;
}

export function kindNames(kind: string): KindNames {
  if (!KIND_PATTERN.test(kind)) throw new Error(`KIND=${kind}: a kind is UpperCamelCase letters and digits, as Backup or BackupPolicy`);
  const words = kind.split(/(?=[A-Z][a-z])|(?<=[a-z0-9])(?=[A-Z])/);
  const singular = kind.toLowerCase();
  return {
    kind,
    singular,
    plural: pluralOf(singular),
    dir: words.map((w) => w.toLowerCase()).join('-'),
    constant: words.map((w) => w.toUpperCase()).join('_'),
  };
}

export function ownedKind(owns: string): OwnedKind {
  const parts = owns.split('/');
  const [group, version, kind] = parts.length === 3 ? parts : ['', ...parts];
  if (parts.length < 2 || parts.length > 3 || !version || !kind || !/^v\d+((alpha|beta)\d+)?$/.test(version) || !KIND_PATTERN.test(kind)) {
    throw new Error(`OWNS=${owns}: give the owned kind as group/version/Kind (batch/v1/CronJob), or version/Kind for the core group (v1/ConfigMap)`);
  }
  return { group: group!, apiVersion: group ? `${group}/${version}` : version, kind, plural: pluralOf(kind.toLowerCase()) };
}

/** A group name as CRDs need it: a DNS subdomain with at least one dot. */
export function checkGroup(group: string): string {
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$/.test(group) || group.length > 253) {
    throw new Error(`GROUP=${group}: an API group is a lowercase DNS subdomain with at least one dot, as backups.example.com`);
  }
  return group;
}
