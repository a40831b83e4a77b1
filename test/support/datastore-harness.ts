/**
 * Test harness for the Kubernetes datastore against the simulator: a bare Hub wrapped as UpstreamSink
 * (recording kind states), the expected state (the simulator's objects converted), metric readers.
 */
import { readdirSync } from "node:fs";
import pino from "pino";
import { Registry } from "prom-client";
import { onTestFinished, vi } from "vitest";
import type { ResourceValue } from "../../proto/messages.js";
import { Datastore, resourceId, staticEntries } from "../../src/server/datastore/index.js";
import type { DatastoreDeps, DatastoreOptions, KubeObject } from "../../src/server/datastore/index.js";
import { startSimulator } from "../../src/sim/index.js";
import type { Simulator, SimulatorOptions } from "../../src/sim/index.js";
import { Hub } from "../../src/snapshot/index.js";
import type { KindState, PreparedValue, UpstreamSink } from "../../src/snapshot/index.js";

/** A bare Hub as the datastore's sink; remembers every kind state it was given. */
export class HubSink implements UpstreamSink {
  readonly hub = new Hub();
  readonly stateLog: [string, KindState][] = [];
  readonly #states = new Map<string, KindState>();

  upsert(key: string, value: ResourceValue): void {
    this.hub.upsert(key, value);
    this.hub.flush();
  }

  upsertPrepared(key: string, prepared: PreparedValue): void {
    this.hub.upsertPrepared(key, prepared);
    this.hub.flush();
  }

  delete(key: string): void {
    this.hub.delete(key);
    this.hub.flush();
  }

  keysOfKind(kind: string): Iterable<string> {
    return this.hub.store.keysOfKind(kind);
  }

  setKindState(kind: string, state: KindState): void {
    this.#states.set(kind, state);
    this.stateLog.push([kind, state]);
  }

  state(kind: string): string | undefined {
    return this.#states.get(kind)?.state;
  }

  /** Every held entry of these kinds, key → value. */
  entries(kinds: Iterable<string>): Map<string, ResourceValue> {
    const out = new Map<string, ResourceValue>();
    for (const kind of kinds)
      for (const e of this.hub.store.entriesOfKind(kind)) out.set(e.key, this.hub.store.valueOf(e.key)!);
    return out;
  }

  /** True once this kind has been reported in this state. */
  hasBeen(kind: string, state: string): boolean {
    return this.stateLog.some(([k, s]) => k === kind && s.state === state);
  }
}

export interface Harness {
  readonly sim: Simulator;
  readonly sink: HubSink;
  readonly ds: Datastore;
  readonly registry: Registry;
  /** The kinds the datastore serves. */
  readonly kinds: ReadonlySet<string>;
  /** The simulator's current objects, converted, for every resource the datastore watches. */
  expected(): Map<string, ResourceValue>;
  /** What the sink holds for the datastore's kinds. */
  actual(): Map<string, ResourceValue>;
  /** Waits until the sink equals the simulator's state converted (and every kind is in sync). */
  converged(timeoutMs?: number): Promise<void>;
  /** Sum of a counter's values whose labels include `labels`. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
}

export const quietLogger = pino({ level: "silent" });

/** Starts a simulator and a datastore on it; both are closed when the test finishes. */
export async function startHarness(
  opts: {
    sim?: SimulatorOptions;
    datastore?: DatastoreOptions;
    seed?: (sim: Simulator) => void;
    deps?: Partial<Pick<DatastoreDeps, "logger" | "ingestWorkerEntry" | "maxIngestWorkerCrashes">>;
  } = {},
): Promise<Harness> {
  const sim = await startSimulator(opts.sim);
  onTestFinished(() => sim.close());
  opts.seed?.(sim);
  const sink = new HubSink();
  const registry = new Registry();
  const ds = new Datastore({
    kubeConfig: sim.kubeConfig(),
    sink,
    logger: quietLogger,
    registry,
    ...opts.deps,
    options: {
      backoffInitialMs: 20,
      backoffMaxMs: 200,
      watchTimeoutSeconds: 300,
      ...opts.datastore,
    },
  });
  onTestFinished(() => ds.close());
  const kinds = new Set(ds.resources.flatMap((r) => r.kinds));

  const expected = (): Map<string, ResourceValue> => {
    const out = new Map<string, ResourceValue>();
    for (const { key, value } of staticEntries(ds.resources)) out.set(key, value);
    for (const r of ds.resources) {
      let objects: readonly KubeObject[];
      try {
        objects = sim.list(resourceId(r));
      } catch (err) {
        if ((err as { code?: string }).code === "ERR_SIM_RESOURCE_NOT_FOUND") continue; // CRD not installed
        throw err;
      }
      for (const obj of objects) {
        const c = r.convert(obj);
        if (c !== null && c.value !== null) out.set(c.key, c.value);
      }
    }
    return out;
  };
  const actual = (): Map<string, ResourceValue> => sink.entries(kinds);

  const metric = async (name: string, labels: Record<string, string> = {}): Promise<number> => {
    const m = registry.getSingleMetric(name);
    if (m === undefined) throw new Error(`no metric ${name}`);
    const got = await m.get();
    return got.values
      .filter((v) =>
        Object.entries(labels).every(([k, want]) => (v.labels as Record<string, unknown>)[k] === want),
      )
      .reduce((n, v) => n + v.value, 0);
  };

  const converged = async (timeoutMs = 10_000): Promise<void> => {
    await vi.waitFor(
      () => {
        for (const kind of kinds) if (sink.state(kind) !== "in-sync") throw new Error(`${kind} not in sync`);
        expectEqualState(actual(), expected());
      },
      { timeout: timeoutMs, interval: 10 },
    );
  };

  ds.start();
  return { sim, sink, ds, registry, kinds, expected, actual, converged, metric };
}

/** Asserts two states are equal, naming the first differing key. */
export function expectEqualState(got: Map<string, ResourceValue>, want: Map<string, ResourceValue>): void {
  const missing = [...want.keys()].filter((k) => !got.has(k));
  const extra = [...got.keys()].filter((k) => !want.has(k));
  if (missing.length > 0 || extra.length > 0) {
    throw new Error(
      `state differs: missing ${missing.slice(0, 5).join(", ")}; extra ${extra.slice(0, 5).join(", ")}`,
    );
  }
  for (const [k, v] of want) {
    const g = got.get(k);
    if (JSON.stringify(sortKeys(g)) !== JSON.stringify(sortKeys(v))) {
      throw new Error(`value of ${k} differs:\n got  ${JSON.stringify(g)}\n want ${JSON.stringify(v)}`);
    }
  }
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v === null || typeof v !== "object") return v;
  return Object.fromEntries(
    Object.entries(v as Record<string, unknown>)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, x]) => [k, sortKeys(x)]),
  );
}

/** Open file descriptors of this process (Linux), or undefined elsewhere. */
export function openFdCount(): number | undefined {
  try {
    return readdirSync("/proc/self/fd").length;
  } catch {
    return undefined;
  }
}
