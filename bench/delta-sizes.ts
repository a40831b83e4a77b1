/**
 * Bytes of one change on the wire in each delta encoding, for a realistic WorkloadEndpoint of the
 * simulator's cluster converted by the datastore (PROTOCOL.md §6.5). `npx tsx bench/delta-sizes.ts`
 */
import { deflateRawSync } from "node:zlib";
import { encodeValue } from "../proto/codec.js";
import { deflateDeltas } from "../proto/delta-compression.js";
import { assembleEntryArray } from "../proto/frame-builder.js";
import { createMergePatch } from "../proto/merge-patch.js";
import type { ResourceValue } from "../proto/messages.js";
import { realisticCluster } from "./fixtures.js";

const fixture = await realisticCluster(50, 30);
const weps = fixture.entries.filter(([k]) => k.startsWith("WorkloadEndpoint/"));
const [key, value] = weps[77] ?? weps[0] ?? [];
if (key === undefined || value === undefined) throw new Error("no WorkloadEndpoint in the fixture");
const meta = value.metadata as Record<string, unknown>;
const next: ResourceValue = {
  ...value,
  metadata: {
    ...meta,
    resourceVersion: String(Number(meta.resourceVersion) + 5),
    labels: { ...(meta.labels as Record<string, unknown>), version: "v9" },
  },
};
const full = encodeValue({ k: key, v: value });
const patch = encodeValue({ k: key, p: createMergePatch(value, next), b: meta.resourceVersion });
const del = encodeValue({ k: key, v: null });
const ten = weps.slice(100, 110).map(([k, v]) => encodeValue({ k, v }));
const row = (what: string, entries: Buffer[]): void => {
  const array = assembleEntryArray(entries);
  console.log(
    `| ${what} | ${Buffer.concat(entries).byteLength} | ${deflateRawSync(array).byteLength} | ${deflateDeltas(array).byteLength} |`,
  );
};
console.log("| change | msgpack B | raw deflate B | deflate + dictionary B |\n|---|---|---|---|");
row("full WorkloadEndpoint", [full]);
row("merge patch of a label change", [patch]);
row("delete", [del]);
row("ten full WorkloadEndpoints in one frame", ten);
