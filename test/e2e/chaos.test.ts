/**
 * The CI chaos budget (issue 12): a few seeded runs of mixed faults under churn, with tabby servers as
 * processes and agents behind a faulty TCP proxy; any mirror that differs from the cluster fails the test.
 * The long campaigns are `npm run chaos` (docs/RELIABILITY.md).
 */
import { readFileSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { runChaos } from "../../src/chaos/campaign.js";
import type { ChaosReport } from "../../src/chaos/campaign.js";

describe("tabby chaos (CI budget)", () => {
  it("converges every mirror after each seeded run, and writes chaos.json after every run", async () => {
    const out = await mkdtemp(join(tmpdir(), "tabby-chaos-test-"));
    onTestFinished(() => rm(out, { recursive: true, force: true }));
    // What chaos.json holds when each run after the first ends (the previous run's report).
    const between: { runs: number; isComplete: boolean }[] = [];
    const report = await runChaos({
      runs: 3,
      seed: 101,
      agents: 6,
      nodes: 3,
      servers: 2,
      durationMs: 4000,
      churnPerSecond: 40,
      faults: [3, 6],
      settleTimeoutMs: 20_000,
      out,
      onRun: (_r, i) => {
        if (i === 0) return;
        const partial = JSON.parse(readFileSync(join(out, "chaos.json"), "utf8")) as ChaosReport;
        between.push({ runs: partial.runs, isComplete: partial.isComplete });
      },
    });
    const failures = report.divergentRuns.map((r) => ({
      seed: r.seed,
      schedule: r.schedule,
      mirrors: r.failures,
    }));
    expect(failures).toEqual([]);
    expect(report.errors).toEqual([]);
    expect(report.runs).toBe(3);
    expect(report.divergent).toBe(0);
    expect(report.failed).toBe(0);
    expect(between).toEqual([
      { runs: 1, isComplete: false },
      { runs: 2, isComplete: false },
    ]);
    expect(Object.values(report.faultsByKind).reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(9);
    expect(report.convergeSeconds.max).toBeLessThan(20);
    const written = JSON.parse(await readFile(join(out, "chaos.json"), "utf8")) as ChaosReport;
    expect(written.runs).toBe(3);
    expect(written.isComplete).toBe(true);
    expect(written.convergeSeconds).toEqual(report.convergeSeconds);
    for (const r of written.results) {
      expect(r.servers).toHaveLength(2);
      for (const s of r.servers) expect(s.after?.fds).toBeGreaterThan(0);
    }
  }, 150_000);
});
