/**
 * What a rebuilt felix snapshot costs to compress when some entries changed since the last build: every
 * chunk compressed (the first build), then after `changes` WorkloadEndpoint updates only the chunks whose
 * entries changed (the others keep their compressed bytes: SnapshotSender). Usage:
 *   npx tsx bench/snapshot-rebuild.ts [--nodes 1000] [--pods-per-node 30] [--changes 100,1000,5000]
 * Times are wall time on the zlib thread pool (its default 4 threads), one build each.
 */
import { parseArgs } from "node:util";
import pino from "pino";
import type { ResourceValue } from "../proto/messages.js";
import { FanoutMetrics } from "../src/server/fanout/metrics.js";
import { SnapshotSender } from "../src/server/fanout/snapshot-sender.js";
import { Hub } from "../src/snapshot/hub.js";
import { realisticCluster } from "./fixtures.js";

const { values } = parseArgs({
  options: {
    nodes: { type: "string", default: "1000" },
    "pods-per-node": { type: "string", default: "30" },
    changes: { type: "string", default: "100,1000,5000" },
  },
});

const fixture = await realisticCluster(Number(values.nodes), Number(values["pods-per-node"]));
const metrics = FanoutMetrics.standalone();
const sender = new SnapshotSender({
  logger: pino({ level: "silent" }),
  metrics,
  highWaterBytes: 1 << 20,
  head: () => 0,
});
const hub = new Hub();
for (const [k, v] of fixture.entries) hub.upsert(k, v);
hub.flush();
const pods = fixture.entries.filter(([k]) => k.startsWith("WorkloadEndpoint/"));

let now = 0;
async function compress(label: string): Promise<void> {
  now += 60_000;
  const snapshot = hub.snapshot("felix", now, 0);
  const before = { ...metrics.counts.snapshotChunks.felix };
  const t0 = performance.now();
  const frames = await Promise.all(sender.compressedChunks(snapshot));
  const ms = performance.now() - t0;
  const after = metrics.counts.snapshotChunks.felix;
  const bytes = frames.reduce((n, f) => n + f.byteLength, 0);
  console.log(
    `| ${label} | ${snapshot.chunkCount} | ${after.compressed - before.compressed} | ${after.reused - before.reused} | ${ms.toFixed(0)} | ${(bytes / 1e6).toFixed(2)} |`,
  );
}

console.log(`felix, ${values.nodes} nodes × ${values["pods-per-node"]} pods: ${hub.store.size} resources`);
console.log("| build | chunks | compressed | reused | ms | MB compressed |\n|---|---|---|---|---|---|");
await compress("first");
let version = 0;
for (const n of values.changes.split(",").map(Number)) {
  // n updates of distinct WorkloadEndpoints spread over the cluster (a label and the resourceVersion).
  for (let i = 0; i < n; i++) {
    const [key, value] = pods[Math.floor((i * pods.length) / n)] as readonly [string, ResourceValue];
    const meta = value.metadata as { labels?: Record<string, string>; resourceVersion?: string };
    version++;
    hub.upsert(key, {
      ...value,
      metadata: {
        ...meta,
        resourceVersion: `b${version}`,
        labels: { ...meta.labels, bench: String(version) },
      },
    });
  }
  hub.flush();
  await compress(`after ${n} changes`);
}
