import { loadYaml } from '@kubernetes/client-node';
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { PROMETHEUS_RULE_FILE, RULES_FILE, RULES_TEST_FILE, renderPrometheusRule } from '../../hack/grafana/alerts.ts';
import { exportedSeries } from '../../hack/grafana/catalog.ts';
import { promtool } from '../../hack/grafana/promtool.ts';
import { metricNames } from '../../hack/grafana/queries.ts';

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RulesFile {
  groups: { name: string; rules: Rule[] }[];
}
interface PrometheusRule {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string };
  spec: RulesFile;
}
interface RulesTests {
  rule_files: string[];
  tests: { name: string; alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[];
}

const SERVICE_FILE = fileURLToPath(new URL('../../manifests/base/service.yaml', import.meta.url));
const JOB = 'ha-operator-metrics';

const rulesFile = loadYaml<RulesFile>(readFileSync(RULES_FILE, 'utf8'));
const prometheusRule = loadYaml<PrometheusRule>(readFileSync(PROMETHEUS_RULE_FILE, 'utf8'));
const alerts = rulesFile.groups.flatMap((g) => g.rules).filter((r): r is Rule & { alert: string } => r.alert !== undefined);

describe('alerts/ha-operator.rules.yaml', () => {
  it('passes promtool check rules', () => {
    const { status, output } = promtool(['check', 'rules', RULES_FILE]);
    expect(status, output).to.equal(0);
    expect(output).to.include(`SUCCESS: ${alerts.length} rules found`);
  });

  it('passes its unit tests (promtool test rules alerts/ha-operator.rules.test.yaml)', function () {
    this.timeout(30_000);
    const { status, output } = promtool(['test', 'rules', RULES_TEST_FILE]);
    expect(status, output).to.equal(0);
    expect(output).to.include('SUCCESS');
  });

  it('has the six alerts the operator needs, and two more', () => {
    expect(alerts.map((a) => a.alert)).to.have.members([
      'HaOperatorNoLeader',
      'HaOperatorMultipleLeaders',
      'HaOperatorLeadershipFlapping',
      'HaOperatorReconcileErrorsHigh',
      'HaOperatorReconcileSlow',
      'HaOperatorWorkQueueGrowing',
      'HaOperatorTargetDown',
      'HaOperatorDown',
    ]);
  });

  it('tests every alert both firing and not firing', () => {
    const tests = loadYaml<RulesTests>(readFileSync(RULES_TEST_FILE, 'utf8'));
    expect(tests.rule_files).to.deep.equal(['ha-operator.rules.yaml']);
    const cases = tests.tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const { alert } of alerts) {
      const mine = cases.filter((c) => c.alertname === alert);
      expect(mine.some((c) => c.exp_alerts.length > 0), `${alert} never expected to fire`).to.equal(true);
      expect(mine.some((c) => c.exp_alerts.length === 0), `${alert} never expected to stay silent`).to.equal(true);
    }
  });

  it('gives every alert a severity, a summary and a description', () => {
    for (const a of alerts) {
      expect(['warning', 'critical'], a.alert).to.include(a.labels?.severity);
      expect(a.annotations?.summary, a.alert).to.be.a('string').and.not.equal('');
      expect(a.annotations?.description, a.alert).to.be.a('string').and.not.equal('');
    }
  });

  it('selects the metrics Service`s job in every selector (other components export the same names)', () => {
    const service = loadYaml<{ metadata: { name: string } }>(readFileSync(SERVICE_FILE, 'utf8'));
    expect(service.metadata.name, 'the job Prometheus Operator derives from manifests/base/service.yaml').to.equal(JOB);
    for (const a of alerts) {
      const selectors = a.expr.match(/[a-zA-Z_:][a-zA-Z0-9_:]*\{[^}]*\}/g) ?? [];
      expect(selectors, a.alert).not.to.be.empty;
      for (const s of selectors) expect(s, a.alert).to.include(`job="${JOB}"`);
    }
  });

  it('reads only metrics the operator exports (or up)', async () => {
    const catalog = await exportedSeries();
    for (const a of alerts) {
      for (const name of metricNames(a.expr)) expect(catalog.has(name), `${a.alert}: unknown metric ${name}`).to.equal(true);
    }
  });
});

describe('alerts/prometheusrule.yaml', () => {
  it('is generated from the rules file', () => {
    expect(readFileSync(PROMETHEUS_RULE_FILE, 'utf8'), 'stale: run `node hack/grafana/generate.ts`').to.equal(
      renderPrometheusRule(readFileSync(RULES_FILE, 'utf8')),
    );
  });

  it('is a PrometheusRule whose spec is the rules file', () => {
    expect(prometheusRule).to.deep.include({ apiVersion: 'monitoring.coreos.com/v1', kind: 'PrometheusRule' });
    expect(prometheusRule.metadata).to.include({ name: 'ha-operator', namespace: 'ha-operator' });
    expect(prometheusRule.spec).to.deep.equal(rulesFile);
  });

  it('has a spec that passes promtool check rules (promtool rejects the wrapper itself)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ha-operator-rules-'));
    try {
      const file = join(dir, 'spec.json');
      writeFileSync(file, JSON.stringify(prometheusRule.spec));
      const { status, output } = promtool(['check', 'rules', file]);
      expect(status, output).to.equal(0);
      expect(output).to.include(`SUCCESS: ${alerts.length} rules found`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is listed by alerts/kustomization.yaml', () => {
    const kustomization = loadYaml<{ resources: string[] }>(readFileSync(join(dirname(PROMETHEUS_RULE_FILE), 'kustomization.yaml'), 'utf8'));
    expect(kustomization.resources).to.deep.equal(['prometheusrule.yaml']);
  });
});
