import { readFileSync, writeFileSync } from 'node:fs';

/**
 * The host-wide sysctls the kubelet sets on start (it wants them at its own
 * defaults: vm.overcommit_memory 1, kernel.panic 10, kernel.panic_on_oops 1
 * and three that usually match already). They are not per network namespace,
 * so the cluster saves them before the first kubelet and puts them back after
 * the last.
 */
const KUBELET_SYSCTLS = [
  'vm/overcommit_memory',
  'vm/panic_on_oom',
  'kernel/panic',
  'kernel/panic_on_oops',
  'kernel/keys/root_maxkeys',
  'kernel/keys/root_maxbytes',
];

export type SysctlValues = Record<string, string>;

export function readKubeletSysctls(): SysctlValues {
  return Object.fromEntries(KUBELET_SYSCTLS.map((name) => [name, readFileSync(`/proc/sys/${name}`, 'utf8').trim()]));
}

export function restoreSysctls(saved: SysctlValues): void {
  for (const [name, value] of Object.entries(saved)) {
    if (readFileSync(`/proc/sys/${name}`, 'utf8').trim() !== value) writeFileSync(`/proc/sys/${name}`, value);
  }
}
