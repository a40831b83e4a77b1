import type { ResourceValue } from "../proto/messages.js";
import { convert, RESOURCES, resourceId, staticEntries } from "../src/server/datastore/index.js";
import { SERVED_KINDS } from "../src/server/main.js";
import { seedCluster } from "../src/sim/seed.js";
import { startSimulator } from "../src/sim/index.js";

export interface Fixture {
  readonly entries: readonly (readonly [string, ResourceValue])[];
  readonly byKind: Readonly<Record<string, number>>;
}

/**
 * A realistic cluster: the simulator's seeded objects (nodes x pods, namespaces, policies, IPAM ...)
 * converted to the Calico model by the datastore's real converter.
 */
export async function realisticCluster(nodes: number, podsPerNode: number): Promise<Fixture> {
  const sim = await startSimulator({ host: "127.0.0.1", port: 0 });
  try {
    seedCluster(sim, { nodes, podsPerNode });
    const entries: [string, ResourceValue][] = [];
    const byKind: Record<string, number> = {};
    // Only the kinds the server watches (those some view serves), as `tabby serve` stores them.
    const served = RESOURCES.filter((r) => r.kinds.some((k) => SERVED_KINDS.includes(k)));
    for (const { key, value } of staticEntries(served)) {
      entries.push([key, value]);
      byKind.Profile = (byKind.Profile ?? 0) + 1;
    }
    for (const resource of served) {
      for (const obj of sim.list(resourceId(resource))) {
        const result = convert(resourceId(resource), obj);
        if (result === null || result.value === null) continue;
        entries.push([result.key, result.value]);
        const kind = result.key.slice(0, result.key.indexOf("/"));
        byKind[kind] = (byKind[kind] ?? 0) + 1;
      }
    }
    return { entries, byKind };
  } finally {
    await sim.close();
  }
}
