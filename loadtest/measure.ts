import type { ChildPeer } from "./ipc.js";
import { delay } from "./harness.js";
import type { Harness } from "./harness.js";
import { mergeHistograms, percentileCurve, summarize } from "./histogram.js";
import type { LatencySummary, PercentilePoint } from "./histogram.js";
import type { FrameRecord, WindowStats, WorkerOps, WorkerProgress } from "./protocol.js";
import type { AgentCounters } from "./report.js";

type Workers = readonly ChildPeer<WorkerOps>[];

/** Called while waiting, for the progress bar. */
export type OnProgress = (p: { inSync: number; total: number; updates: number; latencies: number }) => void;

const POLL_MS = 250;

/**
 * Starts a new window on every worker; `recordFramesOn`: the worker (by index) one of whose decoding felix
 * agents records the frames it receives.
 */
export async function startWindow(
  workers: Workers,
  isRecording: boolean,
  recordFramesOn?: number,
): Promise<number> {
  const starts = await Promise.all(
    workers.map((w, i) => w.request("window", { isRecording, isRecordingFrames: i === recordFramesOn })),
  );
  return Math.min(...starts.map((s) => s.windowStartMs));
}

export interface WindowResult {
  /** Counted by the agents' clients (updates: only by the agents that decode changes). */
  readonly counters: AgentCounters;
  /** Updates a felix agent received, on average over those that decode changes (null: none does). */
  readonly updatesPerFelixAgent: number | null;
  /**
   * Wire bytes per update of the felix agents that keep a mirror (the default client: patches applied),
   * or of every decoding felix agent when none keeps one; null when they received no update.
   */
  readonly wireBytesPerUpdate: number | null;
  /** The same for the felix agents that decode without a mirror (full values, no patches). */
  readonly wireBytesPerUpdateFullValues: number | null;
  /** Updates and wire bytes of the felix agents that decode changes, summed. */
  readonly decodingFelix: { readonly agents: number; readonly updates: number; readonly wireBytes: number };
  readonly mirrorFelix: { readonly agents: number; readonly updates: number; readonly wireBytes: number };
  /** The frames one felix agent received (a mirror's, else a lite decoding one's), when recorded. */
  readonly frameLog: readonly FrameRecord[] | undefined;
  /** Client errors by code. */
  readonly errorCodes: Readonly<Record<string, number>>;
  /** Replica figures of the agents (rolling restart, scale-out). */
  readonly replicas: {
    readonly spuriousUpdates: number;
    readonly spuriousSamples: readonly string[];
    readonly resumesAcrossReplicas: number;
    readonly agentsMovedTwice: number;
    /** Per move: the agent's time out of sync (leave, reconnect, resume or snapshot), ms. */
    readonly moveGapMs: LatencySummary;
    /** The gaps' time per client state (a move spends some in each: disconnected, connecting, syncing). */
    readonly moveGapByStateMs: Readonly<Record<string, LatencySummary>>;
  };
  readonly latency: LatencySummary;
  readonly curve: readonly PercentilePoint[];
}

