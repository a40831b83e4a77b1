import { recordSnapshot } from "../ceiling-snapshot.js";
import { CEILING, LoadtestError, delay } from "../harness.js";
import { collectWindow, startWindow, waitAllInSync, watchProgress } from "../measure.js";
import type { Verification, WindowResult } from "../measure.js";
import type { CeilingStats, ReplayFrame } from "../protocol.js";
import type { ScenarioResult } from "../report.js";
import { barUpdater, round, toResult } from "./common.js";
import type { FrameRecording, ScenarioContext } from "./common.js";

/** Slack after the replay's duration for its last timer. */
const REPLAY_END_SLACK_MS = 5000;

/** Mean payload bytes and changes of the recorded frames. */
export function recordingSummary(r: FrameRecording): {
  frames: number;
  changes: number;
  meanFrameBytes: number;
  meanChangesPerFrame: number;
  changesPerSecond: number;
} {
  let bytes = 0;
  let changes = 0;
  for (const f of r.frames) {
    bytes += f.bytes;
    changes += f.changes;
  }
  const n = r.frames.length;
  return {
    frames: n,
    changes,
    meanFrameBytes: n === 0 ? 0 : round(bytes / n, 1),
    meanChangesPerFrame: n === 0 ? 0 : round(changes / n, 2),
    changesPerSecond: r.churnSeconds > 0 ? round(changes / r.churnSeconds, 1) : 0,
  };
}

/**
 * Whether every decoding felix agent received every change sent: `missing` updates over them (every
 * agent's revision reaching the last frame's is checked apart).
 */
export function missingUpdates(final: WindowResult, changesSent: number): number {
  const expected = changesSent * final.decodingFelix.agents;
  return Math.max(0, expected - final.decodingFelix.updates);
}

/**
 * Scenario `ceiling`: the same agents in the same workers, fed by a minimal broadcaster (its own process;
 * no store, no views, every session sent the same Buffer) instead of tabby. It replays the frames a
 * felix agent received in the churn run `mirrored` (their payload sizes and changes per frame, in order)
 * at that run's rate of changes, for the same duration, each frame stamped as it is sent. What the agents
 * receive is the physical limit of this machine with tabby's frame sizes; `ceilingRatio` compares tabby's
 * deliveries with it. Verified when every agent got every frame (its revision) and every decoding agent
 * every change.
 *
 * The agents' move to the broadcaster is a connect storm's ceiling: the broadcaster is given the felix
 * snapshot tabby sent just before the connect storm (recorded then; recorded now when no storm ran: its
 * frames as sent, compressed chunks and all) and sends every agent those same Buffers, all at once.
 * `inSyncSeconds.connectStorm` is the connect storm of this machine with tabby's snapshot bytes and no
 * server work but the writes (from the new clients' start until every agent is in sync); the full agents
 * decode the same entries as in tabby's storm.
 */
