/**
 * The one error type reconcile code throws on purpose. `reason` is a short
 * CamelCase word that goes into logs, Kubernetes events and status conditions
 * (for example InvalidSpec or ApplyFailed), so a failure reads the same way
 * everywhere it shows up.
 */
export class ReconcileError extends Error {
  override name = 'ReconcileError';
  readonly reason: string;
  /**
   * Retrying cannot help (controller-runtime's TerminalError): the key is not
   * requeued — the next change of the object queues it again — and the failure
   * is counted in controller_runtime_terminal_reconcile_errors_total.
   */
  readonly terminal: boolean;

  constructor(reason: string, message: string, options?: ErrorOptions & { terminal?: boolean }) {
    super(message, options);
    this.reason = reason;
    this.terminal = options?.terminal ?? false;
  }
}

/** Refused by the write gate: this replica cannot prove it leads, or its reconcile was aborted. */
export class NotLeaderError extends ReconcileError {
  override name = 'NotLeaderError';

  constructor(message: string) {
    super('NotLeader', message);
  }
}

/**
 * Whether an exception is a programming error (a TypeError from a missing
 * field, say) rather than a failure the reconcile anticipated. These are
 * counted as panics, as controller-runtime counts a recovered Go panic.
 */
export function isPanic(error: unknown): boolean {
  return error instanceof TypeError || error instanceof RangeError || error instanceof ReferenceError
    || error instanceof SyntaxError || !(error instanceof Error);
}

/**
 * One line a person can read for a failed call or reconcile: the message,
 * then the message of each cause that it does not already contain. A panic
 * (a programming error) keeps its stack, which is what it needs to be fixed.
 */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  if (isPanic(error)) return error.stack ?? `${error.name}: ${error.message}`;
  let text = error.message;
  let cause: unknown = error.cause;
  for (let depth = 0; cause !== undefined && depth < 5; depth++) {
    const message = cause instanceof Error ? cause.message : JSON.stringify(cause);
    if (message && !text.includes(message)) text += `; caused by: ${message}`;
    cause = cause instanceof Error ? cause.cause : undefined;
  }
  return text;
}
