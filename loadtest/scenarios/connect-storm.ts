import { TabbyClient } from "../../src/client/index.js";
import { recordSnapshot } from "../ceiling-snapshot.js";
import { SERVER, delay } from "../harness.js";
import type { Harness } from "../harness.js";
import { collectWindow, startWindow, verifyMirrors, waitAllInSync } from "../measure.js";
import type { ScenarioResult } from "../report.js";
import { InSyncRecorder } from "../in-sync-curve.js";
import { barUpdater, round, toResult } from "./common.js";
import type { ScenarioContext } from "./common.js";

/** Client backoff ceiling (the library's default). */
export const AGENT_BACKOFF_MAX_MS = 10_000;
/** How long the server is left idle before its memory is read. */
const SETTLE_MS = 5000;

/**
 * One felix client connects and leaves before the storm, so that the server has built (and compressed)
 * the felix snapshot before its memory is read: the idle memory per connection then excludes the
 * snapshot cache, which does not grow with connections.
 */
async function warmUp(h: Harness, servers: readonly string[]): Promise<void> {
  const client = new TabbyClient({
    servers,
    view: "felix",
    mirror: false,
    clientName: "tabby-loadtest-warmup",
  });
  const timer = setTimeout(() => void client.close(), h.options.syncTimeoutSeconds * 1000);
  try {
    client.start();
    await client.synced();
  } finally {
    clearTimeout(timer);
    await client.close();
  }
}

/**
 * Scenario 1: every agent connects at once to a warm server (in sync with the simulator, no client yet);
 * time until every agent is in sync. Then, idle, the server's memory per connection; the full mirrors are
 * verified.
 */
export async function connectStorm(ctx: ScenarioContext): Promise<ScenarioResult> {
  const { h } = ctx;
  const workers = h.allWorkers;
  const specs = [...h.agentSpecs.regular, h.agentSpecs.slow];
  const agents = specs.reduce((a, s) => a + s.length, 0);
  // Every replica's address (with --replicas): the agents spread over them.
  const servers = h.agentServers;

  await warmUp(h, [`ws://127.0.0.1:${h.server.port}`]);
  // The snapshot the storm's agents are about to get, for the ceiling to send the same bytes.
  if (h.options.scenarios.includes("ceiling")) {
    ctx.connectSnapshot = await recordSnapshot(
      `ws://127.0.0.1:${h.server.port}`,
      "felix",
      h.options.syncTimeoutSeconds * 1000,
    );
  }
  await delay(SETTLE_MS, h.signal);
  await h.sampler.sampleNow();
  const rssBefore = h.sampler.latest(SERVER)?.rssBytes;
  const heapBefore = await h.serverMetric("nodejs_heap_size_used_bytes");
  const externalBefore = await h.serverMetric("nodejs_external_memory_bytes");
  await startWindow(workers, false);

  ctx.progress.begin("connect storm", agents, "agents");
  const fromMs = Date.now();
  const curve = new InSyncRecorder(fromMs);
  await Promise.all(
    workers.map((w, i) =>
      w.request("start", { servers, agents: specs[i] ?? [], backoffMaxMs: AGENT_BACKOFF_MAX_MS }),
    ),
  );
  const allAtMs = await waitAllInSync(
    h,
    workers,
    h.replicaCount > 1 ? null : h.server.serverId,
    h.options.syncTimeoutSeconds * 1000,
    curve.recording(barUpdater(ctx, (p) => p.inSync)),
  );
  const toMs = allAtMs ?? Date.now();
  const atStop = await collectWindow(workers);
  ctx.progress.end();
  if (allAtMs === null)
    ctx.progress.log(`connect storm: not every agent in sync within ${h.options.syncTimeoutSeconds} s`);

  const verification = await verifyMirrors(h, h.workers, h.options.syncTimeoutSeconds * 1000);
  await delay(SETTLE_MS, h.signal);
  await h.sampler.sampleNow();
  const rssAfter = h.sampler.latest(SERVER)?.rssBytes;
  const heapAfter = await h.serverMetric("nodejs_heap_size_used_bytes");
  const externalAfter = await h.serverMetric("nodejs_external_memory_bytes");
  const final = await collectWindow(workers);
  const perConnection = (a: number | undefined, b: number | undefined): number | null =>
    a === undefined || b === undefined ? null : Math.round((b - a) / agents);
  return toResult(ctx, {
    scenario: "connect-storm",
    name: "connect-storm",
    agents,
    churnPerSecond: 0,
    changes: 0,
    fromMs,
    toMs,
    verification: allAtMs === null ? { ...verification, verified: false } : verification,
    atStop,
    final,
    inSyncSeconds: {
      connectStorm: allAtMs === null ? null : round((allAtMs - fromMs) / 1000, 3),
      reconnectStorm: null,
    },
    details: {
      serverRssBytesBefore: rssBefore ?? null,
      serverRssBytesIdle: rssAfter ?? null,
      idleBytesPerConnection: perConnection(rssBefore, rssAfter),
      idleHeapBytesPerConnection: perConnection(heapBefore, heapAfter),
      idleExternalBytesPerConnection: perConnection(externalBefore, externalAfter),
      idleHeapAndExternalBytesPerConnection:
        heapBefore === undefined || externalBefore === undefined
          ? null
          : perConnection(
              heapBefore + externalBefore,
              heapAfter === undefined || externalAfter === undefined ? undefined : heapAfter + externalAfter,
            ),
      snapshotBytesPerAgent: Math.round(atStop.counters.bytes / agents),
      snapshotChunksPerAgent: round(atStop.counters.snapshotChunks / agents, 1),
      inSyncCurve: curve.curve(),
    },
  });
}
