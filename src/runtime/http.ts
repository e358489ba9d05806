import express, { type NextFunction, type Request, type Response } from 'express';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import type { Logger } from './logging.ts';
import type { OperatorMetrics } from './metrics.ts';

export type HealthResult = { ok: true } | { ok: false; reason: string };

export interface HealthChecks {
  /** Failing makes the kubelet restart the container. */
  live(): HealthResult;
  /** Failing takes the pod out of Service endpoints and holds a rollout. */
  ready(): HealthResult;
}

export interface HttpServerOptions {
  host: string;
  /** 0 picks a free port; the bound one is returned. */
  port: number;
  metrics: Pick<OperatorMetrics, 'render'>;
  health: HealthChecks;
  logger: Logger;
}

export interface RunningHttpServer {
  port: number;
  /** Stops accepting, closes idle keep-alive connections and resolves once every connection has ended. */
  close(): Promise<void>;
}

/** Serves /metrics, /healthz (liveness) and /readyz (readiness); anything else is 404. */
export async function startHttpServer(options: HttpServerOptions): Promise<RunningHttpServer> {
  const { host, port, metrics, health, logger } = options;
  const app = express();
  app.disable('x-powered-by');

  let closing = false;
  app.use((_req, res, next) => {
    // A response that ends while the server closes leaves a keep-alive connection that would
    // otherwise hold close() open until it times out.
    res.once('finish', () => {
      if (closing) setImmediate(() => server.closeIdleConnections());
    });
    next();
  });

  app.get('/metrics', async (_req, res) => {
    const { contentType, body } = await metrics.render();
    res.type(contentType).send(body);
  });
  app.get('/healthz', (_req, res) => sendHealth(res, health.live(), 500));
  app.get('/readyz', (_req, res) => sendHealth(res, health.ready(), 503));
  app.use((_req, res) => {
    res.status(404).type('text/plain').send('not found');
  });
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    logger.error('http handler failed', { method: req.method, path: req.path, err });
    res.status(500).type('text/plain').send('internal error');
  });

  const server = await listen(app, port, host);
  const bound = (server.address() as AddressInfo).port;
  logger.info('http server listening', { host, port: bound });
  return {
    port: bound,
    close: () =>
      new Promise<void>((resolve, reject) => {
        closing = true;
        // server.close() ends the connections idle now (Node >= 19); the finish hook ends the others as they idle.
        server.close((err) => {
          if (err) reject(new Error(`closing the http server on port ${bound}`, { cause: err }));
          else resolve();
        });
      }),
  };
}

function sendHealth(res: Response, result: HealthResult, failureStatus: number): void {
  res.type('text/plain');
  if (result.ok) res.status(200).send('ok');
  else res.status(failureStatus).send(result.reason);
}

function listen(app: express.Express, port: number, host: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = app.listen(port, host);
    const onError = (err: Error): void =>
      reject(new Error(`http server cannot listen on ${host}:${port}`, { cause: err }));
    server.once('error', onError);
    server.once('listening', () => {
      server.off('error', onError);
      resolve(server);
    });
  });
}
