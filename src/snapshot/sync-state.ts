import type { SyncState, ViewName } from "../../proto/messages.js";
import { VIEWS } from "./kinds.js";

/** The upstream state of one kind, as the datastore reports it. */
export interface KindState {
  readonly state: SyncState;
  /** Epoch ms since when the kind has been in this state. */
  readonly since: number;
  readonly reason?: string;
}

export interface ViewStatus {
  readonly state: SyncState;
  readonly since: number;
  readonly reason?: string;
  /** The stale (or still syncing) kinds. */
  readonly kinds?: readonly string[];
}

/**
 * A view is stale when any of its kinds is stale, syncing while any kind has never been listed, and in
 * sync otherwise. A kind with no reported state counts as syncing.
 */
export function viewStatus(view: ViewName, kinds: ReadonlyMap<string, KindState>): ViewStatus {
  const stale: string[] = [];
  const syncing: string[] = [];
  let staleSince = Number.POSITIVE_INFINITY;
  let syncingSince = Number.POSITIVE_INFINITY;
  let inSyncSince = 0;
  const reasons: string[] = [];
  for (const kind of VIEWS[view].kinds) {
    const s = kinds.get(kind);
    if (s === undefined) {
      syncing.push(kind);
      syncingSince = Math.min(syncingSince, 0);
      continue;
    }
    if (s.state === "stale") {
      stale.push(kind);
      staleSince = Math.min(staleSince, s.since);
      if (s.reason !== undefined) reasons.push(`${kind}: ${s.reason}`);
    } else if (s.state === "syncing") {
      syncing.push(kind);
      syncingSince = Math.min(syncingSince, s.since);
    } else {
      inSyncSince = Math.max(inSyncSince, s.since);
    }
  }
  if (stale.length > 0) {
    return {
      state: "stale",
      since: staleSince,
      kinds: stale,
      reason: reasons.join("; ").slice(0, 4000) || "upstream watch failing",
    };
  }
  if (syncing.length > 0) return { state: "syncing", since: syncingSince, kinds: syncing };
  return { state: "in-sync", since: inSyncSince };
}
