/**
 * The one way the runtime talks to the API server: JSON in, JSON out, over
 * one pooled connection (HTTP/2 where the server offers it) per KubeConfig.
 *
 * Why not client-node's generated clients: every request and response went
 * through its ObjectSerializer (about a fifth of the operator's CPU), its
 * generic list dropped `metadata.continue` for custom resources, its watch
 * ended every 30 s of silence (so a quiet watch never saw a bookmark), and a
 * request could not be bound to a leadership term. client-node stays for what
 * it is good at: loading the KubeConfig, TLS material, credentials, and types.
 *
 * Every request:
 * - ends by its deadline and when its AbortSignal aborts (a term's end, a
 *   reconcile's abort), so nothing sent under a term outlives it on this side;
 * - is retried, as client-go does, when the server answers 429 (or a 5xx) with
 *   Retry-After, after that wait and within the deadline;
 * - is counted once per attempt in rest_client_* with its method, host, status
 *   code and duration (until the body has been read; watches until the
 *   response starts);
 * - fails with a KubeApiError that names the call, the status code, the
 *   server's reason and message — no headers, no stack of the HTTP library.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { Agent, type Dispatcher } from 'undici';
import { sleep, systemClock, type Clock } from './clock.ts';
import type { RestClientMetrics } from './metrics.ts';

/** Every request ends by then unless it says otherwise. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/** What client-go counts when no response arrived: refused, reset, TLS failure, abort, deadline. */
export const NO_RESPONSE_CODE = '<error>';

/** client-go's maximum number of retries after 429 / Retry-After (rest/with_retry.go). */
export const MAX_RETRIES = 10;

/** How long cached credentials are used before asking the KubeConfig again (a projected token file rotates). */
const CREDENTIALS_TTL_MS = 10_000;

/** HTTP/2 keep-alive PING interval of the shared connection. */
const PING_INTERVAL_MS = 15_000;

export type Verb = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export const MediaType = {
  json: 'application/json',
  mergePatch: 'application/merge-patch+json',
  apply: 'application/apply-patch+yaml',
} as const;

export type Query = Record<string, string | number | boolean | undefined>;

export interface ApiRequest {
  method: Verb;
  /** The URL path, e.g. /apis/apps/v1/namespaces/web/deployments/hello. */
  path: string;
  query?: Query;
  /** Sent as JSON (an apply's YAML media type accepts JSON too). */
  body?: unknown;
  /** Content-Type of the body; default application/json. */
  contentType?: string;
  /** Ends the request (and any wait for a retry) when it aborts. */
  signal?: AbortSignal;
  /** How long the request, retries included, may take; default the client's timeout. */
  timeoutMs?: number;
  /** Replaces the client's User-Agent for this request. */
  userAgent?: string;
  /** Names the call in errors: "apply Deployment web/hello". */
  what: string;
}

/**
 * A failed API call. `code` is the HTTP status (undefined when no response
 * arrived: refused, reset, aborted, past its deadline), `reason` the
 * Status reason the server gave (Conflict, AlreadyExists, NotFound, Invalid,
 * Forbidden, TooManyRequests, …), `serverMessage` its message. The message
 * reads "<what>: <code> <reason>: <server message>".
 */
export class KubeApiError extends Error {
  override name = 'KubeApiError';
  readonly what: string;
  readonly code: number | undefined;
  readonly reason: string | undefined;
  readonly serverMessage: string;
  /** Retry-After of the last response, in seconds. */
  readonly retryAfterSeconds: number | undefined;

  constructor(what: string, code: number | undefined, reason: string | undefined, serverMessage: string, retryAfterSeconds?: number, options?: ErrorOptions) {
    super(`${what}: ${code === undefined ? 'no response' : `${code}${reason ? ` ${reason}` : ''}`}: ${serverMessage}`, options);
    this.what = what;
    this.code = code;
    this.reason = reason;
    this.serverMessage = serverMessage;
    this.retryAfterSeconds = retryAfterSeconds;
  }

  /** The summary a log line or a condition needs, without the call's name: "409 Conflict: the object has been modified…". */
  get summary(): string {
    return this.message.slice(this.what.length + 2);
  }
}

/** Whether `error` is an API error with one of the status codes. */
export function isStatus(error: unknown, ...codes: number[]): error is KubeApiError {
  return error instanceof KubeApiError && error.code !== undefined && codes.includes(error.code);
}

