import {
  collectWindow,
  setChurn,
  startWindow,
  verifyMirrors,
  waitAllInSync,
  watchProgress,
} from "../measure.js";
import { latencyMs } from "../report.js";
import type { ScenarioResult } from "../report.js";
import { barUpdater, round, toResult } from "./common.js";
import type { ScenarioContext } from "./common.js";
import { connectionsPerReplica, moveCounters, waitBalanced } from "./replicas.js";

const BEFORE_MS = 2000;
const AFTER_MS = 3000;
/** How long the rollout waits for the Service to be balanced after a replica is back, before the next. */
const BALANCE_WAIT_MS = 20_000;

/**
 * Rolling restart: under churn, each replica in turn gets SIGTERM (it drains: moves its sessions to the
 * others with hints, then closes), is started again on the same ports and waited for (ready, agents in
 * sync, Service balanced). The full agents must see no spurious update (a delete of a key they do not
 * hold, or a value at a resourceVersion they already had or older); snapshots, their bytes and the
 * resumes on another replica are counted; latencies are those of the whole rollout.
 */
export async function rollingRestart(ctx: ScenarioContext, ratePerSecond: number): Promise<ScenarioResult> {
  const { h } = ctx;
  const workers = h.allWorkers;
  const agents = h.agentSpecs.regular.reduce((a, s) => a + s.length, 0) + h.agentSpecs.slow.length;
  const bar = barUpdater(ctx, () => (Date.now() - fromMs) / 1000);

  await startWindow(workers, true);
  h.probe.window();
  const changes0 = await setChurn(h, ratePerSecond);
  const fromMs = Date.now();
  ctx.progress.begin("rolling restart", h.options.durationSeconds, "s");
  await watchProgress(h, workers, fromMs + BEFORE_MS, bar);
  const steps: Record<string, unknown>[] = [];
  let isComplete = true;
  for (let slot = 0; slot < h.replicaCount; slot++) {
    const stoppingAtMs = Date.now();
    await h.stopReplica(slot);
    const stoppedAtMs = Date.now();
    await h.startReplica(slot);
    const readyAtMs = Date.now();
    const inSyncAtMs = await waitAllInSync(h, workers, null, h.options.syncTimeoutSeconds * 1000, bar);
    const balancedAtMs = await waitBalanced(h, agents, BALANCE_WAIT_MS, undefined);
    if (inSyncAtMs === null) isComplete = false;
    steps.push({
      replica: slot,
      drainSeconds: round((stoppedAtMs - stoppingAtMs) / 1000, 3),
      restartSeconds: round((readyAtMs - stoppedAtMs) / 1000, 3),
      balancedSeconds: balancedAtMs === null ? null : round((balancedAtMs - readyAtMs) / 1000, 3),
      connections: await connectionsPerReplica(h),
    });
  }
  const rolledAtMs = Date.now();
  await watchProgress(
    h,
    workers,
    Math.max(fromMs + h.options.durationSeconds * 1000, rolledAtMs + AFTER_MS),
    bar,
  );
  const changes1 = await setChurn(h, 0);
  const toMs = Date.now();
  const atStop = await collectWindow(workers);
  ctx.progress.end();
  const verification = await verifyMirrors(h, workers, h.options.syncTimeoutSeconds * 1000);
  const settledAtMs = Date.now();
  const final = await collectWindow(workers);
  const spurious = final.replicas.spuriousUpdates;
  const connect = ctx.results.find((s) => s.scenario === "connect-storm");
  const snapshotPerAgent = connect?.details.snapshotBytesPerAgent;
  const fullSnapshots =
    typeof snapshotPerAgent === "number" && snapshotPerAgent > 0 ? snapshotPerAgent * agents : null;
  if (spurious > 0) ctx.progress.log(`rolling restart: ${spurious} spurious updates`);
  return toResult(ctx, {
    scenario: "rolling-restart",
    name: "rolling-restart",
    agents,
    churnPerSecond: ratePerSecond,
    changes: changes1 - changes0,
    fromMs,
    toMs,
    settledAtMs,
    verification: { ...verification, verified: verification.verified && spurious === 0 && isComplete },
    atStop,
    final,
    details: {
      apiLatencyMs: latencyMs(h.probe.summary()),
      replicas: h.replicaCount,
      rolloutSeconds: round((rolledAtMs - fromMs - BEFORE_MS) / 1000, 3),
      spuriousUpdates: spurious,
      spuriousSamples: final.replicas.spuriousSamples,
      snapshotsSent: final.counters.snapshots,
      snapshotBytesSent: final.counters.snapshotBytes,
      snapshotBytesShare:
        fullSnapshots === null ? null : round(final.counters.snapshotBytes / fullSnapshots, 4),
      resumesAcrossReplicas: final.replicas.resumesAcrossReplicas,
      moveGapMs: final.replicas.moveGapMs,
      moveGapByStateMs: final.replicas.moveGapByStateMs,
      resumes: final.counters.resumes,
      movedSessions: final.counters.moves,
      steps,
      replicaBalance: await moveCounters(h),
    },
  });
}
