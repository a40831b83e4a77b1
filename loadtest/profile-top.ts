/**
 * The top functions of a V8 CPU profile (`node --cpu-prof`) by self time, and by total time for tabby's
 * own code, and where the server's main thread goes by stage of the data path. Usage:
 * `node --import tsx loadtest/profile-top.ts <file.cpuprofile> [count] [--from S] [--to S]` (a window in
 * seconds from the start of the profile, e.g. the churn phase of a load-test run).
 */
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

interface ProfileNode {
  readonly id: number;
  readonly callFrame: {
    readonly functionName: string;
    readonly url: string;
    readonly lineNumber: number;
  };
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
  readonly startTime: number;
  readonly endTime: number;
}

export interface FunctionTime {
  readonly name: string;
  readonly location: string;
  readonly selfMs: number;
  readonly selfPercent: number;
}

/** A profile node's function name and `file:line`, paths shortened to node_modules/, src/, proto/, loadtest/. */
export function label(n: Pick<ProfileNode, "callFrame">): { name: string; location: string } {
  const f = n.callFrame;
  const file = f.url
    .replace(/^file:\/\//, "")
    .replace(/^.*\/node_modules\//, "node_modules/")
    .replace(/^.*\/(src|proto|loadtest)\//, "$1/");
  return {
    name: f.functionName === "" ? "(anonymous)" : f.functionName,
    location: file === "" ? "" : `${file}:${f.lineNumber + 1}`,
  };
}

/** The `count` largest of `entries` by time, in ms and as a share of `totalUs`. */
function largest(
  entries: Iterable<{ name: string; location: string; us: number }>,
  totalUs: number,
  count: number,
): FunctionTime[] {
  return [...entries]
    .sort((a, b) => b.us - a.us)
    .slice(0, count)
    .map((e) => ({
      name: e.name,
      location: e.location,
      selfMs: Math.round(e.us / 1000),
      selfPercent: Math.round((e.us / Math.max(1, totalUs)) * 1000) / 10,
    }));
}

/** Self time per function (summed over call sites), largest first; idle and GC kept as V8 names them. */
export function topFunctions(profile: CpuProfile, count = 25): { totalMs: number; top: FunctionTime[] } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<string, { name: string; location: string; us: number }>();
  let totalUs = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    const node = byId.get(id);
    if (node === undefined) return;
    totalUs += dt;
    const { name, location } = label(node);
    const key = `${name} ${location}`;
    const entry = selfUs.get(key) ?? { name, location, us: 0 };
    entry.us += dt;
    selfUs.set(key, entry);
  });
  return { totalMs: Math.round(totalUs / 1000), top: largest(selfUs.values(), totalUs, count) };
}

/** Self time grouped by file (which module the time goes to). */
export function topFiles(profile: CpuProfile, count = 15): { file: string; selfPercent: number }[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const us = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    const node = byId.get(id);
    if (node === undefined) return;
    total += dt;
    const { name, location } = label(node);
    const file = location === "" ? `(${name})` : location.replace(/:\d+$/, "");
    us.set(file, (us.get(file) ?? 0) + dt);
  });
  return [...us.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([file, t]) => ({ file, selfPercent: Math.round((t / Math.max(1, total)) * 1000) / 10 }));
}

/**
 * Stages of the server's data path, each recognised by a function on the sampled stack (the first match
 * from the leaf up wins, so a stage nested in another is counted as the inner one).
 */
