/**
 * `npx tsx bench/ingest-worker.ts`: the main thread's CPU time per upstream change with and without the ingest
 * worker (docs/BENCHMARKS.md). Pod MODIFIED events (a label edit and a new resourceVersion, as the load
 * test's churn makes) go through what the datastore does per watch chunk: frame the lines, decode, convert
 * and store (worker off: all on this thread; on: the worker decodes, converts and prepares, this thread
 * compares and stores), then one deltas frame per batch in the encoding agents negotiate (patch + deflate).
 * The main thread's time is its own CPU time (Linux: /proc/self/task/<pid>/stat, the main thread's task id
 * being the process id), which leaves out the time it waits for the worker; process CPU counts every
 * thread. Not a test: it prints figures.
 */
import { readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { performance } from "node:perf_hooks";
// BENCH_CHANGES, BENCH_ROUNDS, BENCH_BATCH, BENCH_NODES, BENCH_PODS_PER_NODE, BENCH_CHUNK_EVENTS (a list),
// BENCH_WORKER ("off,on") tune it.
import pino from "pino";
import { Registry } from "prom-client";
import { statCpuSeconds } from "../loadtest/proc-stats.js";
import { findResource } from "../src/server/datastore/index.js";
import { eventOf } from "../src/server/datastore/ingest-outcome.js";
import { IngestWorker } from "../src/server/datastore/ingest-worker.js";
import { datastoreMetrics } from "../src/server/datastore/metrics.js";
import type { KubeObject } from "../src/server/datastore/types.js";
import { decodeWatchLines, WatchLineFramer } from "../src/server/datastore/watch-decoder.js";
import { startSimulator } from "../src/sim/index.js";
import { seedCluster } from "../src/sim/seed.js";
import { DeltaEncoding } from "../src/snapshot/delta-frames.js";
import { Hub } from "../src/snapshot/hub.js";
import { prepareValue } from "../src/snapshot/prepared.js";

const NODES = Number(process.env.BENCH_NODES ?? 100);
const PODS = Number(process.env.BENCH_PODS_PER_NODE ?? 30);
const CHANGES = Number(process.env.BENCH_CHANGES ?? 20_000);
/** Changes per flush (one deltas frame per view): 10 ms of 1000 changes/s. */
const BATCH = Number(process.env.BENCH_BATCH ?? 10);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

const pods = findResource("pods");
if (pods === undefined) throw new Error("no pods resource");
const resource = pods;

/** Watch chunks of `perChunk` MODIFIED lines each, editing the pods in turn. */
function watchChunks(objects: readonly KubeObject[], perChunk: number): Buffer[] {
  const chunks: Buffer[] = [];
  let lines: string[] = [];
  for (let i = 0; i < CHANGES; i++) {
    const obj = objects[i % objects.length]!;
    const meta = obj.metadata ?? {};
    const edited = {
      ...obj,
      metadata: {
        ...meta,
        labels: { ...meta.labels, "bench/rev": String(i) },
        resourceVersion: String(1_000_000 + i),
      },
    };
    lines.push(`${JSON.stringify({ type: "MODIFIED", object: edited })}\n`);
    if (lines.length === perChunk) {
      chunks.push(Buffer.from(lines.join("")));
      lines = [];
    }
  }
  if (lines.length > 0) chunks.push(Buffer.from(lines.join("")));
  return chunks;
}

/** A hub holding every pod's current value (as after the initial list), stored as the path under test does. */
function seededHub(objects: readonly KubeObject[], isPrepared: boolean): Hub {
  const hub = new Hub();
  for (const obj of objects) {
    const r = resource.convert(obj);
    if (r === null || r.value === null) continue;
    if (isPrepared) hub.upsertPrepared(r.key, prepareValue(r.key, r.value));
    else hub.upsert(r.key, r.value);
  }
  hub.flush();
  return hub;
}

/** One deltas frame per view, as a patch + deflate session gets it. */
function flush(hub: Hub): void {
  for (const batch of hub.flush()) batch.shared?.frame(DeltaEncoding.patch | DeltaEncoding.deflate);
}

interface Run {
  readonly mainMsPerChange: number;
  readonly cpuMsPerChange: number;
  readonly wallMsPerChange: number;
}

/** CPU time of the main thread so far (ms, 10 ms resolution). */
function mainThreadCpuMs(): number {
  return statCpuSeconds(readFileSync(`/proc/self/task/${process.pid}/stat`, "utf8")) * 1000;
}

async function measure(body: () => Promise<void>): Promise<Run> {
  const main0 = mainThreadCpuMs();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await body();
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const main = mainThreadCpuMs() - main0;
  return {
    mainMsPerChange: main / CHANGES,
    cpuMsPerChange: (cpu.user + cpu.system) / 1000 / CHANGES,
    wallMsPerChange: wall / CHANGES,
  };
}

/** Worker off: everything on this thread (ResourceLoop with DatastoreOptions.ingestWorker false). */
function offPath(objects: readonly KubeObject[], chunks: readonly Buffer[]): Promise<Run> {
  const hub = seededHub(objects, false);
  return measure(async () => {
    const framer = new WatchLineFramer("pods", 16 << 20);
    let n = 0;
    for (const chunk of chunks) {
      // One chunk per turn of the event loop, as the watch response delivers them.
      await new Promise<void>((resolve) => setImmediate(resolve));
      const { lines } = framer.push(chunk);
      if (lines === undefined) continue;
      decodeWatchLines(lines, "pods", (event) => {
        const e = eventOf(resource, event, false);
        if (e.outcome?.t === "upsert") hub.upsert(e.outcome.key, e.outcome.value);
        if (++n % BATCH === 0) flush(hub);
      });
    }
    flush(hub);
  });
}

/** Worker on: the loop awaits the worker's answer for each chunk, then stores the prepared values. */
async function onPath(objects: readonly KubeObject[], chunks: readonly Buffer[]): Promise<Run> {
  const hub = seededHub(objects, true);
  const worker = new IngestWorker({
    data: { kinds: ["WorkloadEndpoint"], convert: undefined },
    logger: pino({ level: "warn" }),
    metrics: datastoreMetrics(new Registry()),
  });
  worker.start();
  while (!worker.isAvailable) await new Promise((r) => setTimeout(r, 5));
  try {
    return await measure(async () => {
      const framer = new WatchLineFramer("pods", 16 << 20);
      let n = 0;
      for (const chunk of chunks) {
        const { lines } = framer.push(chunk);
        if (lines === undefined) continue;
        const { events } = await worker.lines(resource, lines);
        for (const e of events) {
          if (e.outcome?.t === "prepared") hub.upsertPrepared(e.outcome.key, e.outcome.prepared);
          if (++n % BATCH === 0) flush(hub);
        }
      }
      flush(hub);
    });
  } finally {
    await worker.close();
  }
}

async function main(): Promise<void> {
  const sim = await startSimulator({ host: "127.0.0.1", port: 0 });
  let objects: KubeObject[];
  try {
    seedCluster(sim, { nodes: NODES, podsPerNode: PODS });
    objects = sim.list("pods").filter((o) => {
      const r = resource.convert(o);
      return r !== null && r.value !== null;
    });
  } finally {
    await sim.close();
  }
  console.log(`# ingest worker bench — ${new Date().toISOString()}`);
  console.log(
    `machine: ${cpus().length} x ${cpus()[0]?.model ?? "?"}, node ${process.version}, load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
  );
  console.log(
    `${objects.length} pods with an endpoint (${NODES} nodes x ${PODS}), ${CHANGES} MODIFIED events, a flush every ${BATCH} changes, ${ROUNDS} rounds (median)`,
  );
  console.log(
    "| events per watch chunk | worker | main thread per change | process CPU per change | wall per change |",
  );
  console.log("|---|---|---|---|---|");
  const perChunks = (process.env.BENCH_CHUNK_EVENTS ?? "1,10,100").split(",").map(Number);
  const modes = (process.env.BENCH_WORKER ?? "off,on").split(",").map((m) => m === "on");
  for (const perChunk of perChunks) {
    const chunks = watchChunks(objects, perChunk);
    for (const isOn of modes) {
      const runs: Run[] = [];
      for (let i = 0; i < ROUNDS; i++)
        runs.push(isOn ? await onPath(objects, chunks) : await offPath(objects, chunks));
      const med = (f: (r: Run) => number): number =>
        runs.map(f).sort((a, b) => a - b)[Math.floor(runs.length / 2)]!;
      const r = {
        mainMsPerChange: med((x) => x.mainMsPerChange),
        cpuMsPerChange: med((x) => x.cpuMsPerChange),
        wallMsPerChange: med((x) => x.wallMsPerChange),
      };
      const us = (ms: number): string => `${(ms * 1000).toFixed(1)} µs`;
      console.log(
        `| ${perChunk} | ${isOn ? "on" : "off"} | ${us(r.mainMsPerChange)} | ${us(r.cpuMsPerChange)} | ${us(r.wallMsPerChange)} |`,
      );
    }
  }
}

await main();
