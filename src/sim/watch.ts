import type { ServerResponse } from "node:http";
import type { StoredEvent } from "./collection.js";
import { expiredError, statusOf } from "./errors.js";
import type { ResourceDef } from "./resources.js";

export interface WatchHubOptions {
  /** Period of BOOKMARK events to watches that asked for them. */
  readonly bookmarkIntervalMs: number;
  /** A watch whose socket has more than this queued (a client not reading) is ended. */
  readonly maxBufferedBytes: number;
  /** A stalled watch that accumulates more than this is ended. */
  readonly maxPendingBytes: number;
  /** The store's current resourceVersion (for bookmarks). */
  readonly currentRv: () => number;
}

export interface WatchStart {
  readonly def: ResourceDef;
  /** Only objects of this namespace (a namespaced watch path), or all. */
  readonly namespace: string | undefined;
  readonly allowBookmarks: boolean;
  readonly timeoutMs: number;
  /** Lines to send first (synthetic ADDED events or retained history). */
  readonly initialLines: readonly string[];
}

const MAX_TIMER_MS = 2 ** 31 - 1;

/** One open watch response: a chunked stream of JSON lines. */
class Watcher {
  readonly def: ResourceDef;
  readonly namespace: string | undefined;
  readonly allowBookmarks: boolean;
  readonly res: ServerResponse;
  readonly #hub: WatchHub;
  #pending: string[] = [];
  #pendingBytes = 0;
  #timer: NodeJS.Timeout | undefined;
  #isEnded = false;

