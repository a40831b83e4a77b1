/**
 * What each op of the load test's churn mix costs in a live `deltas` frame: the simulator's cluster is
 * seeded and converted as `tabby serve` converts it, the churn generator makes `--changes` changes, and each
 * change is encoded as the server would send it to a client with a mirror: a full value for a create, a
 * delete entry, or the smallest patch (merge patch only, and merge patch or JSON Patch). Frames of
 * `--per-frame` changes are compressed with the delta dictionary; each op's row compresses its own changes
 * in frames of that size, so the shares are approximate.
 *   npx tsx bench/churn-op-sizes.ts [--nodes 1000] [--pods-per-node 30] [--changes 5000] [--per-frame 48]
 */
import { parseArgs } from "node:util";
import { deflateDeltas } from "../proto/delta-compression.js";
import { assembleEntryArray, encodeEntry } from "../proto/frame-builder.js";
import type { ResourceValue } from "../proto/messages.js";
import { convert, RESOURCES, resourceId } from "../src/server/datastore/index.js";
import { SERVED_KINDS } from "../src/server/main.js";
import { ChurnGenerator } from "../src/sim/churn.js";
import { seedCluster, startSimulator } from "../src/sim/index.js";
import { encodePatchEntry } from "../src/snapshot/patch-entry.js";

const { values: args } = parseArgs({
  options: {
    nodes: { type: "string", default: "1000" },
    "pods-per-node": { type: "string", default: "30" },
    changes: { type: "string", default: "5000" },
    "per-frame": { type: "string", default: "48" },
  },
});
const perFrame = Number(args["per-frame"]);

const sim = await startSimulator({ host: "127.0.0.1", port: 0 });
try {
  seedCluster(sim, { nodes: Number(args.nodes), podsPerNode: Number(args["pods-per-node"]) });
  const served = RESOURCES.filter((r) => r.kinds.some((k) => SERVED_KINDS.includes(k)));
  const byId = new Map(served.map((r) => [resourceId(r), r]));
  const values = new Map<string, ResourceValue>();
  const keyOf = new Map<string, string>();
  for (const [id] of byId) {
    for (const obj of sim.list(id)) {
      const res = convert(id, obj);
      if (res === null || res.value === null) continue;
      values.set(res.key, res.value);
      keyOf.set(`${id}|${obj.metadata.namespace ?? ""}|${obj.metadata.name}`, res.key);
    }
  }
  /** Per change: its op, and its entry with merge patches only / with JSON Patches allowed. */
  const made: { op: string; merge: Buffer; json: Buffer }[] = [];
  const churn = new ChurnGenerator(sim, {
    ratePerSecond: 1,
    onChange: (c) => {
      if (!byId.has(c.resource)) return;
      const where = `${c.resource}|${c.namespace ?? ""}|${c.name}`;
      const obj = sim.get(c.resource, c.namespace, c.name);
      if (obj === undefined) {
        const k = keyOf.get(where);
        if (k === undefined) return;
        const del = encodeEntry({ k, v: null });
        made.push({ op: `${c.resource} delete`, merge: del, json: del });
        values.delete(k);
        return;
      }
      const res = convert(c.resource, obj);
      if (res === null || res.value === null) return;
      keyOf.set(where, res.key);
      const base = values.get(res.key) ?? null;
      const full = encodeEntry({ k: res.key, v: res.value });
      const merge = encodePatchEntry(res.key, base, res.value, full.byteLength) ?? full;
      const json = encodePatchEntry(res.key, base, res.value, full.byteLength, true) ?? full;
      values.set(res.key, res.value);
      made.push({ op: `${c.resource} ${base === null ? "create" : "update"}`, merge, json });
    },
  });
  churn.runOnce(Number(args.changes));

  const compressed = (entries: readonly Buffer[]): number => {
    let n = 0;
    for (let i = 0; i < entries.length; i += perFrame) {
      n += deflateDeltas(assembleEntryArray(entries.slice(i, i + perFrame))).byteLength;
    }
    return n;
  };
  const mergeTotal = compressed(made.map((m) => m.merge));
  const jsonTotal = compressed(made.map((m) => m.json));
  console.log(
    `${made.length} changes, frames of ${perFrame}: compressed B/change ${(mergeTotal / made.length).toFixed(0)} ` +
      `with merge patches, ${(jsonTotal / made.length).toFixed(0)} with JSON Patches too`,
  );
  const ops = new Map<string, typeof made>();
  for (const m of made) ops.set(m.op, [...(ops.get(m.op) ?? []), m]);
  console.log(
    "| op | changes | merge: msgpack B | merge: deflated B | share | JSON: msgpack B | JSON: deflated B | share |",
  );
  console.log("|---|---|---|---|---|---|---|---|");
  const rows = [...ops]
    .map(([op, list]) => ({
      op,
      list,
      mz: compressed(list.map((m) => m.merge)),
      jz: compressed(list.map((m) => m.json)),
    }))
    .sort((a, b) => b.mz - a.mz);
  for (const { op, list, mz, jz } of rows) {
    const n = list.length;
    const raw = (pick: (m: (typeof made)[number]) => Buffer) =>
      list.reduce((s, m) => s + pick(m).byteLength, 0) / n;
    console.log(
      `| ${op} | ${n} | ${raw((m) => m.merge).toFixed(0)} | ${(mz / n).toFixed(0)} | ${((100 * mz) / mergeTotal).toFixed(1)}% | ` +
        `${raw((m) => m.json).toFixed(0)} | ${(jz / n).toFixed(0)} | ${((100 * jz) / jsonTotal).toFixed(1)}% |`,
    );
  }
} finally {
  await sim.close();
}
