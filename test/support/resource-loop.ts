/** ResourceLoops over scripted HTTP for unit tests: quiet defaults for everything the test does not set. */
import pino from "pino";
import { Registry } from "prom-client";
import { datastoreMetrics } from "../../src/server/datastore/metrics.js";
import { ResourceLoop } from "../../src/server/datastore/resource-loop.js";
import type { LoopDeps, LoopOptions } from "../../src/server/datastore/resource-loop.js";
import { SyncTracker } from "../../src/server/datastore/sync-tracker.js";
import { sleep } from "../../src/server/datastore/timing.js";
import type { UpstreamResource } from "../../src/server/datastore/types.js";
import type { UpstreamSink } from "../../src/snapshot/index.js";

/** A sink that hands the key of every upsert to `onUpsert` and ignores the rest. */
export function keySink(onUpsert: (key: string) => void): UpstreamSink {
  const upsert = (key: string): void => onUpsert(key);
  return {
    upsert,
    upsertPrepared: upsert,
    delete: () => undefined,
    keysOfKind: () => [],
    setKindState: () => undefined,
  };
}

/** A started SyncTracker over `resource` (close it after the test). */
export function startedTracker(resource: UpstreamResource, sink: UpstreamSink): SyncTracker {
  const tracker = new SyncTracker({
    resources: [resource],
    sink,
    clock: () => Date.now(),
    staleAfterMs: 60_000,
  });
  tracker.start();
  return tracker;
}

/** A loop with 1 ms backoffs, a 60 s watchdog and no minimum watch time, unless `options` says otherwise. */
export function testLoop(
  deps: Pick<LoopDeps, "resource" | "http" | "sink" | "tracker" | "signal" | "ingest"> & {
    readonly options?: Partial<LoopOptions>;
  },
): ResourceLoop {
  return new ResourceLoop({
    ...deps,
    metrics: datastoreMetrics(new Registry()),
    logger: pino({ level: "silent" }),
    clock: () => Date.now(),
    random: () => 0,
    delay: (_ms, signal) => sleep(1, signal),
    options: {
      pageSize: 500,
      watchTimeoutSeconds: 300,
      watchdogMs: 60_000,
      backoffInitialMs: 1,
      backoffMaxMs: 1,
      missingCrdRecheckMs: 60_000,
      maxEventBytes: 1 << 20,
      minWatchMs: 0,
      ...deps.options,
    },
    onActivity: () => undefined,
    onWatch: () => undefined,
  });
}
