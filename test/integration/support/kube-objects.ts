import { setTimeout } from "node:timers/promises";
import { KubeApiError } from "../cluster.js";
import type { Cluster } from "../cluster.js";
import { collectionPath, etcdKey, objectPath } from "./fixtures.js";
import type { ResourceFixture } from "./fixtures.js";

const MERGE_PATCH = "application/merge-patch+json";

/** One object of a fixture's resource. */
export interface ObjectRef {
  readonly fixture: ResourceFixture;
  readonly name: string;
  readonly namespace: string | undefined;
}

export function refName(ref: ObjectRef): string {
  return `${ref.fixture.id}/${ref.namespace === undefined ? "" : `${ref.namespace}/`}${ref.name}`;
}

/**
 * Writes objects through the API as a user (or controller) would. There is no controller-manager,
 * scheduler or kubelet: pods are created bound to a node and given their IPs through `/status`, and
 * deleted namespaces are finalized here (what the namespace controller would do once they are empty).
 */
export class KubeObjects {
  readonly #cluster: Cluster;
  readonly #isRetrying: boolean;

  /**
   * `retryWhileDown`: retry each request while the API server is down (connection refused or reset, 5xx,
   * 429) or coming up (a 404 that is not a Kubernetes Status: a restarted kube-apiserver serves before
   * its CRD handlers are registered, and answers "404 page not found" for custom resources until then),
   * for at most 60 s; a retried create answered 409 (or delete answered 404 NotFound) was applied before
   * the connection broke, and counts as done.
   */
  constructor(cluster: Cluster, options: { retryWhileDown?: boolean } = {}) {
    this.#cluster = cluster;
    this.#isRetrying = options.retryWhileDown ?? false;
  }

  async create(ref: ObjectRef, gen: number): Promise<void> {
    const { fixture: f, name, namespace } = ref;
    await this.#request("POST", collectionPath(f, namespace), f.make(name, namespace, gen), undefined, 409);
    if (f.status !== undefined) await this.#writeStatus(ref, gen);
  }

  async modify(ref: ObjectRef, gen: number): Promise<void> {
    const { fixture: f, name, namespace } = ref;
    await this.#request("PATCH", objectPath(f, name, namespace), f.patch(gen), MERGE_PATCH);
    if (f.status !== undefined && f.isStatusModified === true) await this.#writeStatus(ref, gen);
  }

  /** Deletes for good (pods without a grace period; namespaces finalized). */
  async remove(ref: ObjectRef): Promise<void> {
    const { fixture: f, name, namespace } = ref;
    const path = objectPath(f, name, namespace);
    const query = f.plural === "pods" ? "?gracePeriodSeconds=0" : "";
    await this.#request("DELETE", `${path}${query}`, undefined, undefined, 404);
    if (f.plural !== "namespaces") return;
    // Terminating now; with no namespace controller, finalize it and delete again.
    const ns = await this.#cluster.request<{ spec?: { finalizers?: string[] } }>("GET", path);
    await this.#cluster.request("PUT", `${path}/finalize`, { ...ns, spec: { ...ns.spec, finalizers: [] } });
    try {
      await this.#cluster.request("DELETE", path);
    } catch (err) {
      if (!(err instanceof KubeApiError && err.status === 404)) throw err;
    }
  }

  /** The object's key in etcd (to change the store behind kube-apiserver's back). */
  etcdKey(ref: ObjectRef): string {
    return etcdKey(ref.fixture, ref.name, ref.namespace);
  }

  async #writeStatus(ref: ObjectRef, gen: number): Promise<void> {
    const { fixture: f, name, namespace } = ref;
    const status = f.status?.(name, gen);
    if (status === undefined) return;
    await this.#request("PATCH", `${objectPath(f, name, namespace)}/status`, status, MERGE_PATCH);
  }

  async #request(
    method: string,
    path: string,
    body: unknown,
    contentType: string | undefined,
    doneStatus?: number,
  ): Promise<void> {
    const deadline = Date.now() + 60_000;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#cluster.request(method, path, body, contentType);
        return;
      } catch (err) {
        if (!this.#isRetrying) throw err;
        const status = err instanceof KubeApiError ? err.status : undefined;
        const isNotServedYet = status === 404 && err instanceof KubeApiError && err.reason === undefined;
        if (attempt > 1 && status === doneStatus && !isNotServedYet) return;
        const isTransient = status === undefined || status >= 500 || status === 429 || isNotServedYet;
        if (!isTransient || Date.now() > deadline) throw err;
        await setTimeout(100);
      }
    }
  }
}
