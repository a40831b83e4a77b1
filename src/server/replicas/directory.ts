import type { Logger } from "pino";
import type { PeerDirectory, ReplicaPeer } from "./peers.js";
import { fetchPeerStatus } from "./status-fetch.js";
import type { StatusFetcher } from "./status-fetch.js";

/** A replica as the source (EndpointSlices, a static list) describes it. */
export interface Member {
  readonly url: string;
  /** Where its /status is read (load, and readiness for a static list). Absent: not polled. */
  readonly statusUrl?: string;
  /** The source's word on readiness (an EndpointSlice condition). Ignored for a static list. */
  readonly isReady: boolean;
  /** The source knows it is this server (pod name, pod IP, advertised URL). */
  readonly isSelf: boolean;
  readonly node?: string;
  readonly zone?: string;
}

/**
 * Where readiness comes from: `source` (EndpointSlices: Kubernetes decided from the readiness probes), or
 * `status` (a static list: the peer's own /status `ready`, false until it answered).
 */
export type ReadinessFrom = "source" | "status";

/** How the directory was filled, for /status. */
export type DirectorySource = "endpoint-slices" | "static" | "none";

export interface ReplicasReport {
  readonly source: DirectorySource;
  /** readyReplicas(). */
  readonly ready: number;
  readonly peers: readonly ReplicaPeer[];
}

export interface ReplicaDirectoryDeps {
  readonly source: DirectorySource;
  readonly readinessFrom: ReadinessFrom;
  /** This server's id: a peer whose /status names it is this server (a static list, or port 0 in tests). */
  readonly serverId: () => string;
  /** This server's agent address, shown when no member is recognized as this server. */
  readonly selfUrl: () => string;
  /** This server's own session count and readiness, read when asked (never polled over HTTP). */
  readonly selfSessions: () => number;
  readonly isSelfReady: () => boolean;
  readonly logger: Logger;
  /** Poll every peer's /status this often (ms). 0: never (tests call refresh()). */
  readonly pollMs: number;
  /** Bound of one /status read (ms). */
  readonly pollTimeoutMs: number;
  readonly clock?: () => number;
  /** Default fetchPeerStatus (node:http). */
  readonly fetchStatus?: StatusFetcher;
}

interface PeerState {
  member: Member;
  /** Readiness from the last /status read (static list). */
  isStatusReady: boolean;
  /** The peer's /status said it is this server. */
  isSelfById: boolean;
  sessions?: number;
  sessionsReadAtMs?: number;
  /** When this server first saw it ready in its current ready stretch (see #markReadiness). */
  readySinceMs?: number;
}

/**
 * The replicas of this server's Service: the members a source sets (setMembers), their readiness, which
 * one is this server, and their load (each peer's /status `connections.active`, polled every pollMs with
 * a bounded timeout). Implements PeerDirectory for the balancer. `close()` stops the polling.
 */
export class ReplicaDirectory implements PeerDirectory {
  readonly #deps: ReplicaDirectoryDeps;
  readonly #clock: () => number;
  readonly #fetch: StatusFetcher;
  readonly #listeners = new Set<() => void>();
  readonly #abort = new AbortController();
  #peers = new Map<string, PeerState>();
  #timer: NodeJS.Timeout | undefined;
  #polling: Promise<void> | undefined;
  #isClosed = false;

  constructor(deps: ReplicaDirectoryDeps) {
    this.#deps = deps;
    this.#clock = deps.clock ?? Date.now;
    this.#fetch = deps.fetchStatus ?? fetchPeerStatus;
  }

  get source(): DirectorySource {
    return this.#deps.source;
  }

