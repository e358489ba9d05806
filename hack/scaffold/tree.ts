import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** What .gitignore leaves out of a clone (build output, caches, logs), and git's own directory. */
const NOT_THE_PROJECTS = new Set(['.git', 'node_modules', 'dist', '.tmp', 'study-results']);

/** Every file of the project under `root`, relative to it: what a clone of it has, found without git. */
export function projectFiles(root: string, dir = ''): string[] {
  return readdirSync(join(root, dir)).flatMap((entry) => {
    const path = dir ? `${dir}/${entry}` : entry;
    if (NOT_THE_PROJECTS.has(entry) || entry.endsWith('.log')) return [];
    return statSync(join(root, path)).isDirectory() ? projectFiles(root, path) : [path];
  });
}
