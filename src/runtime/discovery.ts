import { isStatus, type KubeClient } from './kube.ts';

/** What a request for an object of some kind needs to know: its URL name and its scope. */
export interface ResourceInfo {
  plural: string;
  namespaced: boolean;
}

interface ApiResourceList {
  resources?: { name: string; kind: string; namespaced: boolean }[];
}

/**
 * Which resource serves a kind, asked of the API server's discovery once per
 * group version (client-go's RESTMapper). A kind the cached answer does not
 * know is asked again once: its CRD may have been installed since.
 */
export class Discovery {
  private readonly client: KubeClient;
  private readonly groups = new Map<string, Promise<Map<string, ResourceInfo>>>();

  constructor(client: KubeClient) {
    this.client = client;
  }

  /**
   * Asks for these group versions now, without waiting, so that the first
   * write of each kind finds the answer (or a request in flight) instead of
   * a round trip. A failure is forgotten as usual: resourceFor asks again.
   */
  prefetch(apiVersions: Iterable<string>): void {
    for (const apiVersion of new Set(apiVersions)) this.resources(apiVersion, false).catch(() => undefined);
  }

  async resourceFor(apiVersion: string, kind: string): Promise<ResourceInfo> {
    const known = (await this.resources(apiVersion, false)).get(kind) ?? (await this.resources(apiVersion, true)).get(kind);
    if (!known) throw new Error(`the API server serves no kind ${kind} in ${apiVersion}`);
    return known;
  }

  private resources(apiVersion: string, refresh: boolean): Promise<Map<string, ResourceInfo>> {
    let entry = this.groups.get(apiVersion);
    if (!entry || refresh) {
      entry = this.fetch(apiVersion);
      this.groups.set(apiVersion, entry);
      // A failed discovery is not remembered: the next call asks again.
      entry.catch(() => {
        if (this.groups.get(apiVersion) === entry) this.groups.delete(apiVersion);
      });
    }
    return entry;
  }

  private async fetch(apiVersion: string): Promise<Map<string, ResourceInfo>> {
    const path = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    let list: ApiResourceList;
    try {
      list = await this.client.request<ApiResourceList>({ method: 'GET', path, what: `discover the resources of ${apiVersion}` });
    } catch (error) {
      if (isStatus(error, 404)) return new Map();
      throw error;
    }
    const kinds = new Map<string, ResourceInfo>();
    for (const resource of list.resources ?? []) {
      // Subresources (deployments/status, deployments/scale) share the kind of their parent.
      if (!resource.name.includes('/')) kinds.set(resource.kind, { plural: resource.name, namespaced: resource.namespaced });
    }
    return kinds;
  }
}