  /** Starts the polling (a first round now). Idempotent. */
  start(): void {
    if (this.#isClosed || this.#timer !== undefined || this.#deps.pollMs === 0) return;
    void this.refresh();
    this.#timer = setInterval(() => void this.refresh(), this.#deps.pollMs);
    this.#timer.unref();
  }

  /** Stops the polling and aborts the reads in flight. Idempotent. */
  close(): void {
    this.#isClosed = true;
    clearInterval(this.#timer);
    this.#abort.abort();
    this.#listeners.clear();
  }

  /** Replaces the members (a changed EndpointSlice). Known peers keep their load figures. */
  setMembers(members: readonly Member[]): void {
    const next = new Map<string, PeerState>();
    let isChanged = members.length !== this.#peers.size;
    for (const m of members) {
      const had = this.#peers.get(m.url);
      if (had === undefined) {
        isChanged = true;
        next.set(m.url, { member: m, isStatusReady: false, isSelfById: false });
        continue;
      }
      if (!sameMember(had.member, m)) isChanged = true;
      next.set(m.url, { ...had, member: m });
    }
    this.#peers = next;
    this.#markReadiness();
    if (isChanged) this.#emit();
  }

  /**
   * Starts or ends each other peer's ready stretch (its readySinceMs) from what the directory now shows.
   * Not this server's own: nothing reads it, and the server may not exist yet (the first setMembers).
   */
  #markReadiness(): void {
    const nowMs = this.#clock();
    for (const p of this.#peers.values()) {
      if (this.#isSelf(p) || !this.#isReady(p)) delete p.readySinceMs;
      else p.readySinceMs ??= nowMs;
    }
  }

  /**
   * The replicas the Service routes agents to, as its source says: this server counts when it is listed
   * ready (its EndpointSlice condition; for a static list, its own readiness), or when it is not listed
   * at all (an endpoint not published yet), so that every replica counts the same set. Never below 1.
   */
  readyReplicas(): number {
    let n = 0;
    let hasSelf = false;
    for (const p of this.#peers.values()) {
      const isSelf = this.#isSelf(p);
      hasSelf ||= isSelf;
      if (isSelf ? this.#isSelfReady(p) : this.#isReady(p)) n++;
    }
    return Math.max(1, hasSelf ? n : n + 1);
  }

  peers(): readonly ReplicaPeer[] {
    const out: ReplicaPeer[] = [];
    let hasSelf = false;
    for (const p of this.#peers.values()) {
      const isSelf = this.#isSelf(p);
      hasSelf ||= isSelf;
      out.push(this.#peerOf(p, isSelf));
    }
    if (!hasSelf) {
      out.push({
        url: this.#deps.selfUrl(),
        ready: this.#deps.isSelfReady(),
        self: true,
        sessions: this.#deps.selfSessions(),
        sessionsReadAtMs: this.#clock(),
      });
    }
    return out;
  }

  onChange(listener: () => void): () => void {
    if (this.#isClosed) return () => undefined;
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  report(): ReplicasReport {
    return { source: this.#deps.source, ready: this.readyReplicas(), peers: this.peers() };
  }

  /**
   * Reads every peer's /status once (not this server's: its figures are local), all at once, each bounded
   * by pollTimeoutMs; then tells the listeners once if anything changed. A round still running is joined.
   */
  refresh(): Promise<void> {
    this.#polling ??= this.#poll().finally(() => (this.#polling = undefined));
    return this.#polling;
  }

  async #poll(): Promise<void> {
    const targets = [...this.#peers.values()].filter(
      (p) =>
        p.member.statusUrl !== undefined &&
        !p.member.isSelf &&
        !p.isSelfById &&
        (this.#deps.readinessFrom === "status" || p.member.isReady),
    );
    const results = await Promise.all(targets.map((p) => this.#read(p)));
    this.#markReadiness();
    if (!this.#isClosed && results.includes(true)) this.#emit();
  }

  /** One peer's read; true when something the directory shows changed. */
  async #read(p: PeerState): Promise<boolean> {
    const url = p.member.statusUrl as string;
    const signal = AbortSignal.any([this.#abort.signal, AbortSignal.timeout(this.#deps.pollTimeoutMs)]);
    const before = { ready: p.isStatusReady, self: p.isSelfById, sessions: p.sessions };
    try {
      const status = await this.#fetch(url, signal);
      if (this.#peers.get(p.member.url) !== p) return false; // removed meanwhile
      p.isSelfById = status.server === this.#deps.serverId();
      p.isStatusReady = status.isReady;
      p.sessions = status.sessions;
      p.sessionsReadAtMs = this.#clock();
    } catch (err) {
      if (this.#isClosed) return false;
      // Normal while a peer starts or goes: its readiness (static list) drops, its last figure stays.
      this.#deps.logger.debug({ err, url }, "peer /status not read");
      p.isStatusReady = false;
    }
    const isReadyShown = this.#deps.readinessFrom === "status";
    return (
      (isReadyShown && before.ready !== p.isStatusReady) ||
      before.self !== p.isSelfById ||
      before.sessions !== p.sessions
    );
  }

  #isSelf(p: PeerState): boolean {
    return p.member.isSelf || p.isSelfById;
  }

  #isSelfReady(p: PeerState): boolean {
    return this.#deps.readinessFrom === "status" ? this.#deps.isSelfReady() : p.member.isReady;
  }

  #isReady(p: PeerState): boolean {
    return this.#deps.readinessFrom === "source" ? p.member.isReady : p.isStatusReady;
  }

  #peerOf(p: PeerState, isSelf: boolean): ReplicaPeer {
    const m = p.member;
    const ready = isSelf ? this.#isSelfReady(p) : this.#isReady(p);
    const load = isSelf
      ? { sessions: this.#deps.selfSessions(), sessionsReadAtMs: this.#clock() }
      : {
          ...(p.sessions !== undefined && { sessions: p.sessions }),
          ...(p.sessionsReadAtMs !== undefined && { sessionsReadAtMs: p.sessionsReadAtMs }),
        };
    return {
      url: m.url,
      ready,
      self: isSelf,
      ...(m.node !== undefined && { node: m.node }),
      ...(m.zone !== undefined && { zone: m.zone }),
      ...load,
      ...(ready && p.readySinceMs !== undefined && { readySinceMs: p.readySinceMs }),
    };
  }

  #emit(): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener();
      } catch (err) {
        this.#deps.logger.error({ err }, "a replica directory listener threw");
      }
    }
  }
}

function sameMember(a: Member, b: Member): boolean {
  return (
    a.url === b.url &&
    a.statusUrl === b.statusUrl &&
    a.isReady === b.isReady &&
    a.isSelf === b.isSelf &&
    a.node === b.node &&
    a.zone === b.zone
  );
}
