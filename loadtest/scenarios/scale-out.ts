import { collectWindow, setChurn, startWindow, verifyMirrors, watchProgress } from "../measure.js";
import { latencyMs } from "../report.js";
import type { ScenarioResult } from "../report.js";
import { barUpdater, round, toResult } from "./common.js";
import type { ScenarioContext } from "./common.js";
import { connectionsPerReplica, maxOverMean, moveCounters, waitBalanced } from "./replicas.js";

/** Churn before the new replica starts, and at least this long after the Service is balanced again. */
const BEFORE_MS = 3000;
const AFTER_MS = 3000;

/**
 * Scale-out: the agents are on N−1 replicas (the connect storm ran without the last one); under churn
 * the last replica starts. Time from it being ready until every replica holds within 10% of the mean
 * (`rebalanceSeconds`), the sessions moved, and the largest replica over the mean at the end; no agent
 * may be moved twice. Mirrors verified.
 */
export async function scaleOut(ctx: ScenarioContext, ratePerSecond: number): Promise<ScenarioResult> {
  const { h } = ctx;
  const workers = h.allWorkers;
  const agents = h.agentSpecs.regular.reduce((a, s) => a + s.length, 0) + h.agentSpecs.slow.length;
  const slot = h.replicaCount - 1;
  const bar = barUpdater(ctx, () => (Date.now() - fromMs) / 1000);

  const countsBefore = await connectionsPerReplica(h);
  await startWindow(workers, true);
  h.probe.window();
  const changes0 = await setChurn(h, ratePerSecond);
  const fromMs = Date.now();
  ctx.progress.begin("scale-out", h.options.durationSeconds, "s");
  await watchProgress(h, workers, fromMs + BEFORE_MS, bar);
  const startedAtMs = Date.now();
  await h.startReplica(slot);
  const readyAtMs = Date.now();
  const balancedAtMs = await waitBalanced(h, agents, h.options.syncTimeoutSeconds * 1000, undefined);
  await watchProgress(
    h,
    workers,
    Math.max(fromMs + h.options.durationSeconds * 1000, (balancedAtMs ?? Date.now()) + AFTER_MS),
    bar,
  );
  const changes1 = await setChurn(h, 0);
  const toMs = Date.now();
  const atStop = await collectWindow(workers);
  ctx.progress.end();
  const verification = await verifyMirrors(h, workers, h.options.syncTimeoutSeconds * 1000);
  const settledAtMs = Date.now();
  const final = await collectWindow(workers);
  const countsAfter = await connectionsPerReplica(h);
  const ratio = maxOverMean(countsAfter);
  const movedTwice = final.replicas.agentsMovedTwice;
  if (balancedAtMs === null)
    ctx.progress.log("scale-out: the replicas were not balanced within the sync timeout");
  if (movedTwice > 0) ctx.progress.log(`scale-out: ${movedTwice} agents were moved twice`);
  return toResult(ctx, {
    scenario: "scale-out",
    name: "scale-out",
    agents,
    churnPerSecond: ratePerSecond,
    changes: changes1 - changes0,
    fromMs,
    toMs,
    settledAtMs,
    verification: {
      ...verification,
      verified: verification.verified && balancedAtMs !== null && movedTwice === 0,
    },
    atStop,
    final,
    details: {
      apiLatencyMs: latencyMs(h.probe.summary()),
      replicas: h.replicaCount,
      newReplicaStartSeconds: round((readyAtMs - startedAtMs) / 1000, 3),
      rebalanceSeconds: balancedAtMs === null ? null : round((balancedAtMs - readyAtMs) / 1000, 3),
      movedSessions: final.counters.moves,
      agentsMovedTwice: movedTwice,
      maxOverMeanConnections: ratio === null ? null : round(ratio, 3),
      connectionsBefore: countsBefore,
      connectionsAfter: countsAfter,
      spuriousUpdates: final.replicas.spuriousUpdates,
      spuriousSamples: final.replicas.spuriousSamples,
      snapshotsSent: final.counters.snapshots,
      resumesAcrossReplicas: final.replicas.resumesAcrossReplicas,
      moveGapMs: final.replicas.moveGapMs,
      moveGapByStateMs: final.replicas.moveGapByStateMs,
      replicaBalance: await moveCounters(h),
    },
  });
}
