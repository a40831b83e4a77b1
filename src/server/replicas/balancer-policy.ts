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
}

export interface FairShare {
  /** Sessions across the ready replicas that the share divides. */
  readonly total: number;
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
 * share = ceil(total / readyReplicas); limit = share + max(1, ceil(share × slackRatio)). No floor: a new
 * replica's share is the same as everyone's (Typha's 400-connection floor keeps it empty).
 */
export function fairShare(inputs: ShareInputs, slackRatio: number): FairShare {
  const readyReplicas = Math.max(1, inputs.readyReplicas);
  const readyPeers = inputs.peers.filter((p) => !p.self && p.ready);
  const reported = readyPeers.map((p) => freshSessions(p, inputs.nowMs, inputs.loadMaxAgeMs));
  let total: number;
  let source: FairShare["source"];
  if (
    readyPeers.length > 0 &&
    readyPeers.length === readyReplicas - 1 &&
    reported.every((n) => n !== undefined)
  ) {
    total = inputs.ownSessions + reported.reduce<number>((a, n) => a + (n ?? 0), 0);
    source = "peers";
  } else {
    const perNode = inputs.ownNodes > 0 ? inputs.ownSessions / inputs.ownNodes : 1;
    total = Math.max(inputs.ownSessions, Math.round(inputs.nodeCount * Math.max(1, perNode)));
    source = "nodes";
  }
  const share = Math.ceil(total / readyReplicas);
  const limit = share + Math.max(1, Math.ceil(share * slackRatio));
  return { total, source, share, limit };
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
 * The replica to hint, among the ready peers (not this one) whose load is known: their reported sessions
 * plus the hints this server sent them since that figure was read (`hinted`). With `belowOrAt` (the
 * share), only a peer below it qualifies (one at the share would be pushed over it: no hint rather than a
 * bounce), and with `random` the choice is weighted by how far below the share each peer is, so that
 * several replicas shedding at once spread their sessions instead of all picking the same least loaded
 * peer. Otherwise the least loaded peer. Undefined when no peer qualifies.
 */
export function pickHint(
  peers: readonly ReplicaPeer[],
  hinted: ReadonlyMap<string, number>,
  nowMs: number,
  loadMaxAgeMs: number,
  belowOrAt?: number,
  random?: () => number,
): string | undefined {
  const loads: { url: string; load: number }[] = [];
  for (const p of peers) {
    if (p.self || !p.ready) continue;
    const sessions = freshSessions(p, nowMs, loadMaxAgeMs);
    if (sessions === undefined) continue;
    const load = sessions + (hinted.get(p.url) ?? 0);
    if (belowOrAt !== undefined && load >= belowOrAt) continue;
    loads.push({ url: p.url, load });
  }
  if (loads.length === 0) return undefined;
  loads.sort((a, b) => a.load - b.load || (a.url < b.url ? -1 : 1));
  if (belowOrAt === undefined || random === undefined) return loads[0]?.url;
  const weights = loads.map((l) => belowOrAt - l.load);
  let r = random() * weights.reduce((a, w) => a + w, 0);
  for (const [i, l] of loads.entries()) {
    r -= weights[i] ?? 0;
    if (r < 0) return l.url;
  }
  return loads[loads.length - 1]?.url;
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
