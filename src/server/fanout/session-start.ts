import { performance } from "node:perf_hooks";
import type { Logger } from "pino";
import { CloseCode } from "../../../proto/close-codes.js";
import { encodeMessage } from "../../../proto/codec.js";
import type { ResumeState, SyncState, ViewName } from "../../../proto/messages.js";
import { FEATURES } from "../../../proto/version.js";
import type { EncodedSnapshot, Hub, SessionSnapshotFrames } from "../../snapshot/hub.js";
import type { ReplicaResumeDecision } from "../../snapshot/replica-resume.js";
import { INTERNAL_ERROR_CLOSE_CODE } from "./errors.js";
import type { HelloAccepted } from "./handshake.js";
import type { LiveStream } from "./live-stream.js";
import type { Ingest } from "./ingest.js";
import type { FanoutMetrics } from "./metrics.js";
import type { Session } from "./session.js";
import type { SessionRegistry } from "./session-registry.js";
import type { SnapshotSender } from "./snapshot-sender.js";

interface SyncHold {
  readonly verdict: HelloAccepted;
  readonly timer: NodeJS.Timeout;
}

interface StateWait {
  readonly verdict: HelloAccepted;
  readonly state: ResumeState;
  readonly base: number;
  readonly timer: NodeJS.Timeout;
}

export interface SessionStarterDeps {
  readonly hub: Hub;
  readonly live: LiveStream;
  readonly snapshots: SnapshotSender;
  readonly metrics: FanoutMetrics;
  readonly logger: Logger;
  readonly clock: () => number;
  readonly serverId: string;
  readonly snapshotReuseMs: number;
  readonly snapshotReuseMaxMs: number;
  /** FanoutOptions.resumeStateWaitMs. */
  readonly resumeStateWaitMs: number;
  /** FanoutOptions.initialSyncWaitMs. */
  readonly initialSyncWaitMs: number;
  /** The view's status now (its upstream state: syncing until every kind of it was listed once). */
  readonly viewState: (view: ViewName) => SyncState;
  /** True when another replica of this server's Service is ready (the replica directory says so). */
  readonly hasReadyPeer: () => boolean;
  readonly ingest: Ingest;
  readonly sessions: SessionRegistry;
}

/**
 * Starts an accepted session: welcome, then either the deltas since the client's resume token (when this
 * server issued it and the log still covers it, or, with "replica-resume", when the token's state digests
 * match states this server held within its log: PROTOCOL.md §5.2) or a snapshot (shared, possibly reused, possibly
 * compressed) followed by the catch-up from the snapshot's revision. The session is live afterwards.
 */
export class SessionStarter {
  readonly #deps: SessionStarterDeps;
  readonly #waiting = new Map<Session, StateWait>();
  /** Sessions that arrived before their view was listed for the first time, held until it is. */
  readonly #held = new Map<Session, SyncHold>();
  /** Views whose every kind has been listed since this server started. */
  readonly #listed = new Set<ViewName>();
  /** The head at the last retry of the waiting sessions. */
  #retriedAt = -1;

