/**
 * How small the felix snapshot of the load test's cluster can get: the compressed chunks a compiled
 * tabby server sends (`deflate-snapshot`), inflated and compressed again with other codecs and chunk
 * sizes, with the time each takes on this machine. Usage:
 *   npm run build && npx tsx bench/snapshot-codecs.ts [--nodes 1000] [--pods-per-node 30]
 * The simulator runs in this process on 127.0.0.1; the server is `node dist/src/cli/main.js serve` with the
 * image's Node options.
 */
import { rm } from "node:fs/promises";
import { parseArgs } from "node:util";
import * as zlib from "node:zlib";
import WebSocket from "ws";
import { decodeServerMessage, encodeMessage } from "../proto/codec.js";
import { DELTA_DICTIONARY } from "../proto/delta-dictionary.js";
import { FEATURES, PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN } from "../proto/version.js";
import { SERVE_NODE_OPTIONS } from "../src/cli/node-flags.js";
import { startServe } from "./serve-child.js";
import { kubeconfigYamlFor, seedCluster, startSimulator, writeKubeconfig } from "../src/sim/index.js";

const { values } = parseArgs({
  options: { nodes: { type: "string", default: "1000" }, "pods-per-node": { type: "string", default: "30" } },
});

/** The raw-deflated chunk payloads of one felix snapshot, as the server sends them. */
async function felixChunks(port: number): Promise<Buffer[]> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  const chunks: Buffer[] = [];
  return await new Promise<Buffer[]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no snapshot within 120 s")), 120_000);
    ws.once("error", reject);
    ws.once("open", () =>
      ws.send(
        encodeMessage({
          t: "hello",
          versions: [PROTOCOL_VERSION_MIN, PROTOCOL_VERSION_MAX],
          view: "felix",
          node: "node-0001",
          client: { name: "snapshot-codecs", version: "1" },
          features: [FEATURES.deflateSnapshot],
        }),
      ),
    );
    ws.on("message", (data: Buffer) => {
      const m = decodeServerMessage(data);
      if (m.t === "snap-chunk" && m.z !== undefined) chunks.push(Buffer.from(m.z));
      if (m.t === "snap-end") {
        clearTimeout(timer);
        ws.close();
        resolve(chunks);
      }
    });
  });
}

function regroup(parts: readonly Buffer[], size: number): Buffer[] {
  const all = Buffer.concat(parts);
  const out: Buffer[] = [];
  for (let i = 0; i < all.length; i += size) out.push(all.subarray(i, i + size));
  return out;
}

type Codec = { readonly compress: (b: Buffer) => Buffer; readonly decompress: (b: Buffer) => Buffer };
const deflate = (options: zlib.ZlibOptions = {}): Codec => ({
  compress: (b) => zlib.deflateRawSync(b, options),
  decompress: (b) =>
    zlib.inflateRawSync(b, options.dictionary === undefined ? {} : { dictionary: options.dictionary }),
});
const brotli = (quality: number, lgwin: number): Codec => ({
  compress: (b) =>
    zlib.brotliCompressSync(b, {
      params: {
        [zlib.constants.BROTLI_PARAM_QUALITY]: quality,
        [zlib.constants.BROTLI_PARAM_LGWIN]: lgwin,
        [zlib.constants.BROTLI_PARAM_SIZE_HINT]: b.length,
      },
    }),
  decompress: (b) => zlib.brotliDecompressSync(b),
});

const sim = await startSimulator({ host: "127.0.0.1", port: 0 });
seedCluster(sim, { nodes: Number(values.nodes), podsPerNode: Number(values["pods-per-node"]), seed: 1 });
const kubeconfig = await writeKubeconfig(kubeconfigYamlFor(sim.url));
try {
  const server = await startServe(kubeconfig, SERVE_NODE_OPTIONS);
  let sent: Buffer[];
  try {
    sent = await felixChunks(server.port);
  } finally {
    await server.stop();
  }
  const raw = sent.map((z) => zlib.inflateRawSync(z));
  const rawBytes = raw.reduce((n, c) => n + c.length, 0);
  const sentBytes = sent.reduce((n, c) => n + c.length, 0);
  const mb = (n: number) => (n / 1e6).toFixed(2);
  console.log(
    `felix snapshot: ${raw.length} chunks, ${mb(rawBytes)} MB of msgpack, ${mb(sentBytes)} MB as sent`,
  );
  console.log(
    "| codec | chunks of | MB | vs sent | compress ms | decompress ms |\n|---|---|---|---|---|---|",
  );
  const variants: [string, Codec, number][] = [
    ["raw deflate, level 6 (tabby)", deflate(), 0],
    ["raw deflate, level 9", deflate({ level: 9 }), 0],
    ["raw deflate, level 6, delta dictionary", deflate({ dictionary: DELTA_DICTIONARY }), 0],
    ["raw deflate, level 6", deflate(), 1 << 20],
    ["brotli q4, 4 MB window", brotli(4, 22), 0],
    ["brotli q6, 4 MB window", brotli(6, 22), 0],
    ["brotli q6, 16 MB window", brotli(6, 24), 1 << 20],
    ["brotli q6, 16 MB window", brotli(6, 24), 4 << 20],
  ];
  for (const [name, codec, size] of variants) {
    const parts = size === 0 ? raw : regroup(raw, size);
    // The faster of two passes each way (the first one also warms up the code and the allocator).
    let out: Buffer[] = [];
    let compressMs = Infinity;
    let decompressMs = Infinity;
    for (let pass = 0; pass < 2; pass++) {
      const t0 = performance.now();
      out = parts.map((p) => codec.compress(p));
      const t1 = performance.now();
      for (const z of out) codec.decompress(z);
      const t2 = performance.now();
      compressMs = Math.min(compressMs, t1 - t0);
      decompressMs = Math.min(decompressMs, t2 - t1);
    }
    const bytes = out.reduce((n, z) => n + z.length, 0);
    console.log(
      `| ${name} | ${size === 0 ? "tabby's (256 KiB and a value)" : `${size >> 20} MiB`} | ${mb(bytes)} | ${((bytes / sentBytes) * 100).toFixed(0)}% | ${compressMs.toFixed(0)} | ${decompressMs.toFixed(0)} |`,
    );
  }
} finally {
  await sim.close();
  await rm(kubeconfig, { force: true });
}
