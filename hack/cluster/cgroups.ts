import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A cgroup path (`/hao-abc-n1`, say) in every cgroup hierarchy the host
 * mounts. The machines this runs on use cgroup v1 with cgroupfs (no systemd as
 * PID 1), and the kubelet insists that its cgroupRoot exists in all of them.
 */
export class CgroupTree {
  readonly path: string;

  constructor(path: string) {
    this.path = path;
  }

  /** Creates the path in every hierarchy (its parent must exist); cpuset needs its cpus and mems filled in before a task may join. */
  create(): void {
    for (const hierarchy of hierarchies()) {
      const dir = join(hierarchy.mountPoint, this.path);
      mkdirSync(dir);
      if (hierarchy.controllers.includes('cpuset')) {
        for (const file of ['cpuset.cpus', 'cpuset.mems']) writeFileSync(join(dir, file), readFileSync(join(dir, '..', file)));
      }
    }
  }

  /** The shell commands that move the shell itself in, so that what it execs starts inside. */
  joinCommand(): string {
    return hierarchies().map((h) => `echo $$ > '${join(h.mountPoint, this.path, 'cgroup.procs')}'`).join(' && ');
  }

  /** Every process in the path or below it. */
  pids(): number[] {
    const found = new Set<number>();
    for (const hierarchy of hierarchies()) {
      for (const dir of descendants(join(hierarchy.mountPoint, this.path))) {
        for (const line of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n')) if (line) found.add(Number(line));
      }
    }
    return [...found];
  }

  /**
   * SIGKILL for everything inside, frozen first so that nothing forks or
   * restarts a child between the reading of the list and the kill (a shim
   * restarting a container, say); then thawed, so the kills are delivered.
   */
  killAll(): void {
    const freezer = hierarchies().find((h) => h.controllers.includes('freezer'));
    const state = freezer && join(freezer.mountPoint, this.path, 'freezer.state');
    if (state && existsSync(state)) writeFileSync(state, 'FROZEN');
    for (const pid of this.pids()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
    if (state && existsSync(state)) writeFileSync(state, 'THAWED');
  }

  /** Removes the path and everything below it, deepest first; the caller has made sure no process is left. */
  remove(): void {
    for (const hierarchy of hierarchies()) {
      for (const dir of descendants(join(hierarchy.mountPoint, this.path)).reverse()) rmdirSync(dir);
    }
  }
}

interface Hierarchy {
  mountPoint: string;
  controllers: string[];
}

/** The cgroup hierarchies mounted on this host (from /proc/self/mountinfo). */
export function hierarchies(): Hierarchy[] {
  const found: Hierarchy[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [mountFields, fsFields] = line.split(' - ');
    if (!mountFields || !fsFields) continue;
    const [fsType, , superOptions] = fsFields.split(' ');
    // The empty cgroup2 hierarchy of a hybrid host too: runc's cgroupfs manager makes the path there as well.
    if (fsType !== 'cgroup' && fsType !== 'cgroup2') continue;
    const mountPoint = mountFields.split(' ')[4]!;
    const controllers = (superOptions ?? '').split(',').filter((o) => o !== 'rw' && o !== 'ro' && !o.startsWith('release_agent') && o !== 'noprefix' && o !== 'clone_children');
    found.push({ mountPoint, controllers });
  }
  return found;
}

/** The top-level cgroup names of every hierarchy, for a check that nothing was left behind. */
export function topLevelCgroups(): string[] {
  return hierarchies().flatMap((h) => readdirSync(h.mountPoint, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => join(h.mountPoint, e.name))).sort();
}

function descendants(root: string): string[] {
  if (!existsSync(root)) return [];
  const dirs = [root];
  for (let i = 0; i < dirs.length; i++) {
    for (const entry of readdirSync(dirs[i]!, { withFileTypes: true })) if (entry.isDirectory()) dirs.push(join(dirs[i]!, entry.name));
  }
  return dirs;
}
