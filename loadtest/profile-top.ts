/**
 * The top functions of a V8 CPU profile (`node --cpu-prof`) by self time, and by total time for tabby's
 * own code. Usage: `node --import tsx loadtest/profile-top.ts <file.cpuprofile> [count]`.
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

function label(n: ProfileNode): { name: string; location: string } {
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
  const top = [...selfUs.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, count)
    .map((e) => ({
      name: e.name,
      location: e.location,
      selfMs: Math.round(e.us / 1000),
      selfPercent: Math.round((e.us / Math.max(1, totalUs)) * 1000) / 10,
    }));
  return { totalMs: Math.round(totalUs / 1000), top };
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

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const file = process.argv[2];
  if (file === undefined) {
    console.error("usage: profile-top.ts <file.cpuprofile> [count]");
    process.exitCode = 2;
  } else {
    const profile = JSON.parse(await readFile(file, "utf8")) as CpuProfile;
    const { totalMs, top } = topFunctions(profile, Number(process.argv[3] ?? 25));
    console.log(`${file}: ${totalMs} ms sampled`);
    for (const f of top)
      console.log(
        `${String(f.selfPercent).padStart(5)}%  ${String(f.selfMs).padStart(7)} ms  ${f.name}  ${f.location}`,
      );
    console.log("by file:");
    for (const f of topFiles(profile)) console.log(`${String(f.selfPercent).padStart(5)}%  ${f.file}`);
  }
}
