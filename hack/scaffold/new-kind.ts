/**
 * make new-kind KIND=Backup OWNS=batch/v1/CronJob [GROUP=backups.example.com] [VERSION=v1alpha1]
 *
 * Writes a working kind into the project: its schema (the CRD is generated
 * from it), types, the pure function from an object to the one child it owns,
 * the reconcile (through the runtime's fenced writer and ensureChild, status
 * conditions, events), the controller registration, a profile for the
 * harness, a sample, RBAC rules, a unit test and an integration test against
 * the real API server; it registers the kind in src/main.ts, hack/kinds.ts
 * and crds/kustomization.yaml (at their `+scaffold:` markers) and writes
 * crds/<plural>.yaml (hack/crds.ts). Refuses to overwrite anything.
 *
 *   node hack/scaffold/new-kind.ts KIND OWNS [GROUP] [VERSION]
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { REPO_ROOT } from '../lib/replica.ts';
import { checkGroup, kindNames, ownedKind, type KindNames, type OwnedKind } from './names.ts';
import { insertAtMarker } from './edits.ts';

const TEMPLATES = join(import.meta.dirname, 'templates');

/** Bodies the API server accepts for owned kinds one often starts with; any other gets {} and a note. */
const SAMPLE_TEMPLATES: Record<string, Record<string, unknown>> = {
  'v1/ConfigMap': { data: { example: 'value' } },
  'v1/Service': { spec: { ports: [{ name: 'http', port: 80 }] } },
  'batch/v1/CronJob': {
    spec: {
      schedule: '0 3 * * *',
      jobTemplate: { spec: { template: { spec: { restartPolicy: 'OnFailure', containers: [{ name: 'main', image: 'busybox:1.36', command: ['true'] }] } } } },
    },
  },
  'batch/v1/Job': {
    spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox:1.36', command: ['true'] }] } } },
  },
};

export interface NewKind {
  names: KindNames;
  owned: OwnedKind;
  group: string;
  version: string;
}

/** The text of `template` (a file under templates/) for `kind`: every __token__ replaced. */
function fill(template: string, { names, owned, group, version }: NewKind): string {
  const tokens: [string, string][] = [
    ['__sampleTemplate__', JSON.stringify(SAMPLE_TEMPLATES[`${owned.apiVersion}/${owned.kind}`] ?? {})],
    ['__childApiVersion__', owned.apiVersion],
    ['__childPlural__', owned.plural],
    ['__childGroup__', owned.group],
    ['__ChildKind__', owned.kind],
    ['__Kind__', names.kind],
    ['__KIND__', names.constant],
    ['__kind__', names.singular],
    ['__plural__', names.plural],
    ['__dir__', names.dir],
    ['__group__', group],
    ['__version__', version],
  ];
  return tokens.reduce((text, [token, value]) => text.replaceAll(token, value), readFileSync(join(TEMPLATES, template), 'utf8'));
}

/** The scaffold's files, relative to the repository, with their contents. */
export function scaffoldFiles(kind: NewKind): Map<string, string> {
  const { dir } = kind.names;
  const files = new Map<string, string>();
  for (const file of ['schema', 'types', 'crd', 'desired', 'reconcile', 'controller', 'profile']) files.set(`src/${dir}/${file}.ts`, fill(`src/${file}.ts.tpl`, kind));
  files.set(`test/${dir}/${dir}.test.ts`, fill('test/unit.test.ts.tpl', kind));
  files.set(`test/integration/${dir}/${dir}.test.ts`, fill('test/integration.test.ts.tpl', kind));
  files.set(`samples/${dir}.yaml`, fill('sample.yaml.tpl', kind));
  return files;
}

/** Writes the kind into the repository at `root`: new files, then the registrations. Returns what it wrote and changed. */
export function newKind(root: string, kind: NewKind): { written: string[]; changed: string[] } {
  const { names } = kind;
  const files = scaffoldFiles(kind);
  const taken = [...files.keys(), `crds/${names.plural}.yaml`].filter((file) => existsSync(join(root, file)));
  if (taken.length > 0) throw new Error(`not overwriting what exists: ${taken.join(', ')}`);
  for (const [file, text] of files) {
    mkdirSync(dirname(join(root, file)), { recursive: true });
    writeFileSync(join(root, file), text);
  }
  const profile = `${names.constant}_PROFILE`;
  const edit = (file: string, marker: string, lines: string[]): void => {
    const path = join(root, file);
    writeFileSync(path, insertAtMarker(readFileSync(path, 'utf8'), marker, lines, file));
  };
  edit('src/main.ts', '// +scaffold:imports', [`import { register${names.kind}Controller } from './${names.dir}/controller.ts';`]);
  edit('src/main.ts', '// +scaffold:controllers', [`register${names.kind}Controller(manager);`]);
  edit('hack/kinds.ts', '// +scaffold:imports', [`import { ${profile} } from '../src/${names.dir}/profile.ts';`]);
  edit('hack/kinds.ts', '// +scaffold:kinds', [`${profile},`]);
  edit('crds/kustomization.yaml', '# +scaffold:crds', [`- ${names.plural}.yaml`]);
  edit('manifests/base/rbac.yaml', '# +scaffold:rules', fill('rbac.yaml.tpl', kind).trimEnd().split('\n'));
  // Its CRD from its schema, as make crds writes every kind's.
  execFileSync(process.execPath, [join(root, 'hack/crds.ts')], { cwd: root, stdio: 'inherit' });
  return { written: [...files.keys(), `crds/${names.plural}.yaml`], changed: ['src/main.ts', 'hack/kinds.ts', 'crds/kustomization.yaml', 'manifests/base/rbac.yaml'] };
}

/** The project's API group by default: `<package name>.example.com`. */
function defaultGroup(root: string): string {
  return `${(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string }).name}.example.com`;
}

if (import.meta.main) {
  const [kindArg, ownsArg, groupArg, versionArg] = process.argv.slice(2).map((a) => (a === '' ? undefined : a));
  try {
    if (!kindArg || !ownsArg) throw new Error('usage: make new-kind KIND=Backup OWNS=batch/v1/CronJob [GROUP=…] [VERSION=v1alpha1]');
    const kind: NewKind = { names: kindNames(kindArg), owned: ownedKind(ownsArg), group: checkGroup(groupArg ?? defaultGroup(REPO_ROOT)), version: versionArg ?? 'v1alpha1' };
    const { written, changed } = newKind(REPO_ROOT, kind);
    console.log(`${kind.names.kind} (${kind.names.plural}.${kind.group}) owning ${kind.owned.kind}:\n  wrote ${written.join('\n  wrote ')}\n  changed ${changed.join('\n  changed ')}`);
    if (!SAMPLE_TEMPLATES[`${kind.owned.apiVersion}/${kind.owned.kind}`]) {
      console.log(`  note: no sample body is known for ${kind.owned.kind}: put a valid one in src/${kind.names.dir}/profile.ts (SAMPLE_TEMPLATE) and samples/${kind.names.dir}.yaml`);
    }
    console.log('next: make typecheck lint test-unit, and its integration test');
  } catch (error) {
    console.error(`new-kind: ${(error as Error).message}`);
    process.exitCode = 2;
  }
}
