/**
 * alerts/prometheusrule.yaml from alerts/ha-operator.rules.yaml, the one source of truth.
 *
 * The rules file's body (from `groups:` on) is indented under `spec:` as it is,
 * comments and block scalars included, so the two files hold the same text and
 * a reviewer can diff them by eye. Only the rules file's header comment is
 * replaced by a note that says where the PrometheusRule comes from.
 */
import { fileURLToPath } from 'node:url';

export const RULES_FILE = fileURLToPath(new URL('../../alerts/ha-operator.rules.yaml', import.meta.url));
export const RULES_TEST_FILE = fileURLToPath(new URL('../../alerts/ha-operator.rules.test.yaml', import.meta.url));
export const PROMETHEUS_RULE_FILE = fileURLToPath(new URL('../../alerts/prometheusrule.yaml', import.meta.url));

const HEADER = `# GENERATED from alerts/ha-operator.rules.yaml by \`node hack/grafana/generate.ts\`: edit that file, not this one.
#
# The operator's alerting rules for Prometheus Operator (kube-prometheus-stack).
# Prometheus selects PrometheusRules by its ruleSelector; kube-prometheus-stack's
# default wants the label \`release: <its Helm release name>\`: add it in your
# overlay (see docs/DASHBOARDS.md), or set ruleSelectorNilUsesHelmValues=false.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: ha-operator
  namespace: ha-operator
  labels:
    app.kubernetes.io/name: ha-operator
    app.kubernetes.io/part-of: ha-operator
    app.kubernetes.io/component: alerting
spec:
`;

export function renderPrometheusRule(rulesFileText: string): string {
  const lines = rulesFileText.split('\n');
  const start = lines.findIndex((line) => /^groups:\s*$/.test(line));
  if (start < 0) throw new Error('alerts/ha-operator.rules.yaml: no top-level "groups:" line');
  const body = lines
    .slice(start)
    .map((line) => (line === '' ? '' : `  ${line}`))
    .join('\n');
  return HEADER + body.replace(/\n*$/, '\n');
}
