import type { ResourceValue } from "../../../proto/messages.js";
import { convert, resourceId, staticEntries } from "../../../src/server/datastore/index.js";
import type { KubeObject, UpstreamResource } from "../../../src/server/datastore/index.js";
import { sameResource } from "../../../src/snapshot/deep-equal.js";
import type { Hub } from "../../../src/snapshot/hub.js";
import { KubeApiError } from "../cluster.js";
import type { Cluster } from "../cluster.js";
import { WaitTimeoutError, waitFor } from "../harness/wait.js";

interface ListBody {
  items?: KubeObject[];
  metadata?: { continue?: string };
}

async function listAll(cluster: Cluster, resource: UpstreamResource): Promise<KubeObject[] | undefined> {
  for (const version of resource.versions) {
    const base = resource.group === "" ? `/api/${version}` : `/apis/${resource.group}/${version}`;
    const items: KubeObject[] = [];
    let token: string | undefined;
    try {
      do {
        const query = `limit=500${token === undefined ? "" : `&continue=${encodeURIComponent(token)}`}`;
        const page = await cluster.request<ListBody>("GET", `${base}/${resource.plural}?${query}`);
        items.push(...(page.items ?? []));
        token = page.metadata?.continue || undefined;
      } while (token !== undefined);
      return items;
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) continue; // version not served: try the next
      throw err;
    }
  }
  return undefined; // not installed
}

/**
 * What the datastore should hold: every object of every resource, listed from the API (the first served
 * version, as the datastore does) and converted with the datastore's own `convert`.
 */
export async function convertedApiState(
  cluster: Cluster,
  resources: readonly UpstreamResource[],
): Promise<Map<string, ResourceValue>> {
  const state = new Map<string, ResourceValue>();
  for (const { key, value } of staticEntries(resources)) state.set(key, value);
  for (const resource of resources) {
    for (const obj of (await listAll(cluster, resource)) ?? []) {
      const result = convert(resourceId(resource), obj);
      if (result !== null && result.value !== null) state.set(result.key, result.value);
    }
  }
  return state;
}

/** Differences between the expected state and the hub's, for the kinds of `resources` (empty: equal). */
export function diffHub(
  expected: ReadonlyMap<string, ResourceValue>,
  hub: Hub,
  resources: readonly UpstreamResource[],
): string[] {
  const diffs: string[] = [];
  const kinds = new Set(resources.flatMap((r) => r.kinds));
  for (const kind of kinds) {
    for (const key of hub.store.keysOfKind(kind)) {
      if (!expected.has(key)) diffs.push(`extra in sink: ${key}`);
    }
  }
  for (const [key, value] of expected) {
    const held = hub.store.valueOf(key);
    if (held === undefined) diffs.push(`missing in sink: ${key}`);
    else if (!sameResource(held, value))
      diffs.push(`differs: ${key}\n  sink: ${JSON.stringify(held)}\n  api:  ${JSON.stringify(value)}`);
  }
  return diffs;
}

/**
 * Waits until the hub equals the API state converted (re-reading the API when it does not, since the
 * API server writes some objects itself). Resolves with the state; on timeout throws with the diff.
 */
export async function waitForSinkToMatchApi(
  cluster: Cluster,
  hub: Hub,
  resources: readonly UpstreamResource[],
  timeoutMs = 60_000,
): Promise<Map<string, ResourceValue>> {
  let expected = await convertedApiState(cluster, resources);
  let checks = 0;
  try {
    return await waitFor(
      async () => {
        // The API state is re-read every 20 checks (2 s): cheap checks against a settled state.
        if (++checks % 20 === 0) expected = await convertedApiState(cluster, resources);
        return diffHub(expected, hub, resources).length === 0 ? expected : undefined;
      },
      { what: "the datastore's sink to match the API", timeoutMs },
    );
  } catch (err) {
    if (!(err instanceof WaitTimeoutError)) throw err;
    expected = await convertedApiState(cluster, resources);
    const diffs = diffHub(expected, hub, resources);
    if (diffs.length === 0) return expected;
    throw new WaitTimeoutError(`${err.message}\n${diffs.slice(0, 20).join("\n")}`, { cause: err });
  }
}
