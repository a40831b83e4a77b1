import { VIEW_NAMES } from "../../../proto/messages.js";
import type { ViewName } from "../../../proto/messages.js";
import type { Hub } from "../../snapshot/hub.js";
import { VIEWS } from "../../snapshot/kinds.js";
import type { KindState, ViewStatus } from "../../snapshot/sync-state.js";
import type { BalanceReport } from "../replicas/balancer.js";
import type { MoveCounts } from "../replicas/balancer-metrics.js";
import type { FanoutCounts } from "./metrics.js";
import type { Session } from "./session.js";

export interface Percentiles {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

export interface ViewReport {
  readonly status: ViewStatus;
  /** Revision of the view's newest change. */
  readonly lastChangeRevision: number;
  /** Entries of the view (node-scoped ones included). */
  readonly entries: number;
  readonly log: { readonly entries: number; readonly bytes: number; readonly floor: number };
  /** Sessions past the handshake. */
  readonly connections: number;
  readonly live: number;
  readonly lagging: number;
  readonly framesEncoded: number;
  readonly framesSent: number;
  readonly snapshotsGenerated: number;
  readonly snapshotsReused: number;
  readonly snapshotsCompressed: number;
  /** Chunks of compressed snapshots compressed anew, and reused unchanged from the view's previous build. */
  readonly snapshotChunks: { readonly compressed: number; readonly reused: number };
  readonly updates: number;
}

export interface StatusReport {
  readonly server: string;
  /** The flushed head revision. */
  readonly revision: number;
  readonly pendingChanges: number;
  /** The flush window now (ms): the base window, wider while the server is overloaded. */
  readonly flushWindowMs: number;
  /** The widest flush window used since start (ms). */
  readonly flushWindowMsMax: number;
  readonly ready: boolean;
  readonly notReadyReason?: string;
  readonly draining: boolean;
  readonly connections: { readonly active: number; readonly handshaking: number };
  readonly views: Readonly<Record<ViewName, ViewReport>>;
  /** Upstream state per Calico kind, as the datastore reported it. */
  readonly kinds: Readonly<Record<string, KindState>>;
  /**
   * How long live sessions have been lagging (0 when in step), and the bytes queued in user space for
   * every session past the handshake (snapshots in flight included).
   */
  readonly lag: {
    readonly sessions: number;
    readonly lagging: number;
    readonly laggingMs: Percentiles;
    readonly bufferedBytes: Percentiles;
  };
  readonly counters: {
    readonly accepted: number;
    readonly dropped: FanoutCounts["dropped"];
    readonly badFrames: FanoutCounts["badFrames"];
    readonly laggingStarted: number;
    readonly catchUps: number;
    readonly pongs: number;
    readonly updatesSkipped: number;
    /** Sessions resumed without a snapshot, by where the token came from (PROTOCOL.md §5.2). */
    readonly resumes: FanoutCounts["resumes"];
    /** Resume tokens answered with a snapshot, by reason (tabby_resume_refusals_total). */
    readonly resumeRefusals: FanoutCounts["resumeRefusals"];
    /** Resumes that waited for this server to reach their state, by outcome (§5.2.1). */
    readonly resumeWaits: FanoutCounts["resumeWaits"];
  };
  /** Fair share and moves (src/server/replicas/balancer.ts). */
  readonly balance?: BalanceReport & { readonly moves: MoveCounts };
}

export interface StatusInput {
  readonly serverId: string;
  readonly hub: Hub;
  readonly nowMs: number;
  readonly sessions: ReadonlySet<Session>;
  readonly sessionsOf: (view: ViewName) => ReadonlySet<Session>;
  readonly viewStatus: (view: ViewName) => ViewStatus;
  readonly kinds: ReadonlyMap<string, KindState>;
  readonly counts: FanoutCounts;
  readonly notReadyReason: string | undefined;
  readonly isDraining: boolean;
  readonly flushWindow: { readonly currentMs: number; readonly widestMs: number };
}

/** Entries in a view: the sum over its kinds. */
export function viewEntryCount(hub: Hub, view: ViewName): number {
  let n = 0;
  for (const kind of VIEWS[view].kinds) n += hub.store.countOfKind(kind);
  return n;
}

/** Live, lagging, and not being closed. */
function isLaggingNow(s: Session): boolean {
  return s.phase === "live" && s.isLagging && s.closeCode === undefined;
}

/** Sessions of a view that are lagging right now. */
export function laggingCount(sessions: ReadonlySet<Session>): number {
  let n = 0;
  for (const s of sessions) if (isLaggingNow(s)) n++;
  return n;
}

export function buildStatusReport(input: StatusInput): StatusReport {
  const { hub, counts } = input;
  const laggingMs: number[] = [];
  const buffered: number[] = [];
  const views = {} as Record<ViewName, ViewReport>;
  let streaming = 0;
  let laggingTotal = 0;
  for (const view of VIEW_NAMES) {
    const sessions = input.sessionsOf(view);
    let live = 0;
    let lagging = 0;
    for (const s of sessions) {
      buffered.push(s.bufferedAmount);
      if (s.phase !== "live") continue;
      live++;
      const isLagging = isLaggingNow(s);
      if (isLagging) lagging++;
      laggingMs.push(isLagging ? input.nowMs - s.laggingSinceMs : 0);
    }
    streaming += sessions.size;
    laggingTotal += lagging;
    const log = hub.log(view);
    views[view] = {
      status: input.viewStatus(view),
      lastChangeRevision: log.lastEntryRevision,
      entries: viewEntryCount(hub, view),
      log: { entries: log.size, bytes: log.bytes, floor: log.floor },
      connections: sessions.size,
      live,
      lagging,
      framesEncoded: counts.framesEncoded[view],
      framesSent: counts.framesSent[view],
      snapshotsGenerated: counts.snapshotsGenerated[view],
      snapshotsReused: counts.snapshotsReused[view],
      snapshotsCompressed: counts.snapshotsCompressed[view],
      snapshotChunks: { ...counts.snapshotChunks[view] },
      updates: counts.updates[view],
    };
  }
  return {
    server: input.serverId,
    revision: hub.revision,
    pendingChanges: hub.pendingCount,
    flushWindowMs: input.flushWindow.currentMs,
    flushWindowMsMax: input.flushWindow.widestMs,
    ready: input.notReadyReason === undefined,
    ...(input.notReadyReason !== undefined && { notReadyReason: input.notReadyReason }),
    draining: input.isDraining,
    connections: { active: input.sessions.size, handshaking: input.sessions.size - streaming },
    views,
    kinds: Object.fromEntries(input.kinds),
    lag: {
      sessions: laggingMs.length,
      lagging: laggingTotal,
      laggingMs: percentiles(laggingMs),
      bufferedBytes: percentiles(buffered),
    },
    counters: {
      accepted: counts.accepted,
      dropped: { ...counts.dropped },
      badFrames: { ...counts.badFrames },
      laggingStarted: counts.laggingStarted,
      catchUps: counts.catchUps,
      pongs: counts.pongs,
      updatesSkipped: counts.updatesSkipped,
      resumes: { ...counts.resumes },
      resumeRefusals: { ...counts.resumeRefusals },
      resumeWaits: { ...counts.resumeWaits },
    },
  };
}

function percentiles(values: number[]): Percentiles {
  if (values.length === 0) return { p50: 0, p90: 0, p99: 0, max: 0 };
  const sorted = values.sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: sorted[sorted.length - 1] ?? 0 };
}
