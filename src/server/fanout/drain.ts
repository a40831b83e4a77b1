import type { Session } from "./session.js";

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
