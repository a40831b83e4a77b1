import { collectWindow, startWindow, waitAllInSync } from "../measure.js";
import type { ScenarioResult } from "../report.js";
import { barUpdater, churnWindow, round, toResult } from "./common.js";
import type { ScenarioContext } from "./common.js";

/** "Close to scenario 2's p99": within 1.5 times it plus 10 ms (timer and scheduling noise). */
export function isP99Close(p99Ms: number, referenceP99Ms: number): boolean {
  return p99Ms <= 1.5 * referenceP99Ms + 10;
}

/**
 * Scenario 4: the worker holding `slowPercent` of the agents is frozen (SIGSTOP: its agents stop reading,
 * their sockets fill up) while the others take steady churn at `ratePerSecond`; their p99 is compared with
 * the churn run at the same rate. Then the slow agents are let go (SIGCONT) and must get back in sync.
 */
export async function slowAgents(ctx: ScenarioContext, ratePerSecond: number): Promise<ScenarioResult> {
  const { h } = ctx;
  const slow = h.slowWorker;
  const slowCount = h.agentSpecs.slow.length;
  if (slow === undefined || slow.pid === undefined || slowCount === 0) {
    throw new Error("slow-agents: no slow agent worker (too few agents?)");
  }
  const agents = h.agentSpecs.regular.reduce((a, s) => a + s.length, 0);
  await startWindow([slow], false);
  const statusBefore = await h.serverStatus();
  slow.process.kill("SIGSTOP");
  let measured;
  try {
    measured = await churnWindow(ctx, {
      scenario: "slow-agents",
      name: "slow-agents",
      workers: h.workers,
      agents,
      ratePerSecond,
      durationSeconds: h.options.durationSeconds,
    });
  } finally {
    slow.process.kill("SIGCONT");
  }
  const resumedAtMs = Date.now();
  // Churn has stopped: the slow agents (felix) have caught up once they reach the view's last change.
  const head = (await h.serverStatus()).views?.felix?.lastChangeRevision ?? 0;
  ctx.progress.begin("slow agents recover", slowCount, "agents");
  const backAtMs = await waitAllInSync(
    h,
    [slow],
    h.server.serverId,
    h.options.syncTimeoutSeconds * 1000,
    barUpdater(ctx, (p) => p.inSync),
    head,
  );
  ctx.progress.end();
  const slowWindow = await collectWindow([slow]);
  const statusAfter = await h.serverStatus();
  const reference = ctx.results.find((r) => r.scenario === "churn" && r.churnPerSecond === ratePerSecond);
  const referenceP99 = reference?.latencyMs.p99 ?? null;
  const p99 = measured.final.latency.p99;
  const result = await toResult(ctx, {
    ...measured,
    details: {
      ...measured.details,
      slowAgents: slowCount,
      slowPercent: h.options.slowPercent,
      referenceScenario: reference?.name ?? null,
      referenceP99Ms: referenceP99,
      p99Ratio:
        referenceP99 === null || p99 === null || referenceP99 === 0 ? null : round(p99 / referenceP99, 2),
      isP99Close: referenceP99 === null || p99 === null ? null : isP99Close(p99, referenceP99),
      slowRecoverySeconds: backAtMs === null ? null : round((backAtMs - resumedAtMs) / 1000, 3),
      slowAgentCounters: slowWindow.counters,
      slowAgentErrorCodes: slowWindow.errorCodes,
      serverCountersBefore: statusBefore.counters ?? null,
    },
  });
  const isRecovered = backAtMs !== null;
  if (!isRecovered) ctx.progress.log("slow agents: not all back in sync after SIGCONT");
  return {
    ...result,
    verified: result.verified && isRecovered,
    ...(statusAfter.counters !== undefined && {
      details: { ...result.details, serverCounters: statusAfter.counters },
    }),
  };
}
