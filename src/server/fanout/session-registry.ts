import type { Logger } from "pino";
import type { WebSocket } from "ws";
import { CloseCode } from "../../../proto/close-codes.js";
import { encodeMessage } from "../../../proto/codec.js";
import { VIEW_NAMES } from "../../../proto/messages.js";
import type { ViewName } from "../../../proto/messages.js";
import { FEATURES } from "../../../proto/version.js";
import type { MoveMetrics, MoveReason } from "../replicas/balancer-metrics.js";
import { closeGradually } from "./drain.js";
import type { DrainMover, GradualClose } from "./drain.js";
import type { DropReason, FanoutMetrics } from "./metrics.js";
import { Session } from "./session.js";

export interface SessionRegistryDeps {
  readonly metrics: FanoutMetrics;
  readonly logger: Logger;
  /** How long a closing session's socket gets to finish its close handshake before it is terminated. */
  readonly closeGraceMs: number;
  /** Counts moves sent and sessions moved (the balancer's metrics). Default: not counted. */
  readonly moves?: MoveMetrics;
}

/** A session that was sent a `move` and has not closed yet. */
interface Leaving {
  readonly reason: MoveReason;
  readonly timer: NodeJS.Timeout;
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
  readonly #leaving = new Map<Session, Leaving>();

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

  /** Sessions past the hello, every view. */
  *established(): IterableIterator<Session> {
    for (const set of this.#byView.values()) yield* set;
  }

  /** Sessions past the hello, every view. */
  get establishedCount(): number {
    let n = 0;
    for (const set of this.#byView.values()) n += set.size;
    return n;
  }

  /** Sessions sent a `move` that are still connected. */
  get leavingCount(): number {
    return this.#leaving.size;
  }

  /** True when the session was sent a `move` (it is leaving). */
  isLeaving(s: Session): boolean {
    return this.#leaving.has(s);
  }

  /** True when `move` may be sent to the session: it negotiated the feature, is live and not closing. */
  canMove(s: Session): boolean {
    return (
      s.features.has(FEATURES.move) &&
      s.phase === "live" &&
      s.closeCode === undefined &&
      !this.#leaving.has(s)
    );
  }

  /**
   * Sends `move {reason, delayMs, hint}` and closes the session with `code` (4007 rebalance, 4008
   * shuttingDown) `closeAfterMs` later if the client has not left by then. No-op when it cannot move.
   */
  move(
    s: Session,
    reason: MoveReason,
    delayMs: number,
    hint: string | undefined,
    closeAfterMs: number,
  ): boolean {
    if (!this.canMove(s)) return false;
    s.send(encodeMessage({ t: "move", reason, delayMs, ...(hint !== undefined && { hint }) }));
    const code = reason === "rebalance" ? CloseCode.rebalance : CloseCode.shuttingDown;
    const timer = setTimeout(() => {
      if (s.phase === "closed") return;
      this.close(s, code, reason === "rebalance" ? "rebalance" : "shuttingDown", `moved (${reason})`);
    }, closeAfterMs);
    this.#leaving.set(s, { reason, timer });
    this.#deps.moves?.moveSent(reason);
    this.#deps.logger.debug(
      { session: s.id, view: s.view, node: s.node, reason, delayMs, hint },
      "move sent",
    );
    return true;
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
    const leaving = this.#leaving.get(s);
    if (leaving !== undefined) {
      clearTimeout(leaving.timer);
      this.#leaving.delete(s);
      const isForced = s.closeCode === CloseCode.rebalance || s.closeCode === CloseCode.shuttingDown;
      this.#deps.moves?.sessionMoved(leaving.reason, isForced);
    }
    s.markClosed();
    this.#sessions.delete(s);
    if (s.view !== undefined) this.#sessionsOf(s.view).delete(s);
  }

  /**
   * Ends every open session, one at a time spread evenly over drainMs: with `mover` (other ready replicas
   * exist), a session that negotiated `move` is sent one (a short jittered delay, a hint to another replica)
   * and closed with shuttingDown only if it has not left within the move's grace; a session already moving
   * (a rebalance) is left to that move; every other session is closed with shuttingDown at its turn.
   * Resolves when all of them have closed. A second call returns the first drain's promise.
   */
  drainGradually(drainMs: number, mover?: DrainMover): Promise<void> {
    if (this.#drain !== undefined) return this.#drain.done;
    const sessions = [...this.#sessions];
    this.#deps.logger.info(
      { sessions: sessions.length, drainMs, isMoving: mover !== undefined },
      "draining fan-out sessions",
    );
    const intervalMs = sessions.length === 0 ? 0 : drainMs / sessions.length;
    this.#drain = closeGradually(sessions, drainMs, (s) => {
      // Already moving (a rebalance sent it away): the move in flight ends it, as the client leaves or when
      // its grace runs out; closing it now would cut its leave short.
      if (this.#leaving.has(s)) return;
      if (mover !== undefined && this.canMove(s)) {
        const plan = mover.plan(intervalMs);
        if (plan !== undefined && this.move(s, "shutting-down", plan.delayMs, plan.hint, plan.closeAfterMs))
          return;
      }
      this.close(s, CloseCode.shuttingDown, "shuttingDown", "server shutting down");
    });
    return this.#drain.done;
  }

  /** Stops a gradual drain and terminates every open session now; resolves when their sockets closed. */
  terminateAll(): Promise<void> {
    this.#drain?.cancel();
    for (const leaving of this.#leaving.values()) clearTimeout(leaving.timer);
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
