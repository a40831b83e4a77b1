/**
 * The balancer's decisions, as pure functions of what the server knows (no timers, no sockets): the fair
 * share, whether to shed, which peer to hint, and which sessions to move. The balancer (balancer.ts) feeds
 * them with the session registry, the peer directory and the store's Node count.
 */
import type { ReplicaPeer } from "./peers.js";

/** What every replica knows, the same way: the inputs of the fair share. */
export interface ShareInputs {
  /** Sessions past the hello on this server (every view). */
  readonly ownSessions: number;
  /** Distinct nodes named by those sessions (0 when none names a node). */
  readonly ownNodes: number;
  /** Node objects in the store (Calico `Node` kind): the cluster's size. */
  readonly nodeCount: number;
  /** Ready replicas, this one included (at least 1). */
  readonly readyReplicas: number;
  /** The other replicas (ready or not); their `sessions` count when known and fresh. */
  readonly peers: readonly ReplicaPeer[];
  /** Epoch ms now, and how old a peer's `sessions` figure may be to count. */
  readonly nowMs: number;
  readonly loadMaxAgeMs: number;
  /**
   * The largest total of the last rounds (the balancer keeps it for TOTAL_MEMORY_MS), or undefined. The
   * total counts only connected sessions: while moved agents are on their way (their delay, a connection
   * attempt that times out) it dips, and the share with it, so that the replica they went to would find
   * itself over its share and move them on. The share never uses less than this.
   */
  readonly recentTotal?: number;
}

export interface FairShare {
  /** Sessions across the ready replicas that the share divides. */
  readonly total: number;
  /**
   * With source "peers": the sessions connected to the ready replicas now (`total` before `recentTotal`).
   * With "nodes": this server's own.
   */
  readonly connected: number;
  /** Where `total` comes from: every ready peer's reported sessions, or the Node count estimate. */
  readonly source: "peers" | "nodes";
  /** ceil(total / readyReplicas): what every replica should hold. */
  readonly share: number;
  /** share + slack: above this a replica starts moving sessions (down to `share`). */
  readonly limit: number;
}

/** A peer's reported sessions, when it is known and fresh enough to count. */
export function freshSessions(peer: ReplicaPeer, nowMs: number, maxAgeMs: number): number | undefined {
  if (peer.sessions === undefined) return undefined;
  if (peer.sessionsReadAtMs !== undefined && nowMs - peer.sessionsReadAtMs > maxAgeMs) return undefined;
  return peer.sessions;
}

/**
 * The fair share. Total sessions = this server's plus every other ready replica's reported figure, when
 * each of them is known and fresh; otherwise an estimate from the store: Node count × the sessions per
 * node seen here (an agent may hold a felix and a bgp session), never below this server's own count.
 * From the peers' figures, the total is never below `recentTotal` (agents in transit still count).
 * share = ceil(total / readyReplicas); limit = share + max(1, ceil(share × slackRatio)). No floor: a new
 * replica's share is the same as everyone's (Typha's 400-connection floor keeps it empty).
 */
export function fairShare(inputs: ShareInputs, slackRatio: number): FairShare {
  const readyReplicas = Math.max(1, inputs.readyReplicas);
  const readyPeers = inputs.peers.filter((p) => !p.self && p.ready);
  const reported = readyPeers.map((p) => freshSessions(p, inputs.nowMs, inputs.loadMaxAgeMs));
  let total: number;
  let connected = inputs.ownSessions;
  let source: FairShare["source"];
  if (
    readyPeers.length > 0 &&
    readyPeers.length === readyReplicas - 1 &&
    reported.every((n) => n !== undefined)
  ) {
    connected = inputs.ownSessions + reported.reduce<number>((a, n) => a + (n ?? 0), 0);
    total = Math.max(connected, inputs.recentTotal ?? 0);
    source = "peers";
  } else {
    const perNode = inputs.ownNodes > 0 ? inputs.ownSessions / inputs.ownNodes : 1;
    total = Math.max(inputs.ownSessions, Math.round(inputs.nodeCount * Math.max(1, perNode)));
    source = "nodes";
  }
  const share = Math.ceil(total / readyReplicas);
  const limit = share + Math.max(1, Math.ceil(share * slackRatio));
  return { total, connected, source, share, limit };
}

/**
 * How many sessions to ask to move now. Hysteresis: shedding starts above `limit` and, once started,
 * continues until the sessions not already leaving are down to `share`; `leaving` counts sessions sent a
 * move that are still connected. At most `maxPerRound` per round.
 */
export function movesWanted(
  own: number,
  leaving: number,
  share: FairShare,
  isShedding: boolean,
  maxPerRound: number,
): { readonly count: number; readonly isShedding: boolean } {
  const staying = own - leaving;
  const shedding = isShedding ? staying > share.share : own > share.limit;
  if (!shedding) return { count: 0, isShedding: false };
  return { count: Math.max(0, Math.min(maxPerRound, staying - share.share)), isShedding: true };
}

/**
 * The least loaded ready peer (not this one) whose load is known: its reported sessions plus the hints
 * this server sent it since that figure was read (`hinted`). Undefined when no peer's load is known. The
 * drain's hint: every session must go, wherever there is most room.
 */
