/**
 * A memory cgroup for one benchmark process, so that it runs under the same
 * memory limit as the operator's pod. Node sizes its heap from the cgroup's
 * limit at start-up (a 512 MiB limit gives a heap limit of about 259 MiB), so
 * a process without one, on a machine with gigabytes free, grows far past what
 * it would use in the pod. The cgroup also reports the peak the kubelet would
 * see and whether the kernel's OOM killer struck.
 *
 * Needs a writable cgroup hierarchy (root in a container that owns its
 * cgroup); MemoryCgroup.create says why when it cannot make one.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

interface Files {
  limit: string;
  peak: string;
  /** Where the kernel counts OOM kills ("oom_kill N" in both versions). */
  oomCounter: string;
}

const V1: Files = { limit: 'memory.limit_in_bytes', peak: 'memory.max_usage_in_bytes', oomCounter: 'memory.oom_control' };
const V2: Files = { limit: 'memory.max', peak: 'memory.peak', oomCounter: 'memory.events' };

export class MemoryCgroup {
  readonly dir: string;
  readonly limitBytes: number;
  private readonly files: Files;

  private constructor(dir: string, limitBytes: number, files: Files) {
    this.dir = dir;
    this.limitBytes = limitBytes;
    this.files = files;
  }

  /** A new cgroup below this process's own, limited to `limitBytes`; or why there can be none. */
  static create(name: string, limitBytes: number): MemoryCgroup | { unavailable: string } {
    const own = readFileSync('/proc/self/cgroup', 'utf8').split('\n');
    const v1 = own.map((l) => /^\d+:memory:(.*)$/.exec(l)?.[1]).find((p) => p !== undefined);
    const v2 = own.map((l) => /^0::(.*)$/.exec(l)?.[1]).find((p) => p !== undefined);
    const [parent, files] =
      v1 !== undefined && existsSync('/sys/fs/cgroup/memory')
        ? [join('/sys/fs/cgroup/memory', v1), V1]
        : v2 !== undefined && existsSync('/sys/fs/cgroup/cgroup.controllers')
          ? [join('/sys/fs/cgroup', v2), V2]
          : [undefined, V1];
    if (parent === undefined) return { unavailable: 'no memory cgroup hierarchy under /sys/fs/cgroup' };
    const dir = join(parent, `${name}-${process.pid}`);
    try {
      mkdirSync(dir);
      writeFileSync(join(dir, files.limit), String(limitBytes));
    } catch (error) {
      return { unavailable: `cannot make ${dir}: ${(error as Error).message}` };
    }
    return new MemoryCgroup(dir, limitBytes, files);
  }

  /** Runs a command inside the cgroup from its first instruction: `sh -c` joins it, then execs the command. */
  launcher(): string[] {
    return ['/bin/sh', '-c', `echo $$ > ${join(this.dir, 'cgroup.procs')} && exec "$@"`, 'sh'];
  }

  /** The most memory the cgroup's processes held at once (what a kubelet compares with the limit). */
  peakBytes(): number {
    return Number(readFileSync(join(this.dir, this.files.peak), 'utf8').trim());
  }

  /** How often the kernel's OOM killer struck in the cgroup. */
  oomKills(): number {
    const match = /^oom_kill (\d+)$/m.exec(readFileSync(join(this.dir, this.files.oomCounter), 'utf8'));
    return match ? Number(match[1]) : 0;
  }

  /** Removes the cgroup; its processes must have exited. */
  remove(): void {
    rmdirSync(this.dir);
  }
}
