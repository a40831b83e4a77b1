import { cpus } from "node:os";
import { deflateRawSync } from "node:zlib";
import { assembleEntryArray, encodeEntry } from "../proto/frame-builder.js";
import type { ResourceValue } from "../proto/messages.js";
import { DeltaEncoding } from "../src/snapshot/delta-frames.js";
import { Hub } from "../src/snapshot/hub.js";
import { Store } from "../src/snapshot/store.js";
import { realisticCluster } from "./fixtures.js";

/** `npm run bench`: micro-benchmarks of the snapshot core on one core. Not a test: it prints figures. */

const NODES = Number(process.env.BENCH_NODES ?? 1000);
const PODS = Number(process.env.BENCH_PODS_PER_NODE ?? 30);

function ms(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

/** A changed copy of a value: a new label and resourceVersion, as a pod label edit would make. */
function edited(v: ResourceValue, i: number): ResourceValue {
  const meta = (v.metadata ?? {}) as Record<string, unknown>;
  const labels = { ...((meta.labels ?? {}) as Record<string, string>), "bench/rev": String(i) };
  return { ...v, metadata: { ...meta, labels, resourceVersion: String(1_000_000 + i) } };
}

async function main(): Promise<void> {
  const t0 = process.hrtime.bigint();
  const fixture = await realisticCluster(NODES, PODS);
  const entries = fixture.entries;
  console.log(`# tabby bench — ${new Date().toISOString()}`);
  console.log(`machine: ${cpus().length} x ${cpus()[0]?.model ?? "?"}, node ${process.version}`);
  console.log(
    `fixture: ${NODES} nodes x ${PODS} pods -> ${entries.length} Calico resources (built in ${ms(t0).toFixed(0)} ms)`,
  );
  console.log(`by kind: ${JSON.stringify(fixture.byKind)}`);

  // 1. Store apply throughput: initial load, then edits (each a real change: new label). The edited
  // values of a round are made before its timing starts, so only the apply is measured.
  const loads: number[] = [];
  const edits: number[] = [];
  const hubEdits: number[] = [];
  const ROUNDS = Math.ceil(200_000 / entries.length);
  const EDITS = ROUNDS * entries.length;
  const editRound = (round: number) => entries.map(([k, v]) => [k, edited(v, round)] as const);
  for (let rep = 0; rep < 5; rep++) {
    const store = new Store();
    let start = process.hrtime.bigint();
    for (const [k, v] of entries) store.upsert(k, v);
    loads.push(entries.length / (ms(start) / 1000));
    let editMs = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const values = editRound(rep * 100 + round);
      start = process.hrtime.bigint();
      for (const [k, v] of values) store.upsert(k, v);
      editMs += ms(start);
    }
    edits.push(EDITS / (editMs / 1000));
    // The same through the Hub, flushed every 100 changes (per-view logs and delta frames included).
    const hub = new Hub();
    for (const [k, v] of entries) hub.upsert(k, v);
    hub.flush();
    let hubMs = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const values = editRound(rep * 100 + round);
      start = process.hrtime.bigint();
      values.forEach(([k, v], i) => {
        hub.upsert(k, v);
        if (i % 100 === 99) hub.flush();
      });
      hub.flush();
      hubMs += ms(start);
    }
    hubEdits.push(EDITS / (hubMs / 1000));
  }
  const editValues = editRound(999);
  // For reference: msgpack-encoding the same entries alone (the floor of the apply cost, since every
  // change is encoded once when it is applied).
  const encodes: number[] = [];
  for (let rep = 0; rep < 5; rep++) {
    const start = process.hrtime.bigint();
    for (const [k, v] of entries) encodeEntry({ k, v });
    encodes.push(entries.length / (ms(start) / 1000));
  }
  console.log("\n## Store apply throughput (one core, median of 5)");
  console.log(`| what | updates/s |\n|---|---|`);
  console.log(
    `| initial load (${entries.length} upserts into an empty store) | ${median(loads).toFixed(0)} |`,
  );
  console.log(
    `| edits (${EDITS} real changes: a label and the resourceVersion) | ${median(edits).toFixed(0)} |`,
  );
  console.log(
    `| edits through the Hub, flushed every 100 (logs + delta frames) | ${median(hubEdits).toFixed(0)} |`,
  );

  // 2. Felix snapshot encoding.
  const hub = new Hub();
  for (const [k, v] of entries) hub.upsert(k, v);
  hub.flush();
  const snapMs: number[] = [];
  let snap = hub.snapshot("felix", 0, 0);
  for (let round = 0; round < 7; round++) {
    const [k, v] = editValues[round]!;
    hub.upsert(k, v);
    hub.flush();
    const start = process.hrtime.bigint();
    snap = hub.snapshot("felix", round + 1, 0);
    snapMs.push(ms(start));
  }
  let start = process.hrtime.bigint();
  const compressed = snap.chunkEntries.map((c) => deflateRawSync(assembleEntryArray(c), { level: 1 }));
  const deflateMs = ms(start);
  const zBytes = compressed.reduce((n, b) => n + b.byteLength, 0);
  start = process.hrtime.bigint();
  const jsonBytes = Buffer.byteLength(JSON.stringify(entries.map(([k, v]) => ({ k, v }))));
  const jsonMs = ms(start);
  console.log("\n## Felix snapshot encoding (median of 7)");
  console.log(`| what | figure |\n|---|---|`);
  console.log(`| entries in the felix view | ${snap.count} |`);
  console.log(
    `| build the encoded snapshot (chunk frames from per-entry encodings) | ${median(snapMs).toFixed(1)} ms |`,
  );
  console.log(`| encoded size | ${(snap.bytes / 1048576).toFixed(2)} MiB in ${snap.chunks.length} chunks |`);
  console.log(
    `| deflate (level 1, once, shared by all sessions) | ${deflateMs.toFixed(0)} ms -> ${(zBytes / 1048576).toFixed(2)} MiB |`,
  );
  console.log(
    `| for scale: JSON.stringify of all entries | ${jsonMs.toFixed(0)} ms, ${(jsonBytes / 1048576).toFixed(2)} MiB |`,
  );

  // 3. Delta frames per batch: the flush of a batch of N changes (frames for every view).
  console.log("\n## Delta frame per batch (flush of N pending changes, all views)");
  console.log(
    `| batch size | upsert+encode per change | flush (frames) per batch | frame bytes (felix) |\n|---|---|---|---|`,
  );
  let i = 0;
  for (const size of [1, 10, 100, 1000]) {
    const rounds = Math.max(20, Math.floor(20_000 / size));
    let upsertNs = 0;
    let flushNs = 0;
    let bytes = 0;
    for (let r = 0; r < rounds; r++) {
      let s = process.hrtime.bigint();
      for (let j = 0; j < size; j++) {
        const [k, v] = entries[i % entries.length]!;
        hub.upsert(k, edited(v, 500_000 + i));
        i++;
      }
      upsertNs += Number(process.hrtime.bigint() - s);
      s = process.hrtime.bigint();
      const batches = hub.flush();
      flushNs += Number(process.hrtime.bigint() - s);
      bytes += batches.find((b) => b.view === "felix")?.shared?.frame(DeltaEncoding.plain).byteLength ?? 0;
    }
    console.log(
      `| ${size} | ${(upsertNs / rounds / size / 1000).toFixed(2)} µs | ${(flushNs / rounds / 1000).toFixed(1)} µs | ${Math.round(bytes / rounds)} |`,
    );
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
