import { RESOURCES, findResource, resourceId } from "../../src/server/datastore/index.js";
import { AGENTS, SIM, delay } from "../harness.js";
import { setChurn } from "../measure.js";
import type { BaselineProgress, BaselineResource } from "../protocol.js";
import { latencyMs } from "../report.js";
import type { ScenarioResult } from "../report.js";
import { round } from "./common.js";
import type { ScenarioContext } from "./common.js";

/**
 * What each baseline agent lists and watches: pods, nodes and two Calico CRDs. A real Felix without Typha
 * watches about 20 resources, so the figures are a lower bound of what the API side would carry.
 */
export const BASELINE_RESOURCE_IDS = ["pods", "nodes", "ippools", "globalnetworkpolicies"] as const;

function baselineResources(): BaselineResource[] {
  return BASELINE_RESOURCE_IDS.map((id) => {
    const r = findResource(id);
    if (r === undefined) throw new Error(`baseline: unknown resource ${id}`);
    const version = r.versions[0] ?? "v1";
    return {
      id: resourceId(r),
      path: r.group === "" ? `/api/${version}/${r.plural}` : `/apis/${r.group}/${version}/${r.plural}`,
    };
  });
}

function sum(parts: readonly BaselineProgress[]): Omit<BaselineProgress, "errors"> & { errors: string[] } {
  const total = {
    agents: 0,
    watchesOpen: 0,
    watchesFailed: 0,
    listsDone: 0,
    listBytes: 0,
    probeBytes: 0,
    listSeconds: 0,
    watchBytes: 0,
    watchEvents: 0,
    errors: [] as string[],
  };
  for (const p of parts) {
    total.agents += p.agents;
    total.watchesOpen += p.watchesOpen;
    total.watchesFailed += p.watchesFailed;
    total.listsDone += p.listsDone;
    total.listBytes += p.listBytes;
    total.probeBytes += p.probeBytes;
    total.listSeconds += p.listSeconds;
    total.watchBytes += p.watchBytes;
    total.watchEvents += p.watchEvents;
    total.errors.push(...p.errors);
  }
  return total;
}

/**
 * Scenario 5, what tabby replaces: the tabby agents and server are stopped, and the same number of agents
 * each list and watch the simulator directly (a sample does full paged lists, the others a one-item list
 * for the resourceVersion), under churn at `ratePerSecond`. Measured: watches held by the API side, bytes
 * it sent, its CPU. Watches carry a server-side timeout, so the baseline ends by itself.
 */
