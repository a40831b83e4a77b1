/**
 * The ingest worker (src/server/datastore/ingest-worker.ts): decode and convert off the main thread give
 * the same store, byte for byte, as on it; a crash is logged with its error, counted, and its kinds relist;
 * too many crashes fall back to the main thread; close() ends the thread.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { Registry } from "prom-client";
import { describe, expect, it, onTestFinished, vi } from "vitest";
import { Datastore } from "../../src/server/datastore/index.js";
import { podObject, seedSmallCluster, wepKey } from "../support/datastore-fixtures.js";
import { expectEqualState, HubSink, quietLogger, startHarness } from "../support/datastore-harness.js";

const CRASHING_THREAD = new URL("../support/crashing-ingest-thread.ts", import.meta.url);

/** A logger that keeps every line it writes, parsed. */
function recordingLogger(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level: "debug" },
    { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { logger, lines };
}

function crashMode(mode: string): void {
  const before = process.env.TABBY_TEST_INGEST_CRASH;
  process.env.TABBY_TEST_INGEST_CRASH = mode;
  onTestFinished(() => {
    if (before === undefined) delete process.env.TABBY_TEST_INGEST_CRASH;
    else process.env.TABBY_TEST_INGEST_CRASH = before;
  });
}

describe("Datastore: ingest worker", () => {
  it("stores the same bytes, hashes and owners as decoding on the main thread, through live changes", async () => {
    const h = await startHarness({ seed: (sim) => seedSmallCluster(sim), datastore: { pageSize: 4 } });
    const offSink = new HubSink();
    const off = new Datastore({
      kubeConfig: h.sim.kubeConfig(),
      sink: offSink,
      logger: quietLogger,
      registry: new Registry(),
      options: { pageSize: 4, ingestWorker: false, backoffInitialMs: 20, backoffMaxMs: 200 },
    });
    onTestFinished(() => off.close());
    off.start();
    await h.converged();
    await vi.waitFor(() => expect(h.ds.ingestWorker?.isAvailable).toBe(true), { timeout: 10_000 });
    const served = h.ds.ingestWorker?.served ?? 0;
    h.sim.patch("pods", "payments", "api-1", { metadata: { labels: { version: "v2" } } });
    h.sim.patch("pods", "payments", "api-2", { status: { phase: "Failed" } });
    // A status-only change (same value but for the resourceVersion: skipped by both), then a real one.
    h.sim.patch("pods", "payments", "api-4", { status: { conditions: [{ type: "Ready", status: "True" }] } });
    h.sim.patch("pods", "payments", "api-4", { metadata: { labels: { version: "v3" } } });
    h.sim.remove("pods", "payments", "api-3");
    h.sim.create("pods", podObject("default", "web-0", { ip: "10.244.1.50" }));
    h.sim.patch("nodes", undefined, "node-1", {
      metadata: { annotations: { "projectcalico.org/IPv4VXLANTunnelAddr": "10.244.1.2" } },
    });
    await h.converged();
    await vi.waitFor(() => expectEqualState(offSink.entries(h.kinds), h.expected()), { timeout: 10_000 });
    expect(h.ds.ingestWorker?.served).toBeGreaterThan(served);
    expect(off.ingestWorker).toBeUndefined();
    const on = h.sink.hub.store;
    const plain = offSink.hub.store;
    expect(on.size).toBe(plain.size);
    for (const kind of h.kinds) {
      for (const e of plain.entriesOfKind(kind)) {
        const got = on.get(e.key);
        expect(got?.encoded.equals(e.encoded), e.key).toBe(true);
        expect(got?.hash, e.key).toEqual(e.hash);
        expect(got?.node, e.key).toBe(e.node);
      }
    }
    expect(on.skipped).toBe(plain.skipped);
    await h.ds.close();
    expect(h.ds.ingestWorker?.isRunning).toBe(false);
    expect(h.ds.ingestWorker?.isAvailable).toBe(false);
  });

  it.each(["list", "lines"] as const)(
    "logs a crash (on a %s request) with its error, counts it, relists what was in flight, starts a new thread",
    async (crashOn) => {
      const dir = mkdtempSync(join(tmpdir(), "tabby-ingest-"));
      onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
      crashMode(`once:${join(dir, "crashed")}:${crashOn}`);
      const { logger, lines } = recordingLogger();
      const h = await startHarness({
        seed: (sim) => seedSmallCluster(sim),
        datastore: { kinds: ["WorkloadEndpoint", "Profile"] },
        deps: { logger, ingestWorkerEntry: CRASHING_THREAD },
      });
      await h.converged();
      await vi.waitFor(() => expect(h.ds.ingestWorker?.isAvailable).toBe(true), { timeout: 10_000 });
      const relists = await h.metric("tabby_upstream_relists_total", { kind: "WorkloadEndpoint" });
      // The next request of that type goes to the thread, and crashes it: a relist (410), or a watch event.
      if (crashOn === "list") h.sim.faults.expireWatches();
      h.sim.remove("pods", "payments", "api-0");
      await expect.poll(() => h.metric("tabby_upstream_ingest_worker_crashes_total")).toBe(1);
      await h.converged();
      expect(h.sink.hub.store.has(wepKey("payments", "api-0"))).toBe(false);
      const crash = lines.find(
        (l) => l.msg === "ingest worker crashed; the resources it was working for relist",
      );
      expect(crash?.level).toBe(50); // error
      expect((crash?.err as { code?: string } | undefined)?.code).toBe("ERR_TEST_CRASH");
      const failed = lines.find((l) => l.code === "ERR_DATASTORE_INGEST_WORKER");
      expect(failed?.level).toBe(40); // the loop's own warning, with the error and its cause
      expect(
        await h.metric("tabby_upstream_relists_total", { kind: "WorkloadEndpoint" }),
      ).toBeGreaterThanOrEqual(relists + 1);
      if (crashOn === "lines") {
        expect(
          await h.metric("tabby_upstream_watch_restarts_total", {
            kind: "WorkloadEndpoint",
            reason: "ingest-worker",
          }),
        ).toBe(1);
      }
      // A new thread takes over.
      await vi.waitFor(() => expect(h.ds.ingestWorker?.isAvailable).toBe(true), { timeout: 10_000 });
      const served = h.ds.ingestWorker?.served ?? 0;
      h.sim.remove("pods", "payments", "api-1");
      await h.converged();
      expect(h.ds.ingestWorker?.served).toBeGreaterThan(served);
    },
  );

  it("after maxIngestWorkerCrashes crashes, ingests on the main thread for good", async () => {
    crashMode("always:lines");
    const { logger, lines } = recordingLogger();
    const h = await startHarness({
      seed: (sim) => seedSmallCluster(sim),
      datastore: { kinds: ["WorkloadEndpoint", "Profile"] },
      deps: { logger, ingestWorkerEntry: CRASHING_THREAD, maxIngestWorkerCrashes: 2 },
    });
    await h.converged();
    // Each thread crashes on its first watch event; changes keep coming until both have.
    let n = 0;
    await vi.waitFor(
      async () => {
        if (h.ds.ingestWorker?.isAvailable === true)
          h.sim.patch("pods", "payments", "api-0", { metadata: { labels: { n: String(n++) } } });
        expect(await h.metric("tabby_upstream_ingest_worker_crashes_total")).toBe(2);
      },
      { timeout: 15_000, interval: 50 },
    );
    expect(h.ds.ingestWorker?.isAvailable).toBe(false);
    expect(h.ds.ingestWorker?.isRunning).toBe(false);
    expect(lines.some((l) => l.level === 50 && String(l.msg).includes("ingesting on the main thread"))).toBe(
      true,
    );
    h.sim.remove("pods", "payments", "api-1");
    await h.converged();
    expect(h.sink.hub.store.has(wepKey("payments", "api-1"))).toBe(false);
  });
});
