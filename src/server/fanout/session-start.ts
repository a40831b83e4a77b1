import { performance } from "node:perf_hooks";
import type { Logger } from "pino";
import { encodeMessage } from "../../../proto/codec.js";
import type { ViewName } from "../../../proto/messages.js";
import { FEATURES } from "../../../proto/version.js";
import type { Hub } from "../../snapshot/hub.js";
import { INTERNAL_ERROR_CLOSE_CODE } from "./errors.js";
import type { HelloAccepted } from "./handshake.js";
import type { LiveStream } from "./live-stream.js";
import type { Ingest } from "./ingest.js";
import type { FanoutMetrics } from "./metrics.js";
import type { Session } from "./session.js";
import type { SessionRegistry } from "./session-registry.js";
import type { SnapshotSender } from "./snapshot-sender.js";

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

  constructor(deps: SessionStarterDeps) {
    this.#deps = deps;
  }

  start(s: Session, verdict: HelloAccepted): void {
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
    const decision = hub.resumeFromState(verdict.view, s.node, resume.state, isOwn ? resume.revision : 0);
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
    metrics.resumed(verdict.view, isOwn ? "same-server" : "other-replica");
    for (const frame of decision.frames) s.send(frame.frame(s.deltaEncoding));
    metrics.framesEncoded(verdict.view, decision.frames.length);
    metrics.framesSent(verdict.view, decision.frames.length);
    // At the head now: goLive has nothing to catch up, it sends the status and makes the session live.
    this.#deps.live.goLive(s, hub.revision);
  }

  #startSnapshot(s: Session, verdict: HelloAccepted): void {
    const { hub, metrics, logger } = this.#deps;
    const view = verdict.view;
    this.#deps.ingest.flushNow();
    // The welcome first: the client knows it was accepted before the server spends time on a build.
    s.send(this.#welcome(verdict, "snapshot"));
    const builtBefore = hub.counters.snapshotsBuilt[view];
    const snapshot = hub.snapshot(view, this.#deps.clock(), this.#reuseAge(view));
    if (hub.counters.snapshotsBuilt[view] !== builtBefore) metrics.snapshotGenerated(view, snapshot.bytes);
    else metrics.snapshotReused(view);
    const frames = hub.sessionFrames(snapshot, s.node);
    const startedAt = performance.now();
    const isCompressed = s.features.has(FEATURES.deflateSnapshot);
    // One catch boundary for the send and for goLive (the catch-up after the snapshot), which can throw.
    this.#deps.snapshots
      .send(s, snapshot, frames, isCompressed)
      .then((isSent) => {
        if (!isSent || s.phase !== "syncing" || s.closeCode !== undefined) return;
        metrics.snapshotSent(view, (performance.now() - startedAt) / 1000);
        this.#deps.live.goLive(s, snapshot.revision);
      })
      .catch((err: unknown) => {
        logger.error({ err, session: s.id, view }, "snapshot send or catch-up failed");
        this.#deps.sessions.close(s, INTERNAL_ERROR_CLOSE_CODE, "internalError", "internal error");
      });
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
