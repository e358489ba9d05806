import { loadYaml } from '@kubernetes/client-node';
import { expect } from 'chai';
import { readFileSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';

import { DASHBOARD_FILE } from '../../hack/grafana/queries.ts';

const grafana = (path: string): string => fileURLToPath(new URL(`../../grafana/${path}`, import.meta.url));
const yaml = <T>(path: string): T => loadYaml<T>(readFileSync(grafana(path), 'utf8'));

interface Kustomization {
  namespace: string;
  generatorOptions: { disableNameSuffixHash: boolean; labels: Record<string, string> };
  configMapGenerator: { name: string; files: string[] }[];
}

describe('grafana/ provisioning', () => {
  it('kustomization.yaml generates the dashboard ConfigMap kube-prometheus-stack`s sidecar loads', () => {
    const k = yaml<Kustomization>('kustomization.yaml');
    expect(k.generatorOptions.labels).to.include({ grafana_dashboard: '1' });
    expect(k.generatorOptions.disableNameSuffixHash).to.equal(true);
    expect(k.configMapGenerator).to.deep.equal([{ name: 'ha-operator-dashboard', files: ['dashboards/ha-operator.json'] }]);
    expect(grafana('dashboards/ha-operator.json')).to.equal(DASHBOARD_FILE);
  });

  it('keeps the dashboard small enough for a ConfigMap applied client-side (256 KiB annotation limit)', () => {
    expect(statSync(DASHBOARD_FILE).size).to.be.below(200 * 1024);
  });

  it('provisions a Prometheus data source whose scrape interval matches the ServiceMonitor', () => {
    const ds = yaml<{ apiVersion: number; datasources: { type: string; jsonData: { timeInterval: string } }[] }>(
      'provisioning/datasources/prometheus.yaml',
    );
    expect(ds.apiVersion).to.equal(1);
    expect(ds.datasources).to.have.length(1);
    expect(ds.datasources[0]?.type).to.equal('prometheus');
    const serviceMonitor = loadYaml<{ spec: { endpoints: { interval: string }[] } }>(
      readFileSync(fileURLToPath(new URL('../../manifests/components/monitoring/servicemonitor.yaml', import.meta.url)), 'utf8'),
    );
    expect(ds.datasources[0]?.jsonData.timeInterval).to.equal(serviceMonitor.spec.endpoints[0]?.interval);
  });

  it('provisions the dashboards directory from files, UI edits refused', () => {
    const p = yaml<{ apiVersion: number; providers: { type: string; allowUiUpdates: boolean; options: { path: string } }[] }>(
      'provisioning/dashboards/ha-operator.yaml',
    );
    expect(p.apiVersion).to.equal(1);
    expect(p.providers).to.have.length(1);
    expect(p.providers[0]).to.include({ type: 'file', allowUiUpdates: false });
    expect(basename(p.providers[0]?.options.path ?? '')).to.equal('ha-operator');
  });
});
