/**
 * make rename NAME=backup-operator
 *
 * Renames the project: every occurrence of its name (package.json's "name")
 * in every text file of the checkout, in the forms it takes — `ha-operator`
 * (the field manager, the managed-by label, Lease and object names, the
 * namespace, the image, the API group `ha-operator.example.com`),
 * `HA_OPERATOR` (HA_OPERATOR_CACHE) and `HaOperator` (alert names) — and the
 * files named after it. Left alone: what a clone does not have (tree.ts).
 *
 *   node hack/scaffold/rename.ts NAME
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { REPO_ROOT } from '../lib/replica.ts';
import { projectFiles } from './tree.ts';

/** Short enough that `<name>-leader-election`, `<name>-member-<pod>-<process>` and pod names stay within Kubernetes' limits. */
const NAME_PATTERN = /^[a-z]([-a-z0-9]{0,28}[a-z0-9])?$/;

/** The forms a kebab-case name takes in the project. */
export interface NameForms {
  /** `backup-operator` */
  kebab: string;
  /** `BACKUP_OPERATOR` */
  constant: string;
  /** `BackupOperator` */
  pascal: string;
}

export function nameForms(name: string): NameForms {
  const words = name.split('-');
  return {
    kebab: name,
    constant: words.map((w) => w.toUpperCase()).join('_'),
    pascal: words.map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join(''),
  };
}

export function rename(root: string, name: string): { changed: string[]; moved: [string, string][] } {
  if (!NAME_PATTERN.test(name)) throw new Error(`NAME=${name}: a lowercase DNS label of at most 30 characters (letters, digits, '-'), starting with a letter`);
  const old = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string }).name;
  if (old === name) throw new Error(`the project is already named ${name}`);
  const from = nameForms(old);
  const to = nameForms(name);
  const forms = ['kebab', 'constant', 'pascal'] as const;
  const replace = (text: string): string => forms.reduce((t, form) => t.replaceAll(from[form], to[form]), text);
  const changed: string[] = [];
  const all = projectFiles(root);
  for (const file of all) {
    const bytes = readFileSync(join(root, file));
    if (bytes.includes(0)) continue;
    const text = bytes.toString('utf8');
    const renamed = replace(text);
    if (renamed === text) continue;
    writeFileSync(join(root, file), renamed);
    changed.push(file);
  }
  const moved: [string, string][] = [];
  for (const file of all.filter((f) => basename(f).includes(old))) {
    const renamed = join(dirname(file), replace(basename(file)));
    renameSync(join(root, file), join(root, renamed));
    moved.push([file, renamed]);
  }
  return { changed, moved };
}

if (import.meta.main) {
  const [name] = process.argv.slice(2);
  try {
    if (!name) throw new Error('usage: make rename NAME=backup-operator');
    const { changed, moved } = rename(REPO_ROOT, name);
    console.log(`renamed to ${name}: ${changed.length} files changed\n${moved.map(([from, to]) => `  moved ${from} → ${to}`).join('\n')}`);
    console.log(`the Go builds' cache is now ${nameForms(name).constant}_CACHE or ~/.cache/${name}: set it to the old one to keep using what is built`);
  } catch (error) {
    console.error(`rename: ${(error as Error).message}`);
    process.exitCode = 2;
  }
}
