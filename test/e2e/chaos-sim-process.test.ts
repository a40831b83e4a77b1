/**
 * The chaos runner's simulator in a child process of its own (src/chaos/upstream.ts, for the runs with
 * many agents): each fault sent over IPC does what it says, seen from outside over HTTP, and a chaos run
 * with faults on that simulator converges.
 */
import { describe, expect, it, onTestFinished } from "vitest";
import { runChaos } from "../../src/chaos/campaign.js";
import { simPlacement } from "../../src/chaos/run.js";
import { FAULT_KINDS } from "../../src/chaos/schedule.js";
import type { FaultKind } from "../../src/chaos/schedule.js";
import { startUpstream } from "../../src/chaos/upstream.js";
import type { ChaosUpstream, SimPlacement } from "../../src/chaos/upstream.js";
import { http, openWatch } from "./sim-test-utils.js";

async function upstream(placement: SimPlacement, seed: number): Promise<ChaosUpstream> {
  const u = await startUpstream(placement, { nodes: 2, seed, bookmarkIntervalMs: 2000, timeoutMs: 30_000 });
  onTestFinished(() => u.close());
  return u;
}

/** The resourceVersion of a list of `path` (a GET answered: the simulator took the writes before it). */
async function listRv(u: ChaosUpstream, path: string): Promise<number> {
  const r = await http("GET", `${u.url}${path}`);
  expect(r.status).toBe(200);
  return Number((r.body as { metadata: { resourceVersion: string } }).metadata.resourceVersion);
}

