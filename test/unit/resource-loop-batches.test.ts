/**
 * A watch's lines reach the ingest worker in batches, one in flight at a time (LineBatches): what the
 * stream delivers while a batch is converted goes out as the next batch, in order, and a failure stops
 * the watch at once even when the stream then stays quiet.
 */
import { PassThrough } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { findResource } from "../../src/server/datastore/index.js";
import { eventOf } from "../../src/server/datastore/ingest-outcome.js";
import type { IngestEvent } from "../../src/server/datastore/ingest-outcome.js";
import type { IngestWorker } from "../../src/server/datastore/ingest-worker.js";
import type { KubeHttp } from "../../src/server/datastore/kube-http.js";
import { LineBatches } from "../../src/server/datastore/resource-loop.js";
import type { SyncTracker } from "../../src/server/datastore/sync-tracker.js";
import { decodeWatchLines } from "../../src/server/datastore/watch-decoder.js";
import { keySink, startedTracker, testLoop } from "../support/resource-loop.js";

/** A promise and its resolver. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

/** Resolves once `check` holds, polling every few milliseconds (at most 2 s). */
async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(check()).toBe(true);
}

describe("LineBatches", () => {
  it("sends what arrives during a batch as the next batch, in order", async () => {
    const applied: string[] = [];
    const first = gate();
    let calls = 0;
    const batches = new LineBatches(
      async (lines) => {
        applied.push(lines.toString());
        if (calls++ === 0) await first.promise;
      },
      1 << 20,
      () => undefined,
    );
    await batches.push(Buffer.from("a\n"));
    await batches.push(Buffer.from("b\n"));
    await batches.push(Buffer.from("c\n"));
    expect(applied).toEqual(["a\n"]);
    first.open();
    await batches.drain();
    expect(applied).toEqual(["a\n", "b\nc\n"]);
  });

  it("makes the reader wait only while more than its bound is queued", async () => {
    const first = gate();
    const batches = new LineBatches(
      () => first.promise,
      4,
      () => undefined,
    );
    await batches.push(Buffer.from("aa\n")); // in flight
    await batches.push(Buffer.from("b\n")); // queued: 2 bytes, under the bound
    let isBack = false;
    const third = batches.push(Buffer.from("cc\n")).then(() => (isBack = true)); // 5 bytes queued
    await new Promise((r) => setTimeout(r, 20));
    expect(isBack).toBe(false);
    first.open();
    await third;
    expect(isBack).toBe(true);
    await batches.drain();
  });

  it("reports the first failure at once and applies nothing after it", async () => {
    const applied: string[] = [];
    const failures: unknown[] = [];
    const first = gate();
    const boom = new Error("boom");
    const batches = new LineBatches(
      async (lines) => {
        applied.push(lines.toString());
        await first.promise;
        if (applied.length === 1) throw boom;
      },
      1 << 20,
      (err) => failures.push(err),
    );
    await batches.push(Buffer.from("a\n"));
    await batches.push(Buffer.from("b\n"));
    first.open();
    await expect(batches.drain()).rejects.toBe(boom);
    expect(failures).toEqual([boom]);
    expect(applied).toEqual(["a\n"]);
    await expect(batches.push(Buffer.from("c\n"))).rejects.toBe(boom);
    expect(applied).toEqual(["a\n"]);
  });
});

/** An IPPool ADDED event line. */
function pool(name: string, rv: number): string {
  return (
    JSON.stringify({
      type: "ADDED",
      object: {
        apiVersion: "crd.projectcalico.org/v1",
        kind: "IPPool",
        metadata: { name, resourceVersion: String(rv) },
        spec: { cidr: `10.${rv}.0.0/16` },
      },
    }) + "\n"
  );
}

describe("ResourceLoop's watch batches", () => {
  const ippools = findResource("ippools")!;
  let abort: AbortController;
  let tracker: SyncTracker | undefined;
  afterEach(() => {
    abort.abort();
    tracker?.close();
  });

  /**
   * A loop over scripted list and watch calls and an ingest worker whose first batch waits for `first`.
   * `log` has every list, every watch with its resourceVersion and the key of every upsert, in order;
   * `batches` the events per batch.
   */
  function startLoop() {
    abort = new AbortController();
    const log: string[] = [];
    const upserts: string[] = [];
    const upsert = (key: string): void => {
      upserts.push(key);
      log.push(key);
    };
    const sink = keySink(upsert);
    tracker = startedTracker(ippools, sink);
    const watches: PassThrough[] = [];
    const http = {
      listBody: () => {
        log.push("list");
        return Promise.resolve(Buffer.from("{}"));
      },
      watch: (_path: string, query: Record<string, string>, signal: AbortSignal) => {
        log.push(`watch from ${query.resourceVersion}`);
        const res = Object.assign(new PassThrough(), { complete: false });
        signal.addEventListener("abort", () => res.destroy(signal.reason as Error), { once: true });
        watches.push(res);
        return Promise.resolve(res);
      },
    } as unknown as KubeHttp;
    const batches: number[] = [];
    const first = gate();
    const ingest = {
      isAvailable: true,
      list: () => Promise.resolve({ items: [], resourceVersion: "10", continueToken: undefined }),
      lines: async (_resource: unknown, lines: Buffer) => {
        const events: IngestEvent[] = [];
        decodeWatchLines(lines, "ippools", (e) => events.push(eventOf(ippools, e, false)));
        batches.push(events.length);
        if (batches.length === 1) await first.promise;
        return { events, error: undefined };
      },
    } as unknown as IngestWorker;
    const loop = testLoop({ resource: ippools, http, sink, tracker, signal: abort.signal, ingest });
    const lists = (): number => log.filter((l) => l === "list").length;
    return { done: loop.run(), log, upserts, watches, batches, first, lists };
  }

  it("keeps reading while the ingest worker converts, applies in order, and stops at once on a 410", async () => {
    const { done, upserts, watches, batches, first, lists } = startLoop();
    await until(() => watches.length === 1);
    watches[0]!.write(pool("p1", 11));
    await until(() => batches.length === 1);
    // 300 events while the first is in the worker, more than the stream buffers (16 KiB) before it stops
    // reading: they are read meanwhile and go out as one batch, not one round trip per buffered chunk.
    for (let i = 2; i <= 301; i++) watches[0]!.write(pool(`p${i}`, 10 + i));
    await new Promise((r) => setTimeout(r, 50));
    expect(batches).toEqual([1]); // the first batch is still in the worker
    first.open();
    await until(() => upserts.length === 301);
    expect(batches).toEqual([1, 300]);
    expect(upserts).toEqual(Array.from({ length: 301 }, (_, i) => `IPPool/p${i + 1}`));

    // An ERROR 410, then silence: the loop relists at once, not when the watchdog fires a minute later.
    watches[0]!.write(
      JSON.stringify({ type: "ERROR", object: { kind: "Status", code: 410, message: "gone" } }) + "\n",
    );
    await until(() => lists() === 2);
    abort.abort();
    await done;
  });

  it("a stream that breaks with a batch in the worker: the batch lands before the next watch", async () => {
    const { done, log, watches, batches, first } = startLoop();
    await until(() => watches.length === 1);
    watches[0]!.write(pool("p1", 11));
    await until(() => batches.length === 1);
    watches[0]!.destroy(new Error("connection reset"));
    await new Promise((r) => setTimeout(r, 30));
    expect(watches.length).toBe(1); // not yet: p1 is still in the worker
    first.open();
    await until(() => watches.length === 2);
    expect(log).toEqual(["list", "watch from 10", "IPPool/p1", "watch from 11"]);
    abort.abort();
    await done;
  });
});
