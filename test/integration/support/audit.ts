import { expect } from 'chai';
import { checkAudit, summarize, type AuditReport } from '../../../hack/lib/audit.ts';
import { cluster } from './cluster.ts';

/**
 * What the API server recorded of the writes in `namespace` (whose Leases
 * live there too), judged by hack/lib/audit.ts. Call it once the replicas
 * have exited: the audit log's backend is blocking, so every request they
 * got an answer to is in the file by then.
 */
export async function auditOf(namespace: string, leaseNamespace = namespace): Promise<AuditReport> {
  const path = cluster().auditLogPath;
  if (!path) throw new Error('the test plane runs without an audit log');
  return checkAudit(path, { namespaces: [namespace], leaseNamespace });
}

/** The safety property, as the API server saw it: no write of an earlier term committed after a later term's write. */
export async function expectNoOutOfTermWrites(namespace: string, leaseNamespace = namespace): Promise<AuditReport> {
  const report = await auditOf(namespace, leaseNamespace);
  console.log(`      ${summarize(report)}`);
  expect(report.unattributed.map((w) => `${w.verb} ${w.object} by ${w.userAgent}`), 'writes whose term the audit log does not show').to.deep.equal([]);
  expect(report.violations, 'writes from an earlier term after a later term\'s').to.deep.equal([]);
  expect(report.writes, 'no write of the operator reached the audit log').to.not.be.empty;
  return report;
}