/** The object the server answered with, or its Status. */
interface ServerStatus {
  kind?: string;
  reason?: string;
  message?: string;
}

export interface KubeClientOptions {
  /** Where every attempt is counted; default nowhere (tools and tests). */
  metrics?: RestClientMetrics;
  /** User-Agent of every request, e.g. "ha-operator/0.1.0 (pod-a)"; default "ha-operator". */
  userAgent?: string;
  clock?: Clock;
  timeoutMs?: number;
}

/** A response whose body is still to be read (watches). */
export interface OpenStream {
  body: AsyncIterable<Buffer>;
  /** Stops reading and closes the stream. */
  close(): void;
}

/**
 * The request layer. One per KubeConfig is enough: clients for other
 * identities or timeouts come from `with()`, which shares the connection pool.
 */
export class KubeClient {
  readonly server: URL;
  readonly host: string;
  private readonly kubeConfig: KubeConfig;
  private readonly metrics: RestClientMetrics;
  private readonly clock: Clock;
  private readonly timeoutMs: number;
  private readonly userAgent: string;
  private readonly shared: { dispatcher?: Promise<Dispatcher>; credentials?: { headers: Record<string, string>; atMs: number } };

  constructor(kubeConfig: KubeConfig, options: KubeClientOptions = {}, shared: KubeClient['shared'] = {}) {
    const cluster = kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig names no current cluster');
    this.server = new URL(cluster.server);
    this.host = this.server.host;
    this.kubeConfig = kubeConfig;
    this.metrics = options.metrics ?? { observe: () => undefined };
    this.clock = options.clock ?? systemClock;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.userAgent = options.userAgent ?? 'ha-operator';
    this.shared = shared;
  }

  /** A client with other defaults (a shorter timeout for lease calls) on the same connections and credentials. */
  with(options: Partial<Omit<KubeClientOptions, 'clock'>>): KubeClient {
    return new KubeClient(this.kubeConfig, {
      metrics: options.metrics ?? this.metrics,
      userAgent: options.userAgent ?? this.userAgent,
      clock: this.clock,
      timeoutMs: options.timeoutMs ?? this.timeoutMs,
    }, this.shared);
  }

  /** Sends the request and returns the JSON the server answered with (2xx), else throws KubeApiError. */
  async request<T>(request: ApiRequest): Promise<T> {
    const deadlineMs = this.clock.monotonicMs() + (request.timeoutMs ?? this.timeoutMs);
    const body = request.body === undefined ? undefined : JSON.stringify(request.body);
    for (let attempt = 0; ; attempt++) {
      const answer = await this.attempt(request, body, deadlineMs, false);
      const text = answer.text!;
      if (answer.status >= 200 && answer.status < 300) return (text === '' ? undefined : JSON.parse(text)) as T;
      const error = statusError(request.what, answer.status, text, answer.retryAfterSeconds);
      await this.waitForRetry(error, attempt, deadlineMs, request.signal);
    }
  }

  /**
   * Opens a streaming GET (a watch) and returns its body once the response
   * has started with 200; other answers throw KubeApiError. The stream has no
   * deadline of its own: the caller ends it (its signal, close()).
   */
  async stream(request: Omit<ApiRequest, 'method' | 'body' | 'contentType' | 'timeoutMs'>): Promise<OpenStream> {
    const controller = new AbortController();
    const signal = request.signal ? AbortSignal.any([request.signal, controller.signal]) : controller.signal;
    const deadlineMs = this.clock.monotonicMs() + this.timeoutMs;
    for (let attempt = 0; ; attempt++) {
      const answer = await this.attempt({ ...request, method: 'GET', signal }, undefined, deadlineMs, true);
      if (answer.status === 200) return { body: answer.stream!, close: () => controller.abort(new Error('watch closed')) };
      const error = statusError(request.what, answer.status, answer.text!, answer.retryAfterSeconds);
      await this.waitForRetry(error, attempt, deadlineMs, request.signal);
    }
  }

