import type { ChildPeer } from "../ipc.js";
import { SERVE_SETTINGS } from "../../src/server/config-schema.js";
import { AGENTS, SERVER, SIM } from "../harness.js";
import type { Harness } from "../harness.js";
import type { PercentilePoint } from "../histogram.js";
import { collectWindow, setChurn, startWindow, verifyMirrors, watchProgress } from "../measure.js";
import type { OnProgress, Verification, WindowResult } from "../measure.js";
import type { ScenarioName } from "../options.js";
import type { Progress } from "../progress.js";
import type { FrameRecord, WorkerOps } from "../protocol.js";
import { latencyMs } from "../report.js";
import type { AgentCounters, ScenarioResult } from "../report.js";
import type { CeilingSnapshot } from "../ceiling-snapshot.js";

export interface ScenarioContext {
  readonly h: Harness;
  readonly progress: Progress;
  /** Entries of the felix view, what every felix agent mirrors (from the latest verification). */
  resources: number;
  /** Keys tabby holds, every view's kinds. */
  totalKeys: number;
  /** Results so far (the slow-agents scenario compares with the churn run at its rate). */
  readonly results: ScenarioResult[];
  /** The frames a decoding felix agent received in each churn run, by scenario name (for the ceiling). */
  readonly recordings: Map<string, FrameRecording>;
  /** The felix snapshot tabby sent just before the connect storm (recorded for the ceiling). */
  connectSnapshot?: CeilingSnapshot;
}

/** What one felix agent received during a churn run: the ceiling replays it. */
export interface FrameRecording {
  readonly frames: readonly FrameRecord[];
  /** Seconds the simulator churned: the recorded changes went out at (their number ÷ this) per second. */
  readonly churnSeconds: number;
}

/**
 * The index of the worker (in `Harness.allWorkers` order) holding the agent that records frames: a full
 * felix agent (a mirror), else a lite felix one that decodes changes; undefined when there is none.
 */
export function recorderWorker(h: Harness): number | undefined {
  const regular = h.agentSpecs.regular;
  // A mirror's frames first: most agents (the mirrors and the skimmers) get that patched encoding.
  for (const mode of ["full", "decode"] as const) {
    const i = regular.findIndex((specs) => specs.some((s) => s.mode === mode && s.view === "felix"));
    if (i >= 0) return i;
  }
  return undefined;
}

/** A progress callback that feeds the bar, with `value(p)` as its value. */
export function barUpdater(
  ctx: ScenarioContext,
  value: (p: Parameters<OnProgress>[0]) => number,
): OnProgress {
  return (p) =>
    ctx.progress.update(value(p), {
      inSync: p.inSync,
      agents: p.total,
      updates: p.updates,
      latencies: p.latencies,
    });
}

export interface Measured {
  readonly scenario: ScenarioName;
  readonly name: string;
  readonly agents: number;
  readonly churnPerSecond: number;
  readonly changes: number;
  readonly fromMs: number;
  readonly toMs: number;
  /** When the agents had caught up (verification done): the RSS maximum covers the catch-up too. */
  readonly settledAtMs?: number;
  readonly verification: Verification | undefined;
  /** Counters at the end of the churn (for rates); latencies after convergence. */
  readonly atStop: WindowResult;
  readonly final: WindowResult;
  readonly inSyncSeconds?: { readonly connectStorm: number | null; readonly reconnectStorm: number | null };
  readonly relistSeconds?: number | null;
  readonly details?: Record<string, unknown>;
}

/** Scenarios whose window is steady churn: their wire bytes per change are reported. */
const STEADY: ReadonlySet<string> = new Set(["churn", "slow-agents", "ceiling"]);

/** The server's flush window when not set (`tabby serve`'s default). */
export const DEFAULT_FLUSH_WINDOW_MS = Number(
  SERVE_SETTINGS.find((s) => s.field === "flushWindowMs")?.default ?? 10,
);