  constructor(deps: SessionStarterDeps) {
    this.#deps = deps;
    deps.ingest.onFlushed(() => {
      this.#retryWaiting();
      this.#pruneSnapshots();
    });
    deps.ingest.onStatusChanged((views) => this.#releaseListed(views));
  }

  /** Sessions waiting for this server to reach their digests' state. */
  get waitingCount(): number {
    return this.#waiting.size;
  }

  /** Sessions held until their view is listed for the first time (a server that just started). */
  get heldCount(): number {
    return this.#held.size;
  }

  /** Stops every wait (the server is closing; the sessions are closed by the caller). */
  close(): void {
    for (const wait of this.#waiting.values()) clearTimeout(wait.timer);
    this.#waiting.clear();
    for (const hold of this.#held.values()) clearTimeout(hold.timer);
    this.#held.clear();
  }

  /**
   * Starts the session, or holds it (before the welcome) while its view has not been listed since this
   * server started: every session of a just-started server would otherwise get a snapshot of a partial
   * view and then the rest of the initial list as live deltas, fanned out while the list is still being
   * read. Held sessions get pings, which keep the client's read watchdog quiet; they start together, on
   * one shared snapshot, once the view is listed, or after initialSyncWaitMs (then with a snapshot of what
   * is listed and the `syncing` status, as without the hold). When another replica is ready, the session is
   * closed with 4007 instead: the client reconnects there at once rather than wait for this one's list.
   */
  start(s: Session, verdict: HelloAccepted): void {
    if (this.#deps.initialSyncWaitMs > 0 && !this.#isListed(verdict.view)) {
      if (this.#deps.hasReadyPeer()) {
        // Another replica can serve it now (with a resume, most likely): send the client there.
        this.#deps.sessions.close(
          s,
          CloseCode.rebalance,
          "notListed",
          `view ${verdict.view} not listed yet since this replica started; another replica is ready`,
        );
        return;
      }
      const timer = setTimeout(() => this.#release(s), this.#deps.initialSyncWaitMs);
      this.#held.set(s, { verdict, timer });
      return;
    }
    this.#begin(s, verdict);
  }

  #isListed(view: ViewName): boolean {
    if (this.#listed.has(view)) return true;
    if (this.#deps.viewState(view) === "syncing") return false;
    this.#listed.add(view);
    return true;
  }

  #releaseListed(views: readonly ViewName[]): void {
    if (this.#held.size === 0 || !views.some((v) => this.#isListed(v))) return;
    for (const [s, hold] of [...this.#held]) {
      if (this.#isListed(hold.verdict.view)) this.#release(s);
    }
  }

  #release(s: Session): void {
    const hold = this.#held.get(s);
    if (hold === undefined) return;
    clearTimeout(hold.timer);
    this.#held.delete(s);
    if (!this.#isStarting(s)) return;
    try {
      this.#begin(s, hold.verdict);
    } catch (err) {
      this.#deps.logger.error({ err, session: s.id }, "session start failed");
      this.#deps.sessions.close(s, INTERNAL_ERROR_CLOSE_CODE, "internalError", "internal error");
    }
  }

  #begin(s: Session, verdict: HelloAccepted): void {
    const { hub, serverId, metrics } = this.#deps;
    const resume = verdict.resume;
    if (resume === undefined) {
      this.#startSnapshot(s, verdict);
      return;
    }
    const isOwn = resume.server === serverId;
    if (isOwn && hub.canResume(verdict.view, resume.revision)) {
      s.send(this.#welcome(verdict, "resume"));
      metrics.resumed(verdict.view, "same-server");
      this.#deps.live.goLive(s, resume.revision);
      return;
    }
    if (resume.state === undefined || !s.features.has(FEATURES.replicaResume)) {
      metrics.resumeRefused(isOwn ? "revision-gone" : "other-server");
      this.#startSnapshot(s, verdict);
      return;
    }
    // The decision reads the logs and the digests as of the flushed head: flush first.
    this.#deps.ingest.flushNow();
    // Frames count from the client's revision when the token is ours (its revision is comparable), else 0.
    this.#decideFromState(s, verdict, resume.state, isOwn ? resume.revision : 0);
  }

  /**
   * A resume from the token's digests (the hub has no pending change). A state this server never held may
   * be one it has not reached yet (the client comes from a replica that is ahead of this one: starting, or
   * busier): the session waits, decided again whenever a flush moves the head, for up to
   * resumeStateWaitMs, then once more before the snapshot. Waiting never makes the check less exact.
   */
  #decideFromState(s: Session, verdict: HelloAccepted, state: ResumeState, base: number): void {
    const decision = this.#deps.hub.resumeFromState(verdict.view, s.node, state, base);
    if (isNotYetHeld(decision)) {
      const timer = setTimeout(() => {
        // The final decision reads the flushed head; the flush may already settle the wait.
        this.#deps.ingest.flushNow();
        const wait = this.#waiting.get(s);
        if (wait !== undefined) this.#redecide(s, wait, true);
      }, this.#deps.resumeStateWaitMs);
      this.#waiting.set(s, { verdict, state, base, timer });
      return;
    }
    this.#finishFromState(s, verdict, decision);
  }

  /** A waiting session decided again: after a flush (it keeps waiting if still not held) or finally. */
  #redecide(s: Session, wait: StateWait, isFinal: boolean): void {
    if (!this.#isStarting(s)) {
      clearTimeout(wait.timer);
      this.#waiting.delete(s);
      return;
    }
    const decision = this.#deps.hub.resumeFromState(wait.verdict.view, s.node, wait.state, wait.base);
    if (!isFinal && isNotYetHeld(decision)) return;
    clearTimeout(wait.timer);
    this.#waiting.delete(s);
    this.#deps.metrics.resumeWaited(decision.ok ? "resumed" : "snapshot");
    if (!decision.ok) {
      // Rare, and costly (a snapshot): worth an operator's look (a replica far behind the others?).
      this.#deps.logger.info(
        {
          session: s.id,
          view: wait.verdict.view,
          from: wait.verdict.resume?.server,
          reason: decision.reason,
          detail: decision.detail,
        },
        `resume state not reached within ${this.#deps.resumeStateWaitMs} ms, sending a snapshot`,
      );
    }
    this.#finishFromState(s, wait.verdict, decision);
  }

  /** Resumes the session with the decision's frames, or sends the snapshot it was refused for. */
  #finishFromState(s: Session, verdict: HelloAccepted, decision: ReplicaResumeDecision): void {
    const { hub, metrics } = this.#deps;
    if (!decision.ok) {
      metrics.resumeRefused(decision.reason);
      this.#deps.logger.debug(
        { session: s.id, view: verdict.view, reason: decision.reason, detail: decision.detail },
        "resume state refused, sending a snapshot",
      );
      this.#startSnapshot(s, verdict);
      return;
    }
    s.send(this.#welcome(verdict, "resume"));
    const isOwn = verdict.resume?.server === this.#deps.serverId;
    metrics.resumed(verdict.view, isOwn ? "same-server" : "other-replica");
    for (const frame of decision.frames) s.send(frame.frame(s.deltaEncoding));
    metrics.framesEncoded(verdict.view, decision.frames.length);
    metrics.framesSent(verdict.view, decision.frames.length);
    // At the head now: goLive has nothing to catch up, it sends the status and makes the session live.
    this.#deps.live.goLive(s, hub.revision);
  }

  /**
   * After a flush that moved the head: the waiting sessions whose state this server has now reached
   * resume (a flush with nothing new, such as every session start's, cannot change a decision).
   */
  #retryWaiting(): void {
    const head = this.#deps.hub.revision;
    if (this.#waiting.size === 0 || head === this.#retriedAt) return;
    this.#retriedAt = head;
    for (const [s, wait] of this.#waiting) this.#redecide(s, wait, false);
  }

  #isStarting(s: Session): boolean {
    return s.phase === "syncing" && s.closeCode === undefined;
  }

  #startSnapshot(s: Session, verdict: HelloAccepted): void {
    const { metrics, logger } = this.#deps;
    const view = verdict.view;
    this.#deps.ingest.flushNow();
    // The welcome first: the client knows it was accepted before the server spends time on a build, or
    // while the session waits for its turn to stream (SnapshotSender; pings keep it meanwhile).
    s.send(this.#welcome(verdict, "snapshot"));
    const startedAt = performance.now();
    const isCompressed = s.features.has(FEATURES.deflateSnapshot);
    // The log keeps the changes after the snapshot until the session is caught up (Hub.pinLog).
    let unpin: (() => void) | undefined;
    const pick = (): { snapshot: EncodedSnapshot; frames: SessionSnapshotFrames } => {
      const picked = this.#pickSnapshot(s, view);
      unpin = this.#deps.hub.pinLog(view, picked.snapshot.revision);
      return picked;
    };
    // One catch boundary for the send and for goLive (the catch-up after the snapshot), which can throw.
    this.#deps.snapshots
      .send(s, pick, isCompressed)
      .then((snapshot) => {
        if (snapshot === undefined || s.phase !== "syncing" || s.closeCode !== undefined) return;
        metrics.snapshotSent(view, (performance.now() - startedAt) / 1000);
        this.#deps.live.goLive(s, snapshot.revision, snapshot);
      })
      .catch((err: unknown) => {
        logger.error({ err, session: s.id, view }, "snapshot send or catch-up failed");
        this.#deps.sessions.close(s, INTERNAL_ERROR_CLOSE_CODE, "internalError", "internal error");
      })
      .finally(() => unpin?.());
  }

  /** The snapshot for a session whose turn to stream has come: the cached one if young enough, else a build. */
  #pickSnapshot(s: Session, view: ViewName): { snapshot: EncodedSnapshot; frames: SessionSnapshotFrames } {
    const { hub, metrics } = this.#deps;
    const nowMs = this.#deps.clock();
    const maxAgeMs = this.#reuseAge(view);
    // A build needs the changes applied first (a reuse does not: its catch-up carries them).
    if (!hub.hasReusableSnapshot(view, nowMs, maxAgeMs)) this.#deps.ingest.flushNow();
    const builtBefore = hub.counters.snapshotsBuilt[view];
    const snapshot = hub.snapshot(view, nowMs, maxAgeMs);
    if (hub.counters.snapshotsBuilt[view] !== builtBefore) metrics.snapshotGenerated(view, snapshot.bytes);
    else metrics.snapshotReused(view);
    return { snapshot, frames: hub.sessionFrames(snapshot, s.node) };
  }

  /**
   * Lets go of the cached snapshots no new session can be given (Hub.pruneSnapshots): after a connect
   * storm under churn, a kept felix snapshot would pin the old values of every entry changed since.
   */
  #pruneSnapshots(): void {
    const { hub, snapshots, snapshotReuseMs } = this.#deps;
    hub.pruneSnapshots(this.#deps.clock(), snapshotReuseMs, (s) => snapshots.isSending(s));
  }

  /** How old a cached snapshot may be to serve a new session: longer while one is still being sent. */
  #reuseAge(view: ViewName): number {
    const { hub, snapshots, snapshotReuseMs, snapshotReuseMaxMs } = this.#deps;
    const latest = hub.latestSnapshot(view);
    return latest !== undefined && snapshots.isSending(latest)
      ? Math.max(snapshotReuseMs, snapshotReuseMaxMs)
      : snapshotReuseMs;
  }

  #welcome(verdict: HelloAccepted, mode: "resume" | "snapshot"): Buffer {
    return encodeMessage({
      t: "welcome",
      version: verdict.version,
      server: this.#deps.serverId,
      view: verdict.view,
      mode,
      revision: this.#deps.hub.revision,
      features: verdict.features,
      ...(verdict.features.includes(FEATURES.replicaResume) && { conversion: this.#deps.hub.conversionId }),
    });
  }
}

/** Refused only because the digests name a state this server has not held (yet, perhaps). */
function isNotYetHeld(decision: ReplicaResumeDecision): boolean {
  return !decision.ok && decision.reason === "unknown-state";
}
