import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { VIEW_NAMES } from "../../../proto/messages.js";
import type { ViewName } from "../../../proto/messages.js";
import { perView } from "../../snapshot/kinds.js";
import type { ReplicaRefusal } from "../../snapshot/replica-resume.js";

/** Why the server closed a connection (the close code's name): a bounded label. */
export type DropReason =
  | "unsupportedVersion"
  | "unknownView"
  | "handshakeTimeout"
  | "unauthorized"
  | "tooSlow"
  | "badFrame"
  | "shuttingDown"
  /** A session sent a `move` (rebalance) that had not left after the delay (close 4007). */
  | "rebalance"
  /**
   * A session arrived before its view was listed since this replica started, while another replica was
   * ready (close 4007: reconnect there).
   */
  | "notListed"
  | "nodeRequired"
  | "tooManyConnections"
  | "keepaliveTimeout"
  | "messageTooBig"
  /** The credentials could not be checked now (close 4012). */
  | "authUnavailable"
  /** An unexpected server-side error ended the session (close code 1011). */
  | "internalError";

/** Why an inbound frame was refused: a bounded label. */
export type BadFrameReason =
  /** Not one valid msgpack value. */
  | "not-msgpack"
  /** msgpack, but not a valid message (missing or mistyped field). */
  | "bad-message"
  /** A well-formed message of a type clients may not send. */
  | "unknown-type"
  /** Larger than maxInboundFrameBytes. */
  | "too-large"
  /** A WebSocket text frame. */
  | "text-frame"
  /** A valid message at the wrong time (a second hello, a pong before the hello). */
  | "out-of-order"
  /** A WebSocket protocol error detected by `ws` (bad opcode, bad UTF-8 in a close frame, ...). */
  | "ws-protocol";

/** Where a resume was accepted: the server that issued the token, or another replica (§5.2). */
export type ResumeOrigin = "same-server" | "other-replica";

/**
 * Why a resume token was answered with a snapshot: a replica-resume refusal (src/snapshot/replica-resume.ts),
 * or a plain token that only its own server could resume: `other-server` (from another server, without
 * `state`), `revision-gone` (this server's, but its log no longer covers the revision).
 */
export type ResumeRefusalReason = ReplicaRefusal | "other-server" | "revision-gone";

/** Values the gauges read at scrape time (no work on the hot path). */
export interface MetricSources {
  activeConnections(): number;
  streaming(view: ViewName): number;
  lagging(view: ViewName): number;
  cacheSize(view: ViewName): number;
  revision(): number;
  /** Snapshots being streamed now, and sessions waiting for a turn to stream theirs. */
  snapshotSends(): { readonly streaming: number; readonly waiting: number };
}

type PerView = Record<ViewName, number>;
const zeroPerView = (): PerView => perView(() => 0);

/** Plain counts mirroring the Prometheus counters, for `status()` (which must be synchronous). */
export interface FanoutCounts {
  accepted: number;
  dropped: Partial<Record<DropReason, number>>;
  badFrames: Partial<Record<BadFrameReason, number>>;
  /** Times a session started lagging (stopped receiving live frames). */
  laggingStarted: number;
  /** Times a lagging session was caught up and went back to live frames. */
  catchUps: number;
  pongs: number;
  readonly snapshotsGenerated: PerView;
  readonly snapshotsReused: PerView;
  /** Snapshots compressed for "deflate-snapshot" (once per snapshot, however many sessions take it). */
  readonly snapshotsCompressed: PerView;
  /** Chunks of compressed snapshots: compressed anew, or reused unchanged from the view's previous build. */
  readonly snapshotChunks: Record<ViewName, { compressed: number; reused: number }>;
  readonly framesEncoded: PerView;
  readonly framesSent: PerView;
  readonly updates: PerView;
  updatesSkipped: number;
  /** Sessions resumed (no snapshot), by where the token came from. */
  readonly resumes: Record<ResumeOrigin, number>;
  /** Resume tokens answered with a snapshot, by reason. */
  resumeRefusals: Partial<Record<ResumeRefusalReason, number>>;
  /** `left` answers to a `leave` (§5.5), with the view's digests or without (no replica-resume). */
  readonly leaves: { withState: number; withoutState: number };
  /** Resumes that waited for this server to reach their digests' state, by how the wait ended. */
  readonly resumeWaits: { resumed: number; snapshot: number };
}

