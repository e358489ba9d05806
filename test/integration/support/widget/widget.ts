/**
 * Widget: the smallest kind that exercises the runtime as an operator uses it,
 * so that the runtime and lease tests depend on no sample kind. A Widget owns
 * one ConfigMap of its name holding its spec.text; its status records the
 * generation that ConfigMap was written for. Every write goes through the
 * fenced writer with a precondition: a create (POST) for a ConfigMap missing
 * from the cache, an apply conditional on the cached resourceVersion for one
 * that differs, a status apply conditional on the Widget's.
 */
import type { V1ConfigMap, V1ObjectMeta } from '@kubernetes/client-node';
import { firstDifference } from '../../../../src/runtime/compare.ts';
import type { Manager } from '../../../../src/runtime/manager.ts';

export const WIDGET_GROUP = 'test.example.com';
export const WIDGET_VERSION = 'v1';
export const WIDGET_API_VERSION = `${WIDGET_GROUP}/${WIDGET_VERSION}`;
export const WIDGET_KIND = 'Widget';
export const WIDGET_PLURAL = 'widgets';

export interface Widget {
  apiVersion: typeof WIDGET_API_VERSION;
  kind: typeof WIDGET_KIND;
  metadata: V1ObjectMeta & { name: string; namespace: string; uid: string; generation: number };
  spec: { text?: string };
  status?: { observedGeneration?: number };
}

export const WIDGET_CRD = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: `${WIDGET_PLURAL}.${WIDGET_GROUP}` },
  spec: {
    group: WIDGET_GROUP,
    scope: 'Namespaced',
    names: { kind: WIDGET_KIND, listKind: `${WIDGET_KIND}List`, plural: WIDGET_PLURAL, singular: 'widget' },
    versions: [{
      name: WIDGET_VERSION,
      served: true,
      storage: true,
      subresources: { status: {} },
      schema: {
        openAPIV3Schema: {
          type: 'object',
          properties: {
            spec: { type: 'object', properties: { text: { type: 'string' } } },
            status: { type: 'object', properties: { observedGeneration: { type: 'integer', format: 'int64' } } },
          },
        },
      },
    }],
  },
} as const;

/** The ConfigMap a Widget owns: only the fields the operator sets. */
export function widgetConfigMap(widget: Widget): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: widget.metadata.name,
      namespace: widget.metadata.namespace,
      ownerReferences: [{ apiVersion: WIDGET_API_VERSION, kind: WIDGET_KIND, name: widget.metadata.name, uid: widget.metadata.uid, controller: true }],
    },
    data: { text: widget.spec.text ?? '' },
  };
}

/** Registers the Widget controller: a cache of Widgets and one of ConfigMaps, whose changes queue their owning Widget. */
export function registerWidgetController(manager: Manager): void {
  const widgets = manager.informer<Widget>({ apiVersion: WIDGET_API_VERSION, kind: WIDGET_KIND, plural: WIDGET_PLURAL });
  const configMaps = manager.informer<V1ConfigMap>({ apiVersion: 'v1', kind: 'ConfigMap', plural: 'configmaps' });
  const controller = manager.createController('widget', widgets, async (key, { signal, logger }) => {
    const widget = widgets.get(key);
    // A deleted Widget's ConfigMap goes by ownerReference GC.
    if (widget === undefined || widget.metadata.deletionTimestamp !== undefined) return;
    const writer = manager.writerFor(key, signal, logger);
    const desired = widgetConfigMap(widget);
    const cached = configMaps.get(key);
    // A 409 (the cache behind our own create, or a newer version on the server) fails the pass; the retry reads a newer cache.
    if (cached === undefined) await writer.create(desired);
    else if (firstDifference(cached, desired) !== undefined) await writer.apply(desired, cached.metadata?.resourceVersion);
    const { name, namespace, generation, resourceVersion } = widget.metadata;
    if (widget.status?.observedGeneration === generation) return;
    await writer.applyStatus({ apiVersion: WIDGET_API_VERSION, kind: WIDGET_KIND, namespace, name }, { observedGeneration: generation }, resourceVersion);
  });
  controller.watchOwned(configMaps, { apiVersion: WIDGET_API_VERSION, kind: WIDGET_KIND });
}
