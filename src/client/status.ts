import type { StatusMessage } from "../../proto/messages.js";
import type { TabbyClientError } from "./errors.js";

/**
 * The client's state, as the application sees it:
 * - `connecting`: an attempt to a server is under way;
 * - `syncing`: connected, the baseline (snapshot or resume) or the server's own sync is not complete;
 * - `in-sync`: the mirror matches the server, and the server says its view is in sync with the cluster;
 * - `stale`: the server says some of its upstream watches have been failing (`kinds`, `reason`): the data
 *   is the last the server had;
 * - `disconnected`: between attempts (`retryInMs` says when the next one starts);
 * - `closed`: for good (close(), the AbortSignal, or every server rejected the client).
 */
export type ClientState = "connecting" | "syncing" | "in-sync" | "stale" | "disconnected" | "closed";

export interface ClientStatus {
  readonly state: ClientState;
  /** The address of the server this is about. */
  readonly server?: string;
  /** The id of that server (from its welcome). */
  readonly serverId?: string;
  /** The server's reason (stale, syncing), or why the session ended (disconnected, closed). */
  readonly reason?: string;
  /** For stale (and syncing): the kinds concerned, as the server reported them. */
  readonly kinds?: readonly string[];
  /** For disconnected: the WebSocket close code (1006 when the socket dropped). */
  readonly closeCode?: number;
  /** For disconnected and closed: the error behind it, if any. */
  readonly error?: TabbyClientError;
  /** For disconnected: the delay before the next attempt. */
  readonly retryInMs?: number;
}

/** The per-session facts the connected states derive from. */
export interface SessionView {
  readonly server: string;
  readonly serverId: string | undefined;
  readonly hasBaseline: boolean;
  readonly serverStatus: StatusMessage | undefined;
}

/** The status while connected: syncing until the baseline and the server's in-sync, then the server's state. */
export function sessionStatus(session: SessionView): ClientStatus {
  const base = {
    server: session.server,
    ...(session.serverId !== undefined && { serverId: session.serverId }),
  };
  const s = session.serverStatus;
  if (session.serverId === undefined) return { state: "connecting", ...base };
  if (!session.hasBaseline || s === undefined || s.state === "syncing") {
    return {
      state: "syncing",
      ...base,
      ...(s?.reason !== undefined && { reason: s.reason }),
      ...(s?.kinds !== undefined && { kinds: s.kinds }),
    };
  }
  if (s.state === "in-sync") return { state: "in-sync", ...base };
  return {
    state: "stale",
    ...base,
    ...(s.reason !== undefined && { reason: s.reason }),
    ...(s.kinds !== undefined && { kinds: s.kinds }),
  };
}

/** True when two statuses would read the same to the application (no event for a repeat). */
export function isSameStatus(a: ClientStatus, b: ClientStatus): boolean {
  if (a.state !== b.state || a.server !== b.server || a.serverId !== b.serverId || a.reason !== b.reason) {
    return false;
  }
  const ak = a.kinds ?? [];
  const bk = b.kinds ?? [];
  return ak.length === bk.length && ak.every((k, i) => k === bk[i]) && a.state !== "disconnected";
}
