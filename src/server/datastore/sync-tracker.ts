import type { SyncState } from "../../../proto/messages.js";
import type { UpstreamSink } from "../../snapshot/sink.js";
import type { KindState } from "../../snapshot/sync-state.js";
import type { UpstreamResource } from "./types.js";

interface ResourceHealth {
  readonly resource: UpstreamResource;
  hasListed: boolean;
  /** Epoch ms since when the list/watch has been failing; undefined while healthy. */
  failingSince: number | undefined;
  failReason: string | undefined;
  /** The current failure streak started with a silent watch: only real data ends it. */
  isSilenceFailure: boolean;
  isStale: boolean;
  staleTimer: NodeJS.Timeout | undefined;
}

/** The API server as a whole, as the upstream probe sees it (one per datastore, not per kind). */
interface UpstreamHealth {
  failingSince: number | undefined;
  failReason: string | undefined;
  isStale: boolean;
  staleTimer: NodeJS.Timeout | undefined;
}

const RANK: Record<SyncState, number> = { "in-sync": 0, syncing: 1, stale: 2 };

/**
 * The sync state of each Calico kind, from the health of the resources producing it: a resource is
 * syncing until its first list completed, in sync after, stale once its list/watch has been failing
 * for staleAfterMs (and in sync again when it recovers). A kind takes the worst state of its resources
 * (Profile comes from Namespaces and ServiceAccounts). Changes go to `sink.setKindState`.
 */
