import type { KubernetesObject } from '@kubernetes/client-node';
import { MANAGED_BY_SELECTOR } from '../runtime/children.ts';
import type { Controller } from '../runtime/controller.ts';
import type { Manager } from '../runtime/manager.ts';
import { CHILD } from './desired.ts';
import { makeReconcile } from './reconcile.ts';
import { __KIND___API_VERSION, __KIND___KIND, __KIND___PLURAL, type __Kind__ } from './types.ts';

/**
 * Registers the __Kind__ controller with the manager: a cache of __Kind__s, a
 * cache of the __ChildKind__s the operator labelled as its own, and a controller
 * that reconciles a __Kind__ when it or the __ChildKind__ it controls changes.
 */
export function register__Kind__Controller(manager: Manager): Controller {
  const __plural__ = manager.informer<__Kind__>({ apiVersion: __KIND___API_VERSION, kind: __KIND___KIND, plural: __KIND___PLURAL });
  const children = manager.informer<KubernetesObject>({ ...CHILD, labelSelector: MANAGED_BY_SELECTOR });
  const controller = manager.createController('__kind__', __plural__, makeReconcile({
    caches: { __plural__, children },
    writerFor: (key, signal, logger) => manager.writerFor(key, signal, logger),
    read: (ref, signal) => manager.read(ref, signal),
    recordEvent: (key, event) => manager.events.record(key, event),
    clock: manager.clock,
    reportingInstance: manager.config.podName,
  }));
  controller.watchOwned(children, { apiVersion: __KIND___API_VERSION, kind: __KIND___KIND });
  return controller;
}
