import type { Histogram } from "hdr-histogram-js";
import { ClientTimeoutError, TabbyClient } from "../src/client/index.js";
import type { ClientState, ClientStatus, TabbyClientError, Update } from "../src/client/index.js";
import { CHANGED_AT_ANNOTATION } from "../src/server/datastore/index.js";
import { diffMirror, expectedFor, resourceVersionOf } from "./digest.js";
import { encodeHistogram, newLatencyHistogram } from "./histogram.js";
import { MoveGapTracker } from "./move-gaps.js";
import type { MoveGap } from "./move-gaps.js";
import type {
  AgentSpec,
  FrameRecord,
  StateDigest,
  VerifyResult,
  WindowStats,
  WorkerProgress,
} from "./protocol.js";

interface Agent {
  readonly spec: AgentSpec;
  readonly client: TabbyClient;
  state: ClientState;
  serverId: string | undefined;
  /** When the agent last became in sync (epoch ms). */
  inSyncSinceMs: number;
  /** The client's resume count when its server id last changed (a resume since then is across replicas). */
  resumesAtSwitch: number;
  /** Moves received at the start of the window. */
  movesAtWindow: number;
  /** The gaps of its moves (out of sync until in sync on the next replica). */
  readonly gaps: MoveGapTracker;
  /** Full agents: the resourceVersion of every key held, for spotting updates that change nothing. */
  readonly held: Map<string, string> | undefined;
}

type Counters = {
  moves: number;
  snapshotBytes: number;
  snapshotChunks: number;
  bytes: number;
  wireBytes: number;
  frames: number;
  deltas: number;
  snapshots: number;
  resumes: number;
  reconnects: number;
  errors: number;
};

/** The change stamp (epoch ms) the churn generator put on a value, if any. */
export function changeStampOf(value: Update["value"]): number | undefined {
  const meta = value?.metadata;
  if (meta === null || typeof meta !== "object") return undefined;
  const annotations = (meta as { annotations?: unknown }).annotations;
  if (annotations === null || typeof annotations !== "object") return undefined;
  const stamp = (annotations as Record<string, unknown>)[CHANGED_AT_ANNOTATION];
  if (typeof stamp !== "string") return undefined;
  const ms = Number(stamp);
  return Number.isFinite(ms) ? ms : undefined;
}

/**
 * The agents of one worker process: many TabbyClient instances (most in lite mode), their in-sync state,
 * the latency of every stamped update they receive while in sync, and, for the full ones, verification of
 * their mirror against the simulator's state.
 */
export class AgentPool {
  readonly #agents: Agent[] = [];
  readonly #abort = new AbortController();
  #specs: readonly AgentSpec[] = [];
  #backoffMaxMs = 0;
  #histogram: Histogram = newLatencyHistogram();
  /** Per move in the window: how long the agent was out of sync (its move's gap), ms. */
  #moveGaps: Histogram = newLatencyHistogram();
  /** The same gaps split by the client state they were spent in (disconnected, connecting, syncing...). */
  #moveGapsByState = new Map<ClientState, Histogram>();
  #isRecording = false;
  #windowStartMs = Date.now();
  #updates = 0;
  #felixUpdates = 0;
  /** Updates of the felix agents that keep a mirror (mode full): the default client, patches and all. */
  #mirrorFelixUpdates = 0;
  #errorCodes: Record<string, number> = {};
  #latencyCount = 0;
  /** In the window: updates of full agents that change nothing, and resumes on another replica. */
  #spuriousUpdates = 0;
  #spuriousSamples: string[] = [];
  #resumesAcrossReplicas = 0;
  #base: Counters = zeroCounters();
  /** Wire bytes of the decoding felix agents at the start of the window. */
  #felixWireBase = 0;
  #mirrorFelixWireBase = 0;
  /** The agent whose frames are recorded in this window, its records, and its stats at the last one. */
  #recorder: Agent | undefined;
  #frames: FrameRecord[] = [];
  #recorderBytes = 0;
  #expected: StateDigest | undefined;
  readonly #expectedCache = new Map<string, Map<string, string>>();
  #closing: Promise<void> | undefined;

