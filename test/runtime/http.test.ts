import { expect } from 'chai';
import { Agent, get } from 'node:http';
import { Writable } from 'node:stream';

import { type HealthResult, type HttpServerOptions, type RunningHttpServer, startHttpServer } from '../../src/runtime/http.ts';
import { createLogger } from '../../src/runtime/logging.ts';
import { OperatorMetrics, type RenderedMetrics } from '../../src/runtime/metrics.ts';
import { settle } from '../support/fake-clock.ts';

const healthy: HealthResult = { ok: true };

/** A logger that keeps its lines for the test instead of printing them. */
function quietLogger(): { logger: HttpServerOptions['logger']; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { logger: createLogger({ level: 'info', format: 'json', stream }), lines };
}

describe('startHttpServer', () => {
  let live: HealthResult;
  let ready: HealthResult;
  let server: RunningHttpServer | undefined;

  beforeEach(() => {
    live = healthy;
    ready = healthy;
  });

  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  async function start(overrides: Partial<HttpServerOptions> = {}): Promise<string> {
    server = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      metrics: new OperatorMetrics(),
      health: { live: () => live, ready: () => ready },
      logger: quietLogger().logger,
      ...overrides,
    });
    return `http://127.0.0.1:${server.port}`;
  }

  /** Status code and body of a GET on a fresh connection. */
  async function fetchText(url: string, init?: RequestInit): Promise<[number, string, Headers]> {
    const res = await fetch(url, init);
    return [res.status, await res.text(), res.headers];
  }

  it('binds a free port when asked for port 0', async () => {
    await start();
    expect(server?.port).to.be.within(1, 65535);
  });

  it('serves the metrics with the registry content type', async () => {
    const metrics = new OperatorMetrics();
    metrics.controllerMetrics('website');
    const base = await start({ metrics });
    const [status, body, headers] = await fetchText(`${base}/metrics`);
    expect(status).to.equal(200);
    expect(headers.get('content-type')).to.equal((await metrics.render()).contentType);
    expect(body).to.include('controller_runtime_reconcile_total{controller="website",result="success"} 0');
  });

  it('answers liveness with 200 "ok", or 500 and the reason', async () => {
    const base = await start();
    expect(await fetchText(`${base}/healthz`)).to.include.members([200, 'ok']);
    live = { ok: false, reason: 'informer stopped: list failed 5 times' };
    expect(await fetchText(`${base}/healthz`)).to.include.members([500, 'informer stopped: list failed 5 times']);
  });

  it('answers readiness with 200 "ok", or 503 and the reason', async () => {
    const base = await start();
    expect(await fetchText(`${base}/readyz`)).to.include.members([200, 'ok']);
    ready = { ok: false, reason: 'cache not synced' };
    const [status, body, headers] = await fetchText(`${base}/readyz`);
    expect([status, body]).to.deep.equal([503, 'cache not synced']);
    expect(headers.get('content-type')).to.match(/^text\/plain/);
  });

  it('answers 404 for any other path or method', async () => {
    const base = await start();
    expect((await fetchText(`${base}/`))[0]).to.equal(404);
    expect((await fetchText(`${base}/metrics/extra`))[0]).to.equal(404);
    expect((await fetchText(`${base}/metrics`, { method: 'POST' }))[0]).to.equal(404);
  });

  it('answers 500 and logs the error when rendering the metrics fails', async () => {
    const { logger, lines } = quietLogger();
    const metrics = { render: (): Promise<RenderedMetrics> => Promise.reject(new Error('collector failed')) };
    const base = await start({ metrics, logger });
    expect(await fetchText(`${base}/metrics`)).to.include.members([500, 'internal error']);
    const logged = lines.map((line) => JSON.parse(line) as Record<string, unknown>).find((l) => l.level === 'error');
    expect(logged).to.deep.include({ message: 'http handler failed', method: 'GET', path: '/metrics' });
    expect((logged?.err as { message: string }).message).to.equal('collector failed');
  });

  it('rejects, naming the address, when the port is taken', async () => {
    await start();
    const taken = server?.port ?? 0;
    const failure = await startHttpServer({
      host: '127.0.0.1',
      port: taken,
      metrics: new OperatorMetrics(),
      health: { live: () => live, ready: () => ready },
      logger: quietLogger().logger,
    }).catch((err: unknown) => err);
    expect(failure).to.be.instanceOf(Error);
    expect((failure as Error).message).to.equal(`http server cannot listen on 127.0.0.1:${taken}`);
    expect((failure as Error).cause).to.have.property('code', 'EADDRINUSE');
  });

  describe('close', () => {
    /** A GET over `agent`, so the connection can stay open afterwards. */
    function getVia(agent: Agent, url: string): Promise<string> {
      return new Promise((resolve, reject) => {
        get(url, { agent }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () => resolve(body));
        }).on('error', reject);
      });
    }

    it('stops accepting connections', async () => {
      const base = await start();
      await server?.close();
      server = undefined;
      const failure = await fetch(`${base}/healthz`).catch((err: unknown) => err);
      expect(failure).to.be.instanceOf(TypeError);
    });

    it('does not wait for idle keep-alive connections to time out', async () => {
      const base = await start();
      const agent = new Agent({ keepAlive: true });
      try {
        expect(await getVia(agent, `${base}/healthz`)).to.equal('ok');
        const started = performance.now();
        await server?.close();
        server = undefined;
        // Node keeps an idle connection for 5 s by default.
        expect(performance.now() - started).to.be.below(1_000);
      } finally {
        agent.destroy();
      }
    });

    it('lets a request in flight finish, then resolves without waiting for its connection to idle out', async () => {
      let releaseRender: () => void = () => undefined;
      let renderStarted: () => void = () => undefined;
      const rendering = new Promise<void>((resolve) => (renderStarted = resolve));
      const metrics = {
        render: () =>
          new Promise<RenderedMetrics>((resolve) => {
            releaseRender = () => resolve({ contentType: 'text/plain', body: 'late but whole' });
            renderStarted();
          }),
      };
      const base = await start({ metrics });
      const agent = new Agent({ keepAlive: true });
      try {
        const response = getVia(agent, `${base}/metrics`);
        await rendering;
        let closed = false;
        const closing = server?.close().then(() => (closed = true));
        server = undefined;
        // Give close() every chance to finish early: run the event loop dry of ready work.
        await settle();
        expect(closed).to.equal(false);
        const started = performance.now();
        releaseRender();
        expect(await response).to.equal('late but whole');
        await closing;
        expect(performance.now() - started).to.be.below(1_000);
      } finally {
        agent.destroy();
      }
    });
  });
});
