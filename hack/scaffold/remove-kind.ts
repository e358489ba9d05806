/**
 * make remove-kind KIND=Website
 *
 * Takes a kind out of the project: src/<dir>/, its tests (test/<dir>/,
 * test/integration/<dir>/), crds/<plural>.yaml, its samples, docs/<KIND>.md,
 * its registrations in src/main.ts, hack/kinds.ts and crds/kustomization.yaml,
 * and its block of rules in manifests/base/rbac.yaml. When it was
 * SAMPLE_KIND, the first kind left becomes SAMPLE_KIND. Refuses to leave no
 * kind at all, and fails if any file left still imports the kind's folder.
 *
 *   node hack/scaffold/remove-kind.ts KIND
 */
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT } from '../lib/replica.ts';
import { removeBlock, removeLines } from './edits.ts';
import { kindNames } from './names.ts';
import { projectFiles } from './tree.ts';

export function removeKind(root: string, kind: string): { removed: string[]; changed: string[] } {
  const names = kindNames(kind);
  const profile = `${names.constant}_PROFILE`;
  const kindsFile = join(root, 'hack/kinds.ts');
  let kinds = readFileSync(kindsFile, 'utf8');
  if (!kinds.includes(`${profile},`)) throw new Error(`hack/kinds.ts does not list ${profile}: is ${kind} a kind of this project?`);
  const others = [...kinds.matchAll(/^\s+([A-Z0-9_]+_PROFILE),$/gm)].map((m) => m[1]!).filter((p) => p !== profile);
  if (others.length === 0) throw new Error(`${kind} is the only kind: add another first (make new-kind)`);

  const removed: string[] = [];
  const remove = (path: string): void => {
    if (!existsSync(join(root, path))) return;
    rmSync(join(root, path), { recursive: true });
    removed.push(path);
  };
  for (const path of [`src/${names.dir}`, `test/${names.dir}`, `test/integration/${names.dir}`, `crds/${names.plural}.yaml`, `docs/${names.constant}.md`]) remove(path);
  for (const file of readdirSync(join(root, 'samples')).filter((f) => f.endsWith('.yaml'))) {
    const documents = parseAllDocuments(readFileSync(join(root, 'samples', file), 'utf8')).map((d) => d.toJS() as { kind?: string } | null);
    if (documents.length > 0 && documents.every((d) => d?.kind === kind)) remove(`samples/${file}`);
  }

  const edit = (file: string, change: (text: string) => string): void => {
    const path = join(root, file);
    writeFileSync(path, change(readFileSync(path, 'utf8')));
  };
  edit('src/main.ts', (text) => removeLines(removeLines(text, (l) => l.includes(`from './${names.dir}/`), 'src/main.ts', `import of ./${names.dir}/`),
    (l) => l.includes(`register${kind}Controller(manager)`), 'src/main.ts', `register${kind}Controller call`));
  kinds = removeLines(kinds, (l) => l.includes(`'../src/${names.dir}/`), 'hack/kinds.ts', `import of src/${names.dir}/`);
  kinds = removeLines(kinds, (l) => l.trim() === `${profile},`, 'hack/kinds.ts', profile);
  writeFileSync(kindsFile, kinds.replace(`SAMPLE_KIND: KindProfile = ${profile};`, `SAMPLE_KIND: KindProfile = ${others[0]};`));
  edit('crds/kustomization.yaml', (text) => removeLines(text, (l) => l.trim() === `- ${names.plural}.yaml`, 'crds/kustomization.yaml', `${names.plural}.yaml`));
  edit('manifests/base/rbac.yaml', (text) => removeBlock(text, `# kind ${kind}: begin`, `# kind ${kind}: end`, 'manifests/base/rbac.yaml'));

  const importer = new RegExp(`from '[^']*(/src/|\\./)${names.dir}/`);
  const left = projectFiles(root).filter((file) => /^(src|hack|test)\/.*\.ts$/.test(file) && importer.test(readFileSync(join(root, file), 'utf8')));
  if (left.length > 0) throw new Error(`these files still import src/${names.dir}/: ${left.join(', ')}`);
  return { removed, changed: ['src/main.ts', 'hack/kinds.ts', 'crds/kustomization.yaml', 'manifests/base/rbac.yaml'] };
}

if (import.meta.main) {
  const [kind] = process.argv.slice(2);
  try {
    if (!kind) throw new Error('usage: make remove-kind KIND=Website');
    const { removed, changed } = removeKind(REPO_ROOT, kind);
    console.log(`${kind} removed:\n  removed ${removed.join('\n  removed ')}\n  changed ${changed.join('\n  changed ')}`);
  } catch (error) {
    console.error(`remove-kind: ${(error as Error).message}`);
    process.exitCode = 2;
  }
}
