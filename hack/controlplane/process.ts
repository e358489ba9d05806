import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';

/** Every attached child that has not exited yet, for the last-resort cleanup. */
const live = new Set<ManagedProcess>();

/**
 * A long-running child whose output goes to a log file, so that a component
 * that fails to start can be explained with the tail of its own log.
 */
export class ManagedProcess {
  readonly name: string;
  readonly logPath: string;
  private readonly child: ChildProcess;
  private readonly exited: Promise<number | null>;
  private exitCode: number | null | undefined;
  /** Set when the binary could not be started at all (missing, not executable). */
  spawnError: Error | undefined;

  constructor(name: string, binary: string, args: string[], logPath: string, outliveParent = false) {
    this.name = name;
    this.logPath = logPath;
    const out = openSync(logPath, 'a');
    try {
      // Always a process group of its own: a Ctrl-C in the terminal must reach only the harness,
      // which then stops the plane in order — an apiserver that got the SIGINT too would be
      // shutting down while the operator replicas still release their leases through it.
      this.child = spawn(binary, args, { stdio: ['ignore', out, out], detached: true });
    } finally {
      closeSync(out);
    }
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exitCode = code ?? (signal ? null : 0);
        live.delete(this);
        resolve(this.exitCode);
      });
      this.child.once('error', (error) => {
        this.spawnError = error;
        this.exitCode = null;
        live.delete(this);
        resolve(null);
      });
    });
    if (outliveParent) this.child.unref();
    else live.add(this);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  /** Resolves with the exit code (null after a signal or a spawn failure) when the process ends. */
  whenExited(): Promise<number | null> {
    return this.exited;
  }

  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const killer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(killer);
  }

  killNow(): void {
    if (this.running) this.child.kill('SIGKILL');
  }

  logTail(lines = 20): string {
    try {
      return readFileSync(this.logPath, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }
}

/** Kills every child still running; synchronous so it can run in an 'exit' handler. */
export function killAllSync(): void {
  for (const proc of live) proc.killNow();
}

/**
 * Whether a process with this id is running. A zombie (exited, not yet reaped —
 * what a detached plane's processes become when PID 1 does not reap orphans)
 * counts as gone.
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // /proc/<pid>/stat: "pid (comm) state ..."; comm may contain spaces, so read after the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}
