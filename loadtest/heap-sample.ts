/**
 * What a running server allocates that outlives the young generation: connects to its inspector (start
 * it with `--server-node-option=--inspect=127.0.0.1:<port>`), samples allocations for some seconds with
 * V8's sampling heap profiler, keeping objects a major GC collected but not those a scavenge did (so the
 * profile holds what was promoted, or is still live), and prints the top allocation sites. Usage:
 *   npx tsx loadtest/heap-sample.ts <inspector port> <seconds> [out.heapprofile]
 */
import { writeFile } from "node:fs/promises";
import WebSocket from "ws";
import { label } from "./profile-top.js";

interface SamplingNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly selfSize: number;
  readonly children: readonly SamplingNode[];
}

interface Reply {
  readonly id?: number;
  readonly result?: unknown;
  readonly error?: unknown;
}

const [port, seconds, out] = process.argv.slice(2);
if (port === undefined || seconds === undefined) {
  console.error("usage: heap-sample.ts <inspector port> <seconds> [out.heapprofile]");
  process.exit(2);
}
const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as {
  webSocketDebuggerUrl: string;
}[];
const url = targets[0]?.webSocketDebuggerUrl;
if (url === undefined) throw new Error("no inspector target");
const ws = new WebSocket(url);
await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
let nextId = 0;
const pending = new Map<number, (reply: Reply) => void>();
ws.on("message", (data: Buffer) => {
  const reply = JSON.parse(data.toString("utf8")) as Reply;
  if (reply.id !== undefined) pending.get(reply.id)?.(reply);
});
function call(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
  const id = ++nextId;
  ws.send(JSON.stringify({ id, method, params }));
  return new Promise((resolve, reject) =>
    pending.set(id, (r) =>
      r.error === undefined ? resolve(r.result) : reject(new Error(JSON.stringify(r.error))),
    ),
  );
}
await call("HeapProfiler.enable");
await call("HeapProfiler.startSampling", {
  samplingInterval: 16384,
  includeObjectsCollectedByMajorGC: true,
  includeObjectsCollectedByMinorGC: false,
});
await new Promise((r) => setTimeout(r, Number(seconds) * 1000));
const { profile } = (await call("HeapProfiler.stopSampling")) as { profile: { head: SamplingNode } };
ws.close();
if (out !== undefined) await writeFile(out, JSON.stringify(profile));

const labelOf = (n: SamplingNode): string => {
  const { name, location } = label(n);
  return `${name} ${location}`;
};
const self = new Map<string, number>();
const total = new Map<string, number>();
let all = 0;
function walk(n: SamplingNode, stack: readonly string[]): void {
  const site = labelOf(n);
  const here = [...stack, site];
  if (n.selfSize > 0) {
    all += n.selfSize;
    self.set(site, (self.get(site) ?? 0) + n.selfSize);
    for (const l of new Set(here)) total.set(l, (total.get(l) ?? 0) + n.selfSize);
  }
  for (const c of n.children) walk(c, here);
}
walk(profile.head, []);
const mb = (b: number) =>
  `${(b / 1e6).toFixed(1).padStart(7)} MB ${((b / Math.max(1, all)) * 100).toFixed(1).padStart(5)}%`;
console.log(
  `sampled in ${seconds} s, promoted or live: ${(all / 1e6).toFixed(1)} MB; by allocating function:`,
);
for (const [l, b] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`${mb(b)}  ${l}`);
console.log("tabby's functions by what they and their callees allocated:");
const own = [...total].filter(([l]) => / (src|proto)\//.test(l));
for (const [l, b] of own.sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`${mb(b)}  ${l}`);