const FANOUT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const SNAPSHOT_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
const PING_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 10];

/**
 * The fan-out server's Prometheus metrics, on the injected registry. Labels are `view` or a bounded
 * reason only; never anything per connection. Hot-path callers batch their counts (one `inc` per batch,
 * not per socket).
 */
export class FanoutMetrics {
  readonly counts: FanoutCounts = {
    accepted: 0,
    dropped: {},
    badFrames: {},
    laggingStarted: 0,
    catchUps: 0,
    pongs: 0,
    snapshotsGenerated: zeroPerView(),
    snapshotsReused: zeroPerView(),
    snapshotsCompressed: zeroPerView(),
    snapshotChunks: perView(() => ({ compressed: 0, reused: 0 })),
    framesEncoded: zeroPerView(),
    framesSent: zeroPerView(),
    updates: zeroPerView(),
    updatesSkipped: 0,
    resumes: { "same-server": 0, "other-replica": 0 },
    resumeRefusals: {},
    leaves: { withState: 0, withoutState: 0 },
    resumeWaits: { resumed: 0, snapshot: 0 },
  };
  readonly #accepted: Counter;
  readonly #dropped: Counter<"reason">;
  readonly #badFrames: Counter<"reason">;
  readonly #snapshotSend: Histogram<"view">;
  readonly #snapshotsGenerated: Counter<"view">;
  readonly #snapshotsReused: Counter<"view">;
  readonly #snapshotBytes: Gauge<"view">;
  readonly #snapshotCompressedBytes: Gauge<"view">;
  readonly #snapshotChunks: Counter<"view" | "outcome">;
  readonly #snapshotSendStalls: Counter<"view">;
  readonly #framesEncoded: Counter<"view">;
  readonly #framesSent: Counter<"view">;
  readonly #updates: Counter<"view">;
  readonly #updatesSkipped: Counter;
  readonly #pingLatency: Histogram;
  readonly #fanout: Histogram<"view">;
  readonly #flushWindow: Gauge;
  readonly #resumes: Counter<"view" | "origin">;
  readonly #resumeRefusals: Counter<"reason">;
  readonly #leaves: Counter<"state">;
  readonly #resumeWaits: Counter<"outcome">;

  /** Metrics on a registry of their own with no sessions behind them (benchmarks and tests of one part). */
  static standalone(): FanoutMetrics {
    return new FanoutMetrics(new Registry(), {
      activeConnections: () => 0,
      streaming: () => 0,
      lagging: () => 0,
      cacheSize: () => 0,
      revision: () => 0,
      snapshotSends: () => ({ streaming: 0, waiting: 0 }),
    });
  }

