/**
 * Fair share and move hints (issue 9): every `intervalMs` (jittered) a server compares the sessions it
 * holds with its fair share of all sessions across the ready replicas and, above the share plus slack,
 * asks its earliest-arrived sessions that understand `move` to go to ready peers below the share (each
 * shedder filling its part of their room, in proportion to its excess), a few per round, with a jittered
 * delay; it closes them with 4007 if they have not left after the delay plus a grace. On shutdown it gives
 * the drain a mover that hints the other ready replicas. Sessions without the `move` feature are never
 * moved (only closed at shutdown). See docs/OPERATIONS.md ("Balancing").
 */
import type { Logger } from "pino";
import type { DrainMover } from "../fanout/drain.js";
import { FanoutOptionError } from "../fanout/errors.js";
import type { Session } from "../fanout/session.js";
import type { SessionRegistry } from "../fanout/session-registry.js";
import {
  fairShare,
  freshSessions,
  hintAllowances,
  movesWanted,
  pickByAllowance,
  pickHint,
  pickSessions,
  readyOthers,
} from "./balancer-policy.js";
import type { FairShare } from "./balancer-policy.js";
import type { PeerDirectory, ReplicaPeer } from "./peers.js";

/** Tuning of the balancer. Every field is optional; the default and unit are in its comment. */
export interface BalancerOptions {
  /** How often the fair share is checked, in ms (each wait jittered by ±20%). 0 disables rebalancing. Default 1000. */
  readonly intervalMs?: number;
  /** Sessions a replica may hold above its share before it moves any, as a share of it. Default 0.05 (at least 1 session). */
  readonly slackRatio?: number;
  /** Sessions asked to move per round, as a share of the sessions held (at least 1). Default 0.05. */
  readonly maxMoveRatio?: number;
  /** A move's delay is uniform in [0, this] ms (the client waits it out before reconnecting). Default 2000. */
  readonly moveDelayMaxMs?: number;
  /** A moved session still connected this many ms after its delay is closed by the server (4007/4008). Default 5000. */
  readonly moveGraceMs?: number;
  /** A peer's reported session count older than this many ms does not count. Default 60,000. */
  readonly loadMaxAgeMs?: number;
  /**
   * A peer seen ready for less than this many ms gets no rebalance hint (and the drain prefers the
   * others): just ready, it is still applying the watch events since its lists, and the agents sent to it
   * would wait for it to reach their state. Its sessions and readiness count in the share. Default 5000.
   */
  readonly peerWarmupMs?: number;
}

type ResolvedBalancerOptions = Required<BalancerOptions>;

export const BALANCER_DEFAULTS: ResolvedBalancerOptions = {
  intervalMs: 1000,
  slackRatio: 0.05,
  maxMoveRatio: 0.05,
  moveDelayMaxMs: 2000,
  moveGraceMs: 5000,
  loadMaxAgeMs: 60_000,
  peerWarmupMs: 5000,
};

/** A directory with this server alone: no peer, nothing to balance (the default). */
export const ALONE: PeerDirectory = {
  readyReplicas: () => 1,
  peers: () => [],
  onChange: () => () => undefined,
};

export interface BalancerDeps {
  readonly sessions: SessionRegistry;
  readonly peers: PeerDirectory;
  /** Node objects in the store (the cluster's size, for the estimate when peers' loads are unknown). */
  readonly nodeCount: () => number;
  /** False while the server is not ready (syncing, stale) or draining: no rebalancing then. */
  readonly isActive: () => boolean;
  readonly logger: Logger;
  /** Epoch ms. Default Date.now. */
  readonly clock?: () => number;
  /** In [0, 1). Default Math.random. */
  readonly random?: () => number;
  readonly options?: BalancerOptions;
}

/** The balancer in /status. */
export interface BalanceReport {
  readonly readyReplicas: number;
  /** The last round's fair share (null when there was nothing to balance: alone, not ready, draining). */
  readonly share: number | null;
  readonly limit: number | null;
  readonly total: number | null;
  /** Sessions connected to the ready replicas in the last round (`total` is never below the last 30 s's). */
  readonly connected: number | null;
  readonly source: FairShare["source"] | null;
  readonly isShedding: boolean;
  /** Sessions sent a move that are still connected. */
  readonly leaving: number;
}

/** A hint sent to a peer, counted against its load until the client should have arrived there. */
interface HintRecord {
  readonly url: string;
  readonly arrivesAtMs: number;
}

/** Delay for the client to reconnect and say hello, beyond its move delay, when counting hints. */
const ARRIVAL_MARGIN_MS = 1000;

/**
 * How long a round's total of sessions (from the peers' figures) keeps the share up: longer than a moved
 * agent takes to arrive (its delay, up to 2 s, and a connection attempt that may time out, 10 s).
 */
export const TOTAL_MEMORY_MS = 30_000;

