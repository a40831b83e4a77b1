/**
 * The resource loop's waits with fake time (issue 12, item 3): backoff, Retry-After and the watchdog.
 * The loop's delay is injected (recorded here, then the real abortable sleep on faked timers), and the
 * Kubernetes HTTP client is a scripted stand-in: no sockets, no real time.
 */
import { PassThrough } from "node:stream";
import pino from "pino";
import { Registry } from "prom-client";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { DatastoreListError, findResource } from "../../src/server/datastore/index.js";
import type { KubeHttp } from "../../src/server/datastore/kube-http.js";
import { datastoreMetrics } from "../../src/server/datastore/metrics.js";
import { ResourceLoop } from "../../src/server/datastore/resource-loop.js";
import type { LoopOptions } from "../../src/server/datastore/resource-loop.js";
import { SyncTracker } from "../../src/server/datastore/sync-tracker.js";
import { sleep } from "../../src/server/datastore/timing.js";
import type { KindState, UpstreamSink } from "../../src/snapshot/index.js";

const OPTIONS: LoopOptions = {
  pageSize: 500,
  watchTimeoutSeconds: 300,
  watchdogMs: 1000,
  backoffInitialMs: 100,
  backoffMaxMs: 10_000,
  missingCrdRecheckMs: 60_000,
  maxEventBytes: 1 << 20,
  minWatchMs: 1000,
};

/** One list call: the page body, or the failure. */
type ListFn = () => Promise<Buffer>;

/** A scripted KubeHttp: `lists` answers list calls in turn (the last one repeats); watches never send. */
function fakeHttp(lists: ListFn[]): { http: KubeHttp; calls: { list: number; watch: number } } {
  const calls = { list: 0, watch: 0 };
  const http = {
    listBody: () => {
      const next = lists[Math.min(calls.list, lists.length - 1)]!;
      calls.list++;
      return next();
    },
    watch: (_path: string, _query: Record<string, string>, signal: AbortSignal) => {
      calls.watch++;
      const res = Object.assign(new PassThrough(), { complete: false });
      signal.addEventListener("abort", () => res.destroy(signal.reason as Error), { once: true });
      return Promise.resolve(res);
    },
  };
  return { http: http as unknown as KubeHttp, calls };
}

const page: ListFn = () => Promise.resolve(Buffer.from('{"metadata":{"resourceVersion":"10"},"items":[]}'));
const fail500: ListFn = () =>
  Promise.reject(new DatastoreListError("HTTP 500", { resource: "ippools", status: 500 }));
const fail429: ListFn = () =>
  Promise.reject(
    new DatastoreListError("HTTP 429", { resource: "ippools", status: 429, retryAfterMs: 5000 }),
  );

describe("ResourceLoop timing (fake timers)", () => {
  const ippools = findResource("ippools")!;
  let abort: AbortController;
  let registry: Registry;
  let delays: number[];
  let states: [string, KindState][];
  let tracker: SyncTracker;

  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
    abort = new AbortController();
    registry = new Registry();
    delays = [];
    states = [];
  });
  afterEach(async () => {
    abort.abort();
    tracker.close();
    await vi.runOnlyPendingTimersAsync();
    vi.useRealTimers();
  });

  function startLoop(lists: ListFn[]): { calls: { list: number; watch: number }; done: Promise<void> } {
    const sink: UpstreamSink = {
      upsert: () => undefined,
      upsertPrepared: () => undefined,
      delete: () => undefined,
      keysOfKind: () => [],
      setKindState: (kind, state) => states.push([kind, state]),
    };
    tracker = new SyncTracker({ resources: [ippools], sink, clock: () => Date.now(), staleAfterMs: 3000 });
    tracker.start();
    const { http, calls } = fakeHttp(lists);
    const loop = new ResourceLoop({
      resource: ippools,
      http,
      sink,
      tracker,
      metrics: datastoreMetrics(registry),
      logger: pino({ level: "silent" }),
      clock: () => Date.now(),
      random: () => 0, // every backoff is the low end of its range: d/2
      delay: (ms, signal) => {
        delays.push(ms);
        return sleep(ms, signal);
      },
      options: OPTIONS,
      signal: abort.signal,
      onActivity: () => undefined,
      onWatch: () => undefined,
    });
    return { calls, done: loop.run() };
  }

  it("backs off exponentially on errors, capped, and resets after a success", async () => {
    const { calls } = startLoop([fail500, fail500, fail500, fail500, page]);
    await vi.advanceTimersByTimeAsync(0);
    expect(calls.list).toBe(1);
    expect(delays).toEqual([50]);
    await vi.advanceTimersByTimeAsync(49);
    expect(calls.list).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls.list).toBe(2);
    await vi.advanceTimersByTimeAsync(100 + 200 + 400);
    expect(calls.list).toBe(5);
    expect(delays).toEqual([50, 100, 200, 400]);
    expect(calls.watch).toBe(1); // listed, now watching
    expect(states.at(-1)?.[1].state).toBe("in-sync");
  });

  it("waits as long as Retry-After asks (up to backoffMaxMs), not just the backoff", async () => {
    const { calls } = startLoop([fail429, page]);
    await vi.advanceTimersByTimeAsync(0);
    expect(delays).toEqual([5000]);
    await vi.advanceTimersByTimeAsync(4999);
    expect(calls.list).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls.list).toBe(2);
    expect(calls.watch).toBe(1);
  });

  it("the watchdog restarts a silent watch after watchdogMs and the kind goes stale", async () => {
    const { calls } = startLoop([page]);
    await vi.advanceTimersByTimeAsync(0);
    expect(calls.watch).toBe(1);
    await vi.advanceTimersByTimeAsync(999);
    expect(calls.watch).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    const restarts = await registry.getSingleMetric("tabby_upstream_watch_restarts_total")!.get();
    expect(restarts.values.find((v) => v.labels.reason === "watchdog")?.value).toBe(1);
    expect(delays).toEqual([50]); // the re-watch follows a backoff
    await vi.advanceTimersByTimeAsync(50);
    expect(calls.watch).toBe(2);
    expect(calls.list).toBe(1); // a re-watch from the last resourceVersion, no relist
    // Silent since the last activity (the list): stale staleAfterMs after it, though the watch re-opened.
    await vi.advanceTimersByTimeAsync(3000 - 1050);
    expect(states.at(-1)?.[1].state).toBe("stale");
    expect(states.at(-1)?.[1].reason).toMatch(/ERR_DATASTORE_WATCHDOG/);
  });
});