  constructor(hub: WatchHub, res: ServerResponse, start: WatchStart) {
    this.#hub = hub;
    this.res = res;
    this.def = start.def;
    this.namespace = start.namespace;
    this.allowBookmarks = start.allowBookmarks;
    this.#timer = setTimeout(() => this.end(), Math.min(start.timeoutMs, MAX_TIMER_MS));
    res.on("close", () => this.#closed());
    res.on("error", () => {
      hub.stats.writeErrors++; // the connection failed under us: 'close' follows and cleans up
    });
  }

  get isEnded(): boolean {
    return this.#isEnded;
  }

  enqueue(line: string): void {
    if (this.#isEnded) return;
    this.#pending.push(line);
    this.#pendingBytes += line.length;
    if (this.#pendingBytes > this.#hub.options.maxPendingBytes) {
      this.#hub.stats.overflowed++;
      this.abort();
    }
  }

  /** Writes what is pending; ends the watch when the client does not keep up. */
  flush(): void {
    if (this.#isEnded || this.#pending.length === 0) return;
    const text = this.#pending.length === 1 ? this.#pending[0]! : this.#pending.join("");
    this.#pending = [];
    this.#pendingBytes = 0;
    this.res.write(text);
    if (this.res.writableLength > this.#hub.options.maxBufferedBytes) {
      this.#hub.stats.slowClosed++;
      this.abort();
    }
  }

  /** Ends the response normally (after what is pending, unless the hub is stalled). */
  end(finalLine?: string): void {
    if (this.#isEnded) return;
    if (this.#hub.isStalled) this.#pending = [];
    if (finalLine !== undefined) this.#pending.push(finalLine);
    this.flush();
    this.#isEnded = true;
    this.res.end();
    this.#closed();
  }

  /** Cuts the connection without a clean end. */
  abort(): void {
    this.res.destroy();
    this.#closed();
  }

  #closed(): void {
    this.#isEnded = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#pending = [];
    this.#hub.forget(this);
  }
}

/**
 * The open watches, by resource. Each change is serialized once (StoredEvent.line) and the same string is
 * queued to every matching watch; queues are written once per event-loop turn.
 */
export class WatchHub {
  readonly options: WatchHubOptions;
  readonly stats = { opened: 0, slowClosed: 0, overflowed: 0, bookmarks: 0, writeErrors: 0 };
  readonly #byDef = new Map<ResourceDef, Set<Watcher>>();
  readonly #dirty = new Set<Watcher>();
  #flushScheduled: NodeJS.Immediate | undefined;
  #bookmarkTimer: NodeJS.Timeout | undefined;
  #isStalled = false;
  #count = 0;

  constructor(options: WatchHubOptions) {
    this.options = options;
    this.#bookmarkTimer = setInterval(() => this.sendBookmarks(), options.bookmarkIntervalMs);
  }

  get openCount(): number {
    return this.#count;
  }

  get isStalled(): boolean {
    return this.#isStalled;
  }

  /** While stalled, watches stay open but nothing is written; what queued meanwhile is sent afterwards. */
  setStalled(on: boolean): void {
    this.#isStalled = on;
    if (!on) for (const set of this.#byDef.values()) for (const w of set) this.#markDirty(w);
  }

  open(res: ServerResponse, start: WatchStart): void {
    res.writeHead(200, { "content-type": "application/json", "cache-control": "no-cache, private" });
    res.flushHeaders();
    const w = new Watcher(this, res, start);
    let set = this.#byDef.get(start.def);
    if (set === undefined) this.#byDef.set(start.def, (set = new Set()));
    set.add(w);
    this.#count++;
    this.stats.opened++;
    for (const line of start.initialLines) w.enqueue(line);
    this.#markDirty(w);
  }

  /** Queues a change to every watch of its resource (and namespace). */
  dispatch(def: ResourceDef, ev: StoredEvent): void {
    const set = this.#byDef.get(def);
    if (set === undefined || set.size === 0) return;
    const line = ev.line;
    for (const w of set) {
      if (w.namespace !== undefined && w.namespace !== ev.namespace) continue;
      w.enqueue(line);
      this.#markDirty(w);
    }
  }

  /** A BOOKMARK at the current resourceVersion to every watch that allows them (none while stalled). */
  sendBookmarks(): void {
    if (this.#isStalled) return;
    const rv = String(this.options.currentRv());
    for (const [def, set] of this.#byDef) {
      const line = `{"type":"BOOKMARK","object":${JSON.stringify({
        kind: def.kind,
        apiVersion: def.apiVersion,
        metadata: { resourceVersion: rv },
      })}}\n`;
      for (const w of set) {
        if (!w.allowBookmarks) continue;
        w.enqueue(line);
        this.#markDirty(w);
        this.stats.bookmarks++;
      }
    }
  }

  /** Ends every watch (of one resource, or all) normally. */
  endAll(def?: ResourceDef): void {
    for (const w of this.#watchers(def)) w.end();
  }

  /** Sends an ERROR event with a 410 Expired Status to every watch, then ends it. */
  expireAll(): void {
    const rv = this.options.currentRv();
    const line = `{"type":"ERROR","object":${JSON.stringify(statusOf(expiredError(rv, rv + 1)))}}\n`;
    for (const w of this.#watchers()) w.end(line);
  }

  /** Cuts every watch connection without a clean end. */
  destroyAll(): void {
    for (const w of this.#watchers()) w.abort();
  }

  forget(w: Watcher): void {
    const set = this.#byDef.get(w.def);
    if (set?.delete(w) === true) this.#count--;
    this.#dirty.delete(w);
  }

  close(): void {
    if (this.#bookmarkTimer !== undefined) clearInterval(this.#bookmarkTimer);
    this.#bookmarkTimer = undefined;
    if (this.#flushScheduled !== undefined) clearImmediate(this.#flushScheduled);
    this.#flushScheduled = undefined;
    this.destroyAll();
  }

  #watchers(def?: ResourceDef): Watcher[] {
    if (def !== undefined) return [...(this.#byDef.get(def) ?? [])];
    return [...this.#byDef.values()].flatMap((s) => [...s]);
  }

  #markDirty(w: Watcher): void {
    if (this.#isStalled) return;
    this.#dirty.add(w);
    this.#flushScheduled ??= setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#flushScheduled = undefined;
    if (this.#isStalled) return;
    const dirty = [...this.#dirty];
    this.#dirty.clear();
    for (const w of dirty) w.flush();
  }
}