export class Balancer {
  readonly #deps: BalancerDeps;
  readonly #o: ResolvedBalancerOptions;
  readonly #clock: () => number;
  readonly #random: () => number;
  #timer: NodeJS.Timeout | undefined;
  #isShedding = false;
  #isClosed = false;
  #share: FairShare | undefined;
  #hints: HintRecord[] = [];
  /** The peers-sourced totals of the rounds within TOTAL_MEMORY_MS, oldest first. */
  #totals: { readonly atMs: number; readonly total: number }[] = [];
  #drainCursor = 0;

  constructor(deps: BalancerDeps) {
    this.#deps = deps;
    this.#o = resolveBalancerOptions(deps.options);
    this.#clock = deps.clock ?? Date.now;
    this.#random = deps.random ?? Math.random;
  }

  /** The fair share of the last round (undefined before one ran, or while there was no peer). */
  get share(): FairShare | undefined {
    return this.#share;
  }

  get isShedding(): boolean {
    return this.#isShedding;
  }

  report(): BalanceReport {
    const share = this.#share;
    return {
      readyReplicas: this.#deps.peers.readyReplicas(),
      share: share?.share ?? null,
      limit: share?.limit ?? null,
      total: share?.total ?? null,
      connected: share?.connected ?? null,
      source: share?.source ?? null,
      isShedding: this.#isShedding,
      leaving: this.#deps.sessions.leavingCount,
    };
  }

