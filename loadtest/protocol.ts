import type { ConvertedEntry } from "../src/chaos/expected.js";
import type { SimFault } from "../src/sim/fault-op.js";
import type { CeilingSnapshot } from "./ceiling-snapshot.js";
import type { AgentCounters } from "./report.js";
/** The requests the load test's parent sends to its children, and their answers (see ipc.ts). */

/** `[key, metadata.resourceVersion]` pairs: what a view holds, for verification. */
export type DigestEntries = readonly (readonly [string, string])[];

/** The simulator's current state as tabby should serve it. */
export interface StateDigest {
  /** Keys of every kind some view serves: the size of tabby's store. */
  readonly totalKeys: number;
  readonly felix: DigestEntries;
  /** The broadcast part of the bgp view (everything but BlockAffinity). */
  readonly bgp: DigestEntries;
  /** BlockAffinity entries of the bgp view, for the nodes asked for. */
  readonly bgpByNode: Readonly<Record<string, DigestEntries>>;
}

export interface SimStats {
  /** Changes the churn generator has made since the simulator started. */
  readonly changes: number;
  /** Changes the generator skipped because the simulator process could not keep up with the rate. */
  readonly lagged: number;
  readonly openWatches: number;
  readonly resourceVersion: string;
  readonly requestCounts: Readonly<Record<string, number>>;
}

export interface SimProcessArgs {
  readonly nodes: number;
  readonly podsPerNode: number;
  readonly seed: number;
  readonly historyLimit: number;
  /** BOOKMARK period of watches that ask for them, ms; default the simulator's (60,000). */
  readonly bookmarkIntervalMs?: number;
}

/** The simulator child's ready message. */
export interface SimReady {
  readonly url: string;
  readonly kubeconfigYaml: string;
  readonly token: string;
  readonly nodeNames: readonly string[];
  readonly objects: number;
}

export type SimOps = {
  /**
   * Sets the churn rate (0 stops it); answers the changes made so far. `seed`: the new generator's PRNG
   * seed (default one of its own per generator), so that a chaos run's churn repeats with its seed.
   */
  churn: { args: { ratePerSecond: number; seed?: number }; result: SimStats };
  stats: { args: Record<string, never>; result: SimStats };
  digest: { args: { bgpNodes: readonly string[] }; result: StateDigest };
  /** Applies a fault (or a restart) to the simulator; answers once it has (a restart: listening again). */
  fault: { args: SimFault; result: Record<string, never> };
  /** The cluster's state converted (the chaos runner's check compares every mirror with it). */
  converted: { args: Record<string, never>; result: readonly ConvertedEntry[] };
};

/**
 * How an agent runs: `full` keeps a mirror (verified at the end) and records latencies; `decode` is lite
 * (no mirror) but decodes every change and records latencies; `skim` is lite and does not decode changes
 * at all (`decodeDeltas: false`), like Typha's own load clients.
 */
export type AgentMode = "full" | "decode" | "skim";

export interface AgentSpec {
  readonly index: number;
  readonly view: "felix" | "bgp";
  readonly nodeName: string;
  readonly mode: AgentMode;
}

export interface WorkerProgress {
  readonly total: number;
  readonly inSync: number;
  /** Agents in sync with the expected server (any server when none is expected), at the revision asked for. */
  readonly inSyncOnExpected: number;
  /** When every agent was last seen getting in sync with the expected server; null until they all are. */
  readonly allInSyncAtMs: number | null;
  readonly disconnected: number;
  /** Updates received in the current window. */
  readonly updates: number;
  /** Latencies recorded in the current window. */
  readonly latencyCount: number;
}

/**
 * One deltas frame as an agent received it (from the agent's client stats between two `updates` events):
 * its payload bytes (with any ping or status frame that came since the previous one) and its changes.
 */
export interface FrameRecord {
  /** Epoch ms when the agent emitted the frame's updates. */
  readonly atMs: number;
  readonly bytes: number;
  readonly changes: number;
}

/** One worker's window: the agent counters (summed across workers) plus the window's own figures. */
export interface WindowStats extends AgentCounters {
  /** HDR histogram of latencies (ms) in the window, compressed base64. */
  readonly histogram: string;
  /** HDR histogram (ms) of the time each moved agent was out of sync, from leaving in-sync to back. */
  readonly moveGapHistogram: string;
  /** The same gaps split by the client state they were spent in, one histogram per state seen. */
  readonly moveGapHistogramsByState: Readonly<Record<string, string>>;
  readonly latencyCount: number;
  /** Felix agents that decode changes (full or decode mode), and the updates they received. */
  readonly decodingFelixAgents: number;
  readonly decodingFelixUpdates: number;
  /** Wire bytes those agents received (frame headers, control frames and payloads). */
  readonly decodingFelixWireBytes: number;
  /** Of those, the ones that keep a mirror (mode full, the default client): they take patches. */
  readonly mirrorFelixAgents: number;
  readonly mirrorFelixUpdates: number;
  readonly mirrorFelixWireBytes: number;
  /** The frames one felix agent received (a mirror, else a lite decoding one), when asked to record them. */
  readonly frameLog?: readonly FrameRecord[];
  /** True when the frame log is a mirror's (the patched frames most agents get), false: full values. */
  readonly frameLogOfMirror?: boolean;
  /** Updates of full agents that changed nothing (a delete of a key not held, a value at a version held or older). */
  readonly spuriousUpdates: number;
  readonly spuriousSamples: readonly string[];
  /** Sessions that resumed on another server than the agent's previous one. */
  readonly resumesAcrossReplicas: number;
  /** Agents that received two moves or more in the window. */
  readonly agentsMovedTwice: number;
  /** Errors the clients emitted in the window, by code (ERR_CLIENT_TIMEOUT, ...). */
  readonly errorCodes: Readonly<Record<string, number>>;
  readonly windowStartMs: number;
  readonly nowMs: number;
}

