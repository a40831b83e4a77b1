import type { ResourceValue, ViewName } from "../../../proto/messages.js";
import type { Hub } from "../../snapshot/hub.js";
import { kindOfKey } from "../../snapshot/keys.js";
import { viewsOfKind } from "../../snapshot/kinds.js";
import type { PreparedValue } from "../../snapshot/prepared.js";
import type { UpstreamSink } from "../../snapshot/sink.js";
import type { KindState } from "../../snapshot/sync-state.js";
import { performance } from "node:perf_hooks";
import type { FanoutQueue } from "./fanout-queue.js";
import { FlushWindow } from "./flush-window.js";
import type { LiveStream } from "./live-stream.js";
import type { FanoutMetrics } from "./metrics.js";
import type { ViewStatusBoard } from "./view-status.js";

export interface IngestDeps {
  readonly hub: Hub;
  readonly live: LiveStream;
  readonly queue: FanoutQueue;
  readonly metrics: FanoutMetrics;
  readonly board: ViewStatusBoard;
  /** Changes are batched for this long before they are flushed to the sessions (the base window). */
  readonly flushWindowMs: number;
  /** Under load the window widens up to this (FlushWindow). */
  readonly flushWindowMaxMs: number;
  /** Monotonic ms, for the timer's lateness. Default performance.now. */
  readonly monotonicMs?: () => number;
}

/**
 * The upstream side of the fan-out: the datastore writes into the Hub through it (UpstreamSink), and it
 * flushes the pending changes to the live stream once per flush window (later while the previous fan-out
 * is still being written), counting the updates per view.
 */
export class Ingest implements UpstreamSink {
  readonly #deps: IngestDeps;
  readonly #pendingUpdates = new Map<ViewName, number>();
  readonly #window: FlushWindow;
  readonly #monotonicMs: () => number;
  #flushTimer: NodeJS.Timeout | undefined;
  #isClosed = false;
  readonly #flushListeners: (() => void)[] = [];
  readonly #statusListeners: ((views: readonly ViewName[]) => void)[] = [];

  constructor(deps: IngestDeps) {
    this.#deps = deps;
    this.#window = new FlushWindow(deps.flushWindowMs, deps.flushWindowMaxMs);
    this.#monotonicMs = deps.monotonicMs ?? (() => performance.now());
  }

  /** The flush window now, and the widest used since start (ms). */
  get flushWindow(): { readonly currentMs: number; readonly widestMs: number } {
    return this.#window;
  }

  upsert(key: string, value: ResourceValue): void {
    if (this.#deps.hub.upsert(key, value)) this.#changed(key);
    else this.#deps.metrics.updateSkipped();
  }

  upsertPrepared(key: string, prepared: PreparedValue): void {
    if (this.#deps.hub.upsertPrepared(key, prepared)) this.#changed(key);
    else this.#deps.metrics.updateSkipped();
  }

  delete(key: string): void {
    if (this.#deps.hub.delete(key)) this.#changed(key);
    else this.#deps.metrics.updateSkipped();
  }

  /** A copy: the caller may upsert and delete while it walks the keys (a relist diff does). */
  keysOfKind(kind: string): Iterable<string> {
    return [...this.#deps.hub.store.keysOfKind(kind)];
  }

  /** Records a kind's upstream state; views whose status changes get the new status after the pending deltas. */
  setKindState(kind: string, state: KindState): void {
    const changed = this.#deps.board.setKindState(kind, state);
    if (changed.length === 0) return;
    this.flushNow();
    for (const view of changed) this.#deps.live.broadcastStatus(view);
    for (const listener of this.#statusListeners) listener(changed);
  }

  /** Calls `listener` with the views whose status changed, after their sessions were sent it. */
  onStatusChanged(listener: (views: readonly ViewName[]) => void): void {
    this.#statusListeners.push(listener);
  }

  /** Flushes pending changes now: one frame per view, queued to every in-step session. */
  flushNow(): void {
    if (this.#flushTimer !== undefined) clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    for (const [view, n] of this.#pendingUpdates) this.#deps.metrics.updates(view, n);
    this.#pendingUpdates.clear();
    this.#deps.live.flush();
    for (const listener of this.#flushListeners) listener();
  }

  /** Calls `listener` after every flush (the hub has no pending change then). */
  onFlushed(listener: () => void): void {
    this.#flushListeners.push(listener);
  }

  /** Stops the flush timer for good (pending changes stay in the hub). */
  close(): void {
    this.#isClosed = true;
    if (this.#flushTimer !== undefined) clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
  }

  #changed(key: string): void {
    for (const view of viewsOfKind(kindOfKey(key))) {
      this.#pendingUpdates.set(view, (this.#pendingUpdates.get(view) ?? 0) + 1);
    }
    this.#scheduleFlush();
  }

  #scheduleFlush(): void {
    if (this.#flushTimer !== undefined || this.#isClosed) return;
    const windowMs = this.#window.currentMs;
    const dueAt = this.#monotonicMs() + windowMs;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = undefined;
      const isBusy = this.#deps.queue.length > 0;
      this.#window.observe(isBusy, this.#monotonicMs() - dueAt);
      this.#deps.metrics.flushWindow(this.#window.currentMs / 1000);
      // While the previous fan-out is still being written, let changes accumulate: the next batch is
      // bigger (coalesced per key) and the job queue stays short.
      if (isBusy) this.#scheduleFlush();
      else this.flushNow();
    }, windowMs);
  }
}
