import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { encodeMessage, decodeServerMessage } from "../../proto/codec.js";
import { CloseCode } from "../../proto/close-codes.js";
import { loopbackServeArgs } from "../../src/cli/args.js";
import { spawnTabby } from "../../src/cli/ipc.js";
import type { TabbyChild } from "../../src/cli/ipc.js";
import { convert, RESOURCES, resourceId, staticEntries } from "../../src/server/datastore/index.js";
import { seedCluster } from "../../src/sim/churn.js";
import { startSimulator } from "../../src/sim/index.js";
import type { Simulator } from "../../src/sim/index.js";
import { VIEWS } from "../../src/snapshot/kinds.js";
import { kindOfKey } from "../../src/snapshot/keys.js";
import { nodeOf } from "../../src/snapshot/kinds.js";
import type { ResourceValue } from "../../proto/messages.js";

const run = promisify(execFile);
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function simWithKubeconfig(): Promise<{ sim: Simulator; kubeconfig: string }> {
  const sim = await startSimulator({ host: "127.0.0.1", port: 0 });
  cleanups.push(() => sim.close());
  seedCluster(sim, { nodes: 6, podsPerNode: 4 });
  const dir = await mkdtemp(join(tmpdir(), "tabby-cli-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const kubeconfig = join(dir, "kubeconfig");
  await writeFile(kubeconfig, sim.kubeconfigYaml());
  return { sim, kubeconfig };
}

async function serve(kubeconfig: string, extra: string[] = []): Promise<TabbyChild> {
  const child = await spawnTabby(loopbackServeArgs(kubeconfig, { extra }));
  cleanups.push(() => child.stop(5000));
  return child;
}

/** The simulator's state converted, as one view shows it to `node`: key → value. */
function expectedView(sim: Simulator, view: keyof typeof VIEWS, node?: string): Map<string, ResourceValue> {
  const out = new Map<string, ResourceValue>();
  const def = VIEWS[view];
  for (const { key, value } of staticEntries(RESOURCES)) {
    if (def.kinds.has(kindOfKey(key) as never)) out.set(key, value);
  }
  for (const resource of RESOURCES) {
    for (const obj of sim.list(resourceId(resource))) {
      const r = convert(resourceId(resource), obj);
      if (r === null || r.value === null) continue;
      const kind = kindOfKey(r.key);
      if (!def.kinds.has(kind as never)) continue;
      if (def.nodeScopedKinds.has(kind as never) && nodeOf(kind, r.value) !== node) continue;
      out.set(r.key, r.value);
    }
  }
  return out;
}

async function dump(
  port: unknown,
  view: string,
  node?: string,
): Promise<{ key: string; value: ResourceValue }[]> {
  const args = [
    "--import",
    "tsx",
    "src/cli/main.ts",
    "dump",
    "--server",
    `ws://127.0.0.1:${String(port)}`,
    "--view",
    view,
  ];
  if (node !== undefined) args.push("--node", node);
  const { stdout } = await run(process.execPath, args, { maxBuffer: 64 * 1024 * 1024 });
  return stdout
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as { key: string; value: ResourceValue });
}

describe("tabby dump | tabby serve | tabby sim", () => {
  it("prints exactly the simulator's state converted, sorted by key, for each view", async () => {
    const { sim, kubeconfig } = await simWithKubeconfig();
    const server = await serve(kubeconfig);
    const cases = [
      ["felix", undefined],
      ["bgp", "node-0002"],
      ["node-status", "node-0004"],
      ["tunnel-ip-allocation", undefined],
    ] as const;
    const dumps = await Promise.all(cases.map(([view, node]) => dump(server.ready.port, view, node)));
    cases.forEach(([view, node], i) => {
      const lines = dumps[i]!;
      const expected = expectedView(sim, view, node);
      expect(lines.map((l) => l.key)).toEqual([...expected.keys()].sort());
      for (const l of lines) expect(l.value).toEqual(expected.get(l.key));
      expect(lines.length).toBeGreaterThan(0);
    });
  }, 120_000);

  it("exits non-zero with a clear message when it cannot sync", async () => {
    const err = await run(process.execPath, [
      "--import",
      "tsx",
      "src/cli/main.ts",
      "dump",
      "--server",
      "ws://127.0.0.1:9",
      "--view",
      "felix",
      "--timeout-ms",
      "1500",
    ]).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    expect(err?.code).toBe(1);
    expect(err?.stderr).toMatch(/tabby dump: .*not in sync within 1500 ms/);
  }, 60_000);

  it("rejects an invalid setting naming the field, with exit code 2", async () => {
    const err = await run(process.execPath, [
      "--import",
      "tsx",
      "src/cli/main.ts",
      "serve",
      "--port",
      "http",
    ]).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    expect(err?.code).toBe(2);
    expect(err?.stderr).toContain("port (--port)");
  }, 60_000);
});

describe("tabby serve on SIGTERM", () => {
  it("turns unready, closes sessions spread over the drain period with 4008, then exits 0", async () => {
    const { kubeconfig } = await simWithKubeconfig();
    const server = await serve(kubeconfig, ["--drain-ms", "2000"]);
    const sockets = await inSyncSockets(server, 10);
    const ws = new WebSocket(`ws://127.0.0.1:${String(server.ready.port)}`);
    await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
    const closes = sockets.map(
      (ws) =>
        new Promise<{ code: number; at: number }>((resolve) =>
          ws.once("close", (code) => resolve({ code, at: Date.now() })),
        ),
    );
    const exited = new Promise<number | null>((resolve) =>
      server.process.once("exit", (code) => resolve(code)),
    );
    const sent = Date.now();
    server.process.kill("SIGTERM");
    const results = await Promise.all(closes);
    expect(results.every((r) => r.code === CloseCode.shuttingDown)).toBe(true);
    const times = results.map((r) => r.at - sent).sort((a, b) => a - b);
    // Spread over the 2 s drain period, not all at once.
    expect(times[times.length - 1]! - times[0]!).toBeGreaterThan(800);
    expect(await exited).toBe(0);
  }, 60_000);

  it("closes at once on a second SIGTERM during the drain, and exits 0", async () => {
    const { kubeconfig } = await simWithKubeconfig();
    const server = await serve(kubeconfig, ["--drain-ms", "30000"]);
    const sockets = await inSyncSockets(server, 6);
    const closes = sockets.map((ws) => new Promise<number>((resolve) => ws.once("close", resolve)));
    const exited = new Promise<number | null>((resolve) =>
      server.process.once("exit", (code) => resolve(code)),
    );
    server.process.kill("SIGTERM");
    // The drain closes the first session at once and the next one 5 s later.
    expect(await Promise.race(closes)).toBe(CloseCode.shuttingDown);
    const second = Date.now();
    server.process.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(Date.now() - second).toBeLessThan(3000);
    const codes = await Promise.all(closes);
    expect(codes.filter((c) => c === CloseCode.shuttingDown).length).toBeLessThan(6);
  }, 60_000);
});

/** `n` raw WebSocket sessions of the felix view, each in sync. */
function inSyncSockets(server: TabbyChild, n: number): Promise<WebSocket[]> {
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const ws = new WebSocket(`ws://127.0.0.1:${String(server.ready.port)}`);
      await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
      ws.send(
        encodeMessage({
          t: "hello",
          versions: [1, 1],
          view: "felix",
          node: `n${i}`,
          client: { name: "t", version: "1" },
        }),
      );
      await new Promise<void>((resolve) => {
        ws.on("message", (data: Buffer) => {
          const m = decodeServerMessage(data);
          if (m.t === "status" && m.state === "in-sync") resolve();
        });
      });
      return ws;
    }),
  );
}

describe("tabby demo (npm start)", () => {
  it("runs simulator, server and agents, gets every agent in sync, and stops by itself", async () => {
    const { stdout } = await run(
      process.execPath,
      [
        "--import",
        "tsx",
        "src/cli/main.ts",
        "demo",
        "--nodes",
        "10",
        "--pods-per-node",
        "3",
        "--agents",
        "4",
        "--duration",
        "6",
      ],
      { timeout: 90_000 },
    );
    expect(stdout).toMatch(/tabby +ws:\/\/127\.0\.0\.1:\d+/);
    expect(stdout).toMatch(/metrics +http:\/\/127\.0\.0\.1:\d+\/metrics/);
    expect(stdout).toMatch(/agents in sync 4\/4/);
  }, 120_000);
});
