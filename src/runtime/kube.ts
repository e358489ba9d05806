import {
  ApiException,
  HttpMethod,
  type ApiConstructor,
  type ApiType,
  type Configuration,
  type HttpLibrary,
  type KubeConfig,
  type RequestContext,
  wrapHttpLibrary,
} from '@kubernetes/client-node';

import { type Clock, systemClock } from './clock.ts';
import type { RestClientMetrics } from './metrics.ts';

/** Every API request (watches excepted: they do not go through these clients) ends by then. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/** What client-go counts when no response arrived: refused, reset, TLS failure, abort. */
export const NO_RESPONSE_CODE = '<error>';

/**
 * Wraps the HTTP library under a generated API client so that every request
 * is observed once, with its method, host, status code and duration.
 *
 * The library is the hook rather than client-node's `middleware`: a
 * middleware's `post` sees only the response (not which request it answers,
 * nor when that request started) and is skipped altogether when the request
 * fails without a response, which is exactly the case worth counting.
 */
export function instrumentHttpLibrary(
  inner: HttpLibrary,
  metrics: RestClientMetrics,
  clock: Clock = systemClock,
  pool: ConnectionPool = {},
  timeoutMs?: number,
): HttpLibrary {
  return wrapHttpLibrary({
    async send(request) {
      reuseConnections(request, pool);
      // Without a deadline a request lost in a partition waits for undici's 300 s
      // header timeout, holding up whatever awaits it (a lease renewal, a release).
      if (timeoutMs !== undefined) {
        const own = request.getSignal();
        const deadline = AbortSignal.timeout(timeoutMs);
        request.setSignal(own ? AbortSignal.any([own, deadline]) : deadline);
      }
      const method = request.getHttpMethod();
      const host = new URL(request.getUrl()).host;
      const startedMs = clock.monotonicMs();
      let code = NO_RESPONSE_CODE;
      try {
        const response = await inner.send(request).toPromise();
        code = String(response.httpStatusCode);
        return response;
      } finally {
        metrics.observe(method, host, code, (clock.monotonicMs() - startedMs) / 1000);
      }
    },
  });
}

type Dispatcher = NonNullable<ReturnType<RequestContext['getDispatcher']>>;

/** The one connection pool (undici dispatcher) that the clients built from one KubeConfig share. */
export interface ConnectionPool {
  dispatcher?: Dispatcher;
}

/**
 * client-node 2.0 builds a new undici Agent for every request, so every call
 * pays a TCP and TLS handshake; with a lease renewed every 2 s by several
 * electors that is most of the operator's CPU. Requests from one KubeConfig
 * carry the same TLS identity (bearer tokens, which do rotate, travel in the
 * headers set per request), so they can share the first Agent and its
 * keep-alive connections.
 */
function reuseConnections(request: RequestContext, pool: ConnectionPool): void {
  const own = request.getDispatcher();
  if (!own) return;
  pool.dispatcher ??= own;
  if (own !== pool.dispatcher) request.setDispatcher(pool.dispatcher);
}

const pools = new WeakMap<KubeConfig, ConnectionPool>();

/** One page of a collection, as the server sent it. */
export interface RawList<T> {
  metadata?: { resourceVersion?: string; continue?: string };
  items: T[];
}

/**
 * Lists any collection path and returns the JSON as the server sent it.
 * client-node's generic KubernetesObjectApi.list deserialises the list into
 * its models, which drops `metadata.continue` for kinds it does not know (a
 * custom resource's list): paging then silently stops after the first page.
 * Watch events arrive as raw JSON too, so the cache holds one shape either way.
 * Requests go through the client's own server, credentials, middleware and
 * HTTP library (instrumented when built with makeInstrumentedClient).
 */
export class CollectionReader implements ApiType {
  private readonly configuration: Configuration;

  constructor(configuration: Configuration) {
    this.configuration = configuration;
  }

  async list<T>(path: string, query: Record<string, string | number | undefined>): Promise<RawList<T>> {
    let request = this.configuration.baseServer.makeRequestContext(path, HttpMethod.GET);
    request.setHeaderParam('Accept', 'application/json');
    for (const [name, value] of Object.entries(query)) {
      if (value !== undefined && value !== '') request.setQueryParam(name, String(value));
    }
    await this.configuration.authMethods.default?.applySecurityAuthentication(request);
    for (const middleware of this.configuration.middleware) request = await middleware.pre(request).toPromise();
    const response = await this.configuration.httpApi.send(request).toPromise();
    const body = await response.body.text();
    if (response.httpStatusCode < 200 || response.httpStatusCode > 299) {
      throw new ApiException(response.httpStatusCode, `list ${path} failed`, body, response.headers);
    }
    return JSON.parse(body) as RawList<T>;
  }
}

/** Stands in for an API class so that makeApiClient hands over the Configuration it builds. */
class ConfigurationCapture implements ApiType {
  readonly configuration: Configuration;

  constructor(configuration: Configuration) {
    this.configuration = configuration;
  }
}

/**
 * An API client like `kubeConfig.makeApiClient(apiClass)` (same server, TLS,
 * credentials and User-Agent) whose every request is counted in `metrics`.
 */
export function makeInstrumentedClient<T extends ApiType>(
  kubeConfig: KubeConfig,
  apiClass: ApiConstructor<T>,
  metrics: RestClientMetrics,
  clock: Clock = systemClock,
  timeoutMs: number = DEFAULT_REQUEST_TIMEOUT_MS,
): T {
  const { configuration } = kubeConfig.makeApiClient(ConfigurationCapture);
  let pool = pools.get(kubeConfig);
  if (!pool) pools.set(kubeConfig, (pool = {}));
  return new apiClass({ ...configuration, httpApi: instrumentHttpLibrary(configuration.httpApi, metrics, clock, pool, timeoutMs) });
}
