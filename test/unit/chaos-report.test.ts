/**
 * The chaos campaign's report: a divergent run and a run with an unexplained error both count as failed;
 * a run the machine could not carry out (its node_modules vanished, as in an earlier 45-run campaign whose
 * last 10 runs could not start a server) is explained and counted as not run; server growth is computed
 * only over processes that lived through their run.
 */
import { describe, expect, it } from "vitest";
import { buildReport, explainRunError } from "../../src/chaos/campaign.js";
import type { CampaignOptions, RunError } from "../../src/chaos/campaign.js";
import type { RunResult } from "../../src/chaos/run.js";

const OPTIONS: CampaignOptions = {
  runs: 4,
  seed: 1,
  agents: 2,
  nodes: 2,
  servers: 1,
  durationMs: 1000,
  churnPerSecond: 1,
  faults: [1, 1],
  settleTimeoutMs: 1000,
  out: undefined,
};

function result(
  seed: number,
  o: { isDivergent?: boolean; convergeSeconds?: number; restarted?: boolean },
): RunResult {
  const before = { pid: 10, fds: 50, sockets: 30, rssBytes: 200 * 2 ** 20 };
  const after = { pid: o.restarted === true ? 11 : 10, fds: 52, sockets: 31, rssBytes: 203 * 2 ** 20 };
  return {
    seed,
    simulator: "in-process",
    isDivergent: o.isDivergent ?? false,
    convergeSeconds: o.isDivergent === true ? undefined : (o.convergeSeconds ?? 1),
    checkedSeconds: o.isDivergent === true ? undefined : (o.convergeSeconds ?? 1) + 0.5,
    schedule: [{ atMs: 200, kind: "proxy-cut", durationMs: 0, server: 0 }],
    faultsByKind: { "proxy-cut": 1 },
    changes: 10,
    mirrors: 2,
    failures: [],
    servers: [{ server: 0, before, after, restarts: o.restarted === true ? 1 : 0 }],
    durationSeconds: 5,
    loadAverage1m: 1,
  };
}

const QUIET = { loadAverage1m: 1, cpus: 2 };
const BUSY = { loadAverage1m: 20, cpus: 2 };

function runError(seed: number, message: string): RunError {
  const explanation = explainRunError(message, "setup", QUIET);
  return { seed, phase: "setup", message, explanation, schedule: [], loadAverage1m: QUIET.loadAverage1m };
}

describe("chaos report", () => {
  it("explains a server that could not load its modules, and nothing else", () => {
    const missing =
      "tabby serve exited (1) before it was ready: Error [ERR_MODULE_NOT_FOUND]: Cannot find package 'tsx' imported from /tmp/x/";
    expect(explainRunError(missing, "setup", QUIET)).toMatch(/node_modules/);
    expect(explainRunError(missing, "faults", QUIET)).toMatch(/node_modules/);
    expect(explainRunError("write ENOSPC", "check", QUIET)).toMatch(/disk/);
    expect(explainRunError("the agents did not sync before the faults", "setup", QUIET)).toBeUndefined();
    expect(
      explainRunError("tabby serve exited (1) before it was ready: EMFILE", "setup", BUSY),
    ).toBeUndefined();
  });

  it("puts a start that timed out down to the machine only when it was overloaded, and only in setup", () => {
    const slow = "tabby serve did not report ready within 60000 ms: ";
    expect(explainRunError(slow, "setup", BUSY)).toMatch(/overloaded \(load average 20\.0 on 2 CPUs\)/);
    expect(explainRunError("the agents did not sync before the faults", "setup", BUSY)).toMatch(/overloaded/);
    expect(explainRunError(slow, "setup", QUIET)).toBeUndefined();
    // A restarted server that does not come up during the faults is tabby's to explain.
    expect(explainRunError(slow, "faults", BUSY)).toBeUndefined();
  });

  it("counts divergent runs and unexplained errors as failed, explained errors as not run", () => {
    const report = buildReport(
      OPTIONS,
      [result(1, { convergeSeconds: 0.5 }), result(2, { isDivergent: true })],
      [runError(3, "Cannot find package 'tsx'"), runError(4, "the agents did not sync before the faults")],
      Date.now(),
      true,
    );
    expect(report).toMatchObject({ runsPlanned: 4, runs: 2, divergent: 1, failed: 2, notRun: 1 });
    expect(report.divergentRuns.map((r) => r.seed)).toEqual([2]);
    expect(report.errors.map((e) => [e.seed, e.explanation === undefined])).toEqual([
      [3, false],
      [4, true],
    ]);
    expect(report.convergeSeconds).toEqual({ p50: 0.5, p99: 0.5, max: 0.5 });
    expect(report.checkedSeconds).toEqual({ p50: 1, p99: 1, max: 1 });
  });

  it("reports server growth only for processes that lived through their run", () => {
    const report = buildReport(
      OPTIONS,
      [result(1, {}), result(2, { restarted: true }), result(3, {})],
      [],
      Date.now(),
      false,
    );
    expect(report.isComplete).toBe(false);
    expect(report.failed).toBe(0);
    expect(report.serverGrowth).toEqual({
      samples: 2,
      fds: { p50: 2, max: 2 },
      sockets: { p50: 1, max: 1 },
      rssMiB: { p50: 3, max: 3 },
    });
  });
});
