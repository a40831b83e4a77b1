import { randomBytes } from "node:crypto";
import { FEATURES } from "../../../proto/version.js";
import type { Feature } from "../../../proto/version.js";
import { FanoutOptionError } from "./errors.js";

/** The WebSocket port tabby listens on by default (Typha's port). */
export const DEFAULT_FANOUT_PORT = 5473;

/**
 * Default FanoutOptions.resumeStateWaitMs. At 1000 agents on 2 cores, 10 s saved no more resumes than 3 s
 * (the states not reached in 3 s were mostly never reached: docs/BENCHMARKS.md, replicas at 1000 agents)
 * and kept those agents waiting longer.
 */
export const RESUME_STATE_WAIT_MS = 3000;

/** Tuning of the fan-out server. Every field is optional; the default and unit are in its comment. */
export interface FanoutOptions {
  /** Largest message a client may send, in bytes. A larger one closes the connection with 1009. Default 1 MiB. */
  readonly maxInboundFrameBytes?: number;
  /** A connection must send a valid hello within this many ms, or it is closed with 4003. Default 10,000. */
  readonly handshakeTimeoutMs?: number;
  /**
   * Sessions (authenticated, past the hello) beyond this are refused with 4010, at accept or after the
   * hello. Connections still in their handshake do not take these slots. Default 10,000.
   */
  readonly maxConnections?: number;
  /**
   * Connections not yet authenticated (from TCP accept through TLS, the HTTP upgrade, the hello and its
   * review) at once; beyond this the oldest of them is cut to make room. Only on the server's own
   * listener. Default 1000.
   */
  readonly maxHandshakingConnections?: number;
  /**
   * The listener's TCP accept queue: connections the kernel completes while the server has not accepted
   * them yet (the kernel caps it at net.core.somaxconn). Node's default, 511, is below a replica's share of
   * a 1000-node cluster: in a connect storm the rest are dropped and wait for SYN retransmits (1 s, 3 s,
   * 7 s, ...), past the client's connect timeout. Default 4096.
   */
  readonly listenBacklog?: number;
  /** Connections not yet authenticated per source address; more are cut at accept. 0: no cap (behind a trusted proxy). Default 0. */
  readonly maxHandshakingPerSource?: number;
  /**
   * Changes are batched for this many ms before one frame per view is encoded and sent (longer while the
   * previous fan-out is still being written). Default 10.
   */
  readonly flushWindowMs?: number;
  /**
   * Under load (the previous fan-out still being written, or the flush timer late) the window doubles,
   * up to this many ms, and halves back once the load is gone: batches grow instead of queues. Default 250.
   */
  readonly flushWindowMaxMs?: number;
  /** A snapshot younger than this many ms is reused for new sessions (then caught up). Default 1000. */
  readonly snapshotReuseMs?: number;
  /**
   * While the latest snapshot is still being sent to some session (a storm of new sessions), it is reused
   * for sessions arriving up to this many ms after it was built: they are caught up from the log anyway,
   * and one build and one compression serve the whole storm. Default 30,000.
   */
  readonly snapshotReuseMaxMs?: number;
  /**
   * A resume from another replica's state that this server has not held yet waits up to this many ms for
   * it to arrive (a replica that is behind: just started, or busier), decided again after every flush,
   * then gets a snapshot (PROTOCOL.md §5.2.1). 0: no wait. Default 3000.
   */
  readonly resumeStateWaitMs?: number;
  /**
   * A session that arrives before its view has been listed once since the server started is held (before
   * the welcome; pings keep it) until the view is listed, for up to this many ms, then started with the
   * `syncing` status. 0: no hold. Default 60,000.
   */
  readonly initialSyncWaitMs?: number;
  /**
   * A session whose socket holds this many unsent bytes (in user space) stops receiving live frames until
   * it drains, then is caught up with coalesced changes. Default 1 MiB.
   */
  readonly softBufferedBytes?: number;
  /** While sending a snapshot, wait for the socket to drain whenever it holds more than this. Default 1 MiB. */
  readonly snapshotHighWaterBytes?: number;
  /**
   * Snapshots streamed at once; further sessions wait their turn in arrival order (pings keep them), and a
   * session whose socket does not drain within a second gives its turn to the next. A limit brings most
   * agents of a storm back sooner and the last one later (docs/OPERATIONS.md, "Snapshot turns").
   * Default 0: no limit.
   */
  readonly snapshotSendConcurrency?: number;
  /** A session that stays behind longer than this many ms is closed with 4005. Default 30,000. */
  readonly maxLagMs?: number;
  /** A ping goes to every session this often, in ms. Default 10,000. */
  readonly pingIntervalMs?: number;
  /** A session that sent no pong for this many ms is closed with 4011. Must exceed pingIntervalMs. Default 60,000. */
  readonly pongTimeoutMs?: number;
  /** A fan-out yields to the event loop (setImmediate) after this many sessions. Default 500. */
  readonly fanoutSliceSessions?: number;
  /** After the server sends a close frame, the peer has this many ms to answer before the socket is destroyed. Default 5000. */
  readonly closeGraceMs?: number;
  /** This server's id in welcomes and resume tokens. Default: 16 random hex chars, new per process. */
  readonly serverId?: string;
  /** Optional protocol features this server offers. Default: all of FEATURES. */
  readonly features?: readonly Feature[];
}

