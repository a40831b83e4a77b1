import type { ClientState } from "../src/client/index.js";

/** One move's gap: from the agent leaving in-sync to being in sync again, and the time in each state. */
export interface MoveGap {
  /** When the agent left in-sync (epoch ms). */
  readonly fromMs: number;
  readonly totalMs: number;
  readonly byState: Readonly<Partial<Record<ClientState, number>>>;
}

/**
 * Follows one agent's status changes and reports the gap of each move: the time from the agent leaving
 * in-sync (after the client received a `move`) until it is in sync again, on whichever replica, split by
 * the client states it went through. Absences without a move (a stale upstream, a dropped connection) are
 * not moves and are not reported. Pure: the caller passes the clock and the client's move count.
 */
export class MoveGapTracker {
  #state: ClientState = "disconnected";
  #stateSinceMs = 0;
  #outSinceMs = 0;
  #isMoveGap = false;
  #movesCounted = 0;
  #byState: Partial<Record<ClientState, number>> = {};

  /** A status change of the agent, with the client's `stats.moves` at that moment. A finished move's gap, if any. */
  onStatus(state: ClientState, moves: number, nowMs: number): MoveGap | undefined {
    const was = this.#state;
    if (state === was) return undefined;
    if (was !== "in-sync") this.#byState[was] = (this.#byState[was] ?? 0) + (nowMs - this.#stateSinceMs);
    this.#state = state;
    this.#stateSinceMs = nowMs;
    if (state === "in-sync") {
      if (!this.#isMoveGap) return undefined;
      this.#isMoveGap = false;
      return { fromMs: this.#outSinceMs, totalMs: nowMs - this.#outSinceMs, byState: this.#byState };
    }
    if (was === "in-sync") {
      // The move message comes before the session ends: it is counted by the time the agent leaves in-sync.
      this.#outSinceMs = nowMs;
      this.#byState = {};
      this.#isMoveGap = moves > this.#movesCounted;
      this.#movesCounted = moves;
    }
    return undefined;
  }
}
