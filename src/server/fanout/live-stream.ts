import { performance } from "node:perf_hooks";
import type { Logger } from "pino";
import { CloseCode } from "../../../proto/close-codes.js";
import { encodeMessage } from "../../../proto/codec.js";
import { VIEW_NAMES } from "../../../proto/messages.js";
import type { ViewName } from "../../../proto/messages.js";
import type { DeltaFrames } from "../../snapshot/delta-frames.js";
import { framesFor } from "../../snapshot/hub.js";
import type { EncodedSnapshot, Hub, ViewBatch } from "../../snapshot/hub.js";
import { VIEWS } from "../../snapshot/kinds.js";
import { INTERNAL_ERROR_CLOSE_CODE } from "./errors.js";
import type { FanoutQueue } from "./fanout-queue.js";
import type { FanoutMetrics } from "./metrics.js";
import type { Session } from "./session.js";
import type { SessionRegistry } from "./session-registry.js";
import type { ViewStatusBoard } from "./view-status.js";

export interface LiveStreamDeps {
  readonly hub: Hub;
  readonly queue: FanoutQueue;
  readonly metrics: FanoutMetrics;
  readonly board: ViewStatusBoard;
  readonly clock: () => number;
  readonly sessions: SessionRegistry;
  readonly logger: Logger;
  readonly softBufferedBytes: number;
  readonly maxLagMs: number;
  readonly pongTimeoutMs: number;
}

/** Catch-up frames are shared between sessions at the same revision (a resume storm encodes once). */
const MAX_CACHED_CATCH_UPS = 256;

/**
 * Live delivery: flushes the hub into per-view batch jobs, keeps every session's cursor, and handles the
 * sessions that fall behind.
 *
 * A session is in step for a batch when it has every change of its view before the batch (its cursor is
 * at or after the view's previous batch) and its socket holds less than softBufferedBytes; it then gets
 * the batch's frame (the same Buffer as every other session of its node class). Otherwise it is lagging:
 * it gets no live frames; when its socket drains it is caught up with the changes it missed, coalesced
 * per key (hub.catchUp), and is in step again. Lagging past maxLagMs, or past what the log can cover (its
 * end, or a catch-up longer than a quarter of the view: a snapshot is cheaper), closes
 * it with tooSlow. A lagging session costs the others nothing: it is skipped, never waited for.
 */
export class LiveStream {
  readonly #deps: LiveStreamDeps;
  /** The `to` of the last batch of each view: a session whose cursor is at or after it has everything. */
  readonly #lastBatchTo = new Map<ViewName, number>(VIEW_NAMES.map((v) => [v, 0]));
  readonly #catchUps = new Map<string, DeltaFrames[]>();
  /** Per snapshot, the catch-up after it and the head it reaches (#sendAfterSnapshot); let go with it. */
  readonly #afterSnapshot = new WeakMap<EncodedSnapshot, { frames: DeltaFrames[]; to: number }>();
  #catchUpsRevision = -1;

  constructor(deps: LiveStreamDeps) {
    this.#deps = deps;
  }

