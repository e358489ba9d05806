/**
 * Writes the files generated from hack/grafana/ and alerts/ha-operator.rules.yaml:
 *
 *   grafana/dashboards/ha-operator.json   the dashboard (hack/grafana/dashboard.ts)
 *   alerts/prometheusrule.yaml            the rules file wrapped as a PrometheusRule
 *   docs/DASHBOARDS.md                    its generated panel list
 *
 *   node hack/grafana/generate.ts           write them
 *   node hack/grafana/generate.ts --check   exit 1, naming the stale ones, if any differs
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

import { PROMETHEUS_RULE_FILE, RULES_FILE, renderPrometheusRule } from './alerts.ts';
import { renderDashboard, withPanelDocs } from './dashboard.ts';
import { DASHBOARD_FILE } from './queries.ts';

export const DOCS_FILE = fileURLToPath(new URL('../../docs/DASHBOARDS.md', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface Generated {
  file: string;
  text: string;
}

/** Each generated file with the text it should have now. */
export function generatedFiles(): Generated[] {
  return [
    { file: DASHBOARD_FILE, text: renderDashboard() },
    { file: PROMETHEUS_RULE_FILE, text: renderPrometheusRule(readFileSync(RULES_FILE, 'utf8')) },
    { file: DOCS_FILE, text: withPanelDocs(readFileSync(DOCS_FILE, 'utf8')) },
  ];
}

function readOrEmpty(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** The generated files whose content on disk differs from what they should be. */
export function staleFiles(): string[] {
  return generatedFiles()
    .filter(({ file, text }) => readOrEmpty(file) !== text)
    .map(({ file }) => relative(ROOT, file));
}

if (import.meta.main) {
  if (process.argv.includes('--check')) {
    const stale = staleFiles();
    if (stale.length > 0) {
      process.stderr.write(`stale, run \`node hack/grafana/generate.ts\`: ${stale.join(', ')}\n`);
      process.exit(1);
    }
  } else {
    for (const { file, text } of generatedFiles()) {
      if (readOrEmpty(file) === text) continue;
      writeFileSync(file, text);
      process.stdout.write(`wrote ${relative(ROOT, file)}\n`);
    }
  }
}