  /** Starts the rounds (no-op when intervalMs is 0 or after close). Idempotent. */
  start(): void {
    if (this.#isClosed || this.#timer !== undefined || this.#o.intervalMs === 0) return;
    this.#arm();
  }

  /** Stops the rounds. Idempotent. */
  close(): void {
    this.#isClosed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** One balancing round: computes the share and sends the moves it calls for. Returns how many were sent. */
  round(): number {
    const { sessions, peers } = this.#deps;
    const nowMs = this.#clock();
    const others = peers.peers().filter((p) => !p.self);
    const readyReplicas = peers.readyReplicas();
    if (readyReplicas <= 1 || !others.some((p) => p.ready) || !this.#deps.isActive()) {
      this.#share = undefined;
      this.#isShedding = false;
      this.#totals = [];
      return 0;
    }
    this.#totals = this.#totals.filter((t) => t.atMs > nowMs - TOTAL_MEMORY_MS);
    const own = sessions.establishedCount;
    const nodes = new Set<string>();
    for (const s of sessions.established()) if (s.node !== undefined) nodes.add(s.node);
    const share = fairShare(
      {
        ownSessions: own,
        ownNodes: nodes.size,
        nodeCount: this.#deps.nodeCount(),
        readyReplicas,
        peers: others,
        nowMs,
        loadMaxAgeMs: this.#o.loadMaxAgeMs,
        recentTotal: this.#totals.reduce((a, t) => Math.max(a, t.total), 0),
      },
      this.#o.slackRatio,
    );
    this.#share = share;
    if (share.source === "peers") this.#totals.push({ atMs: nowMs, total: share.connected });
    const maxPerRound = Math.max(1, Math.ceil(own * this.#o.maxMoveRatio));
    const wanted = movesWanted(own, sessions.leavingCount, share, this.#isShedding, maxPerRound);
    if (wanted.isShedding !== this.#isShedding) {
      this.#deps.logger.info(
        { sessions: own, share: share.share, limit: share.limit, total: share.total, source: share.source },
        wanted.isShedding
          ? "over the fair share: moving sessions to other replicas"
          : "back at the fair share",
      );
    }
    this.#isShedding = wanted.isShedding;
    if (wanted.count === 0) return 0;
    const candidates = pickSessions(
      [...sessions.established()].map((s) => candidate(s, sessions)),
      wanted.count,
    );
    let sent = 0;
    this.#pruneHints(nowMs);
    const warm = others.filter((p) => this.#isWarm(p, nowMs));
    // With every peer's load known, move only within the room this server may fill at a peer below the
    // share (hintAllowances; none left: nowhere to go yet). Otherwise the least loaded peer known, if any.
    const allowances =
      share.source === "peers"
        ? hintAllowances(
            others,
            this.#hintCounts(others, nowMs),
            own,
            share.share,
            nowMs,
            this.#o.loadMaxAgeMs,
            share.total - share.connected,
          )
        : undefined;
    if (allowances !== undefined) {
      for (const p of others) if (!warm.includes(p)) allowances.delete(p.url);
    }
    for (const c of candidates) {
      let hint: string | undefined;
      if (allowances !== undefined) {
        hint = pickByAllowance(allowances, this.#random);
        if (hint === undefined) break;
      } else {
        hint = pickHint(warm, this.#hintCounts(warm, nowMs), nowMs, this.#o.loadMaxAgeMs);
      }
      const delayMs = Math.floor(this.#random() * (this.#o.moveDelayMaxMs + 1));
      if (sessions.move(c.session, "rebalance", delayMs, hint, delayMs + this.#o.moveGraceMs)) {
        sent++;
        if (hint !== undefined) {
          this.#hints.push({ url: hint, arrivesAtMs: nowMs + delayMs + ARRIVAL_MARGIN_MS });
          allowances?.set(hint, (allowances.get(hint) ?? 0) - 1);
        }
      }
    }
    return sent;
  }

  /**
   * The drain's mover, or undefined when no other replica is ready (sessions are then closed with 4008).
   * Hints go to the least loaded ready peer when loads are known, else round-robin over the ready peers.
   */
  drainMover(): DrainMover | undefined {
    if (readyOthers(this.#deps.peers.peers()).length === 0) return undefined;
    return {
      plan: (spacingMs) => {
        const nowMs = this.#clock();
        const peers = this.#deps.peers.peers();
        const ready = readyOthers(peers);
        if (ready.length === 0) return undefined;
        this.#pruneHints(nowMs);
        const others = peers.filter((p) => !p.self);
        // Warmed-up peers first; a just-ready one rather than none (every session must go).
        const warm = others.filter((p) => this.#isWarm(p, nowMs));
        let hint =
          pickHint(warm, this.#hintCounts(warm, nowMs), nowMs, this.#o.loadMaxAgeMs) ??
          pickHint(others, this.#hintCounts(others, nowMs), nowMs, this.#o.loadMaxAgeMs);
        hint ??= ready[this.#drainCursor++ % ready.length];
        const delayMs = Math.floor(this.#random() * (Math.min(this.#o.moveDelayMaxMs, spacingMs) + 1));
        if (hint !== undefined)
          this.#hints.push({ url: hint, arrivesAtMs: nowMs + delayMs + ARRIVAL_MARGIN_MS });
        return { delayMs, hint, closeAfterMs: delayMs + this.#o.moveGraceMs };
      },
    };
  }

  #arm(): void {
    const jitter = 0.8 + 0.4 * this.#random();
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        if (this.#isClosed) return;
        try {
          this.round();
        } catch (err) {
          this.#deps.logger.error({ err }, "balancing round failed");
        }
        this.#arm();
      },
      Math.round(this.#o.intervalMs * jitter),
    );
  }

  /** Ready for at least peerWarmupMs (a peer whose directory does not say since when counts as warm). */
  #isWarm(p: ReplicaPeer, nowMs: number): boolean {
    return p.readySinceMs === undefined || nowMs - p.readySinceMs >= this.#o.peerWarmupMs;
  }

  /** Hints sent to each peer that its last reported figure cannot include yet. */
  #hintCounts(peers: readonly ReplicaPeer[], nowMs: number): Map<string, number> {
    const readAt = new Map<string, number>();
    for (const p of peers) {
      if (freshSessions(p, nowMs, this.#o.loadMaxAgeMs) !== undefined)
        readAt.set(p.url, p.sessionsReadAtMs ?? nowMs);
    }
    const counts = new Map<string, number>();
    for (const h of this.#hints) {
      const at = readAt.get(h.url);
      if (at !== undefined && h.arrivesAtMs <= at) continue;
      counts.set(h.url, (counts.get(h.url) ?? 0) + 1);
    }
    return counts;
  }

  #pruneHints(nowMs: number): void {
    const horizon = nowMs - this.#o.loadMaxAgeMs;
    if (this.#hints.length > 0 && (this.#hints[0]?.arrivesAtMs ?? 0) < horizon) {
      this.#hints = this.#hints.filter((h) => h.arrivesAtMs >= horizon);
    }
  }
}

function candidate(
  s: Session,
  sessions: SessionRegistry,
): { id: number; canMove: boolean; isLive: boolean; isLeaving: boolean; session: Session } {
  return {
    id: s.id,
    canMove: sessions.canMove(s),
    isLive: s.phase === "live" && !s.isLagging,
    isLeaving: sessions.isLeaving(s),
    session: s,
  };
}

/** Fills in the defaults and validates; throws FanoutOptionError naming the field. */
export function resolveBalancerOptions(options: BalancerOptions = {}): ResolvedBalancerOptions {
  const o = { ...BALANCER_DEFAULTS, ...stripUndefined(options) };
  const check = (field: keyof BalancerOptions, isOk: boolean): void => {
    if (!isOk) throw new FanoutOptionError(`balancer.${field}`, `invalid value ${String(o[field])}`);
  };
  check("intervalMs", Number.isSafeInteger(o.intervalMs) && o.intervalMs >= 0);
  check("slackRatio", Number.isFinite(o.slackRatio) && o.slackRatio >= 0 && o.slackRatio <= 1);
  check("maxMoveRatio", Number.isFinite(o.maxMoveRatio) && o.maxMoveRatio > 0 && o.maxMoveRatio <= 1);
  check("moveDelayMaxMs", Number.isSafeInteger(o.moveDelayMaxMs) && o.moveDelayMaxMs >= 0);
  check("moveGraceMs", Number.isSafeInteger(o.moveGraceMs) && o.moveGraceMs >= 0);
  check("loadMaxAgeMs", Number.isSafeInteger(o.loadMaxAgeMs) && o.loadMaxAgeMs > 0);
  check("peerWarmupMs", Number.isSafeInteger(o.peerWarmupMs) && o.peerWarmupMs >= 0);
  return o;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