  constructor(registry: Registry, sources: MetricSources) {
    const registers = [registry];
    this.#accepted = new Counter({
      name: "tabby_connections_accepted_total",
      help: "WebSocket connections accepted.",
      registers,
    });
    const active: Gauge = new Gauge({
      name: "tabby_connections_active",
      help: "Open WebSocket connections, handshaking ones included.",
      registers,
      collect: () => active.set(sources.activeConnections()),
    });
    const streaming: Gauge<"view"> = new Gauge({
      name: "tabby_connections_streaming",
      help: "Sessions past the handshake (snapshot or live), by view.",
      labelNames: ["view"] as const,
      registers,
      collect: () => {
        for (const view of VIEW_NAMES) streaming.set({ view }, sources.streaming(view));
      },
    });
    this.#dropped = new Counter({
      name: "tabby_connections_dropped_total",
      help: "Connections the server closed, by reason (close code name).",
      labelNames: ["reason"] as const,
      registers,
    });
    this.#snapshotSend = new Histogram({
      name: "tabby_client_snapshot_send_seconds",
      help: "Time from the welcome until a session's snapshot was written to its socket.",
      labelNames: ["view"] as const,
      buckets: SNAPSHOT_BUCKETS,
      registers,
    });
    this.#snapshotsGenerated = new Counter({
      name: "tabby_snapshots_generated_total",
      help: "Encoded snapshots built.",
      labelNames: ["view"] as const,
      registers,
    });
    this.#snapshotsReused = new Counter({
      name: "tabby_snapshots_reused_total",
      help: "Sessions served an already encoded snapshot.",
      labelNames: ["view"] as const,
      registers,
    });
    this.#snapshotBytes = new Gauge({
      name: "tabby_snapshot_bytes",
      help: "Size of the latest encoded snapshot (uncompressed chunk frames).",
      labelNames: ["view"] as const,
      registers,
    });
    this.#snapshotCompressedBytes = new Gauge({
      name: "tabby_snapshot_compressed_bytes",
      help: "Size of the latest deflate-compressed snapshot (chunk frames).",
      labelNames: ["view"] as const,
      registers,
    });
    const snapshotSends: Gauge<"state"> = new Gauge({
      name: "tabby_snapshot_sends",
      help: "Snapshots being streamed (state streaming, at most snapshotSendConcurrency) and sessions waiting for a turn (state waiting).",
      labelNames: ["state"] as const,
      registers,
      collect: () => {
        const now = sources.snapshotSends();
        snapshotSends.set({ state: "streaming" }, now.streaming);
        snapshotSends.set({ state: "waiting" }, now.waiting);
      },
    });
    this.#snapshotSendStalls = new Counter({
      name: "tabby_snapshot_send_stalls_total",
      help: "Snapshot sends whose socket did not drain within a second: the session gave its turn to the next one and went on without.",
      labelNames: ["view"] as const,
      registers,
    });
    this.#snapshotChunks = new Counter({
      name: "tabby_snapshot_chunks_total",
      help: "Chunks of compressed snapshots: compressed, or reused from the view's previous build (unchanged).",
      labelNames: ["view", "outcome"] as const,
      registers,
    });
    this.#framesEncoded = new Counter({
      name: "tabby_frames_encoded_total",
      help: "Delta frames encoded (live batches and catch-ups); each is sent to many sessions.",
      labelNames: ["view"] as const,
      registers,
    });
    this.#framesSent = new Counter({
      name: "tabby_frames_sent_total",
      help: "Delta frames written to sessions (live and catch-up).",
      labelNames: ["view"] as const,
      registers,
    });
    this.#updates = new Counter({
      name: "tabby_updates_total",
      help: "Real changes (upserts and deletes) applied, by view.",
      labelNames: ["view"] as const,
      registers,
    });
    this.#updatesSkipped = new Counter({
      name: "tabby_updates_skipped_total",
      help: "Upstream updates that changed nothing (same value, or delete of an absent key).",
      registers,
    });
    const revision: Gauge = new Gauge({
      name: "tabby_revision",
      help: "The server's flushed head revision.",
      registers,
      collect: () => revision.set(sources.revision()),
    });
    const cacheSize: Gauge<"view"> = new Gauge({
      name: "tabby_cache_size",
      help: "Entries in each view.",
      labelNames: ["view"] as const,
      registers,
      collect: () => {
        for (const view of VIEW_NAMES) cacheSize.set({ view }, sources.cacheSize(view));
      },
    });
    const lagging: Gauge<"view"> = new Gauge({
      name: "tabby_sessions_lagging",
      help: "Sessions currently behind (not receiving live frames until their socket drains).",
      labelNames: ["view"] as const,
      registers,
      collect: () => {
        for (const view of VIEW_NAMES) lagging.set({ view }, sources.lagging(view));
      },
    });
    this.#pingLatency = new Histogram({
      name: "tabby_ping_latency_seconds",
      help: "Round trip from a ping to its pong.",
      buckets: PING_BUCKETS,
      registers,
    });
    this.#flushWindow = new Gauge({
      name: "tabby_flush_window_seconds",
      help: "The flush window now: the base window, wider while the server is overloaded.",
      registers,
    });
    this.#fanout = new Histogram({
      name: "tabby_delta_fanout_seconds",
      help: "From the start of a flush to the last socket write of its frame, once per batch.",
      labelNames: ["view"] as const,
      buckets: FANOUT_BUCKETS,
      registers,
    });
    this.#badFrames = new Counter({
      name: "tabby_bad_frames_total",
      help: "Inbound frames refused, by reason.",
      labelNames: ["reason"] as const,
      registers,
    });
    this.#resumes = new Counter({
      name: "tabby_resumes_total",
      help: "Sessions resumed without a snapshot, by view and origin of the token (same-server, other-replica).",
      labelNames: ["view", "origin"] as const,
      registers,
    });
    this.#resumeRefusals = new Counter({
      name: "tabby_resume_refusals_total",
      help: "Resume tokens answered with a snapshot instead, by reason.",
      labelNames: ["reason"] as const,
      registers,
    });
    this.#resumeWaits = new Counter({
      name: "tabby_resume_state_waits_total",
      help: "Resumes whose digests named a state this replica had not reached yet and that waited for it, by outcome (resumed, snapshot).",
      labelNames: ["outcome"] as const,
      registers,
    });
    this.#leaves = new Counter({
      name: "tabby_leaves_total",
      help: "Moved sessions that asked to leave and were given the view's digests (state=given) or not (none).",
      labelNames: ["state"] as const,
      registers,
    });
  }

  resumed(view: ViewName, origin: ResumeOrigin): void {
    this.counts.resumes[origin]++;
    this.#resumes.inc({ view, origin });
  }

  resumeRefused(reason: ResumeRefusalReason): void {
    this.counts.resumeRefusals[reason] = (this.counts.resumeRefusals[reason] ?? 0) + 1;
    this.#resumeRefusals.inc({ reason });
  }

  resumeWaited(outcome: "resumed" | "snapshot"): void {
    this.counts.resumeWaits[outcome]++;
    this.#resumeWaits.inc({ outcome });
  }

  left(hasState: boolean): void {
    if (hasState) this.counts.leaves.withState++;
    else this.counts.leaves.withoutState++;
    this.#leaves.inc({ state: hasState ? "given" : "none" });
  }

  accepted(): void {
    this.counts.accepted++;
    this.#accepted.inc();
  }

  dropped(reason: DropReason): void {
    this.counts.dropped[reason] = (this.counts.dropped[reason] ?? 0) + 1;
    this.#dropped.inc({ reason });
  }

  badFrame(reason: BadFrameReason): void {
    this.counts.badFrames[reason] = (this.counts.badFrames[reason] ?? 0) + 1;
    this.#badFrames.inc({ reason });
  }

  snapshotGenerated(view: ViewName, bytes: number): void {
    this.counts.snapshotsGenerated[view]++;
    this.#snapshotsGenerated.inc({ view });
    this.#snapshotBytes.set({ view }, bytes);
  }

  snapshotReused(view: ViewName): void {
    this.counts.snapshotsReused[view]++;
    this.#snapshotsReused.inc({ view });
  }

  snapshotCompressed(view: ViewName, bytes: number): void {
    this.counts.snapshotsCompressed[view]++;
    this.#snapshotCompressedBytes.set({ view }, bytes);
  }

  /** A snapshot's chunks were given their compressed form: `compressed` anew, `reused` from the last build. */
  snapshotChunks(view: ViewName, compressed: number, reused: number): void {
    this.counts.snapshotChunks[view].compressed += compressed;
    this.counts.snapshotChunks[view].reused += reused;
    if (compressed > 0) this.#snapshotChunks.inc({ view, outcome: "compressed" }, compressed);
    if (reused > 0) this.#snapshotChunks.inc({ view, outcome: "reused" }, reused);
  }

  snapshotSendStalled(view: ViewName): void {
    this.#snapshotSendStalls.inc({ view });
  }

  snapshotSent(view: ViewName, seconds: number): void {
    this.#snapshotSend.observe({ view }, seconds);
  }

  framesEncoded(view: ViewName, n: number): void {
    if (n <= 0) return;
    this.counts.framesEncoded[view] += n;
    this.#framesEncoded.inc({ view }, n);
  }

  framesSent(view: ViewName, n: number): void {
    if (n <= 0) return;
    this.counts.framesSent[view] += n;
    this.#framesSent.inc({ view }, n);
  }

  updates(view: ViewName, n: number): void {
    if (n <= 0) return;
    this.counts.updates[view] += n;
    this.#updates.inc({ view }, n);
  }

  updateSkipped(): void {
    this.counts.updatesSkipped++;
    this.#updatesSkipped.inc();
  }

  pong(rttSeconds: number | undefined): void {
    this.counts.pongs++;
    if (rttSeconds !== undefined) this.#pingLatency.observe(rttSeconds);
  }

  flushWindow(seconds: number): void {
    this.#flushWindow.set(seconds);
  }

  fanout(view: ViewName, seconds: number): void {
    this.#fanout.observe({ view }, seconds);
  }

  laggingStarted(): void {
    this.counts.laggingStarted++;
  }

  caughtUp(): void {
    this.counts.catchUps++;
  }
}