  private async waitForRetry(error: KubeApiError, attempt: number, deadlineMs: number, signal: AbortSignal | undefined): Promise<void> {
    const waitMs = error.retryAfterSeconds === undefined ? undefined : error.retryAfterSeconds * 1000;
    const retryable = waitMs !== undefined && (error.code === 429 || (error.code ?? 0) >= 500);
    if (!retryable || attempt >= MAX_RETRIES || this.clock.monotonicMs() + waitMs >= deadlineMs) throw error;
    await sleep(this.clock, waitMs, signal).catch((reason: unknown) => {
      throw new KubeApiError(error.what, undefined, undefined, `aborted while waiting to retry after ${error.summary}: ${describeReason(reason)}`);
    });
  }

  /** One HTTP exchange: status, Retry-After, and the body as text (or as a stream). Counted in rest_client_*. */
  private async attempt(request: ApiRequest, body: string | undefined, deadlineMs: number, streaming: boolean)
    : Promise<{ status: number; retryAfterSeconds: number | undefined; text?: string; stream?: AsyncIterable<Buffer> }> {
    const remainingMs = deadlineMs - this.clock.monotonicMs();
    const startedMs = this.clock.monotonicMs();
    let code = NO_RESPONSE_CODE;
    // One controller per attempt, ended by the caller's signal or the deadline, and both let go
    // of when the attempt ends: AbortSignal.timeout and AbortSignal.any would keep a timer and a
    // signal per request alive for the whole deadline, thousands of them under load.
    const attempt = new AbortController();
    const signal = attempt.signal;
    const onCallerAbort = (): void => attempt.abort(request.signal?.reason);
    if (request.signal?.aborted) onCallerAbort();
    else request.signal?.addEventListener('abort', onCallerAbort, { once: true });
    const deadline = streaming ? undefined
      : this.clock.setTimer(() => attempt.abort(new DOMException('deadline passed', 'TimeoutError')), Math.max(1, Math.ceil(remainingMs)));
    try {
      if (signal.aborted) throw signal.reason;
      const headers = await this.headers(request, body);
      const dispatcher = await this.dispatcher();
      const response = await dispatcher.request({
        origin: this.server.origin,
        path: pathWithQuery(this.server.pathname, request.path, request.query),
        method: request.method,
        headers,
        ...(body === undefined ? {} : { body }),
        signal,
        // The deadline (or the caller, for a watch) decides; undici's own 300 s timeouts would only hide that.
        headersTimeout: 0,
        bodyTimeout: 0,
      });
      code = String(response.statusCode);
      const retryAfterSeconds = parseRetryAfter(response.headers['retry-after']);
      if (streaming && response.statusCode === 200) return { status: 200, retryAfterSeconds, stream: response.body };
      const text = await response.body.text();
      if (response.statusCode === 401) this.shared.credentials = undefined;
      return { status: response.statusCode, retryAfterSeconds, text };
    } catch (error) {
      if (error instanceof KubeApiError) throw error;
      const reason: unknown = signal.aborted ? signal.reason : error;
      throw new KubeApiError(request.what, undefined, undefined, describeReason(reason), undefined, { cause: reason });
    } finally {
      deadline?.cancel();
      // A stream keeps listening: its body must still end when the caller aborts.
      if (!streaming || code !== '200') request.signal?.removeEventListener('abort', onCallerAbort);
      this.metrics.observe(request.method, this.host, code, (this.clock.monotonicMs() - startedMs) / 1000);
    }
  }

  private async headers(request: ApiRequest, body: string | undefined): Promise<Record<string, string>> {
    const headers: Record<string, string> = {
      ...(await this.credentials()),
      accept: MediaType.json,
      'user-agent': request.userAgent ?? this.userAgent,
    };
    if (body !== undefined) headers['content-type'] = request.contentType ?? MediaType.json;
    return headers;
  }

  /**
   * The credential headers of the KubeConfig (bearer token, basic auth,
   * impersonation), asked for again every CREDENTIALS_TTL_MS and after a 401,
   * so a rotated token is picked up without reading files on every request.
   */
  private async credentials(): Promise<Record<string, string>> {
    const cached = this.shared.credentials;
    if (cached && this.clock.monotonicMs() - cached.atMs < CREDENTIALS_TTL_MS) return cached.headers;
    const captured = await this.capture();
    this.shared.credentials = { headers: captured.headers, atMs: this.clock.monotonicMs() };
    return captured.headers;
  }

  private dispatcher(): Promise<Dispatcher> {
    this.shared.dispatcher ??= this.createDispatcher();
    return this.shared.dispatcher;
  }

