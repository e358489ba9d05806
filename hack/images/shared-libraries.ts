/**
 * What a dynamically linked binary needs beside it in an image: the shared
 * libraries and the dynamic loader, at the paths `ldd` resolves them to on
 * this machine. The loader finds them there without an ld.so.cache, because
 * they are glibc's default directories.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { file, type LayerEntry } from './layer.ts';

const run = promisify(execFile);

/** The absolute paths `ldd binary` lists (the loader included, the vDSO not); none for a static binary. */
export async function sharedLibraries(binary: string): Promise<string[]> {
  let stdout: string;
  try {
    ({ stdout } = await run('ldd', [binary]));
  } catch (error) {
    const { stdout: out = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    // ldd's way of saying "static": exit status 1 and this line.
    if (`${out}${stderr}`.includes('not a dynamic executable')) return [];
    throw new Error(`ldd ${binary} failed: ${stderr.trim() || (error as Error).message}`, { cause: error });
  }
  const paths: string[] = [];
  for (const line of stdout.split('\n')) {
    if (line.includes('=> not found')) throw new Error(`ldd ${binary}: ${line.trim()}: the library is not on this machine`);
    const path = /(?:=>\s*|^\s*)(\/\S+)/.exec(line)?.[1];
    if (path !== undefined) paths.push(path);
  }
  return paths;
}

/** Layer files for those libraries, each at the path ldd named, holding what its symlinks point to. */
export async function sharedLibraryFiles(binary: string): Promise<LayerEntry[]> {
  return Promise.all((await sharedLibraries(binary)).map(async (path) => file(path, await readFile(path), 0o755)));
}