export interface VerifyResult {
  readonly checked: number;
  readonly matched: number;
  /** Entries missing, extra, or at another resourceVersion, over all checked agents. */
  readonly mismatches: number;
  /** The first few, as text. */
  readonly samples: readonly string[];
}

export type WorkerOps = {
  start: {
    args: { servers: readonly string[]; agents: readonly AgentSpec[]; backoffMaxMs: number };
    result: { started: number };
  };
  progress: { args: { expectServerId: string | null; minRevision?: number }; result: WorkerProgress };
  /**
   * Starts a new measurement window (counters and latency histogram from zero); `isRecordingFrames`: one
   * decoding felix agent also records every frame it receives (FrameRecord).
   */
  window: { args: { isRecording: boolean; isRecordingFrames?: boolean }; result: { windowStartMs: number } };
  /**
   * Closes every agent and starts the same agents again on other servers (the ceiling's broadcaster);
   * `startedAtMs`: when the closes were done and the new clients started.
   */
  restart: { args: { servers: readonly string[] }; result: { started: number; startedAtMs: number } };
  collect: { args: Record<string, never>; result: WindowStats };
  expect: { args: { digest: StateDigest }; result: { fullAgents: number } };
  verify: { args: Record<string, never>; result: VerifyResult };
};

export interface BaselineResource {
  /** Simulator resource id, e.g. "pods". */
  readonly id: string;
  /** Collection path, e.g. `/api/v1/pods`. */
  readonly path: string;
}

export interface BaselineProgress {
  readonly agents: number;
  readonly watchesOpen: number;
  readonly watchesFailed: number;
  /** Agents that completed a full paged list of every resource. */
  readonly listsDone: number;
  /** Bytes of the full lists. */
  readonly listBytes: number;
  /** Bytes of the one-item lists (for the resourceVersion) of the other agents. */
  readonly probeBytes: number;
  /** Time the full lists took, summed over agents. */
  readonly listSeconds: number;
  readonly watchBytes: number;
  readonly watchEvents: number;
  readonly errors: readonly string[];
}

export type BaselineOps = {
  start: {
    args: {
      url: string;
      token: string;
      agents: number;
      resources: readonly BaselineResource[];
      /** How many of the agents also do a full paged list first (the rest list with limit=1 for the RV). */
      listAgents: number;
      watchTimeoutSeconds: number;
    };
    result: { started: number };
  };
  progress: { args: Record<string, never>; result: BaselineProgress };
};

/** A frame for the ceiling's broadcaster to send: its payload size and the changes it carries. */
export interface ReplayFrame {
  readonly bytes: number;
  readonly changes: number;
}

/** The ceiling broadcaster's counters. */
export interface CeilingStats {
  /** Sessions that said hello and were sent the snapshot, still open. */
  readonly sessions: number;
  /** True from replay until the last frame has been sent. */
  readonly isReplaying: boolean;
  /** The revision of the last frame sent (sessions start at the snapshot's: 1, or the recorded one's). */
  readonly revision: number;
  readonly framesSent: number;
  readonly changesSent: number;
  /** Payload bytes of one session's copy of the frames sent (every session gets the same). */
  readonly payloadBytesSent: number;
  /** Frames whose payload had to be larger than asked (too many changes for the size). */
  readonly framesOverSize: number;
  /** Sessions closed because their socket's user-space buffer passed the limit. */
  readonly sessionsDropped: number;
  /** Epoch ms of the first and last frame sent (0: none yet). */
  readonly firstSentAtMs: number;
  readonly lastSentAtMs: number;
}

/** The snapshot the ceiling broadcaster sends each session (`snapshot`). */
export interface CeilingSnapshotInfo {
  /** Payload bytes of its frames as one session is sent them (snap-begin, compressed chunks, snap-end). */
  readonly bytes: number;
  readonly chunks: number;
  readonly entries: number;
  readonly revision: number;
}

export interface CeilingReady {
  readonly port: number;
  readonly serverId: string;
}

export type CeilingOps = {
  /**
   * Sends `frames` in order (looping) to every session for `durationSeconds`, each when the changes of
   * the frames before it are due at `changesPerSecond`; answers at once.
   */
  replay: {
    args: { frames: readonly ReplayFrame[]; changesPerSecond: number; durationSeconds: number };
    result: CeilingStats;
  };
  stats: { args: Record<string, never>; result: CeilingStats };
  /** From now on each session is sent this snapshot (recorded from tabby: ceiling-snapshot.ts). */
  snapshot: { args: { snapshot: CeilingSnapshot }; result: CeilingSnapshotInfo };
};
