import { delay, upstreamListedAtMs } from "../harness.js";
import type { ServerInfo } from "../harness.js";
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
import { InSyncRecorder } from "../in-sync-curve.js";
import { barUpdater, round, toResult } from "./common.js";
import type { ScenarioContext } from "./common.js";

/** After the agents are back, churn goes on at least this long (their deltas are measured too). */
const AFTER_SYNC_MS = 3000;
const RESTART_ATTEMPTS = 5;

/** Starts the server on `port`, retrying a few times in case the port is not free yet. */
async function restartOn(ctx: ScenarioContext, port: number): Promise<ServerInfo> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await ctx.h.startServer(port);
    } catch (err) {
      if (attempt >= RESTART_ATTEMPTS || ctx.h.signal.aborted) throw err;
      ctx.progress.log(`reconnect storm: restart attempt ${attempt} failed: ${String(err)}`);
      await delay(500, ctx.h.signal);
    }
  }
}

/**
 * Scenario 3: churn at `ratePerSecond`; a third of the way through, the server is killed (SIGKILL, a crash)
 * and started again on the same port. Time from the kill until every agent is in sync with the new server;
 * churn continues to the end of the duration, then the mirrors are verified.
 */
export async function reconnectStorm(ctx: ScenarioContext, ratePerSecond: number): Promise<ScenarioResult> {
  const { h } = ctx;
  const workers = h.allWorkers;
  const agents = h.agentSpecs.regular.reduce((a, s) => a + s.length, 0) + h.agentSpecs.slow.length;
  const durationMs = h.options.durationSeconds * 1000;
  const bar = barUpdater(ctx, () => (Date.now() - fromMs) / 1000);

  await startWindow(workers, true);
  h.probe.window();
  const changes0 = await setChurn(h, ratePerSecond);
  const fromMs = Date.now();
  ctx.progress.begin("reconnect storm", h.options.durationSeconds, "s");
  await watchProgress(h, workers, fromMs + durationMs / 3, bar);
  const port = h.server.port;
  const oldServerId = h.server.serverId;
  if (h.options.isCpuProfiled) ctx.progress.log("reconnect storm: the killed server writes no CPU profile");
  const killedAtMs = Date.now();
  await h.killServer();
  // The port is free again once the process is gone; the agents retry it with their backoff.
  const info = await restartOn(ctx, port);
  const readyAtMs = Date.now();
  const times = h.serverTimes;
  const listedAtMs = upstreamListedAtMs(await h.serverStatus()) ?? times?.readyAtMs ?? readyAtMs;
  const curve = new InSyncRecorder(killedAtMs);
  const backAtMs = await waitAllInSync(
    h,
    workers,
    info.serverId,
    h.options.syncTimeoutSeconds * 1000,
    curve.recording(bar),
  );
  const untilMs = Math.max(fromMs + durationMs, (backAtMs ?? Date.now()) + AFTER_SYNC_MS);
  await watchProgress(h, workers, untilMs, bar, info.serverId);
  const changes1 = await setChurn(h, 0);
  const toMs = Date.now();
  const atStop = await collectWindow(workers);
  ctx.progress.end();
  if (backAtMs === null) ctx.progress.log("reconnect storm: not every agent back in sync");
  const verification = await verifyMirrors(h, workers, h.options.syncTimeoutSeconds * 1000);
  const settledAtMs = Date.now();
  const final = await collectWindow(workers);
  return toResult(ctx, {
    scenario: "reconnect-storm",
    name: "reconnect-storm",
    agents,
    churnPerSecond: ratePerSecond,
    changes: changes1 - changes0,
    fromMs,
    toMs,
    settledAtMs,
    verification: backAtMs === null ? { ...verification, verified: false } : verification,
    atStop,
    final,
    inSyncSeconds: {
      connectStorm: null,
      reconnectStorm: backAtMs === null ? null : round((backAtMs - killedAtMs) / 1000, 3),
    },
    relistSeconds: times === undefined ? null : round((listedAtMs - times.spawnedAtMs) / 1000, 3),
    details: {
      apiLatencyMs: latencyMs(h.probe.summary()),
      oldServerId,
      newServerId: info.serverId,
      restartUntilReadySeconds: round((readyAtMs - killedAtMs) / 1000, 3),
      ...(times !== undefined && {
        serverStartSeconds: round((times.listeningAtMs - times.spawnedAtMs) / 1000, 3),
        listSeconds: round((listedAtMs - times.listeningAtMs) / 1000, 3),
      }),
      inSyncAfterReadySeconds: backAtMs === null ? null : round((backAtMs - readyAtMs) / 1000, 3),
      inSyncCurve: curve.curve(),
    },
  });
}
