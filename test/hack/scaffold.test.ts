import { expect } from 'chai';
import { insertAtMarker, removeBlock, removeLines } from '../../hack/scaffold/edits.ts';
import { checkGroup, kindNames, ownedKind } from '../../hack/scaffold/names.ts';
import { nameForms } from '../../hack/scaffold/rename.ts';

// What make new-kind, make remove-kind and make rename derive from their
// arguments, and the edits they make; test/integration/starter/copy.test.ts
// runs them on a copy of the project.

describe('hack/scaffold: names, owned kinds and edits', () => {
  it('names a kind\'s folder, constants, singular and plural from its Kind', () => {
    expect(kindNames('Backup')).to.deep.equal({ kind: 'Backup', singular: 'backup', plural: 'backups', dir: 'backup', constant: 'BACKUP' });
    expect(kindNames('BackupPolicy')).to.deep.include({ plural: 'backuppolicies', dir: 'backup-policy', constant: 'BACKUP_POLICY' });
    expect(kindNames('DNSRecord')).to.deep.include({ plural: 'dnsrecords', dir: 'dns-record', constant: 'DNS_RECORD' });
    expect(kindNames('Ingress').plural).to.equal('ingresses');
  });

  it('refuses a kind, an owned kind or a group that Kubernetes would not take, saying what is expected', () => {
    expect(() => kindNames('backup')).to.throw('KIND=backup: a kind is UpperCamelCase');
    expect(() => ownedKind('CronJob')).to.throw('OWNS=CronJob: give the owned kind as group/version/Kind');
    expect(() => ownedKind('batch/one/CronJob')).to.throw('OWNS=batch/one/CronJob');
    expect(() => checkGroup('backups')).to.throw('GROUP=backups: an API group is a lowercase DNS subdomain with at least one dot');
  });

  it('reads an owned kind with or without its group', () => {
    expect(ownedKind('batch/v1/CronJob')).to.deep.equal({ group: 'batch', apiVersion: 'batch/v1', kind: 'CronJob', plural: 'cronjobs' });
    expect(ownedKind('v1/ConfigMap')).to.deep.equal({ group: '', apiVersion: 'v1', kind: 'ConfigMap', plural: 'configmaps' });
    expect(ownedKind('networking.k8s.io/v1/NetworkPolicy').plural).to.equal('networkpolicies');
  });

  it('inserts above a marker with its indentation, and fails without the marker', () => {
    const text = 'const KINDS = [\n  A,\n  // +scaffold:kinds\n];';
    expect(insertAtMarker(text, '// +scaffold:kinds', ['B,'], 'kinds.ts')).to.equal('const KINDS = [\n  A,\n  B,\n  // +scaffold:kinds\n];');
    expect(() => insertAtMarker('[]', '// +scaffold:kinds', ['B,'], 'kinds.ts')).to.throw('kinds.ts: the marker "// +scaffold:kinds" is missing');
  });

  it('takes out lines and blocks, and fails when there is nothing to take out', () => {
    expect(removeLines('a\nb\nc', (l) => l === 'b', 'f', 'b')).to.equal('a\nc');
    expect(() => removeLines('a', (l) => l === 'b', 'f', 'the line b')).to.throw('f: found no the line b');
    const rules = '  - x\n  # kind A: begin\n  - a\n  # kind A: end\n  - y';
    expect(removeBlock(rules, '# kind A: begin', '# kind A: end', 'rbac.yaml')).to.equal('  - x\n  - y');
    expect(() => removeBlock(rules, '# kind B: begin', '# kind B: end', 'rbac.yaml')).to.throw('rbac.yaml: found no block');
  });

  it('gives a project name in the forms it takes: kebab, constant, Pascal', () => {
    expect(nameForms('backup-operator')).to.deep.equal({ kebab: 'backup-operator', constant: 'BACKUP_OPERATOR', pascal: 'BackupOperator' });
  });
});