/** Collects the window from every worker: counters summed, histograms merged. */
export async function collectWindow(workers: Workers): Promise<WindowResult> {
  const parts: WindowStats[] = await Promise.all(workers.map((w) => w.request("collect", {}, 60_000)));
  let decodingFelixAgents = 0;
  let decodingFelixUpdates = 0;
  let decodingFelixWireBytes = 0;
  const mirror = { agents: 0, updates: 0, wireBytes: 0 };
  let frameLog: readonly FrameRecord[] | undefined;
  let isMirrorLog = false;
  const errorCodes: Record<string, number> = {};
  for (const p of parts) {
    for (const [code, n] of Object.entries(p.errorCodes)) errorCodes[code] = (errorCodes[code] ?? 0) + n;
    decodingFelixAgents += p.decodingFelixAgents;
    decodingFelixUpdates += p.decodingFelixUpdates;
    decodingFelixWireBytes += p.decodingFelixWireBytes;
    mirror.agents += p.mirrorFelixAgents;
    mirror.updates += p.mirrorFelixUpdates;
    mirror.wireBytes += p.mirrorFelixWireBytes;
    // A mirror's log over a lite decoding agent's: the ceiling replays the frames most agents got.
    if (
      p.frameLog !== undefined &&
      (frameLog === undefined || (p.frameLogOfMirror === true && !isMirrorLog))
    ) {
      frameLog = p.frameLog;
      isMirrorLog = p.frameLogOfMirror === true;
    }
  }
  const counters: Record<keyof AgentCounters, number> = {
    updates: 0,
    bytes: 0,
    wireBytes: 0,
    frames: 0,
    deltas: 0,
    snapshots: 0,
    snapshotBytes: 0,
    snapshotChunks: 0,
    resumes: 0,
    moves: 0,
    reconnects: 0,
    errors: 0,
  };
  for (const p of parts)
    for (const k of Object.keys(counters) as (keyof AgentCounters)[]) counters[k] += p[k];
  const h = mergeHistograms(parts.map((p) => p.histogram));
  const gaps = mergeHistograms(parts.map((p) => p.moveGapHistogram));
  try {
    return {
      counters,
      latency: summarize(h),
      curve: percentileCurve(h),
      updatesPerFelixAgent: decodingFelixAgents > 0 ? decodingFelixUpdates / decodingFelixAgents : null,
      wireBytesPerUpdate:
        mirror.updates > 0
          ? mirror.wireBytes / mirror.updates
          : decodingFelixUpdates > 0
            ? decodingFelixWireBytes / decodingFelixUpdates
            : null,
      wireBytesPerUpdateFullValues:
        decodingFelixUpdates > mirror.updates
          ? (decodingFelixWireBytes - mirror.wireBytes) / (decodingFelixUpdates - mirror.updates)
          : null,
      mirrorFelix: mirror,
      decodingFelix: {
        agents: decodingFelixAgents,
        updates: decodingFelixUpdates,
        wireBytes: decodingFelixWireBytes,
      },
      frameLog,
      errorCodes,
      replicas: {
        spuriousUpdates: parts.reduce((a, p) => a + p.spuriousUpdates, 0),
        spuriousSamples: parts.flatMap((p) => p.spuriousSamples).slice(0, 10),
        resumesAcrossReplicas: parts.reduce((a, p) => a + p.resumesAcrossReplicas, 0),
        agentsMovedTwice: parts.reduce((a, p) => a + p.agentsMovedTwice, 0),
        moveGapMs: summarize(gaps),
        moveGapByStateMs: gapsByState(parts),
      },
    };
  } finally {
    h.destroy();
    gaps.destroy();
  }
}

function gapsByState(parts: readonly WindowStats[]): Record<string, LatencySummary> {
  const states = new Set(parts.flatMap((p) => Object.keys(p.moveGapHistogramsByState)));
  const out: Record<string, LatencySummary> = {};
  for (const state of states) {
    const h = mergeHistograms(
      parts.flatMap((p) => {
        const e = p.moveGapHistogramsByState[state];
        return e === undefined ? [] : [e];
      }),
    );
    out[state] = summarize(h);
    h.destroy();
  }
  return out;
}

export async function progressOf(
  workers: Workers,
  expectServerId: string | null,
  minRevision = 0,
): Promise<WorkerProgress[]> {
  return Promise.all(workers.map((w) => w.request("progress", { expectServerId, minRevision }, 120_000)));
}

function sumProgress(parts: readonly WorkerProgress[]): Parameters<OnProgress>[0] {
  let inSync = 0;
  let total = 0;
  let updates = 0;
  let latencies = 0;
  for (const p of parts) {
    inSync += p.inSyncOnExpected;
    total += p.total;
    updates += p.updates;
    latencies += p.latencyCount;
  }
  return { inSync, total, updates, latencies };
}