/** Resolves true if `p` settles within `ms`, false if not (`p` keeps running). */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([p.then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

describe("chaos: the simulator in a child process", () => {
  it("puts the simulator in a child process from 51 agents on (auto), or as asked", () => {
    expect(simPlacement("auto", 6)).toBe("in-process");
    expect(simPlacement("auto", 50)).toBe("in-process");
    expect(simPlacement("auto", 51)).toBe("child-process");
    expect(simPlacement("auto", 200)).toBe("child-process");
    expect(simPlacement("child", 1)).toBe("child-process");
    expect(simPlacement("in-process", 200)).toBe("in-process");
  });

  it("serves the seeded cluster and converted state of the in-process simulator, and applies every fault sent over IPC", async () => {
    const u = await upstream("child-process", 42);
    const local = await upstream("in-process", 42);
    expect(u.placement).toBe("child-process");
    expect(u.nodes).toEqual(local.nodes);
    const nodes = await http("GET", `${u.url}/api/v1/nodes`);
    expect(
      (nodes.body as { items: { metadata: { name: string } }[] }).items.map((n) => n.metadata.name),
    ).toEqual(u.nodes);
    const keys = (x: ChaosUpstream): Promise<string[]> =>
      x.converted().then((state) => state.map((e) => e.key).sort());
    const childKeys = await keys(u);
    expect(childKeys.length).toBeGreaterThan(10);
    expect(childKeys).toEqual(await keys(local));
    expect(childKeys.some((k) => k.includes(u.nodes[0]!))).toBe(true);
    await local.close();

    // 500 and 429 (with Retry-After) windows.
    const status = async (): Promise<number> => (await http("GET", `${u.url}/api/v1/nodes`)).status;
    await u.fault({ op: "fail-requests", status: 500, forMs: 1000 });
    expect(await status()).toBe(500);
    await expect.poll(status, { timeout: 5000, interval: 100 }).toBe(200);
    await u.fault({ op: "fail-requests", status: 429, forMs: 1000 });
    const limited = await http("GET", `${u.url}/api/v1/nodes`);
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("1");
    await expect.poll(status, { timeout: 5000, interval: 100 }).toBe(200);

    // Stalled: the churn writes, a list sees them, the open watch gets nothing until the stall is lifted.
    const rv0 = await listRv(u, "/api/v1/pods");
    const stalled = openWatch(`${u.url}/api/v1/pods?resourceVersion=${rv0}`);
    onTestFinished(() => stalled.close());
    expect(await stalled.status).toBe(200);
    await u.fault({ op: "stall-watches", isOn: true });
    await u.startChurn(200);
    await expect.poll(() => listRv(u, "/api/v1/pods"), { timeout: 5000 }).toBeGreaterThan(rv0 + 10);
    const changes = await u.stopChurn();
    expect(changes).toBeGreaterThan(10);
    expect(stalled.events).toEqual([]);
    await u.fault({ op: "stall-watches", isOn: false });
    await stalled.next(() => true);

    // 410 in the stream, then the end; a drop ends a watch cleanly, without an ERROR event.
    const expired = openWatch(`${u.url}/api/v1/nodes?resourceVersion=${await listRv(u, "/api/v1/nodes")}`);
    expect(await expired.status).toBe(200);
    await u.fault({ op: "expire-watches" });
    expect((await expired.next((e) => e.type === "ERROR")).object).toMatchObject({
      code: 410,
      reason: "Expired",
    });
    await expired.ended;
    const dropped = openWatch(`${u.url}/api/v1/nodes?resourceVersion=${await listRv(u, "/api/v1/nodes")}`);
    expect(await dropped.status).toBe(200);
    await u.fault({ op: "drop-watches" });
    await dropped.ended;
    expect(dropped.events.filter((e) => e.type === "ERROR")).toEqual([]);

    // Paused: a request is taken but not answered until the pause ends.
    await u.fault({ op: "pause", isOn: true });
    const held = http("GET", `${u.url}/api/v1/nodes`);
    expect(await settlesWithin(held, 500)).toBe(false);
    await u.fault({ op: "pause", isOn: false });
    expect((await held).status).toBe(200);

    // Restart with compaction: open watches end, and a watch from before the kept history gets 410.
    const before = await listRv(u, "/api/v1/pods");
    const open = openWatch(`${u.url}/api/v1/pods?resourceVersion=${before}`);
    expect(await open.status).toBe(200);
    await u.startChurn(200);
    // More pod changes after `before` than the 5 the compaction keeps.
    await open.count(6);
    await u.stopChurn();
    await u.fault({ op: "set-history-limit", limit: 5 });
    await u.fault({ op: "restart" });
    await open.ended;
    // Polled: the first request may go out on a pooled keep-alive socket the restart closed (status 0).
    const watchStatus = async (): Promise<number> => {
      const old = openWatch(`${u.url}/api/v1/pods?resourceVersion=${before}`);
      try {
        return await old.status;
      } finally {
        old.close();
      }
    };
    await expect.poll(watchStatus, { timeout: 5000, interval: 100 }).toBe(410);
    expect(await listRv(u, "/api/v1/pods")).toBeGreaterThan(before + 5);
  }, 60_000);

  it("carries out a chaos run with upstream faults over IPC, and every mirror converges", async () => {
    // Every upstream fault (each goes over IPC), and a proxy cut.
    const kinds: FaultKind[] = [
      ...FAULT_KINDS.filter((k) => !k.startsWith("server-") && !k.startsWith("proxy-")),
      "proxy-cut",
    ];
    const report = await runChaos({
      runs: 1,
      seed: 301,
      agents: 4,
      nodes: 2,
      servers: 2,
      durationMs: 4000,
      churnPerSecond: 40,
      faults: [4, 6],
      kinds,
      settleTimeoutMs: 20_000,
      simProcess: "child",
      out: undefined,
    });
    expect(report.errors).toEqual([]);
    expect(report.divergentRuns.map((r) => ({ seed: r.seed, mirrors: r.failures }))).toEqual([]);
    expect(report.runs).toBe(1);
    expect(report.results[0]?.simulator).toBe("child-process");
    expect(report.results[0]?.changes).toBeGreaterThan(0);
    expect(report.results[0]?.mirrors).toBe(4);
    // Seed 301's schedule: six upstream faults, each applied over IPC.
    expect(report.faultsByKind).toEqual({ "watch-410": 2, "api-429": 1, "watch-stall": 2, "api-pause": 1 });
    expect(report.convergeSeconds.max).toBeLessThan(20);
    // Converged by the agents' last change, which the check can only find at that moment or later.
    const run = report.results[0]!;
    expect(run.checkedSeconds).toBeGreaterThanOrEqual(run.convergeSeconds!);
  }, 90_000);
});