export async function baseline(ctx: ScenarioContext, ratePerSecond: number): Promise<ScenarioResult> {
  const { h } = ctx;
  const o = h.options;
  await h.stopWorkers();
  await h.stopServer();
  const resources = baselineResources();
  const workerCount = Math.max(1, Math.min(o.workers, o.agents));
  const workers = await h.startBaselineWorkers(workerCount);
  const listAgents = Math.min(o.agents, Math.max(1, Math.ceil(o.agents / 100)));
  const wantWatches = o.agents * resources.length;
  const timeoutMs = o.syncTimeoutSeconds * 1000;
  const watchTimeoutSeconds = o.durationSeconds + o.syncTimeoutSeconds + 60;
  const poll = async (): Promise<ReturnType<typeof sum>> =>
    sum(await Promise.all(workers.map((w) => w.request("progress", {}))));

  ctx.progress.begin("baseline setup", wantWatches, "watches");
  const setupFromMs = Date.now();
  await Promise.all(
    workers.map((w, i) => {
      const share = Math.floor(o.agents / workerCount) + (i < o.agents % workerCount ? 1 : 0);
      const listShare = Math.floor(listAgents / workerCount) + (i < listAgents % workerCount ? 1 : 0);
      return w.request("start", {
        url: h.simReady.url,
        token: h.simReady.token,
        agents: share,
        resources,
        listAgents: listShare,
        watchTimeoutSeconds,
      });
    }),
  );
  let p = await poll();
  while (p.watchesOpen + p.watchesFailed < wantWatches && Date.now() - setupFromMs < timeoutMs) {
    ctx.progress.update(p.watchesOpen, {
      inSync: p.watchesOpen,
      agents: wantWatches,
      updates: p.watchEvents,
      latencies: 0,
    });
    await delay(250, h.signal);
    p = await poll();
  }
  const setupToMs = Date.now();
  const setup = p;
  ctx.progress.end();

  ctx.progress.begin("baseline churn", o.durationSeconds, "s");
  h.probe.window();
  const changes0 = await setChurn(h, ratePerSecond);
  const fromMs = Date.now();
  let peakWatches = p.watchesOpen;
  while (Date.now() < fromMs + o.durationSeconds * 1000) {
    p = await poll();
    peakWatches = Math.max(peakWatches, p.watchesOpen);
    ctx.progress.update((Date.now() - fromMs) / 1000, {
      inSync: p.watchesOpen,
      agents: wantWatches,
      updates: p.watchEvents,
      latencies: 0,
    });
    await delay(Math.min(500, Math.max(0, fromMs + o.durationSeconds * 1000 - Date.now())), h.signal);
  }
  const changes1 = await setChurn(h, 0);
  const toMs = Date.now();
  const end = await poll();
  const simStats = await h.sim.request("stats", {});
  ctx.progress.end();
  await h.stopBaselineWorkers();

  const seconds = Math.max(0.001, (toMs - fromMs) / 1000);
  const api = h.sampler.window(SIM, fromMs, toMs);
  const agentProcs = h.sampler.window(AGENTS, fromMs, toMs);
  const apiSetup = h.sampler.window(SIM, setupFromMs, setupToMs);
  const isHeld = end.watchesOpen === wantWatches && end.watchesFailed === 0 && end.listsDone === listAgents;
  const watchBytes = end.watchBytes - setup.watchBytes;
  const tabbyAtRate = ctx.results.find((r) => r.scenario === "churn" && r.churnPerSecond === ratePerSecond);
  const fullListBytesPerAgent = end.listsDone > 0 ? Math.round(end.listBytes / end.listsDone) : null;
  return {
    scenario: "baseline",
    name: "baseline",
    agents: o.agents,
    nodes: o.nodes,
    resources: ctx.resources,
    churnPerSecond: ratePerSecond,
    achievedChurnPerSecond: round((changes1 - changes0) / seconds, 1),
    durationSeconds: round(seconds, 3),
    verified: isHeld,
    mismatches: wantWatches - end.watchesOpen + end.watchesFailed,
    mismatchSamples: end.errors.slice(0, 10),
    inSyncSeconds: { connectStorm: null, reconnectStorm: null },
    latencyMs: { p50: null, p90: null, p99: null, max: null, count: 0 },
    deliveredPerSecond: round((end.watchEvents - setup.watchEvents) / seconds, 1),
    bytesSent: end.listBytes + end.probeBytes + end.watchBytes,
    bytesSentPerSecond: Math.round(watchBytes / seconds),
    serverRssBytesMax: null,
    serverCpuSecondsPerSecond: null,
    wireBytesPerChange: null,
    flushWindowMsMax: null,
    relistSeconds: null,
    ceilingRatio: null,
    apiServerRssBytesMax: api.rssBytesMax,
    apiServerCpuSecondsPerSecond: round(api.cpuSecondsPerSecond, 3),
    agentsCpuSecondsPerSecond: round(agentProcs.cpuSecondsPerSecond, 3),
    upstreamWatches: peakWatches,
    apiServerWatches: simStats.openWatches,
    agentCounters: {
      updates: end.watchEvents,
      bytes: end.listBytes + end.probeBytes + end.watchBytes,
      wireBytes: end.listBytes + end.probeBytes + end.watchBytes,
      frames: 0,
      deltas: 0,
      snapshotBytes: 0,
      snapshotChunks: 0,
      moves: 0,
      snapshots: 0,
      resumes: 0,
      reconnects: 0,
      errors: end.watchesFailed,
    },
    latencyCurve: [],
    startedAtMs: fromMs,
    endedAtMs: toMs,
    details: {
      apiLatencyMs: latencyMs(h.probe.summary()),
      resourcesPerAgent: BASELINE_RESOURCE_IDS,
      upstreamResources: RESOURCES.length,
      setupSeconds: round((setupToMs - setupFromMs) / 1000, 3),
      apiServerCpuSecondsSetup: round(apiSetup.cpuSecondsPerSecond * ((setupToMs - setupFromMs) / 1000), 2),
      fullListAgents: end.listsDone,
      fullListBytesPerAgent,
      fullListSecondsPerAgent: end.listsDone > 0 ? round(end.listSeconds / end.listsDone, 3) : null,
      fullListBytesAllAgentsEstimate:
        fullListBytesPerAgent === null ? null : fullListBytesPerAgent * o.agents,
      watchEvents: end.watchEvents - setup.watchEvents,
      tabbyAtSameRate:
        tabbyAtRate === undefined
          ? null
          : {
              scenario: tabbyAtRate.name,
              upstreamWatches: tabbyAtRate.upstreamWatches,
              apiServerCpuSecondsPerSecond: tabbyAtRate.apiServerCpuSecondsPerSecond,
              serverCpuSecondsPerSecond: tabbyAtRate.serverCpuSecondsPerSecond,
              bytesSentPerSecond: tabbyAtRate.bytesSentPerSecond,
            },
    },
  };
}
