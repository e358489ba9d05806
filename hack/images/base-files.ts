/**
 * What a non-root image needs besides its program: a user database that names
 * the image's user, and a /tmp (mode 1777) for the programs that assume one.
 */
import { directory, file, type LayerEntry } from './layer.ts';

/** distroless's "nonroot". Image configs name it by number, so that the kubelet can check runAsNonRoot. */
export const NONROOT_UID = 65532;

/** /etc/passwd and /etc/group with root and nonroot (login shell `shell`), and /tmp. */
export function nonrootBaseFiles(shell: string): LayerEntry[] {
  return [
    file('/etc/passwd', `root:x:0:0:root:/root:${shell}\nnonroot:x:${NONROOT_UID}:${NONROOT_UID}:nonroot:/home/nonroot:${shell}\n`),
    file('/etc/group', `root:x:0:\nnonroot:x:${NONROOT_UID}:\n`),
    directory('/tmp', 0o1777),
  ];
}
