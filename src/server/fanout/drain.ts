import type { Session } from "./session.js";

/** How a drain moves a session that negotiated `move` (the balancer knows the other replicas). */
export interface DrainMover {
  /**
   * The move for the next session (`spacingMs`: the drain's time between two sessions), or undefined when
   * there is no other ready replica to go to (then the session is closed with shuttingDown).
   */
  plan(
    spacingMs: number,
  ):
    | { readonly delayMs: number; readonly hint: string | undefined; readonly closeAfterMs: number }
    | undefined;
}

export interface GradualClose {
  /** Resolves when every session has closed. */
  readonly done: Promise<void>;
  /** Stops closing (the sessions left open stay open). */
  cancel(): void;
}

/**
 * Closes `sessions` one at a time, evenly spread over `spreadMs` (the first at once, the last at about
 * spreadMs × (n-1)/n), so that their clients do not all reconnect at the same moment. Sessions that closed
 * on their own meanwhile are skipped.
 */
export function closeGradually(
  sessions: readonly Session[],
  spreadMs: number,
  close: (session: Session) => void,
): GradualClose {
  const intervalMs = sessions.length === 0 ? 0 : spreadMs / sessions.length;
  let next = 0;
  let timer: NodeJS.Timeout | undefined;
  const step = (): void => {
    timer = undefined;
    const session = sessions[next++];
    if (session === undefined) return;
    if (session.phase !== "closed") close(session);
    if (next < sessions.length) timer = setTimeout(step, intervalMs);
  };
  step();
  return {
    done: Promise.all(sessions.map((s) => s.closed)).then(() => undefined),
    cancel: () => {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    },
  };
}
