import {
  CoreV1Api,
  type HttpLibrary,
  HttpMethod,
  KubeConfig,
  RequestContext,
  ResponseContext,
  SelfDecodingBody,
  wrapHttpLibrary,
} from '@kubernetes/client-node';
import { expect } from 'chai';
import { type IncomingHttpHeaders, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import { NO_RESPONSE_CODE, instrumentHttpLibrary, makeInstrumentedClient } from '../../src/runtime/kube.ts';
import type { RestClientMetrics } from '../../src/runtime/metrics.ts';
import { FakeClock } from '../support/fake-clock.ts';

type Observation = [method: string, host: string, code: string, seconds: number];

function recordingMetrics(): RestClientMetrics & { observed: Observation[] } {
  const observed: Observation[] = [];
  return { observed, observe: (...observation) => observed.push(observation) };
}

function response(status: number): ResponseContext {
  return new ResponseContext(status, {}, new SelfDecodingBody(Promise.resolve(Buffer.from('{}'))));
}

/** An HTTP library that answers after `delayMs` of the fake clock, or fails with `error`. */
function library(clock: FakeClock, delayMs: number, outcome: ResponseContext | Error): HttpLibrary {
  return wrapHttpLibrary({
    async send() {
      await clock.advance(delayMs);
      if (outcome instanceof Error) throw outcome;
      return outcome;
    },
  });
}

describe('instrumentHttpLibrary', () => {
  const request = (): RequestContext =>
    new RequestContext('https://10.0.0.1:6443/apis/coordination.k8s.io/v1/namespaces/ops/leases/x', HttpMethod.PUT);

  it('observes method, host, status code and duration of each response, and passes it on', async () => {
    const clock = new FakeClock();
    const metrics = recordingMetrics();
    const answer = response(200);
    const http = instrumentHttpLibrary(library(clock, 250, answer), metrics, clock);
    expect(await http.send(request()).toPromise()).to.equal(answer);
    expect(metrics.observed).to.deep.equal([['PUT', '10.0.0.1:6443', '200', 0.25]]);
  });

  it('observes error statuses by their code', async () => {
    const clock = new FakeClock();
    const metrics = recordingMetrics();
    const http = instrumentHttpLibrary(library(clock, 5, response(409)), metrics, clock);
    const answer = await http.send(request()).toPromise();
    expect(answer.httpStatusCode).to.equal(409);
    expect(metrics.observed).to.deep.equal([['PUT', '10.0.0.1:6443', '409', 0.005]]);
  });

  it('observes a request that got no response as "<error>" and rethrows its error', async () => {
    const clock = new FakeClock();
    const metrics = recordingMetrics();
    const refused = new Error('connect ECONNREFUSED 10.0.0.1:6443');
    const http = instrumentHttpLibrary(library(clock, 1_000, refused), metrics, clock);
    const failure = await http.send(request()).toPromise().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failure).to.equal(refused);
    expect(metrics.observed).to.deep.equal([['PUT', '10.0.0.1:6443', NO_RESPONSE_CODE, 1]]);
  });
});

describe('makeInstrumentedClient', () => {
  /** A local stand-in for the API server that answers every request with `status`. */
  async function apiServer(status: number): Promise<{ url: string; seen: IncomingHttpHeaders[]; close(): Promise<void> }> {
    const seen: IncomingHttpHeaders[] = [];
    const server = createServer((req, res) => {
      seen.push(req.headers);
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'ops' } }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    return {
      url: `http://127.0.0.1:${port}`,
      seen,
      close: () => new Promise((resolve) => server.close(() => resolve())),
    };
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

  it("counts each call and keeps makeApiClient's server, credentials and User-Agent", async () => {
    const server = await apiServer(200);
    try {
      const metrics = recordingMetrics();
      const core = makeInstrumentedClient(kubeConfig(server.url), CoreV1Api, metrics);
      const namespace = await core.readNamespace({ name: 'ops' });
      expect(namespace.metadata?.name).to.equal('ops');
      expect(metrics.observed).to.have.length(1);
      expect(metrics.observed[0]?.slice(0, 3)).to.deep.equal(['GET', new URL(server.url).host, '200']);
      expect(server.seen[0]?.authorization).to.equal('Bearer sekret');
      expect(server.seen[0]?.['user-agent']).to.match(/kubernetes-client/i);
    } finally {
      await server.close();
    }
  });

  it('ends a request the server never answers after the timeout, counted as "<error>"', async () => {
    const held: ServerResponse[] = [];
    const server = createServer((_req, res) => held.push(res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const metrics = recordingMetrics();
      const core = makeInstrumentedClient(kubeConfig(`http://127.0.0.1:${port}`), CoreV1Api, metrics, undefined, 100);
      const outcome = await core.readNamespace({ name: 'ops' }).catch((err: unknown) => err);
      expect(outcome).to.be.instanceOf(Error);
      expect(held).to.have.length(1);
      expect(metrics.observed.map(([, , code]) => code)).to.deep.equal([NO_RESPONSE_CODE]);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('counts a call the server refuses with its status, and one that reaches no server as "<error>"', async () => {
    const server = await apiServer(403);
    const metrics = recordingMetrics();
    const core = makeInstrumentedClient(kubeConfig(server.url), CoreV1Api, metrics);
    const forbidden = await core.readNamespace({ name: 'ops' }).catch((err: unknown) => err);
    expect(forbidden).to.have.property('code', 403);
    await server.close();
    const unreachable = await core.readNamespace({ name: 'ops' }).catch((err: unknown) => err);
    expect(unreachable).to.be.instanceOf(Error);
    expect(metrics.observed.map(([method, , code]) => [method, code])).to.deep.equal([
      ['GET', '403'],
      ['GET', NO_RESPONSE_CODE],
    ]);
  });
});
