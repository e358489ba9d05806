/**
 * Runs promtool for the tests. PROMTOOL names the binary; by default `promtool`
 * on PATH, which `make test` installs (Debian package `prometheus`).
 */
import { spawnSync } from 'node:child_process';

export interface PromtoolResult {
  status: number | null;
  output: string;
}

export function promtool(args: string[], cwd?: string): PromtoolResult {
  const bin = process.env.PROMTOOL ?? 'promtool';
  const result = spawnSync(bin, args, { cwd, encoding: 'utf8', timeout: 60_000 });
  if (result.error) {
    const code = (result.error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new Error(
        `promtool not found (${bin}): \`make test\` installs it (Debian package "prometheus", via \`make system-deps\`); ` +
          'or set PROMTOOL to its path',
      );
    }
    throw new Error(`promtool ${args.join(' ')}: ${result.error.message}`);
  }
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}