export type ResolvedFanoutOptions = { readonly [K in keyof FanoutOptions]-?: NonNullable<FanoutOptions[K]> };

const KNOWN_FEATURES: ReadonlySet<string> = new Set(Object.values(FEATURES));

function integer(options: FanoutOptions, field: keyof FanoutOptions, fallback: number, min: number): number {
  const value = options[field] ?? fallback;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
    throw new FanoutOptionError(field, `must be an integer >= ${min}, got ${String(value)}`);
  }
  return value;
}

/** Fills in the defaults and validates every field; throws FanoutOptionError naming the first bad one. */
export function resolveFanoutOptions(options: FanoutOptions = {}): ResolvedFanoutOptions {
  const resolved = {
    maxInboundFrameBytes: integer(options, "maxInboundFrameBytes", 1024 * 1024, 64),
    handshakeTimeoutMs: integer(options, "handshakeTimeoutMs", 10_000, 1),
    maxConnections: integer(options, "maxConnections", 10_000, 1),
    maxHandshakingConnections: integer(options, "maxHandshakingConnections", 1000, 1),
    listenBacklog: integer(options, "listenBacklog", 4096, 1),
    maxHandshakingPerSource: integer(options, "maxHandshakingPerSource", 0, 0),
    flushWindowMs: integer(options, "flushWindowMs", 10, 0),
    flushWindowMaxMs: integer(options, "flushWindowMaxMs", 250, 0),
    snapshotReuseMs: integer(options, "snapshotReuseMs", 1000, 0),
    snapshotReuseMaxMs: integer(options, "snapshotReuseMaxMs", 30_000, 0),
    resumeStateWaitMs: integer(options, "resumeStateWaitMs", RESUME_STATE_WAIT_MS, 0),
    initialSyncWaitMs: integer(options, "initialSyncWaitMs", 60_000, 0),
    softBufferedBytes: integer(options, "softBufferedBytes", 1024 * 1024, 1),
    snapshotHighWaterBytes: integer(options, "snapshotHighWaterBytes", 1024 * 1024, 1),
    snapshotSendConcurrency: integer(options, "snapshotSendConcurrency", 0, 0),
    maxLagMs: integer(options, "maxLagMs", 30_000, 1),
    pingIntervalMs: integer(options, "pingIntervalMs", 10_000, 1),
    pongTimeoutMs: integer(options, "pongTimeoutMs", 60_000, 1),
    fanoutSliceSessions: integer(options, "fanoutSliceSessions", 500, 1),
    closeGraceMs: integer(options, "closeGraceMs", 5000, 0),
    serverId: options.serverId ?? randomBytes(8).toString("hex"),
    features: options.features ?? Object.values(FEATURES),
  };
  if (resolved.pongTimeoutMs <= resolved.pingIntervalMs) {
    throw new FanoutOptionError(
      "pongTimeoutMs",
      `must exceed pingIntervalMs (${resolved.pingIntervalMs}), got ${resolved.pongTimeoutMs}`,
    );
  }
  if (
    typeof resolved.serverId !== "string" ||
    resolved.serverId.length === 0 ||
    resolved.serverId.length > 128
  ) {
    throw new FanoutOptionError("serverId", "must be a string of 1 to 128 chars");
  }
  const unknown = resolved.features.find((f) => !KNOWN_FEATURES.has(f));
  if (unknown !== undefined) {
    throw new FanoutOptionError("features", `unknown feature "${String(unknown)}"`);
  }
  return resolved;
}