/** Turns a measured window into a report entry, adding the server's and simulator's CPU and RSS. */
export async function toResult(ctx: ScenarioContext, m: Measured): Promise<ScenarioResult> {
  const { h } = ctx;
  const seconds = Math.max(0.001, (m.toMs - m.fromMs) / 1000);
  const server = h.sampler.window(SERVER, m.fromMs, m.toMs);
  const api = h.sampler.window(SIM, m.fromMs, m.toMs);
  const settledAtMs = Math.max(m.toMs, m.settledAtMs ?? m.toMs);
  const serverRss = h.sampler.window(SERVER, m.fromMs, settledAtMs).rssBytesMax;
  const apiRss = h.sampler.window(SIM, m.fromMs, settledAtMs).rssBytesMax;
  const agentProcs = h.sampler.window(AGENTS, m.fromMs, m.toMs);
  const status = h.hasServer ? await h.serverStatus() : undefined;
  const simStats = await h.sim.request("stats", {});
  if (m.verification !== undefined && m.verification.totalKeys > 0) {
    ctx.resources = m.verification.felixKeys;
    ctx.totalKeys = m.verification.totalKeys;
  }
  const c: AgentCounters = m.atStop.counters;
  const flushWindowMsMax = status?.flushWindowMsMax;
  const hasFlushMax = typeof flushWindowMsMax === "number" && Number.isFinite(flushWindowMsMax);
  const perChange = m.final.wireBytesPerUpdate;
  const curve: readonly PercentilePoint[] = m.final.curve;
  return {
    scenario: m.scenario,
    name: m.name,
    agents: m.agents,
    nodes: h.options.nodes,
    resources: ctx.resources,
    churnPerSecond: m.churnPerSecond,
    achievedChurnPerSecond: round(m.changes / seconds, 1),
    durationSeconds: round(seconds, 3),
    verified: m.verification?.verified ?? false,
    mismatches: m.verification?.mismatches ?? 0,
    mismatchSamples: m.verification?.samples ?? [],
    inSyncSeconds: m.inSyncSeconds ?? { connectStorm: null, reconnectStorm: null },
    latencyMs: latencyMs(m.final.latency),
    // Skimming agents decode no change: every felix agent receives what a decoding one does.
    deliveredPerSecond: round(
      (m.atStop.updatesPerFelixAgent === null ? c.updates : m.atStop.updatesPerFelixAgent * m.agents) /
        seconds,
      1,
    ),
    bytesSent: c.bytes,
    bytesSentPerSecond: Math.round(c.bytes / seconds),
    serverRssBytesMax: serverRss,
    serverCpuSecondsPerSecond: round(server.cpuSecondsPerSecond, 3),
    wireBytesPerChange: STEADY.has(m.scenario) && perChange !== null ? round(perChange, 1) : null,
    flushWindowMsMax: !h.hasServer
      ? null
      : hasFlushMax
        ? flushWindowMsMax
        : (h.options.flushWindowMs ?? DEFAULT_FLUSH_WINDOW_MS),
    relistSeconds: m.relistSeconds ?? null,
    ceilingRatio: null,
    apiServerRssBytesMax: apiRss,
    apiServerCpuSecondsPerSecond: round(api.cpuSecondsPerSecond, 3),
    agentsCpuSecondsPerSecond: round(agentProcs.cpuSecondsPerSecond, 3),
    upstreamWatches: status?.upstreamWatches ?? 0,
    apiServerWatches: simStats.openWatches,
    agentCounters: m.final.counters,
    latencyCurve: curve,
    startedAtMs: m.fromMs,
    endedAtMs: m.toMs,
    details: {
      ...(m.verification !== undefined && {
        verifiedAgents: m.verification.checked,
        convergeSeconds: round(m.verification.convergeSeconds, 2),
      }),
      totalKeys: ctx.totalKeys,
      agentErrorCodes: m.final.errorCodes,
      ...(h.hasServer && { flushWindowMsSource: hasFlushMax ? "status" : "configured" }),
      ...(STEADY.has(m.scenario) && {
        decodingFelixAgents: m.final.decodingFelix,
        mirrorFelixAgents: m.final.mirrorFelix,
        wireBytesPerChangeFullValues:
          m.final.wireBytesPerUpdateFullValues === null
            ? null
            : round(m.final.wireBytesPerUpdateFullValues, 1),
      }),
      ...(status?.counters !== undefined && { serverCounters: status.counters }),
      ...m.details,
    },
  };
}

export function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

export interface ChurnWindowOptions {
  readonly scenario: ScenarioName;
  readonly name: string;
  readonly workers: readonly ChildPeer<WorkerOps>[];
  readonly agents: number;
  readonly ratePerSecond: number;
  readonly durationSeconds: number;
  /** One felix agent with a mirror (else a lite decoding one) records the frames it receives (`final.frameLog`). */
  readonly isRecordingFrames?: boolean;
  readonly details?: Record<string, unknown>;
}

/**
 * Steady churn for a while: a new window on the workers, churn at the rate for the duration, churn off,
 * the counters, then verification (which waits for the last changes to arrive), then the latencies.
 */
export async function churnWindow(ctx: ScenarioContext, o: ChurnWindowOptions): Promise<Measured> {
  const { h } = ctx;
  await startWindow(o.workers, true, o.isRecordingFrames === true ? recorderWorker(h) : undefined);
  h.probe.window();
  const changes0 = await setChurn(h, o.ratePerSecond);
  const fromMs = Date.now();
  ctx.progress.begin(o.name, o.durationSeconds, "s");
  await watchProgress(
    h,
    o.workers,
    fromMs + o.durationSeconds * 1000,
    barUpdater(ctx, () => (Date.now() - fromMs) / 1000),
  );
  const changes1 = await setChurn(h, 0);
  const toMs = Date.now();
  const atStop = await collectWindow(o.workers);
  ctx.progress.end();
  const verification = await verifyMirrors(h, o.workers, h.options.syncTimeoutSeconds * 1000);
  const settledAtMs = Date.now();
  const final = await collectWindow(o.workers);
  const apiLatency = latencyMs(h.probe.summary());
  return {
    scenario: o.scenario,
    name: o.name,
    agents: o.agents,
    churnPerSecond: o.ratePerSecond,
    changes: changes1 - changes0,
    fromMs,
    toMs,
    settledAtMs,
    verification,
    atStop,
    final,
    details: { apiLatencyMs: apiLatency, ...o.details },
  };
}