/**
 * Reports progress every POLL_MS until `untilMs`. Only for the bar: a worker too busy to answer in time
 * (an overloaded machine) is skipped, not an error.
 */
export async function watchProgress(
  h: Harness,
  workers: Workers,
  untilMs: number,
  onProgress: OnProgress,
  expectServerId: string | null = null,
): Promise<void> {
  while (Date.now() < untilMs) {
    const timeoutMs = Math.max(POLL_MS, untilMs - Date.now());
    const parts = await Promise.allSettled(
      workers.map((w) => w.request("progress", { expectServerId, minRevision: 0 }, timeoutMs)),
    );
    const answered = parts.flatMap((p) => (p.status === "fulfilled" ? [p.value] : []));
    if (answered.length < parts.length) h.noteSlowWorker();
    onProgress(sumProgress(answered));
    await delay(Math.max(0, Math.min(POLL_MS, untilMs - Date.now())), h.signal);
  }
}

/**
 * Waits until every agent of `workers` is in sync with the server `serverId` (and at `minRevision` or
 * later); returns when the last one got there (epoch ms; with a revision asked for, when it was seen
 * there), or null at the timeout.
 */
export async function waitAllInSync(
  h: Harness,
  workers: Workers,
  serverId: string | null,
  timeoutMs: number,
  onProgress: OnProgress,
  minRevision = 0,
): Promise<number | null> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const parts = await progressOf(workers, serverId, minRevision);
    onProgress(sumProgress(parts));
    if (parts.every((p) => p.allInSyncAtMs !== null)) {
      // In sync since some time, but caught up only now (the revision is polled).
      return minRevision > 0 ? Date.now() : Math.max(...parts.map((p) => p.allInSyncAtMs ?? 0));
    }
    if (Date.now() >= deadline) return null;
    await delay(POLL_MS, h.signal);
  }
}

export interface Verification {
  readonly verified: boolean;
  /** Full agents checked. */
  readonly checked: number;
  readonly mismatches: number;
  readonly samples: readonly string[];
  /** From the request of the simulator's state to the mirrors matching it (or the timeout). */
  readonly convergeSeconds: number;
  /** Keys tabby should hold (the kinds of every view). */
  readonly totalKeys: number;
  /** Entries of the felix view (what a felix agent mirrors). */
  readonly felixKeys: number;
}

/**
 * Verification, once churn has stopped: the simulator's converted state (keys and resourceVersions per view)
 * goes to the workers, which compare their full agents' mirrors with it until they all match or the timeout
 * (the server needs a moment to receive and flush the last changes). Any mismatch left fails.
 */
export async function verifyMirrors(h: Harness, workers: Workers, timeoutMs: number): Promise<Verification> {
  const started = Date.now();
  const digest = await h.sim.request("digest", { bgpNodes: h.bgpNodes() }, 60_000);
  await Promise.all(workers.map((w) => w.request("expect", { digest }, 60_000)));
  const deadline = started + timeoutMs;
  for (;;) {
    const results = await Promise.all(workers.map((w) => w.request("verify", {}, 60_000)));
    const checked = results.reduce((a, r) => a + r.checked, 0);
    const matched = results.reduce((a, r) => a + r.matched, 0);
    const mismatches = results.reduce((a, r) => a + r.mismatches, 0);
    if ((matched === checked && checked > 0) || Date.now() >= deadline) {
      return {
        verified: matched === checked && checked > 0,
        checked,
        mismatches: checked === 0 ? 1 : mismatches,
        samples: checked === 0 ? ["no full agent to verify"] : results.flatMap((r) => r.samples).slice(0, 10),
        convergeSeconds: (Date.now() - started) / 1000,
        totalKeys: digest.totalKeys,
        felixKeys: digest.felix.length,
      };
    }
    await delay(500, h.signal);
  }
}

/** Sets the churn rate and answers the changes made so far. */
export async function setChurn(h: Harness, ratePerSecond: number): Promise<number> {
  return (await h.sim.request("churn", { ratePerSecond })).changes;
}
