/**
 * What a full mirror pays for a snapshot of the felix view of the load test's cluster (1000 nodes × 30
 * pods), on one thread: the chunks as the server sends them (entries encoded once, ~256 KiB raw per chunk,
 * raw deflate), inflated and decoded by the client's SnapshotAssembler, then diffed into the Mirror. First
 * into an empty mirror (the first snapshot), then into one that holds the same view (a resync after a
 * server restart: nothing changed). Usage:
 *   npx tsx bench/client-resync.ts [--nodes 1000] [--pods-per-node 30] [--passes 3]
 */
import { cpus } from "node:os";
import { parseArgs } from "node:util";
import { deflateRawSync } from "node:zlib";
import { assembleEntryArray, encodeEntry } from "../proto/frame-builder.js";
import type { SnapshotChunkMessage } from "../proto/messages.js";
import { Mirror } from "../src/client/mirror.js";
import { SnapshotAssembler } from "../src/client/snapshot-assembler.js";
import { realisticCluster } from "./fixtures.js";

const { values } = parseArgs({
  options: {
    nodes: { type: "string", default: "1000" },
    "pods-per-node": { type: "string", default: "30" },
    passes: { type: "string", default: "3" },
  },
});
const CHUNK_BYTES = 256 * 1024;

const { entries } = await realisticCluster(Number(values.nodes), Number(values["pods-per-node"]));
const chunks: SnapshotChunkMessage[] = [];
let part: Buffer[] = [];
let size = 0;
const flush = (): void => {
  chunks.push({ t: "snap-chunk", index: chunks.length, z: deflateRawSync(assembleEntryArray(part)) });
  part = [];
  size = 0;
};
for (const [k, v] of entries) {
  const e = encodeEntry({ k, v });
  part.push(e);
  size += e.byteLength;
  if (size >= CHUNK_BYTES) flush();
}
if (part.length > 0) flush();
const begin = { t: "snap-begin" as const, revision: 1, count: entries.length, chunks: chunks.length };

async function resync(mirror: Mirror): Promise<{ ms: number; updates: number }> {
  const t0 = performance.now();
  const assembler = new SnapshotAssembler(begin, {
    isDecoding: true,
    maxInflatedBytes: 64 * 1024 * 1024,
    held: mirror,
  });
  for (const chunk of chunks) await assembler.add(chunk);
  const result = assembler.finish(1);
  const updates = mirror.replace(result.entries ?? new Map(), result.hashes);
  return { ms: performance.now() - t0, updates: updates.length };
}

console.log(`# tabby client resync bench — ${new Date().toISOString()}`);
console.log(`machine: ${cpus().length} x ${cpus()[0]?.model ?? "?"}, node ${process.version}`);
console.log(`felix view: ${entries.length} entries in ${chunks.length} chunks`);
for (let pass = 1; pass <= Number(values.passes); pass++) {
  const mirror = new Mirror();
  const first = await resync(mirror);
  const again = await resync(mirror);
  console.log(
    `pass ${pass}: into an empty mirror ${first.ms.toFixed(0)} ms (${first.updates} updates); ` +
      `into a mirror that holds it ${again.ms.toFixed(0)} ms (${again.updates} updates)`,
  );
}
