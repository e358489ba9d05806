import { KubeConfig } from '@kubernetes/client-node';
import { expect } from 'chai';
import { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import { getEventListeners } from 'node:events';
import type { AddressInfo } from 'node:net';

import { KubeApiError, KubeClient, MAX_RETRIES, NO_RESPONSE_CODE, failureSummary, isStatus } from '../../src/runtime/kube.ts';
import type { RestClientMetrics } from '../../src/runtime/metrics.ts';
import { WatchIdleError, watch, type WatchEvent } from '../../src/runtime/watch.ts';
import { FakeClock } from '../support/fake-clock.ts';

/**
 * The request layer's own mechanics — headers, counting, deadlines, aborts,
 * Retry-After, streaming — against a local HTTP stand-in. What the real API
 * server answers (409, 422, 404, 403, 429) is tested against it in
 * test/integration/runtime/kube.test.ts.
 */

type Observation = [method: string, host: string, code: string, seconds: number];

function recordingMetrics(): RestClientMetrics & { observed: Observation[] } {
  const observed: Observation[] = [];
  return { observed, observe: (...observation) => observed.push(observation) };
}

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A stand-in that hands each request to `answer`, recording what it saw; `arrived` resolves with the first request. */
async function standIn(answer: (req: IncomingMessage, res: ServerResponse, index: number) => void)
  : Promise<{ url: string; seen: Seen[]; arrived: Promise<void>; close(): Promise<void> }> {
  const seen: Seen[] = [];
  let markArrived!: () => void;
  const arrived = new Promise<void>((resolve) => (markArrived = resolve));
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      markArrived();
      answer(req, res, seen.length - 1);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    arrived,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

function kubeConfig(server: string): KubeConfig {
  const config = new KubeConfig();
  config.loadFromOptions({
    clusters: [{ name: 'test', server, skipTLSVerify: true }],
    users: [{ name: 'operator', token: 'sekret' }],
    contexts: [{ name: 'test', cluster: 'test', user: 'operator' }],
    currentContext: 'test',
  });
  return config;
}

async function failure(promise: Promise<unknown>): Promise<KubeApiError> {
  const outcome = await promise.then(() => undefined, (error: unknown) => error);
  expect(outcome).to.be.instanceOf(KubeApiError);
  return outcome as KubeApiError;
}

describe('KubeClient', () => {
  it('sends JSON with the credentials and User-Agent, returns the JSON answer, and counts the call', async () => {
    const server = await standIn((_req, res) => json(res, 201, { kind: 'ConfigMap', metadata: { name: 'x' } }));
    try {
      const metrics = recordingMetrics();
      const client = new KubeClient(kubeConfig(server.url), { metrics, userAgent: 'ha-operator/1.2.3 (pod-a)' });
      const created = await client.request<{ metadata: { name: string } }>({
        method: 'POST', path: '/api/v1/namespaces/ns/configmaps', query: { fieldManager: 'ha-operator', dryRun: undefined },
        body: { metadata: { name: 'x' } }, what: 'create ConfigMap ns/x',
      });
      expect(created.metadata.name).to.equal('x');
      const [request] = server.seen;
      expect(request).to.include({ method: 'POST', url: '/api/v1/namespaces/ns/configmaps?fieldManager=ha-operator', body: '{"metadata":{"name":"x"}}' });
      expect(request!.headers).to.include({ authorization: 'Bearer sekret', 'user-agent': 'ha-operator/1.2.3 (pod-a)', 'content-type': 'application/json' });
      expect(metrics.observed.map((o) => o.slice(0, 3))).to.deep.equal([['POST', new URL(server.url).host, '201']]);
    } finally {
      await server.close();
    }
  });

  it('sends the User-Agent a request names (the term of a write) and the content type it gives', async () => {
    const server = await standIn((_req, res) => json(res, 200, {}));
    try {
      const client = new KubeClient(kubeConfig(server.url), { userAgent: 'ha-operator/1 (a)' });
      await client.request({ method: 'PATCH', path: '/x', body: {}, contentType: 'application/apply-patch+yaml', userAgent: 'ha-operator/1 (a) term/l@7', what: 'apply x' });
      expect(server.seen[0]!.headers).to.include({ 'user-agent': 'ha-operator/1 (a) term/l@7', 'content-type': 'application/apply-patch+yaml' });
    } finally {
      await server.close();
    }
  });

  it('fails with the status code, the server\'s reason and message, naming the call, and nothing else', async () => {
    const status = { kind: 'Status', status: 'Failure', reason: 'Conflict', code: 409, message: 'the object has been modified; please apply your changes to the latest version and try again' };
    const server = await standIn((_req, res) => json(res, 409, status, { 'x-secret-header': 'must-not-show' }));
    try {
      const metrics = recordingMetrics();
      const error = await failure(new KubeClient(kubeConfig(server.url), { metrics }).request({ method: 'PATCH', path: '/x', body: {}, what: 'apply Deployment ns/x' }));
      expect(error).to.include({ code: 409, reason: 'Conflict', what: 'apply Deployment ns/x', serverMessage: status.message });
      expect(error.message).to.equal(`apply Deployment ns/x: 409 Conflict: ${status.message}`);
      expect(error.summary).to.equal(`409 Conflict: ${status.message}`);
      expect(isStatus(error, 409)).to.be.true;
      expect(isStatus(error, 404, 422)).to.be.false;
      expect(JSON.stringify(error) + error.message).to.not.include('must-not-show');
      expect(metrics.observed.map((o) => o[2])).to.deep.equal(['409']);
    } finally {
      await server.close();
    }
  });

  it('ends a request the server never answers at its deadline, counted as "<error>"', async () => {
    const server = await standIn(() => undefined);
    try {
      const metrics = recordingMetrics();
      const error = await failure(new KubeClient(kubeConfig(server.url), { metrics, timeoutMs: 100 }).request({ method: 'GET', path: '/x', what: 'read x' }));
      expect(error.code).to.equal(undefined);
      expect(error.message).to.equal('read x: no response: deadline passed');
      expect(metrics.observed.map((o) => o[2])).to.deep.equal([NO_RESPONSE_CODE]);
    } finally {
      await server.close();
    }
  });

  it('keeps its deadline on the client\'s clock, and leaves no timer or abort listener behind once answered', async () => {
    // A deadline timer that outlived its request (AbortSignal.timeout does) kept a Timeout, an
    // AbortSignal and its bookkeeping alive for the whole deadline: ~10,000 after 1,000 reconciles.
    let answerFirst!: () => void;
    const server = await standIn((_req, res, index) => {
      if (index === 0) answerFirst = () => json(res, 200, {});
    });
    try {
      const clock = new FakeClock();
      const client = new KubeClient(kubeConfig(server.url), { clock, timeoutMs: 5_000 });
      const term = new AbortController();
      const answered = client.request({ method: 'GET', path: '/a', signal: term.signal, what: 'read a' });
      await server.arrived;
      expect(clock.pendingTimers(), 'the deadline of the request in flight').to.equal(1);
      answerFirst();
      await answered;
      expect(clock.pendingTimers(), 'timers left after the answer').to.equal(0);
      expect(getEventListeners(term.signal, 'abort'), 'listeners left on the caller\'s signal').to.have.length(0);

      const unanswered = failure(client.request({ method: 'GET', path: '/b', signal: term.signal, what: 'read b' }));
      await clock.advance(5_000);
      expect((await unanswered).message).to.equal('read b: no response: deadline passed');
      expect(getEventListeners(term.signal, 'abort')).to.have.length(0);
    } finally {
      await server.close();
    }
  });

  it('ends a request when its signal aborts, with the signal\'s reason', async () => {
    const server = await standIn(() => undefined);
    try {
      const abort = new AbortController();
      const pending = new KubeClient(kubeConfig(server.url)).request({ method: 'PUT', path: '/x', body: {}, signal: abort.signal, what: 'update x' });
      await server.arrived;
      abort.abort(new Error('lost leadership of shard 0'));
      const error = await failure(pending);
      expect(error.message).to.equal('update x: no response: lost leadership of shard 0');
    } finally {
      await server.close();
    }
  });

  it('retries a 429 after its Retry-After, and a 5xx that carries one, as client-go does', async () => {
    const answers = [429, 503, 200];
    const server = await standIn((_req, res, index) => json(res, answers[index]!, { reason: 'TooManyRequests' }, { 'retry-after': '0' }));
    try {
      const metrics = recordingMetrics();
      await new KubeClient(kubeConfig(server.url), { metrics }).request({ method: 'POST', path: '/x', body: { n: 1 }, what: 'create x' });
      expect(server.seen.map((s) => s.body)).to.deep.equal(['{"n":1}', '{"n":1}', '{"n":1}']);
      expect(metrics.observed.map((o) => o[2])).to.deep.equal(['429', '503', '200']);
    } finally {
      await server.close();
    }
  });

  it(`does not retry without Retry-After, and gives up after ${MAX_RETRIES} retries`, async () => {
    const bare = await standIn((_req, res) => json(res, 429, { reason: 'TooManyRequests', message: 'slow down' }));
    const always = await standIn((_req, res) => json(res, 429, { reason: 'TooManyRequests', message: 'slow down' }, { 'retry-after': '0' }));
    try {
      expect((await failure(new KubeClient(kubeConfig(bare.url)).request({ method: 'GET', path: '/x', what: 'read x' }))).code).to.equal(429);
      expect(bare.seen).to.have.length(1);
      const error = await failure(new KubeClient(kubeConfig(always.url)).request({ method: 'GET', path: '/x', what: 'read x' }));
      expect(error).to.include({ code: 429, retryAfterSeconds: 0 });
      expect(always.seen).to.have.length(MAX_RETRIES + 1);
    } finally {
      await bare.close();
      await always.close();
    }
  });

  it('does not wait for a Retry-After that would end past the deadline', async () => {
    const server = await standIn((_req, res) => json(res, 429, { reason: 'TooManyRequests', message: 'slow down' }, { 'retry-after': '30' }));
    try {
      const started = performance.now();
      const error = await failure(new KubeClient(kubeConfig(server.url), { timeoutMs: 5_000 }).request({ method: 'GET', path: '/x', what: 'read x' }));
      expect(error).to.include({ code: 429, retryAfterSeconds: 30 });
      expect(server.seen).to.have.length(1);
      expect(performance.now() - started, 'it waited').to.be.below(5_000);
    } finally {
      await server.close();
    }
  });
});

describe('failureSummary', () => {
  it('is the server\'s answer without the call for an API error, else the error\'s message', () => {
    const refused = new KubeApiError('apply ConfigMap ns/x', 422, 'Invalid', 'ConfigMap "x" is invalid: data: Too long');
    expect(failureSummary(refused)).to.equal('422 Invalid: ConfigMap "x" is invalid: data: Too long');
    expect(failureSummary(new Error('socket hang up'))).to.equal('socket hang up');
    expect(failureSummary('plain')).to.equal('plain');
  });
});

describe('watch', () => {
  it('streams events in order, across chunk boundaries, and ends when the server ends the response', async () => {
    const server = await standIn((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"type":"ADDED","object":{"metadata":{"name":"a"}}}\n{"type":"MOD');
      setTimeout(() => res.end('IFIED","object":{"metadata":{"name":"a","resourceVersion":"2"}}}\n{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"3"}}}\n'), 20);
    });
    try {
      const events: WatchEvent<{ metadata: { name?: string; resourceVersion?: string } }>[] = [];
      const end = await watch(new KubeClient(kubeConfig(server.url)), { path: '/api/v1/configmaps', query: { resourceVersion: '1' }, signal: new AbortController().signal, what: 'watch configmaps' },
        (event: WatchEvent<{ metadata: { name?: string; resourceVersion?: string } }>) => events.push(event));
      expect(end).to.equal('closed');
      expect(events.map((e) => e.type)).to.deep.equal(['ADDED', 'MODIFIED', 'BOOKMARK']);
      expect(server.seen[0]!.url).to.equal('/api/v1/configmaps?resourceVersion=1&watch=true&allowWatchBookmarks=true');
    } finally {
      await server.close();
    }
  });

  it('presumes a silent stream dead after the idle timeout, and not before', async () => {
    const server = await standIn((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"type":"ADDED","object":{}}\n');
    });
    const clock = new FakeClock();
    try {
      let first!: () => void;
      const eventArrived = new Promise<void>((resolve) => (first = resolve));
      const ended = watch(new KubeClient(kubeConfig(server.url)), { path: '/w', query: {}, signal: new AbortController().signal, what: 'watch w', idleTimeoutMs: 90_000, clock },
        () => first()).then(() => 'ended', (error: unknown) => error);
      await eventArrived;
      await clock.advance(89_999);
      expect(await Promise.race([ended, Promise.resolve('still open')])).to.equal('still open');
      await clock.advance(1);
      expect(await ended).to.be.instanceOf(WatchIdleError);
    } finally {
      await server.close();
    }
  });

  it('ends as "stopped" when its signal aborts', async () => {
    const server = await standIn((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).write(''));
    try {
      const abort = new AbortController();
      const ended = watch(new KubeClient(kubeConfig(server.url)), { path: '/w', query: {}, signal: abort.signal, what: 'watch w', onOpen: () => abort.abort() }, () => undefined);
      expect(await ended).to.equal('stopped');
    } finally {
      await server.close();
    }
  });

  it('rejects with the status of a watch the server refuses', async () => {
    const server = await standIn((_req, res) => json(res, 403, { reason: 'Forbidden', message: 'configmaps is forbidden' }));
    try {
      const error = await failure(watch(new KubeClient(kubeConfig(server.url)), { path: '/w', query: {}, signal: new AbortController().signal, what: 'watch w' }, () => undefined));
      expect(error.message).to.equal('watch w: 403 Forbidden: configmaps is forbidden');
    } finally {
      await server.close();
    }
  });
});
