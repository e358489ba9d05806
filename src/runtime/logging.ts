import type { Writable } from 'node:stream';
import { type Logger, createLogger as createWinstonLogger, format, transports } from 'winston';

import type { LogFormat, LogLevel } from './config.ts';

export type { Logger } from 'winston';

export interface LoggerOptions {
  level: LogLevel;
  format: LogFormat;
  /** Where lines go; stdout unless a test captures them. */
  stream?: Writable;
}

/**
 * A winston logger writing one JSON object per line (timestamp, level,
 * message, then the fields), or a human-readable line with LOG_FORMAT=text.
 * Errors carry their stack, whether logged directly or as a field. Fields
 * that hold credentials are replaced by "[REDACTED]" at any depth. Reconcile
 * code logs through `logger.child({ controller, key, reconcileID })` so every
 * line carries its context.
 */
export function createLogger(options: LoggerOptions): Logger {
  return createWinstonLogger({
    level: options.level,
    format: format.combine(
      format.errors({ stack: true, cause: true }),
      format.timestamp(),
      scrubFields(),
      options.format === 'json' ? format.json({ deterministic: false }) : textLine,
    ),
    transports: [new transports.Stream({ stream: options.stream ?? process.stdout })],
  });
}

export const REDACTED = '[REDACTED]';

// Compared against the key lower-cased with separators removed, so "client-key-data",
// "clientKeyData", "bearerToken" and "Proxy-Authorization" all match.
const SECRET_KEY = /(token|password|passwd|secret|authorization|bearer|apikey|privatekey|keydata|cookie|credentials?)$/;

function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key.toLowerCase().replace(/[^a-z0-9]/g, ''));
}

/**
 * Puts timestamp, level and message first and the stack last, redacts secret
 * fields and turns nested errors into plain objects (JSON.stringify would
 * write an Error as {}). Builds new objects: the caller's are left untouched.
 */
const scrubFields = format((info) => {
  const { timestamp, level, message, stack, ...fields } = info;
  const scrubbed: typeof info = { timestamp, level, message, ...(scrub(fields, []) as object) };
  if (stack !== undefined) scrubbed.stack = stack;
  // winston's own bookkeeping (the level used by transports, the splat arguments) lives under symbols.
  for (const symbol of Object.getOwnPropertySymbols(info)) scrubbed[symbol] = info[symbol];
  return scrubbed;
});

function scrub(value: unknown, ancestors: object[]): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (ancestors.includes(value)) return '[Circular]';
  const path = [...ancestors, value];
  if (Array.isArray(value)) return value.map((item) => scrub(item, path));
  if (value instanceof Error) {
    const { cause } = value;
    return {
      ...(scrubEntries(value, path) as object),
      message: value.message,
      stack: value.stack,
      ...(cause === undefined ? {} : { cause: scrub(cause, path) }),
    };
  }
  // Dates, Buffers, URLs and the like already know how to serialise themselves.
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return value;
  return scrubEntries(value, path);
}

function scrubEntries(value: object, path: object[]): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(value).map(([key, v]) => [key, isSecretKey(key) ? REDACTED : scrub(v, path)]),
  );
}

/** `2026-01-01T00:00:00.000Z INFO  message key=value …`, then the stack on the lines below. */
const textLine = format.printf((info) => {
  const { timestamp, level, message, stack, ...fields } = info;
  // As in JSON, an undefined field (such as the cause of an error without one) is left out.
  const pairs = Object.entries(fields)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => `${key}=${textValue(value)}`);
  const line = [String(timestamp), level.toUpperCase().padEnd(5), String(message), ...pairs].join(' ');
  return typeof stack === 'string' ? `${line}\n${stack}` : line;
});

function textValue(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  if (value === null || typeof value !== 'object') return String(value);
  return JSON.stringify(value);
}