export async function ceiling(ctx: ScenarioContext, mirrored: ScenarioResult): Promise<ScenarioResult> {
  const { h } = ctx;
  const recording = ctx.recordings.get(mirrored.name);
  if (recording === undefined || recording.frames.length === 0) {
    throw new LoadtestError("ERR_LOADTEST_SERVER", `ceiling: ${mirrored.name} recorded no frame to replay`);
  }
  const summary = recordingSummary(recording);
  const workers = h.allWorkers;
  const agents = h.agentSpecs.regular.reduce((a, s) => a + s.length, 0) + h.agentSpecs.slow.length;
  const durationSeconds = h.options.durationSeconds;
  const timeoutMs = h.options.syncTimeoutSeconds * 1000;
  const { peer, ready } = await h.startCeiling();
  // The snapshot tabby sent the connect storm's agents, else the one it sends now.
  ctx.connectSnapshot ??= await recordSnapshot(`ws://127.0.0.1:${h.server.port}`, "felix", timeoutMs);
  const snapshot = await peer.request("snapshot", { snapshot: ctx.connectSnapshot });
  ctx.progress.log(
    `ceiling: replaying ${mirrored.name} (${summary.frames} frames, ${summary.meanFrameBytes} B and ` +
      `${summary.meanChangesPerFrame} changes a frame, ${summary.changesPerSecond} changes/s) on port ${ready.port}`,
  );

  // The same agents, moved to the broadcaster: tabby's felix snapshot, then only the broadcaster's frames.
  ctx.progress.begin("ceiling: connect", agents, "agents");
  const connectFromMs = Date.now();
  const restarted = await Promise.all(
    workers.map((w) => w.request("restart", { servers: [`ws://127.0.0.1:${ready.port}`] })),
  );
  // The storm starts when the first worker has closed its agents' tabby sessions and started new clients.
  const stormFromMs = Math.min(...restarted.map((r) => r.startedAtMs));
  const connectedAtMs = await waitAllInSync(
    h,
    workers,
    ready.serverId,
    timeoutMs,
    barUpdater(ctx, (p) => p.inSync),
  );
  ctx.progress.end();
  if (connectedAtMs === null) {
    throw new LoadtestError("ERR_LOADTEST_TIMEOUT", "ceiling: not every agent connected to the broadcaster");
  }
  const connectSeconds = round((connectedAtMs - stormFromMs) / 1000, 3);

  const frames: ReplayFrame[] = recording.frames.map((f) => ({ bytes: f.bytes, changes: f.changes }));
  await startWindow(workers, true);
  const fromMs = Date.now();
  await peer.request("replay", { frames, changesPerSecond: summary.changesPerSecond, durationSeconds });
  ctx.progress.begin("ceiling", durationSeconds, "s");
  await watchProgress(
    h,
    workers,
    fromMs + durationSeconds * 1000,
    barUpdater(ctx, () => (Date.now() - fromMs) / 1000),
  );
  let stats: CeilingStats = await peer.request("stats", {});
  const replayDeadline = Date.now() + REPLAY_END_SLACK_MS;
  while (stats.isReplaying && Date.now() < replayDeadline) {
    await delay(50, h.signal);
    stats = await peer.request("stats", {});
  }
  const toMs = Date.now();
  const atStop = await collectWindow(workers);
  ctx.progress.end();

  // Every agent at the last frame's revision, every decoding one with every change.
  const verifyFrom = Date.now();
  const caughtUpAtMs = await waitAllInSync(
    h,
    workers,
    ready.serverId,
    timeoutMs,
    () => undefined,
    stats.revision,
  );
  let final = await collectWindow(workers);
  while (missingUpdates(final, stats.changesSent) > 0 && Date.now() < verifyFrom + timeoutMs) {
    await delay(500, h.signal);
    final = await collectWindow(workers);
  }
  const settledAtMs = Date.now();
  const missing = missingUpdates(final, stats.changesSent);
  const samples: string[] = [];
  if (caughtUpAtMs === null) samples.push(`not every agent reached revision ${stats.revision}`);
  if (missing > 0) samples.push(`${missing} updates missing over the decoding felix agents`);
  if (stats.sessionsDropped > 0) samples.push(`${stats.sessionsDropped} sessions dropped as too slow`);
  const verification: Verification = {
    verified: samples.length === 0 && final.decodingFelix.agents > 0,
    checked: final.decodingFelix.agents,
    mismatches: missing + (caughtUpAtMs === null ? 1 : 0) + stats.sessionsDropped,
    samples,
    convergeSeconds: (settledAtMs - verifyFrom) / 1000,
    // Not the cluster's keys: keeps the context's figures of the tabby runs.
    totalKeys: 0,
    felixKeys: 0,
  };
  const broadcaster = h.sampler.window(CEILING, fromMs, toMs);
  const broadcasterRss = h.sampler.window(CEILING, fromMs, settledAtMs).rssBytesMax;
  const result = await toResult(ctx, {
    scenario: "ceiling",
    name: "ceiling",
    agents,
    churnPerSecond: mirrored.churnPerSecond,
    changes: stats.changesSent,
    fromMs,
    toMs,
    settledAtMs,
    verification,
    atStop,
    final,
    // The agents' move to the broadcaster, with tabby's snapshot, is the connect storm's ceiling.
    inSyncSeconds: { connectStorm: connectSeconds, reconnectStorm: null },
    details: {
      mirrors: mirrored.name,
      recording: summary,
      replay: stats,
      replayBytesPerFrame: stats.framesSent > 0 ? round(stats.payloadBytesSent / stats.framesSent, 1) : null,
      broadcasterServerId: ready.serverId,
      broadcasterCpuSecondsPerSecond: round(broadcaster.cpuSecondsPerSecond, 3),
      broadcasterRssBytesMax: broadcasterRss,
      connectSnapshot: snapshot,
      connectSeconds,
      connectCloseSeconds: round((stormFromMs - connectFromMs) / 1000, 3),
    },
  });
  const ratio =
    result.deliveredPerSecond > 0 ? round(mirrored.deliveredPerSecond / result.deliveredPerSecond, 3) : null;
  return {
    ...result,
    // Not tabby: no server CPU, RSS, flush window or upstream of its own (see details.broadcaster*).
    serverRssBytesMax: null,
    serverCpuSecondsPerSecond: null,
    flushWindowMsMax: null,
    upstreamWatches: 0,
    ceilingRatio: ratio,
  };
}
