/** The Widget as the harness knows it (hack/lib/kind-profile.ts), and the operator program that serves it. */
import { resolve } from 'node:path';
import { listByName, type KindProfile } from '../../../../hack/lib/kind-profile.ts';
import { firstDifference } from '../../../../src/runtime/compare.ts';
import { WIDGET_API_VERSION, WIDGET_CRD, WIDGET_GROUP, WIDGET_KIND, WIDGET_PLURAL, WIDGET_VERSION, widgetConfigMap, type Widget } from './widget.ts';

/** The entry point of an operator replica that serves Widgets (Replica.start's `entry`). */
export const WIDGET_OPERATOR = resolve(import.meta.dirname, 'main.ts');

export const WIDGET_PROFILE: KindProfile<Widget> = {
  crd: WIDGET_CRD,
  resource: { group: WIDGET_GROUP, version: WIDGET_VERSION, apiVersion: WIDGET_API_VERSION, kind: WIDGET_KIND, plural: WIDGET_PLURAL },
  sample: (namespace, name) => ({ apiVersion: WIDGET_API_VERSION, kind: WIDGET_KIND, metadata: { name, namespace }, spec: { text: `${name}, version 1` } }),
  change: (name, version) => ({ spec: { text: `${name}, version ${version}` } }),
  observedGeneration: (widget) => widget.status?.observedGeneration,
  converged: (widget) => widget.status?.observedGeneration === widget.metadata.generation,
  async childrenBehind(kubeConfig, namespace, widgets) {
    const configMaps = await listByName(kubeConfig, { apiVersion: 'v1', kind: 'ConfigMap', plural: 'configmaps' }, namespace);
    return widgets.flatMap((widget) => {
      const found = configMaps.get(widget.metadata.name);
      const difference = found === undefined ? 'absent' : firstDifference(found, widgetConfigMap(widget));
      return difference === undefined ? [] : [`${widget.metadata.name}: its ConfigMap (${difference})`];
    });
  },
  described: { sample: 'a one-line spec.text', change: 'a spec.text update (merge patch)', converged: 'status.observedGeneration = metadata.generation' },
};