export function pickHint(
  peers: readonly ReplicaPeer[],
  hinted: ReadonlyMap<string, number>,
  nowMs: number,
  loadMaxAgeMs: number,
): string | undefined {
  let best: { url: string; load: number } | undefined;
  for (const { url, sessions } of knownLoads(peers, nowMs, loadMaxAgeMs)) {
    const load = sessions + (hinted.get(url) ?? 0);
    if (best === undefined || load < best.load || (load === best.load && url < best.url)) {
      best = { url, load };
    }
  }
  return best?.url;
}

/** The ready peers (not this server) whose session count is known and fresh, with that count. */
function knownLoads(
  peers: readonly ReplicaPeer[],
  nowMs: number,
  loadMaxAgeMs: number,
): { url: string; sessions: number }[] {
  const out: { url: string; sessions: number }[] = [];
  for (const p of peers) {
    if (p.self || !p.ready) continue;
    const sessions = freshSessions(p, nowMs, loadMaxAgeMs);
    if (sessions !== undefined) out.push({ url: p.url, sessions });
  }
  return out;
}

/**
 * How many sessions this server may still hint to each ready peer below the share (rebalancing). A peer's
 * room (share − its reported sessions) is split among the replicas over the share in proportion to their
 * excess (own − share here, the reported figure for the others), rounded up, less the hints this server
 * sent it since that figure was read (`hinted`). Every replica reads the same figures, so together they
 * fill a peer's room about once instead of each filling all of it while the figures are stale (which
 * pushed the new replica over its share and made it move the agents just moved there). Sessions in
 * transit (`inTransit`: the share's total less the sessions connected now, which includes this server's
 * own hints still on their way) shrink every room in proportion, since the figures do not show them yet.
 * Peers with no room are left out.
 */
export function hintAllowances(
  peers: readonly ReplicaPeer[],
  hinted: ReadonlyMap<string, number>,
  ownSessions: number,
  share: number,
  nowMs: number,
  loadMaxAgeMs: number,
  inTransit = 0,
): Map<string, number> {
  const loads = knownLoads(peers, nowMs, loadMaxAgeMs);
  const othersExcess = loads.reduce((a, l) => a + Math.max(0, l.sessions - share), 0);
  const ownExcess = Math.max(0, ownSessions - share);
  const fraction = ownExcess + othersExcess > 0 ? ownExcess / (ownExcess + othersExcess) : 1;
  // Sessions on no replica (the total's recent largest less those connected), other than this server's
  // own hints, are presumed on their way to the peers with room: those rooms are that much smaller.
  const ownHinted = [...hinted.values()].reduce((a, n) => a + n, 0);
  const othersInTransit = Math.max(0, inTransit - ownHinted);
  const totalRoom = loads.reduce((a, l) => a + Math.max(0, share - l.sessions), 0);
  const kept = totalRoom > 0 ? Math.max(0, 1 - othersInTransit / totalRoom) : 0;
  const out = new Map<string, number>();
  for (const { url, sessions } of loads) {
    const room = (share - sessions) * kept;
    if (room <= 0) continue;
    const allowance = Math.ceil(room * fraction) - (hinted.get(url) ?? 0);
    if (allowance > 0) out.set(url, allowance);
  }
  return out;
}

/**
 * A peer from `allowances` (hintAllowances), weighted by its allowance, so that sessions spread over the
 * peers with room in proportion to it. Undefined when none is left. Stable order (by URL) for a given r.
 */
export function pickByAllowance(
  allowances: ReadonlyMap<string, number>,
  random: () => number,
): string | undefined {
  const entries = [...allowances].filter(([, n]) => n > 0).sort(([a], [b]) => (a < b ? -1 : 1));
  const total = entries.reduce((a, [, n]) => a + n, 0);
  if (total === 0) return undefined;
  let r = random() * total;
  for (const [url, n] of entries) {
    r -= n;
    if (r < 0) return url;
  }
  return entries[entries.length - 1]?.[0];
}

/** Ready peers other than this server (where a drained session can go), in a stable order. */
export function readyOthers(peers: readonly ReplicaPeer[]): string[] {
  return peers
    .filter((p) => !p.self && p.ready)
    .map((p) => p.url)
    .sort();
}

/** A session as the balancer sees it. */
export interface MoveCandidate {
  /** Increasing with arrival (the registry's session id). */
  readonly id: number;
  readonly canMove: boolean;
  readonly isLive: boolean;
  readonly isLeaving: boolean;
}

/**
 * The sessions to move: live sessions that negotiated `move` and were not already asked, earliest arrival
 * first. A session that has just arrived (perhaps moved here) is the last to be moved on, so a moved agent
 * is not moved again while older sessions are left.
 */
export function pickSessions<T extends MoveCandidate>(sessions: Iterable<T>, count: number): T[] {
  if (count <= 0) return [];
  const eligible: T[] = [];
  for (const s of sessions) if (s.canMove && s.isLive && !s.isLeaving) eligible.push(s);
  eligible.sort((a, b) => a.id - b.id);
  return eligible.slice(0, count);
}
