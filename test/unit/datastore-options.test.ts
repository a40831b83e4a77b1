import { KubeConfig } from "@kubernetes/client-node";
import pino from "pino";
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { Datastore } from "../../src/server/datastore/index.js";
import type { DatastoreOptions } from "../../src/server/datastore/index.js";
import { kubeConfigFor } from "../../src/sim/index.js";
import { Hub } from "../../src/snapshot/index.js";
import type { UpstreamSink } from "../../src/snapshot/index.js";

const hub = new Hub();
const sink: UpstreamSink = {
  upsert: (k, v) => void hub.upsert(k, v),
  upsertPrepared: (k, p) => void hub.upsertPrepared(k, p),
  delete: (k) => void hub.delete(k),
  keysOfKind: (kind) => hub.store.keysOfKind(kind),
  setKindState: () => undefined,
};

function make(
  options: DatastoreOptions,
  kubeConfig: KubeConfig = kubeConfigFor("http://127.0.0.1:9"),
): Datastore {
  return new Datastore({
    kubeConfig,
    sink,
    logger: pino({ level: "silent" }),
    registry: new Registry(),
    options,
  });
}

describe("Datastore options", () => {
  const bad: [string, DatastoreOptions][] = [
    ["pageSize", { pageSize: 0 }],
    ["pageSize", { pageSize: 1.5 }],
    ["watchdogMs", { watchdogMs: -1 }],
    ["upstreamProbeMs", { upstreamProbeMs: 0 }],
    ["upstreamProbeTimeoutMs", { upstreamProbeTimeoutMs: -5 }],
    ["backoffInitialMs", { backoffInitialMs: Number.NaN }],
    ["watchTimeoutSeconds", { watchTimeoutSeconds: 2.5 }],
    ["kinds", { kinds: ["IPPool", "Bogus"] }],
    ["kinds", { kinds: [] }],
  ];
  it.each(bad)("rejects a bad %s, naming it", (name, options) => {
    expect(() => make(options)).toThrow(new RegExp(`DatastoreOptions\\.${name}`));
  });

  it("rejects a kubeconfig without a current cluster", () => {
    expect(() => make({}, new KubeConfig())).toThrow(/kubeConfig/);
  });

  it("shares its metrics per registry: two datastores on one registry are fine", async () => {
    const registry = new Registry();
    const opts = {
      kubeConfig: kubeConfigFor("http://127.0.0.1:9"),
      sink,
      logger: pino({ level: "silent" }),
      registry,
    };
    const a = new Datastore(opts);
    const b = new Datastore(opts);
    await Promise.all([a.close(), b.close()]);
    const names = (await registry.getMetricsAsJSON()).map((m) => m.name).sort();
    expect(names).toEqual([
      "tabby_upstream_events_total",
      "tabby_upstream_gone_total",
      "tabby_upstream_ingest_worker_crashes_total",
      "tabby_upstream_invalid_objects_total",
      "tabby_upstream_last_event_age_seconds",
      "tabby_upstream_probes_total",
      "tabby_upstream_relists_total",
      "tabby_upstream_stale",
      "tabby_upstream_watch_restarts_total",
      "tabby_upstream_watches",
    ]);
  });
});
