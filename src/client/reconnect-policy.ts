import { CloseCode } from "../../proto/close-codes.js";
import type { SessionEnd } from "./connection.js";
import type { PickHints } from "./server-picker.js";

/** Where and when to try next after a session ended. */
export interface ReconnectPlan {
  readonly retryInMs: number;
  /** For ServerPicker.pick: a server to go back to (resume) or to (move hint), and one to leave. */
  readonly hints: PickHints;
  /** The server asked the client to leave (move, 4007, 4008): the picker avoids it for a while. */
  readonly hasLeft: boolean;
}

/**
 * The reconnect decision after a (non-fatal) session end, per PROTOCOL.md §10:
 * - after a `move`: wait out its delay (counted from when it came), avoid that server, prefer its hint
 *   (firmly for a draining server's move: it goes away; a rebalance hint back to a server the client
 *   was moved away from recently is ignored when there is another choice); no backoff: a move is not a
 *   failure;
 * - 4007 rebalance / 4008 shuttingDown: back off (jittered), avoid that server;
 * - a healthy session the server ended (drop, 4005 tooSlow, 4011, ...): back off, prefer the same server,
 *   where the client can resume;
 * - anything else (failed attempts, local timeouts, bad frames): back off; the picker moves on to
 *   servers not tried in this round.
 * `nextBackoffMs` is only called when the plan backs off (so a move does not grow the backoff).
 */
export function planReconnect(end: SessionEnd, nextBackoffMs: () => number, nowMs: number): ReconnectPlan {
  if (end.move !== undefined) {
    const { message, receivedAtMs } = end.move;
    return {
      retryInMs: Math.max(0, receivedAtMs + message.delayMs - nowMs),
      hints: {
        avoid: end.server,
        ...(message.hint !== undefined && { prefer: message.hint }),
        isPreferFirm: message.reason !== "rebalance",
      },
      hasLeft: true,
    };
  }
  const retryInMs = nextBackoffMs();
  if (end.closeCode === CloseCode.rebalance || end.closeCode === CloseCode.shuttingDown) {
    return { retryInMs, hints: { avoid: end.server }, hasLeft: true };
  }
  if (end.hadBaseline && !end.isLocal) return { retryInMs, hints: { prefer: end.server }, hasLeft: false };
  return { retryInMs, hints: {}, hasLeft: false };
}
