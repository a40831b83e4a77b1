import type { Logger } from "pino";
import type { WebSocket } from "ws";
import { CloseCode } from "../../../proto/close-codes.js";
import { VIEW_NAMES } from "../../../proto/messages.js";
import type { ViewName } from "../../../proto/messages.js";
import { closeGradually } from "./drain.js";
import type { GradualClose } from "./drain.js";
import type { DropReason, FanoutMetrics } from "./metrics.js";
import { Session } from "./session.js";

export interface SessionRegistryDeps {
  readonly metrics: FanoutMetrics;
  readonly logger: Logger;
  /** How long a closing session's socket gets to finish its close handshake before it is terminated. */
  readonly closeGraceMs: number;
}

/**
 * Every open session of one server, and the sessions of each view (those past the hello). The one place
 * that opens, indexes, closes and forgets sessions, and drains them gradually on shutdown.
 */
export class SessionRegistry {
  readonly #deps: SessionRegistryDeps;
  readonly #sessions = new Set<Session>();
  readonly #byView = new Map<ViewName, Set<Session>>(VIEW_NAMES.map((v) => [v, new Set<Session>()]));
  #nextSessionId = 0;
  #drain: GradualClose | undefined;

  constructor(deps: SessionRegistryDeps) {
    this.#deps = deps;
  }

  /** Open sessions, handshake included. */
  get size(): number {
    return this.#sessions.size;
  }

  /** Every open session (live set: do not mutate). */
  get all(): ReadonlySet<Session> {
    return this.#sessions;
  }

  /** A new session on an accepted socket. */
  open(ws: WebSocket, nowMs: number): Session {
    const s = new Session(++this.#nextSessionId, ws, nowMs);
    this.#sessions.add(s);
    return s;
  }

  /** Indexes a session under its view (after its hello was accepted). */
  join(s: Session, view: ViewName): void {
    this.#sessionsOf(view).add(s);
  }

  /** The sessions of a view (live set: do not mutate). */
  sessionsOf(view: ViewName): ReadonlySet<Session> {
    return this.#sessionsOf(view);
  }

  /** Begins closing a session with a close code (counted by reason). No-op when it is already closing. */
  close(s: Session, code: number, reason: DropReason, detail: string): void {
    if (s.closeCode !== undefined || s.phase === "closed") return;
    this.#deps.metrics.dropped(reason);
    this.#deps.logger.debug({ session: s.id, view: s.view, node: s.node, code, detail }, "closing session");
    s.close(code, detail, this.#deps.closeGraceMs);
  }

  /** Forgets a session whose socket closed. */
  remove(s: Session): void {
    s.markClosed();
    this.#sessions.delete(s);
    if (s.view !== undefined) this.#sessionsOf(s.view).delete(s);
  }

  /**
   * Closes every open session with shuttingDown, one at a time spread evenly over drainMs. Resolves when
   * all of them have closed. A second call returns the first drain's promise.
   */
  drainGradually(drainMs: number): Promise<void> {
    if (this.#drain !== undefined) return this.#drain.done;
    const sessions = [...this.#sessions];
    this.#deps.logger.info({ sessions: sessions.length, drainMs }, "draining fan-out sessions");
    this.#drain = closeGradually(sessions, drainMs, (s) =>
      this.close(s, CloseCode.shuttingDown, "shuttingDown", "server shutting down"),
    );
    return this.#drain.done;
  }

  /** Stops a gradual drain and terminates every open session now; resolves when their sockets closed. */
  terminateAll(): Promise<void> {
    this.#drain?.cancel();
    const closed = [...this.#sessions].map((s) => {
      s.terminate();
      return s.closed;
    });
    return Promise.all(closed).then(() => undefined);
  }

  #sessionsOf(view: ViewName): Set<Session> {
    return this.#byView.get(view) as Set<Session>;
  }
}
