import { expect } from 'chai';
import { Writable } from 'node:stream';

import type { LogFormat, LogLevel } from '../../src/runtime/config.ts';
import { type Logger, REDACTED, createLogger } from '../../src/runtime/logging.ts';

/** A logger whose output the test reads back; the stream transport writes each entry in one chunk. */
function capture(format: LogFormat, level: LogLevel = 'info'): { logger: Logger; output: () => Promise<string[]> } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  const logger = createLogger({ level, format, stream });
  return {
    logger,
    output: async () => {
      // winston hands entries to its transports through streams: let them flow.
      await new Promise((resolve) => setImmediate(resolve));
      return chunks.map((entry) => entry.trimEnd());
    },
  };
}

async function jsonLines(log: (logger: Logger) => void, level?: LogLevel): Promise<Record<string, unknown>[]> {
  const { logger, output } = capture('json', level);
  log(logger);
  return (await output()).map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('createLogger', () => {
  describe('json', () => {
    it('writes one JSON object per line: timestamp, level, message, then the fields', async () => {
      const { logger, output } = capture('json');
      logger.info('reconciled', { durationMs: 12 });
      logger.warn('slow');
      const lines = await output();
      expect(lines).to.have.length(2);
      const first = JSON.parse(lines[0] ?? '') as Record<string, unknown>;
      expect(Object.keys(first)).to.deep.equal(['timestamp', 'level', 'message', 'durationMs']);
      expect(first).to.include({ level: 'info', message: 'reconciled', durationMs: 12 });
      expect(new Date(first.timestamp as string).toISOString()).to.equal(first.timestamp);
      expect(JSON.parse(lines[1] ?? '')).to.include({ level: 'warn', message: 'slow' });
    });

    it('drops entries below the level', async () => {
      const infoOnly = await jsonLines((logger) => {
        logger.debug('hidden');
        logger.info('shown');
      });
      expect(infoOnly.map((l) => l.message)).to.deep.equal(['shown']);
      const errorOnly = await jsonLines((logger) => {
        logger.warn('hidden');
        logger.error('shown');
      }, 'error');
      expect(errorOnly.map((l) => l.message)).to.deep.equal(['shown']);
      const all = await jsonLines((logger) => logger.debug('shown'), 'debug');
      expect(all.map((l) => l.message)).to.deep.equal(['shown']);
    });

    it('carries the fields of a child on every line', async () => {
      const [line] = await jsonLines((logger) =>
        logger.child({ controller: 'website', key: 'team-a/blog', reconcileID: 'r-1' }).info('applied', { step: 'service' }),
      );
      expect(line).to.include({
        controller: 'website',
        key: 'team-a/blog',
        reconcileID: 'r-1',
        step: 'service',
        message: 'applied',
      });
    });

    it('logs an error with its stack, whether it is the entry or a field', async () => {
      const [direct, asField, withMessage] = await jsonLines((logger) => {
        logger.error(new Error('direct'));
        logger.error('reconcile failed', { err: new Error('nested', { cause: new Error('root cause') }) });
        logger.error('patch failed:', new Error('as meta'));
      });
      expect(direct).to.include({ level: 'error', message: 'direct' });
      expect(direct?.stack).to.match(/^Error: direct\n {4}at /);

      expect(asField?.message).to.equal('reconcile failed');
      const err = asField?.err as { message: string; stack: string; cause: { message: string; stack: string } };
      expect(err.message).to.equal('nested');
      expect(err.stack).to.match(/^Error: nested\n {4}at /);
      expect(err.cause.message).to.equal('root cause');
      expect(err.cause.stack).to.match(/^Error: root cause\n/);

      expect(withMessage?.message).to.equal('patch failed: as meta');
      expect(withMessage?.stack).to.match(/^Error: as meta\n/);
    });

    it('keeps the own fields of an error, such as an API status code', async () => {
      const apiError = Object.assign(new Error('HTTP-Code: 409'), { code: 409, body: { reason: 'Conflict' } });
      const [line] = await jsonLines((logger) => logger.warn('conflict', { err: apiError }));
      expect(line?.err).to.deep.include({ code: 409, body: { reason: 'Conflict' }, message: 'HTTP-Code: 409' });
    });

    it('redacts credential fields at any depth, whatever their spelling', async () => {
      const request = {
        url: 'https://10.0.0.1:6443/api',
        headers: { Authorization: 'Bearer abc', 'proxy-authorization': 'Basic xyz', accept: 'application/json' },
        users: [{ name: 'admin', user: { 'client-key-data': 'LS0t', token: 't0k', password: 'hunter2' } }],
        bearerToken: 'b3arer',
        clientSecret: 's3cret',
        bearer: 'raw',
        apiKey: 'k',
        cookie: 'session=1',
      };
      const [line] = await jsonLines((logger) => logger.info('request', { request, token: 'top' }));
      const text = JSON.stringify(line);
      for (const secret of ['abc', 'xyz', 'LS0t', 't0k', 'hunter2', 'b3arer', 's3cret', 'raw', '"k"', 'session=1', 'top']) {
        expect(text).to.not.include(secret);
      }
      expect(line?.token).to.equal(REDACTED);
      expect(line?.request).to.deep.equal({
        url: 'https://10.0.0.1:6443/api',
        headers: { Authorization: REDACTED, 'proxy-authorization': REDACTED, accept: 'application/json' },
        users: [{ name: 'admin', user: { 'client-key-data': REDACTED, token: REDACTED, password: REDACTED } }],
        bearerToken: REDACTED,
        clientSecret: REDACTED,
        bearer: REDACTED,
        apiKey: REDACTED,
        cookie: REDACTED,
      });
    });

    it('redacts the fields of a child too', async () => {
      const [line] = await jsonLines((logger) => logger.child({ authorization: 'Bearer abc' }).info('x'));
      expect(line?.authorization).to.equal(REDACTED);
    });

    it("leaves fields that merely mention a secret, and the caller's objects, alone", async () => {
      const meta = { secretName: 'tls-cert', tokens: 3, headers: { authorization: 'Bearer abc' } };
      const [line] = await jsonLines((logger) => logger.info('x', meta));
      expect(line).to.include({ secretName: 'tls-cert', tokens: 3 });
      expect(meta.headers.authorization).to.equal('Bearer abc');
    });

    it('writes a circular reference as "[Circular]" instead of failing', async () => {
      const parent: Record<string, unknown> = { name: 'parent' };
      parent.self = parent;
      const shared = { n: 1 };
      const [line] = await jsonLines((logger) => logger.info('x', { parent, a: shared, b: shared }));
      expect(line?.parent).to.deep.equal({ name: 'parent', self: '[Circular]' });
      expect(line).to.deep.include({ a: { n: 1 }, b: { n: 1 } });
    });
  });

  describe('text', () => {
    it('writes timestamp, level, message and key=value fields on one line', async () => {
      const { logger, output } = capture('text');
      logger.child({ controller: 'website', key: 'team-a/blog' }).info('reconciled', {
        durationMs: 12,
        note: 'two words',
        owner: { kind: 'Website' },
      });
      const [line] = await output();
      expect(line).to.match(
        /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO {2}reconciled controller=website key=team-a\/blog durationMs=12 note="two words" owner=\{"kind":"Website"\}$/,
      );
    });

    it('puts the stack of an error on the lines below', async () => {
      const { logger, output } = capture('text');
      logger.error(new Error('boom'));
      const [entry] = await output();
      const [first, second, third] = (entry ?? '').split('\n');
      expect(first).to.match(/Z ERROR boom$/);
      expect(second).to.equal('Error: boom');
      expect(third).to.match(/^ {4}at /);
    });

    it('redacts secrets as the JSON format does', async () => {
      const { logger, output } = capture('text');
      logger.info('request', { headers: { Authorization: 'Bearer abc' } });
      const [line] = await output();
      expect(line).to.include(`headers={"Authorization":"${REDACTED}"}`);
      expect(line).to.not.include('abc');
    });
  });
});
