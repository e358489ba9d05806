import { systemClock, type Clock, type Timer } from './clock.ts';
import { KubeApiError, type KubeClient, type Query } from './kube.ts';

/**
 * How long a watch may stay silent before it is presumed dead. The API server
 * sends a BOOKMARK to every watcher that asks for them about once a minute
 * (k8s.io/apiserver cacher: defaultBookmarkFrequency) and one 2 s before the
 * watch's own timeout, so a live watch is never silent much longer than a
 * minute; a watchdog shorter than that would cut healthy quiet watches.
 */
export const WATCH_IDLE_TIMEOUT_MS = 90_000;

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface WatchEvent<T> {
  type: WatchEventType;
  /** The object; for ERROR a Status (code 410 when the resourceVersion is too old). */
  object: T;
}

export interface WatchRequest {
  /** The collection path, e.g. /apis/apps/v1/namespaces/web/deployments. */
  path: string;
  /** resourceVersion, labelSelector, fieldSelector, timeoutSeconds, …; watch and allowWatchBookmarks are set here. */
  query: Query;
  /** Ends the watch. */
  signal: AbortSignal;
  /** Names the watch in errors. */
  what: string;
  idleTimeoutMs?: number;
  clock?: Clock;
  /** Called once the server has answered 200: events flow from now on. */
  onOpen?: () => void;
}

/** How a watch ended without an error of its own: the server closed it (its timeout), or the caller's signal aborted. */
export type WatchEnd = 'closed' | 'stopped';

/** The watch was silent for longer than its idle timeout: the connection is presumed dead. */
export class WatchIdleError extends Error {
  override name = 'WatchIdleError';
}

/**
 * One watch request: streams the events to `onEvent` (synchronously, in
 * order) until the server ends the response, the caller's signal aborts, or
 * the stream stays silent past the idle timeout. A response other than 200
 * rejects with KubeApiError before any event; a stream that breaks rejects
 * with the error that broke it; what `onEvent` throws ends the watch and
 * rejects with that error.
 */
export async function watch<T>(
  client: KubeClient,
  request: WatchRequest,
  onEvent: (event: WatchEvent<T>) => void,
): Promise<WatchEnd> {
  const clock = request.clock ?? systemClock;
  const idleTimeoutMs = request.idleTimeoutMs ?? WATCH_IDLE_TIMEOUT_MS;
  const query: Query = { ...request.query, watch: 'true', allowWatchBookmarks: 'true' };
  let stream;
  try {
    stream = await client.stream({ path: request.path, query, signal: request.signal, what: request.what });
  } catch (error) {
    if (request.signal.aborted) return 'stopped';
    throw error;
  }
  request.onOpen?.();
  let idle = false;
  let timer: Timer | undefined;
  const arm = (): void => {
    timer?.cancel();
    timer = clock.setTimer(() => {
      idle = true;
      stream.close();
    }, idleTimeoutMs);
  };
  arm();
  let pending = '';
  try {
    for await (const chunk of stream.body) {
      arm();
      pending += chunk.toString('utf8');
      let newline: number;
      while ((newline = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, newline).trim();
        pending = pending.slice(newline + 1);
        if (line === '') continue;
        const event = parseEvent<T>(line, request.what);
        try {
          onEvent(event);
        } catch (error) {
          throw new HandlerError(error);
        }
      }
    }
    return 'closed';
  } catch (error) {
    if (error instanceof HandlerError) throw error.cause;
    if (idle) throw new WatchIdleError(`${request.what}: no data for ${idleTimeoutMs} ms; the connection is presumed dead`);
    if (request.signal.aborted) return 'stopped';
    throw error instanceof KubeApiError ? error : new KubeApiError(request.what, undefined, undefined, `stream broke: ${(error as Error).message}`, undefined, { cause: error });
  } finally {
    timer?.cancel();
    stream.close();
  }
}

/** Carries what the caller's handler threw past the stream's own error handling. */
class HandlerError extends Error {
  constructor(cause: unknown) {
    super('the watch handler threw', { cause });
  }
}

function parseEvent<T>(line: string, what: string): WatchEvent<T> {
  try {
    return JSON.parse(line) as WatchEvent<T>;
  } catch (error) {
    throw new KubeApiError(what, undefined, undefined, `the server sent a line that is not JSON: ${line.slice(0, 200)}`, undefined, { cause: error });
  }
}