export const STAGES: readonly (readonly [stage: string, frame: RegExp])[] = [
  ["watch decode (JSON.parse)", /^#decode src\/server\/datastore\/watch-decoder/],
  ["convert", /^convert src\/server\/datastore\/registry/],
  ["store upsert (encode, compare)", /^upsert src\/snapshot\/store/],
  ["delta frames (encode, patch, deflate)", /^frame src\/snapshot\/delta-frames/],
  ["snapshot build and send", /^(#build src\/snapshot\/hub|\S+ src\/server\/fanout\/snapshot-sender)/],
  ["socket writes (ws send, writev)", /^send src\/server\/fanout\/session/],
  ["upstream list", /^#list src\/server\/datastore\/resource-loop/],
];

export interface StageTime {
  readonly stage: string;
  readonly ms: number;
  readonly percent: number;
}

/** The profile's nodes by id, and each node's parent. */
function tree(profile: CpuProfile): { byId: Map<number, ProfileNode>; parent: Map<number, number> } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  return { byId, parent };
}

/** Calls `visit` with each sample in the window [fromMs, toMs) and its duration (µs); returns their sum. */
function forEachSample(
  profile: CpuProfile,
  fromMs: number,
  toMs: number,
  visit: (id: number, dtUs: number) => void,
): number {
  let atUs = 0;
  let totalUs = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    atUs += dt;
    if (atUs < fromMs * 1000 || atUs >= toMs * 1000) return;
    totalUs += dt;
    visit(id, dt);
  });
  return totalUs;
}

/**
 * Time by stage in the window [fromMs, toMs) of the profile (ms since its start): idle, GC, each of STAGES,
 * and "other". Largest first.
 */
export function stageTimes(profile: CpuProfile, fromMs = 0, toMs = Infinity): StageTime[] {
  const { byId, parent } = tree(profile);
  const us = new Map<string, number>();
  const totalUs = forEachSample(profile, fromMs, toMs, (id, dt) => {
    const stage = stageOf(id, byId, parent);
    us.set(stage, (us.get(stage) ?? 0) + dt);
  });
  return [...us.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([stage, t]) => ({
      stage,
      ms: Math.round(t / 1000),
      percent: Math.round((t / Math.max(1, totalUs)) * 1000) / 10,
    }));
}

/**
 * Total time (self and callees) of each function of tabby's own code (src/, proto/) in the window
 * [fromMs, toMs): where the data path's time goes below the stages. A function that recurses, or appears
 * twice on one stack, counts once per sample. Largest first.
 */
export function ownTotals(profile: CpuProfile, fromMs = 0, toMs = Infinity, count = 25): FunctionTime[] {
  const { byId, parent } = tree(profile);
  const us = new Map<string, { name: string; location: string; us: number }>();
  const totalUs = forEachSample(profile, fromMs, toMs, (id, dt) => {
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const node = byId.get(cur);
      if (node === undefined) break;
      const { name, location } = label(node);
      if (!/^(src|proto)\//.test(location)) continue;
      const key = `${name} ${location}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const entry = us.get(key) ?? { name, location, us: 0 };
      entry.us += dt;
      us.set(key, entry);
    }
  });
  return largest(us.values(), totalUs, count);
}

function stageOf(
  id: number,
  byId: ReadonlyMap<number, ProfileNode>,
  parent: ReadonlyMap<number, number>,
): string {
  const leaf = byId.get(id);
  if (leaf?.callFrame.functionName === "(idle)") return "idle";
  if (leaf?.callFrame.functionName === "(garbage collector)") return "GC";
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const node = byId.get(cur);
    if (node === undefined) break;
    const { name, location } = label(node);
    const frame = `${name} ${location}`;
    const hit = STAGES.find(([, re]) => re.test(frame));
    if (hit !== undefined) return hit[0];
  }
  return "other";
}

function flag(name: string): number | undefined {
  const i = process.argv.indexOf(name);
  return i < 0 ? undefined : Number(process.argv[i + 1]);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const file = process.argv[2];
  if (file === undefined) {
    console.error("usage: profile-top.ts <file.cpuprofile> [count] [--from S] [--to S]");
    process.exitCode = 2;
  } else {
    const profile = JSON.parse(await readFile(file, "utf8")) as CpuProfile;
    const count =
      process.argv[3] === undefined || process.argv[3].startsWith("--") ? 25 : Number(process.argv[3]);
    const fromS = flag("--from") ?? 0;
    const toS = flag("--to") ?? Infinity;
    console.log(`stages from ${fromS} s to ${toS} s:`);
    for (const s of stageTimes(profile, fromS * 1000, toS * 1000))
      console.log(`${String(s.percent).padStart(5)}%  ${String(s.ms).padStart(7)} ms  ${s.stage}`);
    console.log(`tabby's functions by total time (self and callees), same window:`);
    for (const f of ownTotals(profile, fromS * 1000, toS * 1000, count))
      console.log(
        `${String(f.selfPercent).padStart(5)}%  ${String(f.selfMs).padStart(7)} ms  ${f.name}  ${f.location}`,
      );
    const { totalMs, top } = topFunctions(profile, count);
    console.log(`${file}: ${totalMs} ms sampled; functions by self time, whole profile:`);
    for (const f of top)
      console.log(
        `${String(f.selfPercent).padStart(5)}%  ${String(f.selfMs).padStart(7)} ms  ${f.name}  ${f.location}`,
      );
    console.log("by file:");
    for (const f of topFiles(profile)) console.log(`${String(f.selfPercent).padStart(5)}%  ${f.file}`);
  }
}