export class SyncTracker {
  readonly #sink: UpstreamSink;
  readonly #clock: () => number;
  readonly #staleAfterMs: number;
  readonly #health = new Map<UpstreamResource, ResourceHealth>();
  readonly #byKind = new Map<string, ResourceHealth[]>();
  readonly #states = new Map<string, KindState>();
  readonly #upstream: UpstreamHealth = {
    failingSince: undefined,
    failReason: undefined,
    isStale: false,
    staleTimer: undefined,
  };
  #isClosed = false;

  constructor(deps: {
    resources: readonly UpstreamResource[];
    sink: UpstreamSink;
    clock: () => number;
    staleAfterMs: number;
  }) {
    this.#sink = deps.sink;
    this.#clock = deps.clock;
    this.#staleAfterMs = deps.staleAfterMs;
    for (const resource of deps.resources) {
      const h: ResourceHealth = {
        resource,
        hasListed: false,
        failingSince: undefined,
        failReason: undefined,
        isSilenceFailure: false,
        isStale: false,
        staleTimer: undefined,
      };
      this.#health.set(resource, h);
      for (const kind of resource.kinds) {
        const list = this.#byKind.get(kind) ?? [];
        list.push(h);
        this.#byKind.set(kind, list);
      }
    }
  }

  /** Reports every kind as syncing (call once, at start). */
  start(): void {
    for (const kind of this.#byKind.keys()) this.#recompute(kind);
  }

  states(): ReadonlyMap<string, KindState> {
    return this.#states;
  }

  kinds(): Iterable<string> {
    return this.#byKind.keys();
  }

  isStale(kind: string): boolean {
    return this.#states.get(kind)?.state === "stale";
  }

  /** A full list of the resource completed (or the resource is not installed). */
  listed(resource: UpstreamResource): void {
    const h = this.#get(resource);
    h.hasListed = true;
    this.#heal(h);
  }

  /**
   * The resource answered: `data` for a list page or a watch event/bookmark, `established` for a watch
   * that opened. A failure streak that began with a silent watch ends only with data.
   */
  healthy(resource: UpstreamResource, evidence: "data" | "established"): void {
    const h = this.#get(resource);
    if (h.failingSince === undefined) return;
    if (evidence === "established" && h.isSilenceFailure) return;
    this.#heal(h);
  }

  /**
   * The resource's list/watch failed. `sinceMs` (default now) is when the trouble started: for a silent
   * watch, the last time anything arrived.
   */
  failing(
    resource: UpstreamResource,
    reason: string,
    opts: { sinceMs?: number; isSilence?: boolean } = {},
  ): void {
    if (this.#isClosed) return;
    const h = this.#get(resource);
    h.failReason = reason.slice(0, 300);
    if (h.failingSince !== undefined) return;
    const now = this.#clock();
    h.failingSince = Math.min(now, opts.sinceMs ?? now);
    // A watch gone silent while the API server as a whole does not answer is explained by that outage:
    // the re-opened watch is evidence enough once the server is back (it may stay quiet on a quiet cluster).
    h.isSilenceFailure = opts.isSilence === true && this.#upstream.failingSince === undefined;
    const dueMs = Math.max(0, h.failingSince + this.#staleAfterMs - now);
    h.staleTimer = setTimeout(() => {
      h.staleTimer = undefined;
      if (this.#isClosed || h.failingSince === undefined) return;
      h.isStale = true;
      for (const kind of h.resource.kinds) this.#recompute(kind);
    }, dueMs);
  }

  /**
   * The API server did not answer a probe: every kind goes stale once it has been failing for
   * staleAfterMs, counted from `sinceMs`, the last time anything was heard from it.
   */
  upstreamFailing(reason: string, sinceMs: number): void {
    if (this.#isClosed) return;
    const u = this.#upstream;
    u.failReason = reason.slice(0, 300);
    if (u.failingSince !== undefined) return;
    const now = this.#clock();
    u.failingSince = Math.min(now, sinceMs);
    u.staleTimer = setTimeout(
      () => {
        u.staleTimer = undefined;
        if (this.#isClosed || u.failingSince === undefined) return;
        u.isStale = true;
        for (const kind of this.#byKind.keys()) this.#recompute(kind);
      },
      Math.max(0, u.failingSince + this.#staleAfterMs - now),
    );
  }

  /** The API server answered a probe. */
  upstreamHealthy(): void {
    const u = this.#upstream;
    if (u.failingSince === undefined) return;
    if (u.staleTimer !== undefined) clearTimeout(u.staleTimer);
    const wasStale = u.isStale;
    u.staleTimer = undefined;
    u.failingSince = undefined;
    u.failReason = undefined;
    u.isStale = false;
    if (wasStale) for (const kind of this.#byKind.keys()) this.#recompute(kind);
  }

  /** True while the probe has the API server failing (stale or not yet). */
  get isUpstreamFailing(): boolean {
    return this.#upstream.failingSince !== undefined;
  }

  close(): void {
    this.#isClosed = true;
    for (const h of this.#health.values()) {
      if (h.staleTimer !== undefined) clearTimeout(h.staleTimer);
      h.staleTimer = undefined;
    }
    if (this.#upstream.staleTimer !== undefined) clearTimeout(this.#upstream.staleTimer);
    this.#upstream.staleTimer = undefined;
  }

  #get(resource: UpstreamResource): ResourceHealth {
    const h = this.#health.get(resource);
    if (h === undefined) throw new RangeError(`resource ${resource.plural} is not tracked`);
    return h;
  }

  #heal(h: ResourceHealth): void {
    if (h.staleTimer !== undefined) clearTimeout(h.staleTimer);
    h.staleTimer = undefined;
    h.failingSince = undefined;
    h.failReason = undefined;
    h.isSilenceFailure = false;
    h.isStale = false;
    for (const kind of h.resource.kinds) this.#recompute(kind);
  }

  #recompute(kind: string): void {
    if (this.#isClosed) return;
    let state: SyncState = "in-sync";
    let reason: string | undefined;
    if (this.#upstream.isStale) {
      state = "stale";
      reason = `API server: ${this.#upstream.failReason ?? "not answering"}`;
    }
    for (const h of this.#byKind.get(kind) ?? []) {
      const s: SyncState = h.isStale ? "stale" : h.hasListed ? "in-sync" : "syncing";
      if (RANK[s] > RANK[state]) state = s;
      if (h.isStale && h.failReason !== undefined) {
        reason = reason === undefined ? `${h.resource.plural}: ${h.failReason}` : reason;
      }
    }
    const prev = this.#states.get(kind);
    if (prev !== undefined && prev.state === state && prev.reason === reason) return;
    const next: KindState =
      reason === undefined ? { state, since: this.#clock() } : { state, since: this.#clock(), reason };
    this.#states.set(kind, next);
    this.#sink.setKindState(kind, next);
  }
}