  /** Flushes the hub's pending changes and queues one fan-out job per view batch. */
  flush(): void {
    const { hub, queue, metrics } = this.#deps;
    if (hub.pendingCount === 0) return;
    const startedAt = performance.now();
    for (const batch of hub.flush()) {
      const prevTo = this.#lastBatchTo.get(batch.view) ?? 0;
      this.#lastBatchTo.set(batch.view, batch.to);
      let sent = 0;
      queue.push({
        sessions: this.#deps.sessions.sessionsOf(batch.view),
        visit: (s) => {
          if (this.#deliver(s, batch, prevTo)) sent++;
        },
        finish: () => {
          metrics.framesEncoded(batch.view, builtFrames(batch));
          metrics.framesSent(batch.view, sent);
          metrics.fanout(batch.view, (performance.now() - startedAt) / 1000);
        },
      });
    }
  }

  /** Queues the view's current status frame for every in-step session that has not had it. */
  broadcastStatus(view: ViewName): void {
    const current = this.#deps.board.current(view);
    this.#deps.queue.push({
      sessions: this.#deps.sessions.sessionsOf(view),
      visit: (s) => {
        if (s.phase === "live" && !s.isLagging && s.statusSeq < current.seq) {
          s.send(current.frame);
          s.statusSeq = current.seq;
        }
      },
      finish: noop,
    });
  }

  /** Pings every session past the handshake (one shared frame), closing those silent past the pong timeout. */
  ping(): void {
    const nowMs = this.#deps.clock();
    const frame = encodeMessage({ t: "ping", ts: nowMs });
    for (const view of VIEW_NAMES) {
      this.#deps.queue.push({
        sessions: this.#deps.sessions.sessionsOf(view),
        visit: (s) => {
          if (s.phase !== "syncing" && s.phase !== "live") return;
          if (nowMs - s.lastPongAtMs > this.#deps.pongTimeoutMs) {
            this.#deps.sessions.close(
              s,
              CloseCode.keepaliveTimeout,
              "keepaliveTimeout",
              `no pong for ${this.#deps.pongTimeoutMs} ms`,
            );
            return;
          }
          s.send(frame);
        },
        finish: noop,
      });
    }
  }

  /**
   * Brings a session that has the view at `revision` (a snapshot or a resume token) to the flushed head,
   * sends it the view's status, and makes it live. False (and the session closed) when the log no longer
   * covers `revision`.
   */
  goLive(s: Session, revision: number, snapshot?: EncodedSnapshot): boolean {
    const afterSnapshot = snapshot === undefined ? "unavailable" : this.#sendAfterSnapshot(s, snapshot);
    if (afterSnapshot === "closed") return false;
    if (afterSnapshot === "unavailable" && !this.#sendCatchUp(s, revision, snapshot !== undefined))
      return false;
    s.phase = "live";
    this.#sendStatus(s);
    return true;
  }

  /**
   * A live session asked to leave (feature "leave", PROTOCOL.md §5.5): brings it to the flushed head (the
   * caller flushed) and stops its view there for good: it gets no more deltas, lagging or not. False (and
   * the session closed) when the log no longer covers its cursor.
   */
  stopAtHead(s: Session): boolean {
    s.hasLeft = true;
    s.clearLagTimer();
    s.isLagging = false;
    return this.#sendCatchUp(s, s.cursor);
  }

  #deliver(s: Session, batch: ViewBatch, prevTo: number): boolean {
    if (s.phase !== "live" || s.hasLeft || s.isLagging || s.cursor >= batch.to) return false;
    const frames = framesFor(batch, s.node);
    if (s.cursor < prevTo) {
      this.#lag(s);
      return false;
    }
    if (frames === null) {
      s.cursor = batch.to;
      return false;
    }
    if (s.bufferedAmount >= this.#deps.softBufferedBytes) {
      this.#lag(s);
      return false;
    }
    s.send(frames.frame(s.deltaEncoding));
    s.cursor = batch.to;
    return true;
  }

  #lag(s: Session): void {
    s.isLagging = true;
    s.laggingSinceMs = this.#deps.clock();
    this.#deps.metrics.laggingStarted();
    s.armLagTimer(this.#deps.maxLagMs, () =>
      this.#deps.sessions.close(
        s,
        CloseCode.tooSlow,
        "tooSlow",
        `behind for more than ${this.#deps.maxLagMs} ms`,
      ),
    );
    // The catch boundary of this async path: a throw here would otherwise be an unhandled rejection.
    s.whenDrained()
      .then(() => this.#catchUp(s))
      .catch((err: unknown) => {
        this.#deps.logger.error({ err, session: s.id, view: s.view }, "catch-up failed");
        this.#deps.sessions.close(s, INTERNAL_ERROR_CLOSE_CODE, "internalError", "internal error");
      });
  }

  #catchUp(s: Session): void {
    if (s.phase !== "live" || s.hasLeft || !s.isLagging || s.closeCode !== undefined) return;
    s.clearLagTimer();
    s.isLagging = false;
    if (!this.#sendCatchUp(s, s.cursor)) return;
    this.#deps.metrics.caughtUp();
    this.#sendStatus(s);
  }

  /**
   * The catch-up after `snapshot` with patches against its values (Hub.catchUpFromSnapshot), made once per
   * snapshot and shared by every session that was sent it (a storm's sessions finish at different heads):
   * the shared frames up to the head they were made at, then the usual catch-up from there. "unavailable":
   * none (node-scoped kinds, or the log lost the snapshot), nothing sent.
   */
  #sendAfterSnapshot(s: Session, snapshot: EncodedSnapshot): "sent" | "unavailable" | "closed" {
    const { hub, metrics } = this.#deps;
    const view = snapshot.view;
    let shared = this.#afterSnapshot.get(snapshot);
    if (shared === undefined || !hub.canResume(view, shared.to)) {
      const frames = hub.catchUpFromSnapshot(snapshot);
      if (frames === undefined) return "unavailable";
      shared = { frames, to: hub.revision };
      this.#afterSnapshot.set(snapshot, shared);
      metrics.framesEncoded(view, frames.length);
    }
    for (const frame of shared.frames) s.send(frame.frame(s.deltaEncoding));
    metrics.framesSent(view, shared.frames.length);
    s.cursor = shared.to;
    if (shared.to === hub.revision) return "sent";
    return this.#sendCatchUp(s, shared.to) ? "sent" : "closed";
  }

  /** Sends the frames from `revision` to the flushed head and moves the cursor there. */
  #sendCatchUp(s: Session, revision: number, isAfterSnapshot = false): boolean {
    const view = s.view as ViewName;
    const frames = this.#catchUpFrames(view, s.node, revision, isAfterSnapshot);
    if (frames === undefined) {
      this.#deps.sessions.close(
        s,
        CloseCode.tooSlow,
        "tooSlow",
        `revision ${revision} is no longer in the log; reconnect for a snapshot`,
      );
      return false;
    }
    for (const frame of frames) s.send(frame.frame(s.deltaEncoding));
    this.#deps.metrics.framesSent(view, frames.length);
    s.cursor = this.#deps.hub.revision;
    return true;
  }

  #sendStatus(s: Session): void {
    const current = this.#deps.board.current(s.view as ViewName);
    if (s.statusSeq >= current.seq) return;
    s.send(current.frame);
    s.statusSeq = current.seq;
  }

  #catchUpFrames(
    view: ViewName,
    node: string | undefined,
    revision: number,
    isAfterSnapshot: boolean,
  ): DeltaFrames[] | undefined {
    const { hub, metrics } = this.#deps;
    const isShareable = VIEWS[view].nodeScopedKinds.size === 0;
    if (this.#catchUpsRevision !== hub.revision) {
      this.#catchUps.clear();
      this.#catchUpsRevision = hub.revision;
    }
    const key = `${view}@${revision}`;
    const cached = isShareable ? this.#catchUps.get(key) : undefined;
    if (cached !== undefined) return cached;
    const frames = hub.catchUp(view, node, revision, isAfterSnapshot);
    if (frames === undefined) return undefined;
    metrics.framesEncoded(view, frames.length);
    if (isShareable && frames.length > 0) {
      if (this.#catchUps.size >= MAX_CACHED_CATCH_UPS) this.#catchUps.clear();
      this.#catchUps.set(key, frames);
    }
    return frames;
  }
}

function noop(): void {}

function builtFrames(batch: ViewBatch): number {
  let n = batch.shared?.built ?? 0;
  for (const frames of batch.byNode.values()) n += frames.built;
  return n;
}
