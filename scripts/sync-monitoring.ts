/**
 * `npm run sync-monitoring`: writes the monitoring kustomize component from the files
 * under config/ (kustomize cannot read files outside a kustomization's directory):
 * a PrometheusRule carrying config/alerts.yaml, and the dashboard JSON that the
 * component's configMapGenerator turns into a ConfigMap for Grafana's sidecar.
 * test/unit/k8s-manifests.test.ts fails when the component is out of date.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { parse, stringify } from 'yaml';

export const COMPONENT = 'k8s/components/monitoring';

export async function monitoringFiles(): Promise<Record<string, string>> {
  const alerts = parse(await readFile('config/alerts.yaml', 'utf8')) as { groups: unknown[] };
  const rule = {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: { name: 'ssh-banner-proxy', labels: { 'app.kubernetes.io/name': 'ssh-banner-proxy' } },
    spec: { groups: alerts.groups },
  };
  const header = '# Generated from config/alerts.yaml by `npm run sync-monitoring`; edit that file, not this one.\n';
  return {
    [`${COMPONENT}/prometheusrule.yaml`]: header + stringify(rule, { lineWidth: 0 }),
    [`${COMPONENT}/grafana-dashboard.json`]: await readFile('config/grafana-dashboard.json', 'utf8'),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const [file, text] of Object.entries(await monitoringFiles())) await writeFile(file, text);
  console.log(`wrote ${COMPONENT}`);
}