  /**
   * One undici Agent with the KubeConfig's TLS material. HTTP/2 PINGs every
   * PING_INTERVAL_MS: an unanswered PING resets the connection, so requests
   * and watches on a connection that silently died (a partition, a dropped
   * NAT entry) fail within two intervals instead of hanging — client-go's
   * HTTP/2 health check does the same (30 s read idle, 15 s ping timeout).
   * Behind a proxy client-node's own dispatcher is used.
   */
  private async createDispatcher(): Promise<Dispatcher> {
    if (this.kubeConfig.getCurrentCluster()?.proxyUrl) return (await this.capture()).dispatcher ?? new Agent();
    const tls: Record<string, unknown> = {};
    await this.kubeConfig.applyToHTTPSOptions(tls);
    const connect: Record<string, unknown> = { keepAlive: true, keepAliveInitialDelay: 30_000 };
    for (const field of ['ca', 'cert', 'key', 'pfx', 'passphrase', 'servername', 'rejectUnauthorized']) {
      if (tls[field] !== undefined) connect[field] = tls[field];
    }
    return new Agent({ connect, allowH2: true, h2Options: { pingInterval: PING_INTERVAL_MS } });
  }

  /** What client-node would put on a request: its headers and its TLS-configured undici Agent. */
  private async capture(): Promise<{ headers: Record<string, string>; dispatcher: Dispatcher | undefined }> {
    const headers: Record<string, string> = {};
    let dispatcher: Dispatcher | undefined;
    const context = {
      setHeaderParam: (name: string, value: string) => (headers[name.toLowerCase()] = value),
      setDispatcher: (d: Dispatcher) => (dispatcher = d),
    };
    await this.kubeConfig.applySecurityAuthentication(context as unknown as Parameters<KubeConfig['applySecurityAuthentication']>[0]);
    return { headers, dispatcher };
  }
}

function pathWithQuery(base: string, path: string, query: Query | undefined): string {
  const prefix = base.replace(/\/$/, '');
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== '') params.set(name, String(value));
  }
  const search = params.toString();
  return `${prefix}${path}${search ? `?${search}` : ''}`;
}

/** Retry-After in seconds (the API server sends whole seconds; an HTTP date is not used by it). */
function parseRetryAfter(header: string | string[] | undefined): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || !/^\d+$/.test(value.trim())) return undefined;
  return Number(value);
}

function statusError(what: string, status: number, text: string, retryAfterSeconds: number | undefined): KubeApiError {
  let parsed: ServerStatus | undefined;
  try {
    parsed = JSON.parse(text) as ServerStatus;
  } catch {
    parsed = undefined;
  }
  const message = typeof parsed?.message === 'string' ? parsed.message : text.trim().slice(0, 500) || 'no message';
  return new KubeApiError(what, status, typeof parsed?.reason === 'string' ? parsed.reason : undefined, message, retryAfterSeconds);
}

/**
 * What went wrong with a call, for a condition message, an event or a log
 * line that names the call itself: the API server's own answer without the
 * call's name ("422 Invalid: …", KubeApiError's summary) when there was one,
 * else the error's message.
 */
export function failureSummary(error: unknown): string {
  if (error instanceof KubeApiError) return error.summary;
  return error instanceof Error ? error.message : String(error);
}

function describeReason(reason: unknown): string {
  if (reason instanceof Error) {
    if (reason.name === 'TimeoutError') return 'deadline passed';
    const code = (reason as { code?: unknown }).code;
    return typeof code === 'string' && !reason.message.includes(code) ? `${reason.message} (${code})` : reason.message;
  }
  return String(reason);
}

/** The URL path of a collection: /api/v1/namespaces/ns/pods, /apis/apps/v1/deployments. */
export function collectionPath(apiVersion: string, plural: string, namespace?: string): string {
  const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  return namespace ? `${base}/namespaces/${namespace}/${plural}` : `${base}/${plural}`;
}

/** The URL path of one object (and optionally its subresource). */
export function objectPath(apiVersion: string, plural: string, namespace: string | undefined, name: string, subresource?: string): string {
  return `${collectionPath(apiVersion, plural, namespace)}/${encodeURIComponent(name)}${subresource ? `/${subresource}` : ''}`;
}
