import type { ResourceValue } from "../proto/messages.js";
import { Hub } from "../src/snapshot/hub.js";
import { realisticCluster } from "./fixtures.js";

/**
 * `npm run bench:memory`: memory held by the snapshot core for the realistic cluster, after three rounds
 * of edits of every resource (so the change logs are full) and a felix snapshot. Run with --expose-gc.
 */
const NODES = Number(process.env.BENCH_NODES ?? 1000);
const PODS = Number(process.env.BENCH_PODS_PER_NODE ?? 30);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("run with node --expose-gc (npm run bench:memory does)");

// As the datastore receives them: fresh objects parsed from JSON (the fixture itself is let go).
const entries = (await realisticCluster(NODES, PODS)).entries.map(
  ([k, v]) => [k, JSON.stringify(v)] as const,
);

/** A full GC, then time for V8's concurrent array-buffer sweeper, then another. */
async function settle(): Promise<void> {
  gc!();
  await new Promise((resolve) => setTimeout(resolve, 200));
  gc!();
}

await settle();
const base = process.memoryUsage();
const hub = new Hub();
for (const [k, json] of entries) hub.upsert(k, JSON.parse(json) as ResourceValue);
hub.flush();
for (let round = 0; round < 3; round++) {
  for (const [k, json] of entries) {
    const v = JSON.parse(json) as { metadata: { labels?: Record<string, string> } };
    v.metadata.labels = { ...(v.metadata.labels ?? {}), "bench/round": String(round) };
    hub.upsert(k, v);
  }
  hub.flush();
}
const snapshot = hub.snapshot("felix", 0, 0);
await settle();
const m = process.memoryUsage();
const mib = (n: number) => `${(n / 1048576).toFixed(0)} MiB`;
console.log(`# tabby bench:memory — ${new Date().toISOString()}, ${NODES} nodes x ${PODS} pods`);
console.log(`| what | figure |\n|---|---|`);
console.log(`| resources in the store | ${hub.store.size} |`);
console.log(
  `| felix change log | ${hub.log("felix").size} entries, ${mib(hub.log("felix").bytes)} (cap 64 MiB) |`,
);
console.log(`| felix snapshot | ${mib(snapshot.bytes)} |`);
console.log(`| JS heap in use, whole process (the JSON of the fixture included) | ${mib(m.heapUsed)} |`);
console.log(`| buffers held by the core (external memory) | ${mib(m.external - base.external)} |`);

// A cached snapshot pins the values of its revision: after every resource changes once more, what the
// kept felix snapshot holds, and what the hub lets go of when it prunes it (Hub.pruneSnapshots).
for (const [k, json] of entries) {
  const v = JSON.parse(json) as { metadata: { labels?: Record<string, string> } };
  v.metadata.labels = { ...(v.metadata.labels ?? {}), "bench/round": "after-snapshot" };
  hub.upsert(k, v);
}
hub.flush();
await settle();
const kept = process.memoryUsage();
const pruned = hub.pruneSnapshots(Number.MAX_SAFE_INTEGER, 0, () => false);
await settle();
const released = process.memoryUsage();
console.log(
  `| the felix snapshot kept while every resource changed once more: external memory it pinned (${pruned} pruned) | ${mib(kept.external - released.external)} |`,
);
console.log(`| buffers held by the core after pruning | ${mib(released.external - base.external)} |`);
