import type { V1ConfigMap, V1Deployment, V1Service } from '@kubernetes/client-node';
import { MANAGED_BY_SELECTOR } from '../runtime/children.ts';
import type { Controller } from '../runtime/controller.ts';
import type { Informer } from '../runtime/informer.ts';
import type { Manager } from '../runtime/manager.ts';
import { makeReconcile, type ReconcileReport } from './reconcile.ts';
import { WEBSITE_API_VERSION, WEBSITE_KIND, WEBSITE_PLURAL, type Website } from './types.ts';

export interface WebsiteControllerOptions {
  /** Called at the end of every reconcile (tests await reconciles with it). */
  onReconciled?: (report: ReconcileReport) => void;
}

/** What registerWebsiteController built; main ignores it, tests use it. */
export interface WebsiteController {
  controller: Controller;
  informers: {
    websites: Informer<Website>;
    configMaps: Informer<V1ConfigMap>;
    deployments: Informer<V1Deployment>;
    services: Informer<V1Service>;
  };
}

/**
 * Registers the Website controller with the manager: a cache of Websites, a
 * cache of each child kind (only objects labelled managed-by ha-operator, so
 * the operator does not hold every ConfigMap of the cluster in memory), and a
 * controller that reconciles a Website when it or one of the children it
 * controls changes.
 */
export function registerWebsiteController(manager: Manager, options: WebsiteControllerOptions = {}): WebsiteController {
  const informers = {
    websites: manager.informer<Website>({ apiVersion: WEBSITE_API_VERSION, kind: WEBSITE_KIND, plural: WEBSITE_PLURAL }),
    configMaps: manager.informer<V1ConfigMap>({ apiVersion: 'v1', kind: 'ConfigMap', plural: 'configmaps', labelSelector: MANAGED_BY_SELECTOR }),
    deployments: manager.informer<V1Deployment>({ apiVersion: 'apps/v1', kind: 'Deployment', plural: 'deployments', labelSelector: MANAGED_BY_SELECTOR }),
    services: manager.informer<V1Service>({ apiVersion: 'v1', kind: 'Service', plural: 'services', labelSelector: MANAGED_BY_SELECTOR }),
  };
  const reconcile = makeReconcile({
    caches: informers,
    writerFor: (key, signal, logger) => manager.writerFor(key, signal, logger),
    read: (ref, signal) => manager.read(ref, signal),
    recordEvent: (key, event) => manager.events.record(key, event),
    clock: manager.clock,
    reportingInstance: manager.config.podName,
    ...(options.onReconciled ? { onReconciled: options.onReconciled } : {}),
  });
  const controller = manager.createController('website', informers.websites, reconcile);
  const owner = { apiVersion: WEBSITE_API_VERSION, kind: WEBSITE_KIND };
  controller.watchOwned(informers.configMaps, owner);
  controller.watchOwned(informers.deployments, owner);
  controller.watchOwned(informers.services, owner);
  return { controller, informers };
}
