import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Runs one of the project's build scripts (hack/build-controlplane.sh,
 * hack/build-nodes.sh, hack/images/pause/build.sh), which build from the Go
 * module proxy or find the result in the cache, and returns the directory it
 * prints on its last line.
 */
export async function runBuildScript(script: string, what: string): Promise<string> {
  try {
    const { stdout } = await run('bash', [script], { maxBuffer: 16 << 20 });
    return stdout.trim().split('\n').at(-1)!;
  } catch (error) {
    const err = error as Error & { stderr?: string };
    throw new Error(`building ${what} (bash ${script}) failed:\n${err.stderr?.trim() || err.message}`, { cause: error });
  }
}
