import { Watch, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';

/**
 * Resolves with the object at `listPath` named `name` once `predicate` holds
 * (with undefined while the object does not exist, so a deletion can be
 * awaited too). It uses a watch-list stream — the current state as initial
 * events, a bookmark marking their end, then every change — so it never polls
 * and cannot miss a change between a read and a watch.
 */
export async function waitForObject<T extends KubernetesObject>(
  kc: KubeConfig,
  listPath: string,
  name: string,
  predicate: (obj: T | undefined) => boolean,
  timeoutMs = 30_000,
): Promise<T | undefined> {
  const deadline = AbortSignal.timeout(timeoutMs);
  let latest: T | undefined;
  for (;;) {
    const matched = await watchOnce();
    if (matched) return latest;
    if (deadline.aborted) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${name} in ${listPath}; last seen: ${JSON.stringify(latest ?? null)}`);
    }
  }

  /** One watch request; false when it ended (server timeout, deadline) without a match. */
  async function watchOnce(): Promise<boolean> {
    latest = undefined;
    const request: { controller?: AbortController } = {};
    let settle: (matched: boolean) => void = () => undefined;
    let settled = false;
    const outcome = new Promise<boolean>((resolve) => (settle = resolve));
    const finish = (matched: boolean): void => {
      settled = true;
      deadline.removeEventListener('abort', onDeadline);
      request.controller?.abort();
      settle(matched);
    };
    const onDeadline = (): void => finish(false);
    deadline.addEventListener('abort', onDeadline, { once: true });
    let initialDone = false;
    request.controller = await new Watch(kc).watch(
      listPath,
      {
        fieldSelector: `metadata.name=${name}`,
        sendInitialEvents: true,
        resourceVersionMatch: 'NotOlderThan',
        allowWatchBookmarks: true,
      },
      (type: string, obj: T) => {
        if (type === 'BOOKMARK') {
          if (obj.metadata?.annotations?.['k8s.io/initial-events-end'] === 'true') {
            initialDone = true;
            if (predicate(latest)) finish(true);
          }
          return;
        }
        if (type === 'ERROR') return finish(false);
        latest = type === 'DELETED' ? undefined : obj;
        if (initialDone && predicate(latest)) finish(true);
      },
      () => finish(false),
    );
    if (settled) request.controller.abort();
    else if (deadline.aborted) finish(false);
    return outcome;
  }
}
