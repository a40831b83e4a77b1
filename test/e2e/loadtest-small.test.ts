import { readFile, rm, mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { resolveLoadtestOptions } from "../../loadtest/options.js";
import type { LoadtestReport } from "../../loadtest/report.js";
import { runLoadtest } from "../../loadtest/run.js";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** PIDs of this process's children (Linux). */
async function childPids(): Promise<number[]> {
  const text = await readFile(`/proc/${process.pid}/task/${process.pid}/children`, "utf8");
  return text
    .trim()
    .split(/\s+/)
    .filter((s) => s !== "")
    .map(Number);
}

/** The fields docs/LOADTEST.md promises for every scenario entry of report.json. */
const DOCUMENTED_FIELDS = [
  "scenario",
  "agents",
  "nodes",
  "resources",
  "churnPerSecond",
  "durationSeconds",
  "verified",
  "mismatches",
  "inSyncSeconds",
  "latencyMs",
  "deliveredPerSecond",
  "serverRssBytesMax",
  "serverCpuSecondsPerSecond",
  "upstreamWatches",
  "wireBytesPerChange",
  "flushWindowMsMax",
  "relistSeconds",
  "ceilingRatio",
] as const;

describe("tabby loadtest, small", () => {
  it("runs a connect storm, steady churn and its ceiling with 50 agents, verifies the mirrors and records latencies", async () => {
    const out = await mkdtemp(join(tmpdir(), "tabby-loadtest-"));
    cleanups.push(() => rm(out, { recursive: true, force: true }));
    const before = new Set(await childPids());
    const lines: string[] = [];
    const options = resolveLoadtestOptions({
      nodes: 100,
      podsPerNode: 5,
      agents: 50,
      churnRates: [50],
      durationSeconds: 10,
      workers: 2,
      fullAgents: 4,
      // Lite agents that decode full values (the latency samples), beside the full ones' mirrors.
      sampleAgents: 3,
      scenarios: ["connect-storm", "churn", "ceiling"],
      outDir: out,
      hasProgressBar: false,
      syncTimeoutSeconds: 30,
    });

    const report = await runLoadtest(options, { log: (l) => lines.push(l) });

    expect(report.error, lines.join("\n")).toBeUndefined();
    expect(report.verified).toBe(true);
    expect(report.scenarios.map((s) => s.name)).toEqual(["connect-storm", "churn-50", "ceiling"]);
    const [connect, churn, ceiling] = report.scenarios;
    for (const s of report.scenarios.slice(0, 2)) {
      for (const f of DOCUMENTED_FIELDS) expect(s, `${s.name}.${f}`).toHaveProperty(f);
      expect(s.verified).toBe(true);
      expect(s.mismatches).toBe(0);
      expect(s.agents).toBe(50);
      expect(s.nodes).toBe(100);
      expect(s.resources).toBeGreaterThan(500);
      expect(s.upstreamWatches).toBeGreaterThan(0);
      expect(s.serverRssBytesMax).toBeGreaterThan(0);
      expect(s.details.verifiedAgents).toBe(4);
    }
    expect(connect?.inSyncSeconds.connectStorm).toBeGreaterThan(0);
    expect(connect?.inSyncSeconds.connectStorm).toBeLessThan(30);
    expect(churn?.churnPerSecond).toBe(50);
    expect(churn?.achievedChurnPerSecond).toBeGreaterThan(40);
    expect(churn?.latencyMs.count).toBeGreaterThan(0);
    expect(Number.isFinite(churn?.latencyMs.p99)).toBe(true);
    expect(churn?.latencyMs.p50).toBeLessThanOrEqual(churn?.latencyMs.p99 ?? -1);
    expect(churn?.deliveredPerSecond).toBeGreaterThan(0);
    expect(churn?.serverCpuSecondsPerSecond).toBeGreaterThan(0);
    // Issue 8: every byte the agents read (frame headers, pings, status frames) per change delivered.
    expect(Number.isFinite(churn?.wireBytesPerChange)).toBe(true);
    expect(churn?.wireBytesPerChange).toBeGreaterThan(20);
    // Uncompressed msgpack frames cost ~1100 B a change; deflate-deltas and patch-deltas bring it under 400 B.
    expect(churn?.wireBytesPerChange).toBeLessThan(400);
    // It is measured on the felix agents that keep a mirror (they take patches); the lite decoding agents,
    // which get full values, are reported beside it and cost more.
    expect(churn?.details.mirrorFelixAgents).toMatchObject({ agents: expect.any(Number) as number });
    expect((churn?.details.mirrorFelixAgents as { agents: number }).agents).toBeGreaterThan(0);
    expect(churn?.details.wireBytesPerChangeFullValues).toBeGreaterThan(
      churn?.wireBytesPerChange ?? Infinity,
    );
    expect(churn?.flushWindowMsMax).toBeGreaterThan(0);
    expect(connect?.wireBytesPerChange).toBeNull();

    // The ceiling: the same 50 agents fed by the broadcaster with churn-50's frames, at its rate.
    expect(ceiling?.verified, JSON.stringify(ceiling?.mismatchSamples)).toBe(true);
    expect(ceiling?.agents).toBe(50);
    expect(ceiling?.churnPerSecond).toBe(50);
    expect(ceiling?.latencyMs.count).toBeGreaterThan(0);
    expect(ceiling?.deliveredPerSecond).toBeGreaterThan(0);
    expect(ceiling?.details.mirrors).toBe("churn-50");
    expect(ceiling?.ceilingRatio).toBeGreaterThan(0);
    expect(churn?.ceilingRatio).toBe(ceiling?.ceilingRatio);
    expect(ceiling?.serverRssBytesMax).toBeNull();
    // The move to the broadcaster is the connect storm's ceiling: every agent sent tabby's felix snapshot.
    const sent = ceiling?.details.connectSnapshot as { bytes: number; chunks: number; entries: number };
    expect(sent.entries).toBeGreaterThan(500);
    expect(sent.chunks).toBeGreaterThanOrEqual(1);
    const perAgent = connect?.details.snapshotBytesPerAgent as number;
    expect(Math.abs(sent.bytes - perAgent)).toBeLessThan(perAgent * 0.1);
    expect(ceiling?.inSyncSeconds.connectStorm).toBeGreaterThan(0);
    expect(connect?.details.ceilingInSyncSeconds).toBe(ceiling?.inSyncSeconds.connectStorm);
    expect(connect?.details.ceilingInSyncRatio).toBeGreaterThan(0);

    const written = JSON.parse(await readFile(join(out, "report.json"), "utf8")) as LoadtestReport;
    expect(written.scenarios.map((s) => s.latencyMs.p99)).toEqual(
      report.scenarios.map((s) => s.latencyMs.p99),
    );
    expect(written.scenarios[1]?.wireBytesPerChange).toBe(churn?.wireBytesPerChange);
    expect(await readFile(join(out, "summary.md"), "utf8")).toContain("churn-50");
    expect(await readFile(join(out, "latency.svg"), "utf8")).toContain("<svg");
    expect(await readFile(join(out, "server.svg"), "utf8")).toContain("<path");

    // Every child process (simulator, server, workers) is gone.
    const left = (await childPids()).filter((pid) => !before.has(pid));
    expect(left).toEqual([]);
  }, 150_000);
});