  start(servers: readonly string[], specs: readonly AgentSpec[], backoffMaxMs: number): number {
    this.#specs = specs;
    this.#backoffMaxMs = backoffMaxMs;
    for (const spec of specs) {
      const client = new TabbyClient({
        servers,
        view: spec.view,
        nodeName: spec.nodeName,
        clientName: "tabby-loadtest",
        mirror: spec.mode === "full",
        decodeDeltas: spec.mode !== "skim",
        signal: this.#abort.signal,
        backoffMaxMs,
      });
      const agent: Agent = {
        spec,
        client,
        state: "disconnected",
        serverId: undefined,
        inSyncSinceMs: 0,
        resumesAtSwitch: 0,
        movesAtWindow: 0,
        gaps: new MoveGapTracker(),
        held: spec.mode === "full" ? new Map() : undefined,
      };
      client.on("status", (s: ClientStatus) => this.#onStatus(agent, s));
      client.on("updates", (batch: readonly Update[]) => this.#onUpdates(agent, batch));
      // Errors (disconnects during the reconnect storm, timeouts under load...) are counted by code.
      client.on("error", (err: TabbyClientError) => {
        const key = err instanceof ClientTimeoutError ? `${err.code} (${err.timeout})` : err.code;
        this.#errorCodes[key] = (this.#errorCodes[key] ?? 0) + 1;
      });
      this.#agents.push(agent);
    }
    // Every connection attempt starts on the next tick: all of them at once (the connect storm).
    for (const a of this.#agents) a.client.start();
    return specs.length;
  }

  /**
   * In-sync counts. An agent counts as in sync "on expected" when it is in sync with the server
   * `expectServerId` (any, when null) and its revision has reached `minRevision`.
   */
  progress(expectServerId: string | null, minRevision = 0): WorkerProgress {
    let inSync = 0;
    let onExpected = 0;
    let disconnected = 0;
    let lastSinceMs = 0;
    for (const a of this.#agents) {
      if (a.state === "in-sync") {
        inSync++;
        const isExpected = expectServerId === null || a.serverId === expectServerId;
        if (isExpected && a.client.revision >= minRevision) {
          onExpected++;
          lastSinceMs = Math.max(lastSinceMs, a.inSyncSinceMs);
        }
      } else if (a.state === "disconnected") {
        disconnected++;
      }
    }
    const total = this.#agents.length;
    return {
      total,
      inSync,
      inSyncOnExpected: onExpected,
      allInSyncAtMs: total > 0 && onExpected === total ? lastSinceMs : null,
      disconnected,
      updates: this.#updates,
      latencyCount: this.#latencyCount,
    };
  }

  /**
   * Closes every agent, then starts the same agents (new clients, same specs) on `servers`; `startedAtMs`:
   * when the closes were done and the new clients were started.
   */
  async restart(servers: readonly string[]): Promise<{ started: number; startedAtMs: number }> {
    const old = this.#agents.splice(0);
    this.#recorder = undefined;
    await Promise.all(old.map((a) => a.client.close()));
    const startedAtMs = Date.now();
    return { started: this.start(servers, this.#specs, this.#backoffMaxMs), startedAtMs };
  }

  /**
   * Starts a new measurement window. With `isRecordingFrames`, the first decoding felix agent (a lite
   * one if there is one: it emits every change of every frame) records every frame it receives.
   */
  window(isRecording: boolean, isRecordingFrames = false): number {
    this.#histogram.destroy();
    this.#histogram = newLatencyHistogram();
    this.#moveGaps.destroy();
    this.#moveGaps = newLatencyHistogram();
    for (const h of this.#moveGapsByState.values()) h.destroy();
    this.#moveGapsByState.clear();
    this.#isRecording = isRecording;
    this.#windowStartMs = Date.now();
    this.#updates = 0;
    this.#felixUpdates = 0;
    this.#mirrorFelixUpdates = 0;
    this.#errorCodes = {};
    this.#latencyCount = 0;
    this.#spuriousUpdates = 0;
    this.#spuriousSamples = [];
    this.#resumesAcrossReplicas = 0;
    for (const a of this.#agents) a.movesAtWindow = a.client.stats.moves;
    this.#base = this.#counters();
    this.#felixWireBase = this.#decodingFelixWireBytes();
    this.#mirrorFelixWireBase = this.#decodingFelixWireBytes("full");
    this.#frames = [];
    // The frames a mirror receives are the ones most agents get (skimmers take the same patch encoding).
    this.#recorder = isRecordingFrames
      ? (this.#agents.find((a) => a.spec.mode === "full" && a.spec.view === "felix") ??
        this.#agents.find((a) => a.spec.mode === "decode" && a.spec.view === "felix"))
      : undefined;
    this.#recorderBytes = this.#recorder?.client.stats.bytes ?? 0;
    return this.#windowStartMs;
  }

  collect(): WindowStats {
    const c = this.#counters();
    return {
      histogram: encodeHistogram(this.#histogram),
      moveGapHistogram: encodeHistogram(this.#moveGaps),
      moveGapHistogramsByState: Object.fromEntries(
        [...this.#moveGapsByState].map(([state, h]) => [state, encodeHistogram(h)]),
      ),
      latencyCount: this.#latencyCount,
      updates: this.#updates,
      decodingFelixAgents: this.#agents.filter((a) => a.spec.mode !== "skim" && a.spec.view === "felix")
        .length,
      decodingFelixUpdates: this.#felixUpdates,
      decodingFelixWireBytes: this.#decodingFelixWireBytes() - this.#felixWireBase,
      mirrorFelixAgents: this.#agents.filter((a) => a.spec.mode === "full" && a.spec.view === "felix").length,
      mirrorFelixUpdates: this.#mirrorFelixUpdates,
      mirrorFelixWireBytes: this.#decodingFelixWireBytes("full") - this.#mirrorFelixWireBase,
      ...(this.#recorder !== undefined && {
        frameLog: this.#frames,
        frameLogOfMirror: this.#recorder.spec.mode === "full",
      }),
      spuriousUpdates: this.#spuriousUpdates,
      spuriousSamples: this.#spuriousSamples,
      resumesAcrossReplicas: this.#resumesAcrossReplicas,
      agentsMovedTwice: this.#agents.filter((a) => a.client.stats.moves - a.movesAtWindow >= 2).length,
      moves: c.moves - this.#base.moves,
      snapshotBytes: c.snapshotBytes - this.#base.snapshotBytes,
      snapshotChunks: c.snapshotChunks - this.#base.snapshotChunks,
      bytes: c.bytes - this.#base.bytes,
      wireBytes: c.wireBytes - this.#base.wireBytes,
      frames: c.frames - this.#base.frames,
      deltas: c.deltas - this.#base.deltas,
      snapshots: c.snapshots - this.#base.snapshots,
      resumes: c.resumes - this.#base.resumes,
      reconnects: c.reconnects - this.#base.reconnects,
      errors: c.errors - this.#base.errors,
      errorCodes: { ...this.#errorCodes },
      windowStartMs: this.#windowStartMs,
      nowMs: Date.now(),
    };
  }

  expect(digest: StateDigest): number {
    this.#expected = digest;
    this.#expectedCache.clear();
    return this.#agents.filter((a) => a.spec.mode === "full").length;
  }

  /** Compares every full agent's mirror (keys and resourceVersions) with the expected state. */
  verify(): VerifyResult {
    const digest = this.#expected;
    if (digest === undefined) throw new Error("verify before expect");
    let checked = 0;
    let matched = 0;
    let mismatches = 0;
    const samples: string[] = [];
    for (const a of this.#agents) {
      if (a.spec.mode !== "full") continue;
      checked++;
      const cacheKey = a.spec.view === "felix" ? "felix" : `bgp/${a.spec.nodeName}`;
      let expected = this.#expectedCache.get(cacheKey);
      if (expected === undefined) {
        expected = expectedFor(digest, a.spec.view, a.spec.nodeName);
        this.#expectedCache.set(cacheKey, expected);
      }
      const client = a.client;
      const actual = client.keys().map((k): [string, string] => {
        const v = client.get(k);
        return [k, v === undefined ? "" : resourceVersionOf(v)];
      });
      const diff = diffMirror(expected, actual);
      if (diff.mismatches === 0) matched++;
      mismatches += diff.mismatches;
      for (const s of diff.samples) {
        if (samples.length < 10)
          samples.push(`agent ${a.spec.index} (${a.spec.view} ${a.spec.nodeName}): ${s}`);
      }
    }
    return { checked, matched, mismatches, samples };
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#abort.abort();
      await Promise.all(this.#agents.map((a) => a.client.close()));
      this.#histogram.destroy();
      this.#moveGaps.destroy();
      for (const h of this.#moveGapsByState.values()) h.destroy();
    })();
    return this.#closing;
  }

  #recordGap(gap: MoveGap): void {
    this.#moveGaps.recordValue(Math.max(0, gap.totalMs));
    for (const [state, ms] of Object.entries(gap.byState) as [ClientState, number][]) {
      let h = this.#moveGapsByState.get(state);
      if (h === undefined) this.#moveGapsByState.set(state, (h = newLatencyHistogram()));
      h.recordValue(Math.max(0, ms));
    }
  }

  #onStatus(agent: Agent, s: ClientStatus): void {
    const now = Date.now();
    if (s.state === "in-sync" && agent.state !== "in-sync") agent.inSyncSinceMs = now;
    // Back in sync after a move: the gap in which its changes waited for it (the rollout's p99).
    const gap = agent.gaps.onStatus(s.state, agent.client.stats.moves, now);
    if (gap !== undefined && this.#isRecording && gap.fromMs >= this.#windowStartMs) this.#recordGap(gap);
    agent.state = s.state;
    if (s.serverId !== undefined && s.state !== "disconnected" && s.serverId !== agent.serverId) {
      // A new session on another server: a resume counted since the last switch happened there.
      const resumes = agent.client.stats.resumes;
      if (agent.serverId !== undefined && resumes > agent.resumesAtSwitch) this.#resumesAcrossReplicas++;
      agent.resumesAtSwitch = resumes;
      agent.serverId = s.serverId;
    }
  }

  /**
   * A full agent's update that changes nothing the cluster changed: a delete of a key it does not hold,
   * or a value at a resourceVersion it already had or older (a replica behind the others).
   */
  #checkSpurious(agent: Agent, batch: readonly Update[]): void {
    const held = agent.held;
    if (held === undefined) return;
    for (const u of batch) {
      const before = held.get(u.key);
      let isSpurious: boolean;
      if (u.value === null) {
        isSpurious = before === undefined;
        held.delete(u.key);
      } else {
        const rv = resourceVersionOf(u.value);
        isSpurious = before !== undefined && rv !== "" && (rv === before || isOlder(rv, before));
        held.set(u.key, rv);
      }
      if (isSpurious) {
        this.#spuriousUpdates++;
        if (this.#spuriousSamples.length < 5) {
          this.#spuriousSamples.push(
            `agent ${agent.spec.index}: ${u.key} ${u.value === null ? "deleted (not held)" : `at ${resourceVersionOf(u.value)} (held ${before ?? "?"})`}`,
          );
        }
      }
    }
  }

  #onUpdates(agent: Agent, batch: readonly Update[]): void {
    this.#updates += batch.length;
    this.#checkSpurious(agent, batch);
    if (agent === this.#recorder) {
      const bytes = agent.client.stats.bytes;
      this.#frames.push({ atMs: Date.now(), bytes: bytes - this.#recorderBytes, changes: batch.length });
      this.#recorderBytes = bytes;
    }
    if (agent.spec.view === "felix") {
      this.#felixUpdates += batch.length;
      if (agent.spec.mode === "full") this.#mirrorFelixUpdates += batch.length;
    }
    // Only deltas received in sync measure propagation; a resync's snapshot carries old stamps.
    if (!this.#isRecording || agent.state !== "in-sync") return;
    const now = Date.now();
    for (const u of batch) {
      const stamp = changeStampOf(u.value);
      if (stamp === undefined) continue;
      this.#histogram.recordValue(Math.max(0, now - stamp));
      this.#latencyCount++;
    }
  }

  #counters(): Counters {
    const c = zeroCounters();
    for (const a of this.#agents) {
      const s = a.client.stats;
      c.moves += s.moves;
      c.snapshotBytes += s.snapshotBytes;
      c.snapshotChunks += s.snapshotChunks;
      c.bytes += s.bytes;
      c.wireBytes += s.wireBytes;
      c.frames += s.frames;
      c.deltas += s.deltas;
      c.snapshots += s.snapshots;
      c.resumes += s.resumes;
      c.reconnects += s.reconnects;
      c.errors += s.errors;
    }
    return c;
  }

  /** Wire bytes of the felix agents that decode changes (of one mode only, when given). */
  #decodingFelixWireBytes(mode?: "full"): number {
    let n = 0;
    for (const a of this.#agents) {
      if (a.spec.mode === "skim" || a.spec.view !== "felix") continue;
      if (mode === undefined || a.spec.mode === mode) n += a.client.stats.wireBytes;
    }
    return n;
  }
}

/** True when resourceVersion `a` is older than `b` (both integers, as the simulator's and etcd's are). */
function isOlder(a: string, b: string): boolean {
  const x = Number(a);
  const y = Number(b);
  return Number.isSafeInteger(x) && Number.isSafeInteger(y) && x < y;
}

function zeroCounters(): Counters {
  return {
    moves: 0,
    snapshotBytes: 0,
    snapshotChunks: 0,
    bytes: 0,
    wireBytes: 0,
    frames: 0,
    deltas: 0,
    snapshots: 0,
    resumes: 0,
    reconnects: 0,
    errors: 0,
  };
}
