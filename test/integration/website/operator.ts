import { registerWebsiteController, type WebsiteController } from '../../../src/website/controller.ts';
import type { ReconcileReport } from '../../../src/website/reconcile.ts';
import { startOperator, type TestOperator } from '../support/operator.ts';

/** An operator of Websites running in this process (test/integration/support/operator.ts), with its reconciles' reports. */
export interface WebsiteTestOperator extends TestOperator {
  readonly website: WebsiteController;
  /** Every reconcile so far, in the order they ended. */
  readonly reports: readonly ReconcileReport[];
  /** Resolves with the first reconcile to end from now on that matches. */
  nextReconcile(matches: (report: ReconcileReport) => boolean, timeoutMs?: number): Promise<ReconcileReport>;
  /**
   * Queues the Website `name` (trigger "test") and resolves with the report of
   * the first reconcile of it that starts afterwards — whatever queued it, since
   * any of them sees caches at least as new as they were at the call.
   */
  reconcileNow(name: string, timeoutMs?: number): Promise<ReconcileReport>;
}

/** startOperator with the Website controller registered, its reports collected. */
export async function startWebsiteOperator(namespace: string, env: Record<string, string> = {}): Promise<WebsiteTestOperator> {
  const reports: ReconcileReport[] = [];
  const waiters = new Set<(report: ReconcileReport) => void>();
  let website!: WebsiteController;
  const operator = await startOperator(namespace, (manager) => {
    website = registerWebsiteController(manager, {
      onReconciled: (report) => {
        reports.push(report);
        for (const waiter of [...waiters]) waiter(report);
      },
    });
  }, env);

  const nextReconcile = (matches: (report: ReconcileReport) => boolean, timeoutMs = 30_000): Promise<ReconcileReport> =>
    new Promise((resolvePromise, reject) => {
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        reject(new Error(`no matching reconcile within ${timeoutMs} ms; last reports: ${JSON.stringify(reports.slice(-5).map(summary))}`));
      }, timeoutMs);
      const waiter = (report: ReconcileReport): void => {
        if (!matches(report)) return;
        clearTimeout(timer);
        waiters.delete(waiter);
        resolvePromise(report);
      };
      waiters.add(waiter);
    });

  return {
    ...operator,
    website,
    reports,
    nextReconcile,
    reconcileNow(name, timeoutMs) {
      const key = `${namespace}/${name}`;
      const queuedAt = operator.manager.clock.monotonicMs();
      const done = nextReconcile((r) => r.key === key && r.startedAtMs >= queuedAt, timeoutMs);
      website.controller.enqueue(key, 'test');
      return done;
    },
  };
}

function summary(report: ReconcileReport): Record<string, unknown> {
  const { key, trigger, outcome, writes, applied, statusWritten, events } = report;
  return { key, trigger, outcome, writes, applied, statusWritten, events };
}
